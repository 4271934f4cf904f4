"""``report reviews``: how the crowd is doing, for whoever runs it.

The backlog is always the current state; decisions, time to decision and reviewer figures
cover a window (default: the last 24 hours), so the numbers stay fast to compute and
mean something on a system that has run for years.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lizardctl.core.db.models import utcnow
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.services.reviews import Clock
from lizardctl.core.vocabulary import DECIDED

DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class ReviewReport:
    since: datetime
    until: datetime
    backlog: list[dict[str, Any]]
    leased: int
    by_hour: list[dict[str, Any]]
    median_seconds_to_decision: float | None
    reviewers: list[dict[str, Any]]
    awaiting_supervisor: int = 0
    supervisors: list[dict[str, Any]] = field(default_factory=list)
    """Per supervisor: cases they confirmed and dismissed in the window."""

    @property
    def decisions(self) -> int:
        return sum(row["total"] for row in self.by_hour)

    @property
    def decisions_per_hour(self) -> float:
        hours = max((self.until - self.since).total_seconds() / 3600, 1 / 60)
        return round(self.decisions / hours, 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "backlog": self.backlog,
            "leased": self.leased,
            "decisions": self.decisions,
            "decisions_per_hour": self.decisions_per_hour,
            "by_hour": self.by_hour,
            "median_seconds_to_decision": self.median_seconds_to_decision,
            "reviewers": self.reviewers,
            "awaiting_supervisor": self.awaiting_supervisor,
            "supervisor_decisions": sum(s["total"] for s in self.supervisors),
            "supervisors": self.supervisors,
        }


class ReviewReportService:
    def __init__(self, uow_factory: UowFactory, now: Clock = utcnow) -> None:
        self.uow_factory = uow_factory
        self.now = now

    async def report(self, since: datetime | None = None) -> ReviewReport:
        until = self.now()
        since = since if since is not None else until - DEFAULT_WINDOW
        async with self.uow_factory() as uow:
            stats = uow.review_stats
            backlog = [
                {"status": status, "level": level, "cases": cases}
                for status, level, cases in await stats.backlog()
            ]
            leased = await stats.leased(until)
            hours: dict[str, dict[str, Any]] = defaultdict(dict)
            for hour, status, cases in await stats.decisions_by_hour(since):
                hours[hour][status] = cases
            median = await stats.median_seconds_to_decision(since)
            reviewers = [_with_agreement(row) for row in await stats.by_reviewer(since)]
            awaiting = await stats.awaiting_supervisor(
                (await uow.review_settings.current()).votes_per_level,
                await uow.reviewers.highest_level(),
            )
            decided_by: dict[str, dict[str, int]] = defaultdict(dict)
            for name, status, cases in await stats.supervisor_decisions(since):
                decided_by[name][status] = cases
        by_hour = [
            {
                "hour": hour,
                **{status.value: counts.get(status.value, 0) for status in DECIDED},
                "total": sum(counts.values()),
            }
            for hour, counts in sorted(hours.items())
        ]
        return ReviewReport(
            since,
            until,
            backlog,
            leased,
            by_hour,
            round(median, 1) if median is not None else None,
            reviewers,
            awaiting,
            [
                {
                    "name": name,
                    **{status.value: counts.get(status.value, 0) for status in DECIDED},
                    "total": sum(counts.values()),
                }
                for name, counts in sorted(decided_by.items())
            ],
        )


def _with_agreement(row: dict[str, Any]) -> dict[str, Any]:
    """Share of the reviewer's votes on decided cases that match the decision."""
    decided = row["on_decided"]
    return {
        **row,
        "no_violation": row["votes"] - row["violation"],
        "agreement": round(row["agreed"] / decided, 3) if decided else None,
    }

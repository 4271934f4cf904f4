"""Export decided cases, one row per case with its votes, as CSV or JSON Lines.

Rows are written as they stream out of the database (one case's votes in hand at a time),
so a million cases cost no more memory than ten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from lizardctl.core.choices import ExportFormat
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.files import atomic_output
from lizardctl.core.output import SpreadsheetWriter, json_text
from lizardctl.core.services.history import VoteView
from lizardctl.core.vocabulary import DecidedStatus

CSV_COLUMNS = (
    "case_id",
    "status",
    "plate",
    "camera_id",
    "violation_id",
    "violation_value",
    "occurred_at",
    "decided_at",
    "level",
    "votes",
    "decided_by",
    "decision_note",
)


@dataclass(frozen=True, slots=True)
class ExportedCase:
    case_id: str
    status: str
    plate: str
    camera_id: str
    violation_id: str
    violation_value: str
    occurred_at: datetime
    decided_at: datetime | None
    level: int
    votes: tuple[VoteView, ...]
    decided_by: str | None = None
    """The supervisor who decided the case; None when the votes did."""
    decision_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "plate": self.plate,
            "camera_id": self.camera_id,
            "violation_id": self.violation_id,
            "violation_value": self.violation_value,
            "occurred_at": self.occurred_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "level": self.level,
            "votes": [v.to_dict() for v in self.votes],
            "decided_by": self.decided_by,
            "decision_note": self.decision_note,
        }

    def csv_row(self) -> list[Any]:
        """Votes in one cell, ``reviewer@level=verdict`` joined by ``;``, in the order cast."""
        data = self.to_dict()
        data["votes"] = ";".join(f"{v.reviewer}@{v.level}={v.verdict}" for v in self.votes)
        return [data[column] for column in CSV_COLUMNS]


async def group_votes(
    batches: AsyncIterator[Sequence[Any]],
) -> AsyncIterator[list[ExportedCase]]:
    """Fold batches of vote-per-row rows (ordered by case) into batches of one
    ``ExportedCase`` per case; a case cut by a batch boundary waits for the next batch."""
    current: Any = None
    votes: list[VoteView] = []
    done: list[ExportedCase] = []
    async for batch in batches:
        for row in batch:
            if current is not None and row.id != current.id:
                done.append(_exported(current, votes))
                votes = []
            current = row
            if row.verdict is not None:
                votes.append(VoteView(row.reviewer, row.level, row.verdict, row.voted_at))
        if done:
            yield done
            done = []
    if current is not None:
        yield [_exported(current, votes)]


def _exported(row: Any, votes: list[VoteView]) -> ExportedCase:
    return ExportedCase(
        str(row.id),
        row.status,
        row.plate,
        str(row.camera_id),
        str(row.violation_id),
        row.violation_value,
        row.occurred_at,
        row.decided_at,
        row.required_skill,
        tuple(votes),
        row.decided_by,
        row.decision_note,
    )


class ExportService:
    def __init__(self, uow_factory: UowFactory) -> None:
        self.uow_factory = uow_factory

    async def export(
        self,
        out: TextIO,
        *,
        fmt: ExportFormat,
        statuses: Sequence[DecidedStatus] = tuple(DecidedStatus),
        since: datetime | None = None,
    ) -> int:
        """Write decided cases (oldest decision first) to ``out``; returns how many."""
        count = 0
        writer = SpreadsheetWriter(out)
        if fmt is ExportFormat.CSV:
            writer.writerow(CSV_COLUMNS)
        async with self.uow_factory() as uow:
            batches = uow.review_stats.decided([s.value for s in statuses], since)
            async for cases in group_votes(batches):
                if fmt is ExportFormat.CSV:
                    writer.writerows(case.csv_row() for case in cases)
                else:
                    out.writelines(json_text(case.to_dict(), indent=None) + "\n" for case in cases)
                count += len(cases)
        return count

    async def export_file(
        self,
        path: Path,
        *,
        fmt: ExportFormat,
        statuses: Sequence[DecidedStatus] = tuple(DecidedStatus),
        since: datetime | None = None,
    ) -> int:
        """Like ``export``, into ``path``, which appears only once complete."""
        with atomic_output(path) as out:
            return await self.export(out, fmt=fmt, statuses=statuses, since=since)

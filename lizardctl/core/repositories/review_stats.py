"""Read-only queries over the review outcome: the export stream and the review report.

Time arithmetic differs between the engines (SQLite keeps timestamps as UTC text), so the
two expressions that need it are picked by dialect here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select

from lizardctl.core.db.models import Assignment, Case, CaseTransition, Reviewer
from lizardctl.core.repositories.base import Repository
from lizardctl.core.repositories.reviews import votes_at_level
from lizardctl.core.vocabulary import DECIDED, OUTCOME_OF, REVIEWABLE, Verdict

EXPORT_BATCH = 1000
"""Rows fetched per round trip while streaming: memory stays flat whatever the total."""


class ReviewStatsRepository(Repository):
    def _hour(self) -> ColumnElement[str]:
        """``2026-11-25T14:00``: the UTC hour a case was decided in."""
        if self.session.dialect == "postgresql":
            utc = func.timezone("UTC", Case.decided_at)
            return func.to_char(utc, 'YYYY-MM-DD"T"HH24:00')
        return func.strftime("%Y-%m-%dT%H:00", Case.decided_at)

    def _seconds_to_decision(self) -> ColumnElement[Any]:
        if self.session.dialect == "postgresql":
            return func.extract("epoch", Case.decided_at - Case.created_at)
        days = func.julianday(Case.decided_at) - func.julianday(Case.created_at)
        return days * literal(86400.0)

    async def decided(
        self, statuses: Sequence[str], since: datetime | None
    ) -> AsyncIterator[Sequence[Any]]:
        """Decided cases with their votes, one row per vote, in decision order.

        Streamed (server-side cursor on PostgreSQL, stepped cursor on SQLite) and handed
        over in batches of ``EXPORT_BATCH`` rows: a caller that writes each batch before
        asking for the next holds one batch at most, and pays one await per batch, not
        per row.
        """
        query = (
            select(
                Case.id,
                Case.status,
                Case.plate,
                Case.camera_id,
                Case.violation_id,
                Case.violation_value,
                Case.occurred_at,
                Case.decided_at,
                Case.required_skill,
                CaseTransition.actor.label("decided_by"),
                CaseTransition.note.label("decision_note"),
                Reviewer.name.label("reviewer"),
                Assignment.level,
                Assignment.verdict,
                Assignment.voted_at,
            )
            .outerjoin(
                Assignment, and_(Assignment.case_id == Case.id, Assignment.verdict.is_not(None))
            )
            .outerjoin(Reviewer, Reviewer.id == Assignment.reviewer_id)
            .outerjoin(
                CaseTransition,
                and_(
                    CaseTransition.case_id == Case.id,
                    CaseTransition.actor.is_not(None),
                    CaseTransition.to_status == Case.status,
                ),
            )
            .where(Case.status.in_(statuses))
            .order_by(Case.decided_at, Case.id, Assignment.voted_at, Assignment.id)
            .execution_options(yield_per=EXPORT_BATCH)
        )
        if since is not None:
            query = query.where(Case.decided_at >= since)
        result = await self.session.stream(query)
        async for batch in result.partitions(EXPORT_BATCH):
            yield batch

    async def backlog(self) -> list[tuple[str, int, int]]:
        """(status, level, cases) for every status and level that has cases."""
        query = (
            select(Case.status, Case.required_skill, func.count())
            .group_by(Case.status, Case.required_skill)
            .order_by(Case.status, Case.required_skill)
        )
        return [tuple(row) for row in await self.session.execute(query)]

    async def awaiting_supervisor(self, votes_per_level: int, top_level: int | None) -> int:
        """Undecided cases with all their votes at or above ``top_level``, the highest
        active reviewer's (any level when nobody is active): a supervisor must decide them."""
        query = select(func.count()).where(
            Case.status.in_(REVIEWABLE), votes_at_level() >= votes_per_level
        )
        if top_level is not None:
            query = query.where(Case.required_skill >= top_level)
        return int(await self.session.scalar(query) or 0)

    async def supervisor_decisions(self, since: datetime) -> list[tuple[str, str, int]]:
        """(supervisor, outcome, cases) for supervisors' decisions since ``since``."""
        query = (
            select(CaseTransition.actor, CaseTransition.to_status, func.count())
            .where(CaseTransition.actor.is_not(None), CaseTransition.at >= since)
            .group_by(CaseTransition.actor, CaseTransition.to_status)
            .order_by(CaseTransition.actor, CaseTransition.to_status)
        )
        return [tuple(row) for row in await self.session.execute(query)]

    async def leased(self, now: datetime) -> int:
        """Live leases not yet voted on: cases in reviewers' hands right now."""
        query = select(func.count()).where(
            Assignment.verdict.is_(None), Assignment.expires_at > now
        )
        return int(await self.session.scalar(query) or 0)

    async def decisions_by_hour(self, since: datetime) -> list[tuple[str, str, int]]:
        """(UTC hour, outcome, cases) for decisions since ``since``."""
        hour = self._hour().label("hour")
        query = (
            select(hour, Case.status, func.count())
            .where(Case.status.in_(DECIDED), Case.decided_at >= since)
            .group_by(hour, Case.status)
            .order_by(hour, Case.status)
        )
        return [tuple(row) for row in await self.session.execute(query)]

    async def median_seconds_to_decision(self, since: datetime) -> float | None:
        """Median of ingest-to-decision time over decisions since ``since``, in the database:
        the middle one or two durations by ORDER BY/OFFSET, which both engines can do."""
        window = (Case.status.in_(DECIDED), Case.decided_at >= since)
        total = int(await self.session.scalar(select(func.count()).where(*window)) or 0)
        if total == 0:
            return None
        seconds = self._seconds_to_decision()
        query = (
            select(seconds)
            .where(*window)
            .order_by(seconds)
            .offset((total - 1) // 2)
            .limit(2 - total % 2)
        )
        middle = [float(value) for value in (await self.session.scalars(query)).all()]
        return sum(middle) / len(middle)

    async def by_reviewer(self, since: datetime) -> list[dict[str, Any]]:
        """Per reviewer: votes since ``since``, how many on decided cases, and how many of
        those agree with the final decision."""
        agreed = case(
            *((and_(Assignment.verdict == v, Case.status == OUTCOME_OF[v]), 1) for v in Verdict),
            else_=0,
        )
        on_decided = case((Case.status.in_(DECIDED), 1), else_=0)
        violation = case((Assignment.verdict == Verdict.VIOLATION, 1), else_=0)
        query = (
            select(
                Reviewer.name,
                Reviewer.skill,
                Reviewer.active,
                func.count(Assignment.id),
                func.coalesce(func.sum(violation), 0),
                func.coalesce(func.sum(on_decided), 0),
                func.coalesce(func.sum(agreed), 0),
            )
            .select_from(Reviewer)
            .outerjoin(
                Assignment,
                and_(
                    Assignment.reviewer_id == Reviewer.id,
                    Assignment.verdict.is_not(None),
                    Assignment.voted_at >= since,
                ),
            )
            .outerjoin(Case, Case.id == Assignment.case_id)
            .group_by(Reviewer.id, Reviewer.name, Reviewer.skill, Reviewer.active)
            .order_by(Reviewer.name)
        )
        keys = ("name", "skill", "active", "votes", "violation", "on_decided", "agreed")
        return [dict(zip(keys, row, strict=True)) for row in await self.session.execute(query)]

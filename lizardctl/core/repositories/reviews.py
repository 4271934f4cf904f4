"""Reviewers, their leases and votes, case transitions and the review settings.

The assignment queries carry the concurrency rules; ``ReviewService`` documents how they
are used. Locking clauses (``FOR UPDATE``, ``SKIP LOCKED``) take effect on PostgreSQL;
SQLAlchemy leaves them out on SQLite, where every transaction starts with
``BEGIN IMMEDIATE`` (``lizardctl.core.db.engine``) and so runs alone among writers.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update

from lizardctl.core.db.models import Assignment, Case, CaseTransition, Reviewer, ReviewSettings
from lizardctl.core.errors import UpgradeNeeded
from lizardctl.core.repositories.base import Repository
from lizardctl.core.vocabulary import REVIEWABLE, CaseStatus


class ReviewerRepository(Repository):
    async def get(self, name: str, *, lock: bool = False) -> Reviewer | None:
        """The reviewer called ``name``; ``lock`` serialises one reviewer's concurrent calls."""
        query = select(Reviewer).where(Reviewer.name == name)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        found: Reviewer | None = await self.session.scalar(query)
        return found

    async def add(self, reviewer: Reviewer) -> None:
        self.session.add(reviewer)
        await self.session.flush()

    async def save(self, reviewer: Reviewer) -> None:
        """Write the reviewer's changes, so the queries that follow see them."""
        self.session.add(reviewer)
        await self.session.flush()

    async def list(self) -> Sequence[Reviewer]:
        query = select(Reviewer).order_by(Reviewer.skill, Reviewer.name)
        return (await self.session.scalars(query)).all()

    async def next_level_above(self, level: int) -> int | None:
        """The lowest skill above ``level`` that some active reviewer has."""
        query = select(func.min(Reviewer.skill)).where(
            Reviewer.active.is_(True), Reviewer.skill > level
        )
        found: int | None = await self.session.scalar(query)
        return found

    async def highest_level(self) -> int | None:
        """The highest skill any active reviewer has: cases split there need a supervisor."""
        query = select(func.max(Reviewer.skill)).where(Reviewer.active.is_(True))
        found: int | None = await self.session.scalar(query)
        return found


def _live(now: datetime) -> ColumnElement[bool]:
    """An assignment that takes a slot: voted, or leased and not yet expired."""
    return or_(Assignment.verdict.is_not(None), Assignment.expires_at > now)


class AssignmentRepository(Repository):
    def _assignable(
        self, skill: int, reviewer_id: int, votes_per_level: int, now: datetime
    ) -> list[ColumnElement[bool]]:
        """A case this reviewer may be given now: the rules of ``review next`` in SQL."""
        at_level = (Assignment.case_id == Case.id, Assignment.level == Case.required_skill)
        taken = select(func.count()).where(*at_level, _live(now)).scalar_subquery()
        seen = select(Assignment.id).where(*at_level, Assignment.reviewer_id == reviewer_id)
        return [
            Case.status.in_(REVIEWABLE),
            Case.required_skill == skill,
            ~seen.exists(),
            taken < votes_per_level,
        ]

    async def candidate(
        self,
        skill: int,
        reviewer_id: int,
        votes_per_level: int,
        now: datetime,
        passed: Collection[uuid.UUID],
        *,
        lock: bool,
    ) -> uuid.UUID | None:
        """The oldest assignable case not in ``passed``; with ``lock``, the oldest that no
        other transaction holds, row-locked (``FOR UPDATE SKIP LOCKED``).

        The filter is evaluated on the statement's snapshot, which may predate a lease that
        a concurrent transaction committed just before this one took the row lock: callers
        must confirm with ``still_assignable`` once the lock is held.
        """
        query = (
            select(Case.id)
            .where(*self._assignable(skill, reviewer_id, votes_per_level, now))
            .order_by(Case.occurred_at, Case.id)
            .limit(1)
        )
        if lock:
            query = query.with_for_update(skip_locked=True, of=Case)
        if passed:
            query = query.where(Case.id.not_in(passed))
        found: uuid.UUID | None = await self.session.scalar(query)
        return found

    async def still_assignable(
        self, case_id: uuid.UUID, skill: int, reviewer_id: int, votes_per_level: int, now: datetime
    ) -> bool:
        """Re-check a locked case in a fresh statement, which sees every committed lease."""
        query = select(Case.id).where(
            Case.id == case_id, *self._assignable(skill, reviewer_id, votes_per_level, now)
        )
        return await self.session.scalar(query) is not None

    async def add(self, assignment: Assignment) -> None:
        self.session.add(assignment)
        await self.session.flush()

    async def record_vote(self, lease: Assignment, verdict: str, now: datetime) -> None:
        lease.verdict = verdict
        lease.voted_at = now
        await self.session.flush()

    async def held(self, reviewer_id: int, now: datetime) -> Assignment | None:
        """The reviewer's live, unvoted lease on a case still waiting at that level."""
        query = (
            select(Assignment)
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Assignment.reviewer_id == reviewer_id,
                Assignment.verdict.is_(None),
                Assignment.expires_at > now,
                Case.status.in_(REVIEWABLE),
                Case.required_skill == Assignment.level,
            )
            .order_by(Assignment.assigned_at.desc())
            .limit(1)
        )
        found: Assignment | None = await self.session.scalar(query)
        return found

    async def last_unvoted(self, reviewer_id: int) -> Assignment | None:
        """The reviewer's latest lease without a vote, live or not: explains a refused vote."""
        query = (
            select(Assignment)
            .where(Assignment.reviewer_id == reviewer_id, Assignment.verdict.is_(None))
            .order_by(Assignment.assigned_at.desc())
            .limit(1)
        )
        found: Assignment | None = await self.session.scalar(query)
        return found

    async def release(self, reviewer_id: int, now: datetime) -> int:
        """End the reviewer's live leases now, freeing their slots for others."""
        result = await self.session.execute(
            update(Assignment)
            .where(
                Assignment.reviewer_id == reviewer_id,
                Assignment.verdict.is_(None),
                Assignment.expires_at > now,
            )
            .values(expires_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def verdicts(self, case_id: uuid.UUID, level: int) -> list[str]:
        query = (
            select(Assignment.verdict)
            .where(
                Assignment.case_id == case_id,
                Assignment.level == level,
                Assignment.verdict.is_not(None),
            )
            .order_by(Assignment.voted_at, Assignment.id)
        )
        return list((await self.session.scalars(query)).all())

    async def votes(self, case_id: uuid.UUID) -> Sequence[Any]:
        """Every vote on a case with its reviewer's name, in the order cast."""
        query = (
            select(
                Reviewer.name,
                Assignment.level,
                Assignment.verdict,
                Assignment.voted_at,
            )
            .join(Reviewer, Reviewer.id == Assignment.reviewer_id)
            .where(Assignment.case_id == case_id, Assignment.verdict.is_not(None))
            .order_by(Assignment.voted_at, Assignment.id)
        )
        return (await self.session.execute(query)).all()

    async def votes_at_level(self, case_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Votes each case has at its current level (cases without any are left out)."""
        if not case_ids:
            return {}
        query = (
            select(Assignment.case_id, func.count().label("votes"))
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Assignment.case_id.in_(case_ids),
                Assignment.level == Case.required_skill,
                Assignment.verdict.is_not(None),
            )
            .group_by(Assignment.case_id)
        )
        return {row.case_id: row.votes for row in await self.session.execute(query)}

    async def lock_case(self, case_id: uuid.UUID) -> Case | None:
        """The case, row-locked until commit, so its votes are counted by one voter at a time."""
        query = (
            select(Case)
            .where(Case.id == case_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found: Case | None = await self.session.scalar(query)
        return found

    async def lock_full_cases(self, votes_per_level: int) -> Sequence[Case]:
        """Undecided cases with at least ``votes_per_level`` votes at their level, locked."""
        query = (
            select(Case)
            .where(Case.status.in_(REVIEWABLE), votes_at_level() >= votes_per_level)
            .order_by(Case.occurred_at, Case.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).all()

    async def move_up(self, case: Case, level: int) -> None:
        """Put an escalated case at ``level``, written at once for the queries that follow."""
        case.status = CaseStatus.ESCALATED
        case.required_skill = level
        await self.session.flush()

    async def lock_waiting(self, votes_per_level: int, below: int) -> Sequence[Case]:
        """Escalated cases below level ``below`` that have all their votes at their level
        (split where nobody above was active), locked. Rows another transaction holds are
        skipped: that one is deciding or moving them already."""
        query = (
            select(Case)
            .where(
                Case.status == CaseStatus.ESCALATED,
                Case.required_skill < below,
                votes_at_level() >= votes_per_level,
            )
            .order_by(Case.occurred_at, Case.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).all()


def votes_at_level() -> ColumnElement[int]:
    """Votes a case (the outer query's row) has at its current level."""
    return (
        select(func.count())
        .where(
            Assignment.case_id == Case.id,
            Assignment.level == Case.required_skill,
            Assignment.verdict.is_not(None),
        )
        .scalar_subquery()
    )


class TransitionRepository(Repository):
    def add(self, transition: CaseTransition) -> None:
        self.session.add(transition)

    async def of_case(self, case_id: uuid.UUID) -> Sequence[CaseTransition]:
        query = (
            select(CaseTransition)
            .where(CaseTransition.case_id == case_id)
            .order_by(CaseTransition.at, CaseTransition.id)
        )
        return (await self.session.scalars(query)).all()


class ReviewSettingsRepository(Repository):
    async def current(self, *, lock: bool = False) -> ReviewSettings:
        """The one settings row; ``lock`` serialises changes to it."""
        query = select(ReviewSettings).where(ReviewSettings.id == 1)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        row: ReviewSettings | None = await self.session.scalar(query)
        if row is None:
            raise UpgradeNeeded("review settings missing")
        return row

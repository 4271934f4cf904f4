"""The reviewers' workflow: skill-matched leases, votes, K-vote consensus and escalation.

Assignment concurrency, the one hard part. ``next_case`` runs in one transaction that

1. locks the reviewer's row (``FOR UPDATE``), so one reviewer's concurrent calls queue up
   and the hold-one rule cannot be raced;
2. returns the reviewer's live lease if there is one;
3. locks the oldest assignable case with ``FOR UPDATE SKIP LOCKED``, so concurrent callers
   spread over different cases instead of queueing on the head of the backlog; when all
   assignable cases are locked by other assigners, it retries after a few milliseconds
   rather than block on a row lock (so assigners never deadlock);
4. re-checks that case in a fresh statement: under READ COMMITTED the locking query judged
   the case on a snapshot that may predate a lease committed just before the lock was
   granted. Every assigner holds the case row while it counts and inserts, so the re-check
   is exact; a case that fails it is passed over and the next one locked;
5. inserts the lease and commits.

That is PostgreSQL. On SQLite the locking clauses are left out by SQLAlchemy, and every
transaction starts with ``BEGIN IMMEDIATE`` (``lizardctl.core.db.engine``), so assignments
simply run one at a time and the same code is trivially correct.

Votes lock the reviewer and then the case row (blocking), so the K-th vote and the
consensus it triggers are counted by one transaction at a time. The unique key on
(case, level, reviewer) is the database's own guarantee that nobody gets a case twice at
a level.

The lifecycle always ends. A case split at the highest staffed level waits for a
supervisor (``decide``). When a reviewer above its level becomes active, it moves up to
the next staffed level instead: at that change (``ReviewerService``), so ``cases list``
is right at once, and again when ``review next`` finds nothing at a reviewer's level,
which catches a split committed concurrently with the change (each transaction saw the
other's world before it committed) without a search on every call. A confirmed case
keeps the catalog's fine of that moment (``fine_minor``).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from lizardctl.core.choices import MAX_LEASE_MINUTES, MAX_VOTES_PER_LEVEL
from lizardctl.core.db.models import (
    Assignment,
    Case,
    CaseTransition,
    Reviewer,
    utcnow,
)
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import (
    NoLease,
    NotASupervisor,
    NotFoundError,
    NothingToChange,
    UsageError,
)
from lizardctl.core.ids import IdText, resolve_id
from lizardctl.core.money import format_amount
from lizardctl.core.output import quoted
from lizardctl.core.services.cases import CaseView, PhotoPlace
from lizardctl.core.services.history import TransitionView
from lizardctl.core.store import PhotoStore
from lizardctl.core.store.cache import ReviewCache
from lizardctl.core.validation import describe_validation_error
from lizardctl.core.vocabulary import DECIDED, OUTCOME_OF, REVIEWABLE, CaseStatus, Verdict

Clock = Callable[[], datetime]
CLAIM_PATIENCE_S = 5.0
"""How long ``review next`` waits for other assigners holding the only free cases."""
CLAIM_FIRST_PAUSE_S, CLAIM_MAX_PAUSE_S = 0.002, 0.05


def consensus(verdicts: Sequence[str]) -> CaseStatus:
    """Unanimous votes decide the case; any disagreement escalates it."""
    if not verdicts:
        raise ValueError("consensus of no votes")
    distinct = set(verdicts)
    if len(distinct) > 1:
        return CaseStatus.ESCALATED
    return OUTCOME_OF[Verdict(distinct.pop())]


def tally(verdicts: Sequence[str]) -> str:
    """``2 violation, 1 no-violation``: the vote count a transition's cause quotes."""
    counts = Counter(verdicts)
    return ", ".join(f"{counts[v]} {v}" for v in Verdict if counts[v])


REVIEWER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
_REVIEWER_NAME = re.compile(REVIEWER_NAME)


class ReviewerIn(BaseModel):
    """A reviewer as typed by an operator, checked before it reaches the database."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    name: Annotated[str, Field(pattern=REVIEWER_NAME)]
    skill: Annotated[int, Field(ge=1, le=100)]
    supervisor: bool = False


MAX_NOTE_LENGTH = 1000


def check_note(note: str | None) -> str | None:
    """A supervisor's note, stripped; refused when it could disguise itself on a terminal
    or in a CSV (control characters) or is a wall of text."""
    if note is None or not note.strip():
        return None
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise UsageError(f"note is {len(note)} characters long; at most {MAX_NOTE_LENGTH}")
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in note):
        raise UsageError("note must not contain control or format characters")
    return note


@dataclass(frozen=True, slots=True)
class ReviewerView:
    name: str
    skill: int
    active: bool
    created_at: datetime
    supervisor: bool = False
    moved_up: int = 0
    """Waiting escalated cases this change moved up to a newly staffed level."""

    @classmethod
    def of(cls, reviewer: Reviewer, moved_up: int = 0) -> ReviewerView:
        return cls(
            reviewer.name,
            reviewer.skill,
            reviewer.active,
            reviewer.created_at,
            reviewer.supervisor,
            moved_up,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "skill": self.skill,
            "active": self.active,
            "supervisor": self.supervisor,
            "created_at": self.created_at.isoformat(),
            "moved_up": self.moved_up,
        }


@dataclass(frozen=True, slots=True)
class SettingsView:
    votes_per_level: int
    lease_minutes: int
    settled: int = 0
    """Cases decided or escalated on the spot because K was lowered to their vote count."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "votes_per_level": self.votes_per_level,
            "lease_minutes": self.lease_minutes,
            "settled": self.settled,
        }


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What ``review next`` hands a reviewer: the case, the level and the lease's end."""

    reviewer: str
    level: int
    assigned_at: datetime
    expires_at: datetime
    resumed: bool
    case: CaseView
    photo_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "level": self.level,
            "assigned_at": self.assigned_at.isoformat(),
            "lease_expires_at": self.expires_at.isoformat(),
            "resumed": self.resumed,
            "case": self.case.to_dict(detail=True),
        }


@dataclass(frozen=True, slots=True)
class VoteResult:
    case_id: uuid.UUID
    reviewer: str
    verdict: str
    level: int
    votes: int
    votes_needed: int
    transition: TransitionView | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": str(self.case_id),
            "reviewer": self.reviewer,
            "verdict": self.verdict,
            "level": self.level,
            "votes": self.votes,
            "votes_needed": self.votes_needed,
            "transition": self.transition.to_dict() if self.transition else None,
        }


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """A supervisor's decision: the case's new status, its frozen fine, the transition."""

    case_id: uuid.UUID
    status: str
    fine_minor: int | None
    transition: TransitionView

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": str(self.case_id),
            "status": self.status,
            "fine": format_amount(self.fine_minor) if self.fine_minor is not None else None,
            "fine_minor": self.fine_minor,
            "transition": self.transition.to_dict(),
        }


async def _reviewer(uow: UnitOfWork, name: str, *, lock: bool = False) -> Reviewer:
    """The reviewer named on the command line. A name no reviewer can have (not UTF-8,
    control characters, too long) is not looked up: the driver would refuse it (exit 70)."""
    if not _REVIEWER_NAME.fullmatch(name):
        raise NotFoundError(f"no reviewer {quoted(name)}: not a reviewer name")
    reviewer = await uow.reviewers.get(name, lock=lock)
    if reviewer is None:
        raise NotFoundError(f"no reviewer {name!r}: add one with `lizardctl reviewer add`")
    return reviewer


async def move_up_waiting(uow: UnitOfWork, below: int, now: datetime) -> int:
    """Move the cases waiting for a supervisor below level ``below`` (where a reviewer is
    active) up to the next staffed level above theirs; returns how many moved."""
    settings = await uow.review_settings.current()
    above_of: dict[int, int | None] = {}
    moved = 0
    for case in await uow.assignments.lock_waiting(settings.votes_per_level, below):
        level = case.required_skill
        if level not in above_of:
            above_of[level] = await uow.reviewers.next_level_above(level)
        above = above_of[level]
        if above is None:
            continue
        uow.transitions.add(
            CaseTransition(
                case_id=case.id,
                at=now,
                from_status=case.status,
                to_status=CaseStatus.ESCALATED.value,
                from_level=level,
                to_level=above,
                cause=f"a reviewer is active at level {above} now: moved up from level {level}",
            )
        )
        await uow.assignments.move_up(case, above)
        moved += 1
    return moved


async def _close(uow: UnitOfWork, case: Case, outcome: CaseStatus, now: datetime) -> None:
    """Decide the case; a confirmed one keeps the catalog's fine of this moment (None when
    its violation is not catalogued: ``unknown violation`` for good)."""
    case.status = outcome.value
    case.decided_at = now
    case.fine_minor = None
    if outcome is CaseStatus.CONFIRMED:
        listed = await uow.violations.get(case.violation_id)
        case.fine_minor = listed.fine_minor if listed is not None else None


class ReviewerService:
    """Adding reviewers and changing their skill or active flag."""

    def __init__(self, uow_factory: UowFactory, now: Clock = utcnow) -> None:
        self.uow_factory = uow_factory
        self.now = now

    async def add(self, name: str, skill: int, *, supervisor: bool = False) -> ReviewerView:
        """Add an active reviewer; cases waiting below their level move up at once."""
        try:
            given = ReviewerIn(name=name, skill=skill, supervisor=supervisor)
        except ValidationError as exc:
            raise UsageError(describe_validation_error(exc)) from exc
        async with self.uow_factory() as uow:
            if await uow.reviewers.get(given.name) is not None:
                raise UsageError(f"reviewer {given.name!r} already exists")
            reviewer = Reviewer(
                name=given.name, skill=given.skill, active=True, supervisor=given.supervisor
            )
            try:
                await uow.reviewers.add(reviewer)
            except IntegrityError as exc:  # a concurrent add of the same name won
                raise UsageError(f"reviewer {given.name!r} already exists") from exc
            moved = await move_up_waiting(uow, reviewer.skill, self.now())
            view = ReviewerView.of(reviewer, moved)
            await uow.commit()
        return view

    async def list(self) -> list[ReviewerView]:
        async with self.uow_factory() as uow:
            return [ReviewerView.of(r) for r in await uow.reviewers.list()]

    async def update(
        self,
        name: str,
        *,
        skill: int | None = None,
        active: bool | None = None,
        supervisor: bool | None = None,
    ) -> ReviewerView:
        """Change skill, active flag and/or supervisor role; a live lease is released, as
        it no longer fits. Cases waiting below an active reviewer's level move up."""
        if skill is None and active is None and supervisor is None:
            raise NothingToChange("the reviewer", ("skill", "active state", "supervisor role"))
        if skill is not None and not 1 <= skill <= 100:
            raise UsageError(f"skill must be 1-100, not {skill}")
        now = self.now()
        async with self.uow_factory() as uow:
            reviewer = await _reviewer(uow, name, lock=True)
            if (skill is not None and skill != reviewer.skill) or active is False:
                await uow.assignments.release(reviewer.id, now)
            if skill is not None:
                reviewer.skill = skill
            if active is not None:
                reviewer.active = active
            if supervisor is not None:
                reviewer.supervisor = supervisor
            await uow.reviewers.save(reviewer)
            moved = await move_up_waiting(uow, reviewer.skill, now) if reviewer.active else 0
            view = ReviewerView.of(reviewer, moved)
            await uow.commit()
        return view


class ReviewService:
    """Leases, votes and settings; ``now`` is injected so lease expiry is testable.

    With a ``store`` and a ``cache``, ``next_case`` copies the leased case's photo to the
    review cache and hands out that file's path; ``vote`` drops the copy again."""

    def __init__(
        self,
        uow_factory: UowFactory,
        store: PhotoStore | None = None,
        now: Clock = utcnow,
        *,
        cache: ReviewCache | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.store = store
        self.cache = cache
        self.now = now

    async def next_case(self, name: str) -> LeaseView | None:
        """Lease the reviewer one case (or return the one held); None when nothing fits."""
        now = self.now()
        async with self.uow_factory() as uow:
            reviewer = await _reviewer(uow, name, lock=True)
            if not reviewer.active:
                raise UsageError(f"reviewer {name!r} is inactive")
            held = await uow.assignments.held(reviewer.id, now)
            if held is not None:
                view = await self._lease_view(uow, reviewer, held, resumed=True)
                return self._extracted(view)
            settings = await uow.review_settings.current()
            case_id = await self._claim(uow, reviewer, settings.votes_per_level, now)
            if case_id is None and await move_up_waiting(uow, reviewer.skill, now):
                case_id = await self._claim(uow, reviewer, settings.votes_per_level, now)
            if case_id is None:
                return None
            lease = Assignment(
                case_id=case_id,
                reviewer_id=reviewer.id,
                level=reviewer.skill,
                assigned_at=now,
                expires_at=now + timedelta(minutes=settings.lease_minutes),
            )
            await uow.assignments.add(lease)
            view = await self._lease_view(uow, reviewer, lease, resumed=False)
            await uow.commit()
        return self._extracted(view)

    def _extracted(self, view: LeaseView) -> LeaseView:
        """The lease with its photo copied to the review cache, ``photo_path`` that copy."""
        place = view.case.photo
        if self.cache is None or self.store is None or place is None:
            return view
        path = self.cache.extract(
            self.store,
            view.case.id,
            place.location,
            view.photo_format,
            lease_seconds=(view.expires_at - view.assigned_at).total_seconds(),
        )
        case = replace(view.case, photo=replace(place, path=str(path)))
        return replace(view, case=case)

    @staticmethod
    async def _claim(
        uow: UnitOfWork, reviewer: Reviewer, votes_per_level: int, now: datetime
    ) -> uuid.UUID | None:
        """Lock the oldest case the reviewer may take (see the module docstring).

        When every assignable case is locked by other assigners (a backlog at this level
        smaller than the crowd asking), wait for them briefly instead of answering
        "nothing to review" while slots are still free: their transactions take
        milliseconds. Never blocking on a row lock means assigners cannot deadlock.
        """
        rules = (reviewer.skill, reviewer.id, votes_per_level, now)
        passed: list[uuid.UUID] = []
        deadline = time.monotonic() + CLAIM_PATIENCE_S
        pause = CLAIM_FIRST_PAUSE_S
        while True:
            case_id = await uow.assignments.candidate(*rules, passed, lock=True)
            if case_id is None:
                if time.monotonic() > deadline:
                    return None
                if await uow.assignments.candidate(*rules, passed, lock=False) is None:
                    return None
                await asyncio.sleep(pause * random.uniform(0.5, 1.5))
                pause = min(pause * 2, CLAIM_MAX_PAUSE_S)
            elif await uow.assignments.still_assignable(case_id, *rules):
                return case_id
            else:
                passed.append(case_id)

    async def _lease_view(
        self, uow: UnitOfWork, reviewer: Reviewer, lease: Assignment, *, resumed: bool
    ) -> LeaseView:
        case = await uow.cases.get(lease.case_id)
        if case is None:
            raise NotFoundError(f"no case {lease.case_id}")
        place = None
        if self.store is not None:
            location = await uow.photos.locate(case.photo_sha256)
            place = PhotoPlace.of(self.store, location) if location is not None else None
        return LeaseView(
            reviewer.name,
            lease.level,
            lease.assigned_at,
            lease.expires_at,
            resumed,
            CaseView.of(case, photo=place, awaiting="review"),
            await uow.photos.format_of(case.photo_sha256) if place is not None else None,
        )

    async def vote(self, name: str, verdict: Verdict, case_id: IdText | None = None) -> VoteResult:
        """Record the vote on the held case; the K-th vote at a level settles the case.
        ``case_id`` (or a unique prefix of it), when given, must be the held case."""
        now = self.now()
        async with self.uow_factory() as uow:
            if case_id is not None:
                case_id = await resolve_id(case_id, "case", uow.cases.ids_between)
            reviewer = await _reviewer(uow, name, lock=True)
            lease = await uow.assignments.held(reviewer.id, now)
            if lease is None or (case_id is not None and lease.case_id != case_id):
                raise await self._refusal(uow, reviewer, lease, case_id, now)
            case = await uow.assignments.lock_case(lease.case_id)
            if case is None or case.status not in REVIEWABLE or case.required_skill != lease.level:
                raise NoLease(name, f"case {lease.case_id} was settled while {name} held it")
            await uow.assignments.record_vote(lease, verdict.value, now)
            settings = await uow.review_settings.current()
            verdicts = await uow.assignments.verdicts(case.id, lease.level)
            transition = None
            if len(verdicts) >= settings.votes_per_level:
                transition = await self._settle(uow, case, verdicts, now)
            result = VoteResult(
                case.id,
                reviewer.name,
                verdict.value,
                lease.level,
                len(verdicts),
                settings.votes_per_level,
                transition,
            )
            await uow.commit()
        if self.cache is not None:
            self.cache.drop(result.case_id)
        return result

    @staticmethod
    async def _refusal(
        uow: UnitOfWork,
        reviewer: Reviewer,
        lease: Assignment | None,
        case_id: uuid.UUID | None,
        now: datetime,
    ) -> UsageError:
        """Why there is nothing to vote on."""
        name = reviewer.name
        if lease is not None:
            return UsageError(f"{name} holds case {lease.case_id}, not {case_id}")
        last = await uow.assignments.last_unvoted(reviewer.id)
        if (
            last is not None
            and last.expires_at <= now
            and (case_id is None or last.case_id == case_id)
        ):
            return NoLease(
                name,
                f"{name}'s lease on case {last.case_id} expired at {last.expires_at.isoformat()}",
            )
        return NoLease(name, f"{name} holds no case{f' {case_id}' if case_id else ''}")

    @staticmethod
    async def _settle(
        uow: UnitOfWork, case: Case, verdicts: Sequence[str], now: datetime, reason: str = ""
    ) -> TransitionView:
        """Apply consensus: decide the case, or escalate it to the next staffed level."""
        outcome = consensus(verdicts)
        level = case.required_skill
        from_status = case.status
        votes = f"{tally(verdicts)} at level {level}"
        if outcome in DECIDED:
            await _close(uow, case, outcome, now)
            cause = f"{len(verdicts)} of {len(verdicts)} votes: {votes}"
        else:
            above = await uow.reviewers.next_level_above(level)
            if above is None:
                cause = f"split vote ({votes}); no active reviewer above level {level}"
                cause += ": awaiting a supervisor"
            else:
                cause = f"split vote ({votes}); escalated to level {above}"
                case.required_skill = above
        transition = CaseTransition(
            case_id=case.id,
            at=now,
            from_status=from_status,
            to_status=outcome.value,
            from_level=level,
            to_level=case.required_skill,
            cause=f"{reason}{cause}",
        )
        case.status = outcome.value
        uow.transitions.add(transition)
        return TransitionView.of(transition)

    async def decide(
        self, case_id: IdText, verdict: Verdict, by: str, note: str | None = None
    ) -> DecisionResult:
        """A supervisor decides a case split at the highest staffed level.

        Refused (exit 2) for anyone but an active supervisor, and for a case that is decided,
        still gathering votes, or can still go to a staffed level above its own.
        """
        note = check_note(note)
        now = self.now()
        async with self.uow_factory() as uow:
            supervisor = await _reviewer(uow, by, lock=True)
            if not supervisor.supervisor:
                raise NotASupervisor(by)
            if not supervisor.active:
                raise UsageError(f"supervisor {by!r} is inactive")
            case_id = await resolve_id(case_id, "case", uow.cases.ids_between)
            case = await uow.assignments.lock_case(case_id)
            if case is None:
                raise NotFoundError(f"no case {case_id}")
            await self._check_awaits_supervisor(uow, case)
            outcome = OUTCOME_OF[verdict]
            level, from_status = case.required_skill, case.status
            await _close(uow, case, outcome, now)
            transition = CaseTransition(
                case_id=case.id,
                at=now,
                from_status=from_status,
                to_status=outcome.value,
                from_level=level,
                to_level=level,
                cause=f"decided by supervisor {by}: {verdict.value}",
                actor=by,
                note=note,
            )
            uow.transitions.add(transition)
            result = DecisionResult(
                case.id, case.status, case.fine_minor, TransitionView.of(transition)
            )
            await uow.commit()
        return result

    @staticmethod
    async def _check_awaits_supervisor(uow: UnitOfWork, case: Case) -> None:
        """Raise, saying why, unless the case has all its votes at the highest staffed level."""
        if case.status not in REVIEWABLE:
            raise UsageError(f"case {case.id} is already {case.status}: nothing to decide")
        level = case.required_skill
        needed = (await uow.review_settings.current()).votes_per_level
        votes = (await uow.assignments.votes_at_level([case.id])).get(case.id, 0)
        if votes < needed:
            raise UsageError(
                f"case {case.id} is not awaiting a supervisor: {case.status} at level {level} "
                f"with {votes} of {needed} votes"
            )
        above = await uow.reviewers.next_level_above(level)
        if above is not None:
            raise UsageError(
                f"case {case.id} is not awaiting a supervisor: reviewers at level {above} "
                "take it with `lizardctl review next`"
            )

    async def settings(self) -> SettingsView:
        async with self.uow_factory() as uow:
            row = await uow.review_settings.current()
            return SettingsView(row.votes_per_level, row.lease_minutes)

    async def configure(
        self, *, votes_per_level: int | None = None, lease_minutes: int | None = None
    ) -> SettingsView:
        """Change K and/or the lease length. New leases get the new length at once.

        Lowering K settles, on the spot, every undecided case that already has the new K
        votes at its level: none would ever get another vote, so none would be decided.
        """
        if votes_per_level is not None and not 1 <= votes_per_level <= MAX_VOTES_PER_LEVEL:
            raise UsageError(f"votes per level must be 1-{MAX_VOTES_PER_LEVEL}")
        if lease_minutes is not None and not 1 <= lease_minutes <= MAX_LEASE_MINUTES:
            raise UsageError(f"lease minutes must be 1-{MAX_LEASE_MINUTES}")
        now = self.now()
        settled = 0
        async with self.uow_factory() as uow:
            row = await uow.review_settings.current(lock=True)
            if lease_minutes is not None:
                row.lease_minutes = lease_minutes
            if votes_per_level is not None:
                lowered = votes_per_level < row.votes_per_level
                row.votes_per_level = votes_per_level
                if lowered:
                    reason = f"votes per level lowered to {votes_per_level}; "
                    for case in await uow.assignments.lock_full_cases(votes_per_level):
                        verdicts = await uow.assignments.verdicts(case.id, case.required_skill)
                        await self._settle(uow, case, verdicts, now, reason)
                        settled += 1
            view = SettingsView(row.votes_per_level, row.lease_minutes, settled)
            await uow.commit()
        return view

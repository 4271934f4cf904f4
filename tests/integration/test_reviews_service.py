"""Every rule of the review workflow, at the service level, on SQLite and PostgreSQL.

Cases are inserted directly (no ingest) so each test states exactly the backlog it needs;
the clock is injected so leases expire without sleeping. The seeding helpers here are
shared with the other ``test_reviews_*`` modules.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Assignment, Case, Photo
from lizardctl.core.errors import NoLease, NotFoundError, UsageError
from lizardctl.core.repositories.ingest import CaseFilters
from lizardctl.core.services.cases import CaseService
from lizardctl.core.services.reviews import ReviewerService, ReviewService, Verdict
from lizardctl.core.services.schemas import register_builtins

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
CAMERA = uuid.UUID("104fc08a-efb6-427f-9193-2d54e4ed3e12")
PHOTO = "a" * 64
V, NV = Verdict.VIOLATION, Verdict.NO_VIOLATION


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def open_db(db_url: str, **engine_options: Any) -> Database:
    """A migrated database with the built-in types, one camera and one photo."""
    db = Database(parse_db_url(db_url), **engine_options)
    await migrate.upgrade(db.engine)
    await register_builtins(db)
    async with db.uow() as uow:
        await uow.cameras.insert_many(
            [{"id": CAMERA, "camera_type": "camerus1", "latitude": 0.0, "longitude": 0.0}]
        )
        await uow.shots.session.execute(
            insert(Photo), [{"sha256": PHOTO, "size": 1, "format": "jpeg", "width": 1, "height": 1}]
        )
        await uow.commit()
    return db


async def add_cases(db: Database, *skills: int, first: int = 0) -> list[uuid.UUID]:
    """One open case per skill, the n-th (counting from ``first``) shot n minutes after
    ``START``: returned oldest first."""
    async with db.uow() as uow:
        schema_id = (await uow.schemas.versions("camerus1"))[0].id
        rows = [
            {
                "id": uuid.uuid4(),
                "photo_sha256": PHOTO,
                "metadata_sha256": hashlib.sha256(f"{n}".encode()).hexdigest(),
                "camera_id": CAMERA,
                "schema_version_id": schema_id,
                "plate": f"1ABC{n % 100:02d}77",
                "violation_id": uuid.UUID(int=7),
                "violation_value": f"{60 + n}km/h",
                "skill": skill,
                "occurred_at": START + timedelta(minutes=n),
                "raw": {"n": n},
                "source_photo": f"/dump/{n}.jpg",
                "source_metadata": f"/dump/{n}.json",
                "status": "open",
                "required_skill": skill,
                "created_at": START + timedelta(minutes=n),
            }
            for n, skill in enumerate(skills, start=first)
        ]
        await uow.shots.session.execute(insert(Case), rows)
        await uow.commit()
    return [row["id"] for row in rows]


async def add_reviewers(db: Database, skill: int, *names: str) -> None:
    service = ReviewerService(db.uow)
    for name in names:
        await service.add(name, skill)


async def cast(service: ReviewService, votes: dict[str, Verdict]) -> uuid.UUID:
    """Each reviewer takes the next case and votes; they must all get the same case."""
    taken = set()
    for name, verdict in votes.items():
        lease = await service.next_case(name)
        assert lease is not None, name
        taken.add(lease.case.id)
        await service.vote(name, verdict)
    assert len(taken) == 1, taken
    return taken.pop()


async def test_assignment_matches_skill_and_takes_oldest_first(
    db: Database, reviews: ReviewService
) -> None:
    low_old, high, low_new = await add_cases(db, 2, 3, 2)
    await add_reviewers(db, 2, "ann", "bob")
    await add_reviewers(db, 3, "cid")
    ann = await reviews.next_case("ann")
    cid = await reviews.next_case("cid")
    assert ann is not None and ann.case.id == low_old and ann.level == 2
    assert cid is not None and cid.case.id == high
    await reviews.vote("ann", V)
    again = await reviews.next_case("ann")
    assert again is not None and again.case.id == low_new, "never a case already voted on"
    bob = await reviews.next_case("bob")
    assert bob is not None and bob.case.id == low_old


async def test_hold_one_returns_the_held_case(db: Database, reviews: ReviewService) -> None:
    first, _ = await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "ann")
    lease = await reviews.next_case("ann")
    again = await reviews.next_case("ann")
    assert lease is not None and again is not None
    assert (lease.case.id, lease.resumed) == (first, False)
    assert (again.case.id, again.resumed, again.expires_at) == (first, True, lease.expires_at)


async def test_no_case_beyond_k_holders(db: Database, reviews: ReviewService) -> None:
    first, second = await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "a", "b", "c", "d")
    got = [await reviews.next_case(name) for name in "abcd"]
    assert [lease.case.id for lease in got if lease] == [first, first, first, second]


async def test_nothing_to_review(db: Database, reviews: ReviewService) -> None:
    await add_cases(db, 5)
    await add_reviewers(db, 4, "ann")
    assert await reviews.next_case("ann") is None


async def test_lease_expiry_frees_the_slot(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    first, second = await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "a", "b", "c", "d")
    for name in "abc":
        lease = await reviews.next_case(name)
        assert lease is not None and lease.case.id == first
    clock.advance(minutes=14, seconds=59)
    assert (await reviews.next_case("d")).case.id == second  # type: ignore[union-attr]
    await reviews.vote("d", V)
    clock.advance(seconds=2)  # a's, b's and c's leases are over
    lease = await reviews.next_case("d")
    assert lease is not None and lease.case.id == first
    with pytest.raises(UsageError, match=r"lease on case .* expired at"):
        await reviews.vote("a", V)
    again = await reviews.next_case("a")
    assert again is not None and again.case.id == second, "an expired case is not given back"


async def test_lease_length_and_k_come_from_the_database(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "a", "b")
    assert (await reviews.settings()).to_dict() == {
        "votes_per_level": 3,
        "lease_minutes": 15,
        "settled": 0,
    }
    await reviews.configure(votes_per_level=1, lease_minutes=2)
    lease = await reviews.next_case("a")
    assert lease is not None and lease.expires_at == clock.now + timedelta(minutes=2)
    result = await reviews.vote("a", V)
    assert result.transition is not None and result.transition.to_status == "confirmed"
    with pytest.raises(UsageError, match="votes per level must be"):
        await reviews.configure(votes_per_level=0)


@pytest.mark.parametrize(
    ("verdicts", "status"),
    [((V, V, V), "confirmed"), ((NV, NV, NV), "dismissed")],
)
async def test_unanimous_votes_decide(
    db: Database,
    reviews: ReviewService,
    clock: Clock,
    verdicts: tuple[Verdict, ...],
    status: str,
) -> None:
    (case_id,) = await add_cases(db, 2)
    await add_reviewers(db, 2, "a", "b", "c")
    results = []
    for name, verdict in zip("abc", verdicts, strict=True):
        await reviews.next_case(name)
        results.append(await reviews.vote(name, verdict))
    assert [r.transition for r in results[:2]] == [None, None]
    assert [(r.votes, r.votes_needed) for r in results] == [(1, 3), (2, 3), (3, 3)]
    shown = await CaseService(db.uow).show(case_id)
    assert (shown.status, shown.decided_at, shown.awaiting) == (status, clock.now, None)
    assert [(v.reviewer, v.verdict) for v in shown.votes] == list(zip("abc", verdicts, strict=True))
    (transition,) = shown.transitions
    assert (transition.from_status, transition.to_status) == ("open", status)
    assert (transition.from_level, transition.to_level) == (2, 2)
    assert transition.cause == f"3 of 3 votes: 3 {verdicts[0]} at level 2"


async def test_split_escalates_to_next_staffed_level(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    (case_id,) = await add_cases(db, 2)
    await add_reviewers(db, 2, "a", "b", "c")
    await add_reviewers(db, 3, "idle")
    await ReviewerService(db.uow).update("idle", active=False)
    await add_reviewers(db, 5, "d", "e", "f")
    await add_reviewers(db, 9, "top")
    assert await cast(reviews, {"a": V, "b": NV, "c": V}) == case_id
    cases = CaseService(db.uow)
    shown = await cases.show(case_id)
    assert (shown.status, shown.level, shown.awaiting) == ("escalated", 5, "review")
    assert shown.transitions[0].cause == (
        "split vote (2 violation, 1 no-violation at level 2); escalated to level 5"
    )
    clock.advance(minutes=1)
    assert await cast(reviews, {"d": NV, "e": NV, "f": NV}) == case_id
    shown = await cases.show(case_id)
    assert (shown.status, shown.level, shown.decided_at) == ("dismissed", 5, clock.now)
    assert [(t.from_status, t.to_status, t.from_level, t.to_level) for t in shown.transitions] == [
        ("open", "escalated", 2, 5),
        ("escalated", "dismissed", 5, 5),
    ]
    assert [v.level for v in shown.votes] == [2, 2, 2, 5, 5, 5]


async def test_split_with_no_level_above_waits_for_a_supervisor(
    db: Database, reviews: ReviewService
) -> None:
    case_id, other = await add_cases(db, 4, 4)
    await add_reviewers(db, 4, "a", "b", "c", "d")
    await add_reviewers(db, 2, "low")
    assert await cast(reviews, {"a": V, "b": V, "c": NV}) == case_id
    cases = CaseService(db.uow)
    shown = await cases.show(case_id)
    assert (shown.status, shown.level, shown.awaiting) == ("escalated", 4, "supervisor")
    assert shown.transitions[0].cause.endswith(
        "no active reviewer above level 4: awaiting a supervisor"
    )
    lease = await reviews.next_case("d")
    assert lease is not None and lease.case.id == other, "no fourth vote at the same level"
    listed = (await cases.list(CaseFilters(status="escalated"))).items
    assert [(c.id, c.awaiting) for c in listed] == [(case_id, "supervisor")]


async def test_vote_needs_the_held_case(db: Database, reviews: ReviewService) -> None:
    first, _ = await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "ann")
    with pytest.raises(NoLease, match="ann holds no case") as info:
        await reviews.vote("ann", V)
    assert info.value.reviewer == "ann"
    await reviews.next_case("ann")
    other = uuid.uuid4()
    with pytest.raises(UsageError, match=f"holds case {first}, not {other}"):
        await reviews.vote("ann", V, other)
    result = await reviews.vote("ann", NV, first)
    assert (result.case_id, result.verdict, result.level) == (first, "no-violation", 1)
    with pytest.raises(UsageError, match="holds no case"):
        await reviews.vote("ann", NV, first)


async def test_unknown_and_inactive_reviewers(db: Database, reviews: ReviewService) -> None:
    await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "ann", "bob")
    with pytest.raises(NotFoundError, match="no reviewer 'zed'"):
        await reviews.next_case("zed")
    people = ReviewerService(db.uow)
    await people.update("ann", active=False)
    with pytest.raises(UsageError, match="inactive"):
        await reviews.next_case("ann")
    await people.update("ann", active=True)
    assert await reviews.next_case("ann") is not None


async def test_reviewer_changes_release_the_lease(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    first, _ = await add_cases(db, 1, 1)
    await add_reviewers(db, 1, "a", "b", "c", "d")
    for name in "abc":
        await reviews.next_case(name)
    people = ReviewerService(db.uow, now=clock)
    await people.update("a", active=False)
    await people.update("b", skill=2)
    await people.update("c", active=True)  # no change: keeps its lease
    lease = await reviews.next_case("d")
    assert lease is not None and lease.case.id == first
    expired = re.escape(f"b's lease on case {first} expired at {clock.now.isoformat()}")
    with pytest.raises(UsageError, match=expired):
        await reviews.vote("b", V)
    assert (await reviews.vote("c", V)).votes == 1


async def test_reviewer_validation(db: Database) -> None:
    people = ReviewerService(db.uow)
    view = await people.add("ann", 3)
    assert (view.name, view.skill, view.active) == ("ann", 3, True)
    with pytest.raises(UsageError, match="already exists"):
        await people.add("ann", 4)
    with pytest.raises(UsageError, match="skill"):
        await people.add("bob", 101)
    with pytest.raises(UsageError, match="name"):
        await people.add("has space", 1)
    with pytest.raises(UsageError, match="nothing to change"):
        await people.update("ann")
    assert [r.name for r in await people.list()] == ["ann"]


async def test_lowering_k_settles_cases_that_have_enough_votes(
    db: Database, reviews: ReviewService
) -> None:
    agreed, split, single = await add_cases(db, 1, 1, 1)
    await add_reviewers(db, 1, "a", "b")
    await add_reviewers(db, 2, "up")
    for name, verdicts in (("a", (V, V, V)), ("b", (V, NV))):
        for verdict in verdicts:  # oldest first: agreed, split, single
            await reviews.next_case(name)
            await reviews.vote(name, verdict)
    settings = await reviews.configure(votes_per_level=2)
    assert settings.settled == 2
    cases = CaseService(db.uow)
    outcome = {c.id: (c.status, c.level) for c in (await cases.list()).items}
    assert outcome[agreed] == ("confirmed", 1)
    assert outcome[split] == ("escalated", 2)
    assert outcome[single] == ("open", 1)
    shown = await cases.show(split)
    assert shown.transitions[0].cause.startswith("votes per level lowered to 2; split vote")


async def test_concurrent_votes_settle_a_case_once(migrated_db_url: str, clock: Clock) -> None:
    db = await open_db(migrated_db_url, pool_size=5)
    try:
        (case_id,) = await add_cases(db, 1)
        await add_reviewers(db, 1, "a", "b", "c")
        reviews = ReviewService(db.uow, now=clock)
        for name in "abc":
            await reviews.next_case(name)
        results = await asyncio.gather(*(reviews.vote(name, V) for name in "abc"))
        assert sorted(r.votes for r in results) == [1, 2, 3]
        assert sum(r.transition is not None for r in results) == 1
        async with db.uow() as uow:
            transitions = [t.to_status for t in await uow.transitions.of_case(case_id)]
            votes = await uow.assignments.session.scalar(
                select(func.count()).select_from(Assignment).where(Assignment.case_id == case_id)
            )
        assert transitions == ["confirmed"]
        assert votes == 3
    finally:
        await db.dispose()

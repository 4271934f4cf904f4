"""The case lifecycle always ends: supervisors decide cases split at the top, escalations
move up when a higher level gets staffed, and a confirmed case keeps the fine of the day
it was decided. On SQLite and PostgreSQL, cases inserted directly, the clock injected."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Reviewer
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.repositories.ingest import CaseFilters
from lizardctl.core.services.cases import CaseService
from lizardctl.core.services.catalog import OwnerService, ViolationService
from lizardctl.core.services.fines import FineRow, FinesService
from lizardctl.core.services.imports import ImportReport
from lizardctl.core.services.reviews import ReviewerService, ReviewService, Verdict
from tests.integration.test_reviews_service import (
    Clock,
    add_cases,
    add_reviewers,
    cast,
)

V, NV = Verdict.VIOLATION, Verdict.NO_VIOLATION
TOP = {"a": V, "b": NV, "c": V}
"""A split vote by the level-4 crew."""


async def stuck_case(db: Database, reviews: ReviewService) -> uuid.UUID:
    """One level-4 case split by a, b, c at level 4, the highest staffed level; supervisor
    eve at level 1."""
    (case_id,) = await add_cases(db, 4)
    await add_reviewers(db, 4, "a", "b", "c")
    await ReviewerService(db.uow).add("eve", 1, supervisor=True)
    assert await cast(reviews, TOP) == case_id
    return case_id


async def test_a_supervisor_decides_a_case_split_at_the_top(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    case_id = await stuck_case(db, reviews)
    cases = CaseService(db.uow)
    assert [
        (c.id, c.awaiting) for c in (await cases.list(CaseFilters(status="escalated"))).items
    ] == [(case_id, "supervisor")]
    with pytest.raises(UsageError, match="a is not a supervisor"):
        await reviews.decide(case_id, V, "a")
    clock.advance(minutes=5)
    result = await reviews.decide(case_id, NV, "eve", "  plate unreadable  ")
    assert (result.case_id, result.status, result.fine_minor) == (case_id, "dismissed", None)
    assert (result.transition.actor, result.transition.note) == ("eve", "plate unreadable")

    shown = await cases.show(case_id)
    assert (shown.status, shown.decided_at, shown.awaiting, shown.level) == (
        "dismissed",
        clock.now,
        None,
        4,
    )
    last = shown.transitions[-1]
    assert (last.from_status, last.to_status, last.from_level, last.to_level) == (
        "escalated",
        "dismissed",
        4,
        4,
    )
    assert (last.at, last.actor, last.note) == (clock.now, "eve", "plate unreadable")
    assert last.cause == "decided by supervisor eve: no-violation"
    assert [t.actor for t in shown.transitions] == [None, "eve"]
    with pytest.raises(UsageError, match="already dismissed"):
        await reviews.decide(case_id, V, "eve")
    assert (await cases.list(CaseFilters(status="escalated"))).items == []


async def test_decide_refuses_everything_else(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    case_id = await stuck_case(db, reviews)
    (fresh,) = await add_cases(db, 4, first=1)
    await ReviewerService(db.uow).add("old", 1, supervisor=True)
    await ReviewerService(db.uow).update("old", active=False)
    for args, error, message in [
        ((fresh, V, "eve"), UsageError, r"not awaiting a supervisor: open at level 4 with 0 of 3"),
        ((uuid.UUID(int=1), V, "eve"), NotFoundError, "no case"),
        ((case_id, V, "zed"), NotFoundError, "no reviewer 'zed'"),
        ((case_id, V, "old"), UsageError, "supervisor 'old' is inactive"),
        ((case_id, V, "eve", "a\x1b[2Jb"), UsageError, "control or format characters"),
        ((case_id, V, "eve", "x" * 1001), UsageError, "at most 1000"),
    ]:
        with pytest.raises(error, match=message):
            await reviews.decide(*args)  # type: ignore[arg-type]
    await ReviewerService(db.uow).update("eve", supervisor=False)
    with pytest.raises(UsageError, match="eve is not a supervisor"):
        await reviews.decide(case_id, V, "eve")
    shown = await CaseService(db.uow).show(case_id)
    assert (shown.status, shown.awaiting, len(shown.transitions)) == ("escalated", "supervisor", 1)


@pytest.mark.parametrize("how", ["added", "re-activated", "skill raised"])
async def test_a_waiting_case_moves_up_when_a_higher_level_is_staffed(
    db: Database, reviews: ReviewService, clock: Clock, how: str
) -> None:
    """Split first, staff a higher level afterwards: the case moves at that change."""
    people = ReviewerService(db.uow)
    if how == "re-activated":
        await people.add("hi", 6)
        await people.update("hi", active=False)
    elif how == "skill raised":
        await people.add("hi", 2)
    case_id = await stuck_case(db, reviews)
    clock.advance(minutes=1)
    if how == "added":
        changed = await people.add("hi", 6)
    elif how == "re-activated":
        changed = await people.update("hi", active=True)
    else:
        changed = await people.update("hi", skill=6)
    assert changed.moved_up == 1
    cases = CaseService(db.uow)
    shown = await cases.show(case_id)
    assert (shown.status, shown.level, shown.awaiting) == ("escalated", 6, "review")
    moved = shown.transitions[-1]
    assert (moved.from_status, moved.to_status, moved.from_level, moved.to_level) == (
        "escalated",
        "escalated",
        4,
        6,
    )
    assert moved.cause == "a reviewer is active at level 6 now: moved up from level 4"
    with pytest.raises(UsageError, match="with 0 of 3 votes"):
        await reviews.decide(case_id, V, "eve")
    lease = await reviews.next_case("hi")
    assert lease is not None and (lease.case.id, lease.level) == (case_id, 6)
    again = await people.add("higher", 9)
    assert again.moved_up == 0, "a case still gathering votes is not moved"


async def test_a_level_staffed_before_the_split_takes_the_case_at_once(
    db: Database, reviews: ReviewService
) -> None:
    """The other order: the higher reviewer exists first, the split escalates to them."""
    (case_id,) = await add_cases(db, 4)
    await add_reviewers(db, 4, "a", "b", "c")
    await add_reviewers(db, 6, "hi")
    await cast(reviews, TOP)
    shown = await CaseService(db.uow).show(case_id)
    assert (shown.status, shown.level, shown.awaiting) == ("escalated", 6, "review")
    assert len(shown.transitions) == 1


async def test_review_next_moves_up_a_case_split_while_the_level_was_staffed(
    db: Database, reviews: ReviewService, clock: Clock
) -> None:
    """A split that committed concurrently with the change never saw the new reviewer,
    and the change never saw the split (mimicked by inserting the reviewer beneath the
    service): the case waits until that reviewer asks for work, and then moves."""
    case_id = await stuck_case(db, reviews)
    async with db.uow() as uow:
        await uow.reviewers.add(Reviewer(name="hi", skill=6, active=True))
        await uow.commit()
    cases = CaseService(db.uow)
    assert (await cases.show(case_id)).awaiting == "review", "not for a supervisor any more"
    with pytest.raises(UsageError, match="reviewers at level 6 take it"):
        await reviews.decide(case_id, V, "eve")
    clock.advance(minutes=1)
    lease = await reviews.next_case("hi")
    assert lease is not None and (lease.case.id, lease.level) == (case_id, 6)
    shown = await cases.show(case_id)
    assert [(t.from_level, t.to_level) for t in shown.transitions] == [(4, 4), (4, 6)]


VIOLATION = uuid.UUID(int=7)
"""The violation of every case ``add_cases`` makes."""


async def import_catalog(db: Database, tmp_path: Path, fine: str) -> ImportReport:
    sheet = tmp_path / f"catalog-{fine}.csv"
    sheet.write_text(f"id,name,fine\n{VIOLATION},Speeding,{fine}\n")
    return await ViolationService(db.uow).import_file(sheet)


async def confirm_next(db: Database, reviews: ReviewService, reviewer: str = "r") -> uuid.UUID:
    """K = 1: reviewer ``r`` confirms the oldest open level-1 case."""
    lease = await reviews.next_case(reviewer)
    assert lease is not None
    result = await reviews.vote(reviewer, V)
    assert result.transition is not None and result.transition.to_status == "confirmed"
    return lease.case.id


async def owed(db: Database) -> dict[uuid.UUID, int | None]:
    rows: list[FineRow] = []
    await FinesService(db.uow).stream(rows.extend)
    return {row.case_id: row.fine_minor for row in rows}


async def test_a_confirmed_case_keeps_the_fine_of_its_decision(
    db: Database, reviews: ReviewService, clock: Clock, tmp_path: Path
) -> None:
    first, second, dismissed = await add_cases(db, 1, 1, 1)
    await reviews.configure(votes_per_level=1)
    await add_reviewers(db, 1, "r")
    await import_catalog(db, tmp_path, "500")
    assert await confirm_next(db, reviews) == first
    changed = await import_catalog(db, tmp_path, "800.50")
    assert (changed.updated, changed.priced) == (1, 0)
    assert await confirm_next(db, reviews) == second
    await reviews.next_case("r")
    await reviews.vote("r", NV)

    assert await owed(db) == {first: 50000, second: 80050}
    report = (await FinesService(db.uow, now=clock).report()).to_dict()
    assert (report["total_minor"], report["by_violation"][0]["fine"]) == (130050, "800.50")
    shown = (await ViolationService(db.uow).show(VIOLATION)).to_dict()
    assert (shown["fines_due"], shown["confirmed"], shown["unpriced"]) == ("1300.50", 2, 0)
    async with db.uow() as uow:
        plate = (await uow.cases.get(first)).plate  # type: ignore[union-attr]
    (tmp_path / "owners.csv").write_text(f"plate,name,phone,email,telegram\n{plate},Ann,,a@x.io,\n")
    await OwnerService(db.uow).import_file(tmp_path / "owners.csv")
    (mine,) = (await OwnerService(db.uow).show(plate)).cases.items
    assert (mine.id, mine.fine_minor) == (first, 50000)
    async with db.uow() as uow:
        assert (await uow.cases.get(dismissed)).fine_minor is None  # type: ignore[union-attr]


async def test_a_supervisor_decision_freezes_the_fine_too(
    db: Database, reviews: ReviewService, tmp_path: Path
) -> None:
    await import_catalog(db, tmp_path, "1000")
    case_id = await stuck_case(db, reviews)
    result = await reviews.decide(case_id, V, "eve")
    assert (result.status, result.fine_minor, result.to_dict()["fine"]) == (
        "confirmed",
        100000,
        "1000.00",
    )
    await import_catalog(db, tmp_path, "1")
    assert await owed(db) == {case_id: 100000}


async def test_a_case_confirmed_before_its_violation_was_catalogued(
    db: Database, reviews: ReviewService, tmp_path: Path
) -> None:
    """No fine, an unknown violation, until an import catalogues it: then that import's
    fine, frozen like any other."""
    (case_id,) = await add_cases(db, 1)
    await reviews.configure(votes_per_level=1)
    await add_reviewers(db, 1, "r")
    await confirm_next(db, reviews)
    rows: list[FineRow] = []
    summary = await FinesService(db.uow).stream(rows.extend)
    assert [(r.violation_label, r.fine) for r in rows] == [("unknown violation", None)]
    assert summary.unpriced == 1
    first = await import_catalog(db, tmp_path, "500")
    assert (first.added, first.priced) == (1, 1)
    again = await import_catalog(db, tmp_path, "700")
    assert again.priced == 0
    assert await owed(db) == {case_id: 50000}


async def test_the_migration_fills_fines_of_cases_confirmed_before_it(
    db: Database, tmp_path: Path
) -> None:
    """From the catalog as it is when the migration runs, as its docstring says."""
    listed, unlisted, still_open = await add_cases(db, 1, 1, 1)
    await import_catalog(db, tmp_path, "500")
    async with db.uow() as uow:
        for case_id, violation, status in [
            (listed, VIOLATION, "confirmed"),
            (unlisted, uuid.UUID(int=8), "confirmed"),
            (still_open, VIOLATION, "open"),
        ]:
            case = await uow.cases.get(case_id)
            assert case is not None
            case.violation_id, case.status = violation, status
        await uow.commit()
    await migrate.downgrade(db.engine, "0007")
    await migrate.upgrade(db.engine)
    async with db.uow() as uow:
        fines = {c: (await uow.cases.get(c)).fine_minor for c in (listed, unlisted, still_open)}  # type: ignore[union-attr]
    assert fines == {listed: 50000, unlisted: None, still_open: None}


async def test_two_supervisors_deciding_at_once_decide_once(
    db: Database, reviews: ReviewService
) -> None:
    case_id = await stuck_case(db, reviews)
    await ReviewerService(db.uow).add("sam", 1, supervisor=True)
    outcomes = await asyncio.gather(
        ReviewService(db.uow).decide(case_id, V, "eve"),
        ReviewService(db.uow).decide(case_id, NV, "sam"),
        return_exceptions=True,
    )
    decided = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(decided) == 1 and len(refused) == 1, outcomes
    assert isinstance(refused[0], UsageError) and "already" in str(refused[0])
    shown = await CaseService(db.uow).show(case_id)
    assert shown.status == decided[0].status
    assert [t.actor for t in shown.transitions] == [None, decided[0].transition.actor]

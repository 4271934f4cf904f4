"""Many reviewers calling ``review next`` at the same instant, on SQLite and PostgreSQL.

20 asyncio tasks, each through its own UnitOfWork (own session, own pooled connection),
over 5 cases with K = 3: no case may get more than 3 holders at its level, and nobody may
get a case twice or hold two cases.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Assignment, Reviewer
from lizardctl.core.services.reviews import LeaseView, ReviewService, Verdict
from tests.integration.test_reviews_service import Clock, add_cases, add_reviewers, open_db

CALLERS = 20
CASES = 5
K = 3


@pytest.fixture
async def db(migrated_db_url: str) -> AsyncIterator[Database]:
    """One pooled connection per caller, so all 20 really run at once."""
    database = await open_db(migrated_db_url, pool_size=CALLERS, max_overflow=0)
    try:
        yield database
    finally:
        await database.dispose()


async def _leases(db: Database) -> list[tuple[uuid.UUID, int, str]]:
    """(case, level, reviewer) of every lease in the database."""
    async with db.uow() as uow:
        rows = await uow.assignments.session.execute(
            select(Assignment.case_id, Assignment.level, Reviewer.name).join(
                Reviewer, Reviewer.id == Assignment.reviewer_id
            )
        )
        return [(row[0], row[1], row[2]) for row in rows]


async def _together(service: ReviewService, names: list[str]) -> list[LeaseView | None]:
    return await asyncio.gather(*(service.next_case(name) for name in names))


async def test_twenty_reviewers_five_cases(db: Database) -> None:
    cases = await add_cases(db, *[1] * CASES)
    names = [f"r{n:02d}" for n in range(CALLERS)]
    await add_reviewers(db, 1, *names)
    service = ReviewService(db.uow, now=Clock())

    got = await _together(service, names)

    leased = [lease for lease in got if lease is not None]
    assert len(leased) == CASES * K
    assert Counter(lease.case.id for lease in leased) == dict.fromkeys(cases, K)
    stored = await _leases(db)
    assert sorted((case, name) for case, _, name in stored) == sorted(
        (lease.case.id, lease.reviewer) for lease in leased
    )
    assert max(Counter((case, level) for case, level, _ in stored).values()) == K
    assert len({(case, name) for case, _, name in stored}) == len(stored), "a case twice"


async def test_each_reviewer_calling_twice_at_once_holds_one_case(db: Database) -> None:
    cases = await add_cases(db, *[1] * CASES)
    names = [f"r{n:02d}" for n in range(CALLERS // 2)]
    await add_reviewers(db, 1, *names)
    service = ReviewService(db.uow, now=Clock())

    got = await _together(service, names * 2)

    held: dict[str, set[uuid.UUID]] = {}
    for lease in got:
        assert lease is not None
        held.setdefault(lease.reviewer, set()).add(lease.case.id)
    assert all(len(ids) == 1 for ids in held.values()), held
    assert sorted(lease.resumed for lease in got) == [False] * len(names) + [True] * len(names)
    stored = await _leases(db)
    assert len(stored) == len(names)
    assert max(Counter(case for case, _, _ in stored).values()) <= K
    assert {case for case, _, _ in stored} <= set(cases)


async def test_concurrent_rounds_until_every_case_is_decided(db: Database) -> None:
    """Waves of 20 simultaneous callers who vote at once; leases never exceed K per level
    and every case ends confirmed with exactly K votes."""
    cases = await add_cases(db, *[1] * CASES)
    names = [f"r{n:02d}" for n in range(CALLERS)]
    await add_reviewers(db, 1, *names)
    service = ReviewService(db.uow, now=Clock())
    for _ in range(CASES * K):
        got = await _together(service, names)
        leased = [lease for lease in got if lease is not None]
        if not leased:
            break
        await asyncio.gather(*(service.vote(lease.reviewer, Verdict.VIOLATION) for lease in leased))
    stored = await _leases(db)
    assert Counter(case for case, _, _ in stored) == dict.fromkeys(cases, K)
    async with db.uow() as uow:
        statuses = {c.id: c.status for c in await uow.cases.list(limit=CASES)}
    assert statuses == dict.fromkeys(cases, "confirmed")

"""The prune guard on both engines: ``verify --prune`` and ``ingest`` never overlap.

The reproduction (issue 11, item 4): a photo left unused by an interrupted run, older than
``--min-age``, sits in the store; a live ingest is about to re-use it (it is already stored,
so ingest does not write it again) and commit a case that references it. A prune deleting
it then loses a committed case's photo. Here the live ingest is a ``running`` run row whose
process is alive (this test's own, on this host) or whose job beats on another host, and
the races are forced deterministically at the points where they could happen.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select

from lizardctl.core.db.database import Database
from lizardctl.core.db.models import IngestJob, IngestRun, Prune
from lizardctl.core.errors import IngestRunning, PruneRunning
from lizardctl.core.repositories.verify import PageKey
from lizardctl.core.services import prune_guard
from lizardctl.core.services.prune_guard import PruneGuard, refuse_if_pruning
from lizardctl.core.services.verify import VerifyOptions, VerifyService
from lizardctl.core.store import FileStore, PhotoStore
from tests.integration import test_verify_service as verify_tests
from tests.integration.test_verify_service import add_cases

HOUR = 3600.0
HOST = socket.gethostname()
db = verify_tests.db  # the same migrated database with one camera, on both engines


def stored(store: FileStore, data: bytes, *, age_s: float = 0.0) -> str:
    digest = verify_tests.put(store, data)
    if age_s:
        then = time.time() - age_s
        os.utime(store.path_for(digest), (then, then))
    return digest


async def add_run(
    db: Database,
    *,
    host: str = HOST,
    pid: int | None = None,
    status: str = "running",
    heartbeat_age_s: float | None = None,
    claim_lease_s: float | None = 60.0,
    started_ago_s: float = 0.0,
) -> uuid.UUID:
    """A run row as ingest records it; with ``heartbeat_age_s``, its job beat that long ago."""
    run_id, job_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(IngestRun).values(
                id=run_id,
                started_at=now - timedelta(seconds=started_ago_s),
                status=status,
                paths=["/dump"],
                host=host,
                pid=os.getpid() if pid is None else pid,
                dry_run=False,
                counts={},
                bytes=0,
                job_id=job_id,
                claim_lease_s=claim_lease_s,
            )
        )
        if heartbeat_age_s is not None:
            await connection.execute(
                insert(IngestJob).values(
                    key=uuid.uuid4().hex * 2,
                    job_id=job_id,
                    heartbeat_at=now - timedelta(seconds=heartbeat_age_s),
                    worker=f"{host}:{pid or 1}",
                    finished=False,
                )
            )
    return run_id


async def markers(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(Prune)) or 0)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped): nothing answers to it."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


async def test_prune_refuses_while_a_live_run_may_reuse_an_old_orphan(
    db: Database, tmp_path: Path
) -> None:
    """The reproduction: an interrupted run's photo, old, about to be re-used by a live run."""
    store = FileStore(tmp_path / "store")
    used = stored(store, b"committed photo")
    await add_cases(db, [(used, 15)])
    orphan = stored(store, b"left by an interrupted run", age_s=2 * HOUR)
    run_id = await add_run(db)  # alive: this very process

    with pytest.raises(IngestRunning) as caught:
        await VerifyService(db.uow, PhotoStore.at(store.root)).verify(VerifyOptions(prune=True))

    assert caught.value.exit_code == 3
    message = str(caught.value)
    assert message.startswith("refusing to prune: 1 ingest run(s) alive")
    assert str(run_id) in message and f"{HOST}:{os.getpid()}" in message
    assert "\n" not in message
    assert store.path_for(orphan).exists()
    assert await markers(db) == 0  # the refusal leaves no guard row behind


async def test_verify_without_prune_is_not_blocked_by_a_live_run(
    db: Database, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    orphan = stored(store, b"orphan", age_s=2 * HOUR)
    await add_run(db)
    report = await VerifyService(db.uow, PhotoStore.at(store.root)).verify(VerifyOptions())
    assert [(p.kind, p.pruned) for p in report.listed] == [("orphan-photo", False)]
    assert store.path_for(orphan).exists()


@pytest.mark.parametrize(
    "run",
    [
        {"pid": -1},  # replaced below by a pid nobody has any more
        {"status": "finished"},
        {"status": "interrupted"},
        {"host": "elsewhere", "heartbeat_age_s": 120.0},  # lease 60 s lapsed
        {"host": "elsewhere", "heartbeat_age_s": None},  # its job is gone
        {"host": "elsewhere", "heartbeat_age_s": 400.0, "claim_lease_s": None},  # default 300
        {"started_ago_s": 30 * 86400.0},  # this pid is alive, but the run's died long ago
    ],
    ids=[
        "crashed-here",
        "finished",
        "interrupted",
        "lease-lapsed",
        "job-gone",
        "old-row",
        "pid-reused",
    ],
)
async def test_a_run_that_is_over_or_dead_does_not_block(
    run: dict[str, Any], db: Database, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    orphan = stored(store, b"orphan", age_s=2 * HOUR)
    if run.get("pid") == -1:
        run = {**run, "pid": dead_pid()}
    await add_run(db, **run)
    report = await VerifyService(db.uow, PhotoStore.at(store.root)).verify(
        VerifyOptions(prune=True)
    )
    assert (report.pruned, report.ok) == (1, True)
    assert not store.path_for(orphan).exists()
    assert await markers(db) == 0


@pytest.mark.parametrize(
    ("heartbeat_age_s", "claim_lease_s"), [(30.0, 60.0), (250.0, None), (3000.0, 3600.0)]
)
async def test_a_run_on_another_host_blocks_while_its_lease_runs(
    heartbeat_age_s: float, claim_lease_s: float | None, db: Database, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    orphan = stored(store, b"orphan", age_s=2 * HOUR)
    await add_run(
        db, host="elsewhere", pid=4242, heartbeat_age_s=heartbeat_age_s, claim_lease_s=claim_lease_s
    )
    with pytest.raises(IngestRunning, match="elsewhere:4242"):
        await VerifyService(db.uow, PhotoStore.at(store.root)).verify(VerifyOptions(prune=True))
    assert store.path_for(orphan).exists()


async def test_an_ingest_starting_after_the_check_stops_the_deletes(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: a run registers after the prune's first check, before it deletes.

    (A real ingest would have seen the guard row and refused; this one stands for a prune
    stalled past the stale window, whose row an ingest took for dead.)
    """
    store = FileStore(tmp_path / "store")
    digests = sorted(stored(store, f"used {n}".encode()) for n in range(6))
    await add_cases(db, [(d, 6) for d in digests])
    orphan = stored(store, b"left by an interrupted run", age_s=2 * HOUR)
    service = VerifyService(db.uow, PhotoStore.at(store.root), page=2)
    fetch = service._page

    async def page_then_ingest_starts(after: PageKey | None) -> Sequence[Any]:
        if after is not None and after[0] == digests[1]:
            await add_run(db)
        return await fetch(after)

    monkeypatch.setattr(service, "_page", page_then_ingest_starts)
    with pytest.raises(IngestRunning, match=r"^stopped pruning: 1 ingest run"):
        await service.verify(VerifyOptions(prune=True))
    assert store.path_for(orphan).exists()
    assert await markers(db) == 0


async def test_ingest_refuses_while_a_prune_holds_the_guard(db: Database) -> None:
    async with PruneGuard(db.uow):
        assert await markers(db) == 1
        with pytest.raises(PruneRunning) as caught:
            await refuse_if_pruning(db.uow)
    assert caught.value.exit_code == 3
    assert caught.value.prunes.startswith(f"{HOST}:{os.getpid()}, started ")
    assert await markers(db) == 0
    await refuse_if_pruning(db.uow)  # released: ingest may start


async def test_a_prune_that_died_does_not_block_ingest(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(Prune),
            [
                {
                    "id": uuid.uuid4(),
                    "worker": f"{HOST}:{dead_pid()}",
                    "started_at": now,
                    "heartbeat_at": now,
                },
                {
                    "id": uuid.uuid4(),
                    "worker": "elsewhere:7",
                    "started_at": now,
                    "heartbeat_at": now - timedelta(seconds=prune_guard.PRUNE_STALE_S + 1),
                },
            ],
        )
    await refuse_if_pruning(db.uow)
    async with db.engine.begin() as connection:
        await connection.execute(delete(Prune))
        await connection.execute(
            insert(Prune).values(
                id=uuid.uuid4(), worker="elsewhere:7", started_at=now, heartbeat_at=now
            )
        )
    with pytest.raises(PruneRunning, match="elsewhere:7"):
        await refuse_if_pruning(db.uow)


async def test_the_guard_row_beats_while_the_prune_runs(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prune_guard, "PRUNE_BEAT_S", 0.0)
    async with PruneGuard(db.uow) as guard:
        async with db.engine.connect() as connection:
            first = await connection.scalar(select(Prune.heartbeat_at))
        await asyncio.sleep(0.01)
        await guard.beat()
        async with db.engine.connect() as connection:
            second = await connection.scalar(select(Prune.heartbeat_at))
    assert first is not None and second is not None and second > first

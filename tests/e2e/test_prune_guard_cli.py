"""``verify --prune`` and ``ingest`` through the command line, on both engines.

The reproduction of issue 11, item 4 on a really ingested dump: one shot's case is gone
(its run was interrupted after storing the photo), its photo is two hours old, and an
ingest run that will re-use that photo is alive. The prune must refuse and keep the photo;
an ingest started while a prune runs must refuse without committing anything.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from lizardctl.core.db.models import Case, IngestRun, Prune
from lizardctl.core.ingest.jobs import JobMembership
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli
from tests.e2e.layouts import on_db, unpack

HOST = socket.gethostname()


def live_prune_row() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "worker": f"{HOST}:{os.getpid()}",
        "started_at": now,
        "heartbeat_at": now,
    }


@pytest.fixture
def dump(tmp_path: Path, cli: Cli) -> Path:
    manifest = generate_dump(tmp_path / "gen", cameras=2, shots_per_camera=3, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    return manifest.dump_dir


def test_prune_refuses_while_an_ingest_may_reuse_an_old_orphan(
    cli: Cli, db_url: str, dump: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    ingest = cli("ingest", dump, "--settle", "0", "--workers", "0", "--store", store)
    assert ingest.code == 0, ingest.output
    unpack(db_url, store)  # a store of the first layout, whose unused files prune deletes

    async def interrupt_one(connection: Any) -> str:
        photo = await connection.scalar(select(Case.photo_sha256).limit(1))
        await connection.execute(delete(Case).where(Case.photo_sha256 == photo))
        return str(photo)

    orphan = next(store.rglob(on_db(db_url, interrupt_one)))
    two_hours_ago = time.time() - 7200
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    run_id = uuid.uuid4()

    async def start_run(connection: Any) -> None:
        await connection.execute(
            insert(IngestRun).values(
                id=run_id,
                status="running",
                paths=[str(dump)],
                host=HOST,
                pid=os.getpid(),
                dry_run=False,
                counts={},
                bytes=0,
                started_at=datetime.now(UTC),
            )
        )

    on_db(db_url, start_run)
    out = cli("verify", "--prune", "--store", store)
    assert out.code == 3, out.output
    assert out.stderr.startswith("Error: refusing to prune: 1 ingest run(s) alive")
    assert str(run_id) in out.stderr and out.stderr.count("\n") == 1
    assert out.stdout == ""
    assert orphan.exists()

    async def finish_run(connection: Any) -> None:
        await connection.execute(
            update(IngestRun).where(IngestRun.id == run_id).values(status="finished")
        )

    on_db(db_url, finish_run)
    pruned = cli("verify", "--prune", "--store", store, "--json")
    assert pruned.code == 0, pruned.output
    assert pruned.json()["counts"]["pruned"] == 1
    assert not orphan.exists()


def test_ingest_refuses_while_a_prune_runs_and_records_nothing(
    cli: Cli, db_url: str, dump: Path, tmp_path: Path
) -> None:
    async def hold(connection: Any) -> None:
        await connection.execute(insert(Prune).values(**live_prune_row()))

    on_db(db_url, hold)
    out = cli("ingest", dump, "--settle", "0", "--workers", "0", "--store", tmp_path / "s")
    assert out.code == 3, out.output
    assert out.stderr.startswith(
        "Error: a prune (verify --prune, store reclaim or store repack) is deleting photos "
        f"({HOST}:"
    )
    assert out.stderr.count("\n") == 1

    async def counts(connection: Any) -> tuple[int, int]:
        cases = await connection.scalar(select(func.count()).select_from(Case))
        runs = await connection.scalar(select(func.count()).select_from(IngestRun))
        return int(cases), int(runs)

    assert on_db(db_url, counts) == (0, 0)


def test_ingest_that_registered_as_a_prune_started_refuses_and_is_recorded_failed(
    cli: Cli, db_url: str, dump: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the prune's row appears after ingest's first look, before its run commits."""
    join = JobMembership.join

    async def prune_starts_then_join(self: JobMembership) -> uuid.UUID:
        async with self.db.engine.begin() as connection:
            await connection.execute(insert(Prune).values(**live_prune_row()))
        return await join(self)

    monkeypatch.setattr(JobMembership, "join", prune_starts_then_join)
    out = cli("ingest", dump, "--settle", "0", "--workers", "0", "--store", tmp_path / "s")
    assert out.code == 3, out.output
    assert "verify --prune, store reclaim or store repack" in out.stderr

    async def outcome(connection: Any) -> tuple[int, list[str]]:
        cases = await connection.scalar(select(func.count()).select_from(Case))
        statuses = list(await connection.scalars(select(IngestRun.status)))
        return int(cases), statuses

    assert on_db(db_url, outcome) == (0, ["failed"])

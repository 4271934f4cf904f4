"""``lizardctl store reclaim`` and ``store repack`` on a really ingested dump, both engines;
reclaim also on an S3 store (``both_stores``), repack being about folders only.

Photos become unused by deleting their cases and rows behind the tool's back (what a
retention job would do); an old-layout store is made by ingesting, then moving every photo
back into a file of its own and its row back to no pack. Crashes are real: the command runs
in a subprocess whose ``sitecustomize`` makes it SIGKILL itself at a chosen step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from lizardctl.core.db.models import Case, IngestRun, Photo
from lizardctl.core.store import FileStore, PhotoLocation, PhotoStore
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, both_stores
from tests.e2e.layouts import change_byte, locations, on_db
from tests.e2e.layouts import unpack as unpack_store
from tests.s3server import S3Location
from tests.stored import StoreAt, packs_in

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Ingested:
    cli: Cli
    db_url: str
    store: StoreAt
    tmp: Path

    @property
    def folder(self) -> Path:
        """The store's folder, for the first layout's tests (folder stores only)."""
        assert isinstance(self.store, Path)
        return self.store

    def packs(self) -> list[str]:
        return packs_in(self.store)

    def size(self, pack: str) -> int | None:
        return PhotoStore.at(self.store).backend.size(pack)

    def backend_method(self, name: str) -> str:
        """``module:Class.name`` of this store's backend, for ``killed(at=...)``."""
        kind = type(PhotoStore.at(self.store).backend)
        return f"{kind.__module__}:{kind.__qualname__}.{name}"

    def locations(self) -> list[PhotoLocation]:
        return sorted(locations(self.db_url), key=lambda loc: loc.sha256)

    def all_read(self) -> None:
        """Every photo reads back, and verify --read-data finds nothing wrong."""
        store = PhotoStore.at(self.store)
        for location in self.locations():
            assert len(store.read(location)) == location.size
        out = self.cli("verify", "--read-data", "--json")
        assert out.code == 0, out.output
        assert out.json()["ok"]

    def forget(self, count: int) -> None:
        """Delete ``count`` photos' cases and rows: their records become unused bytes."""

        async def drop(connection: Any) -> None:
            query = select(Photo.sha256).order_by(Photo.sha256).limit(count)
            photos = list(await connection.scalars(query))
            await connection.execute(delete(Case).where(Case.photo_sha256.in_(photos)))
            await connection.execute(delete(Photo).where(Photo.sha256.in_(photos)))

        on_db(self.db_url, drop)

    def killed(self, *args: str, at: str) -> None:
        """Run ``lizardctl ARGS`` in a subprocess that SIGKILLs itself when it calls ``at``
        (``module:attribute`` or ``module:Class.method``)."""
        site = self.tmp / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(
            textwrap.dedent(
                """
                import importlib, os, signal
                module, _, name = os.environ["KILL_AT"].partition(":")
                owner = importlib.import_module(module)
                *path, attribute = name.split(".")
                for part in path:
                    owner = getattr(owner, part)

                def die(*args, **kwargs):
                    os.kill(os.getpid(), signal.SIGKILL)

                setattr(owner, attribute, die)
                """
            )
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
            "KILL_AT": at,
        }
        env.pop("LIZARD_DB_URL", None)
        command = [sys.executable, "-m", "lizardctl", "--db", self.db_url, *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


@pytest.fixture
def ingested(cli: Cli, db_url: str, tmp_path: Path, s3_location: S3Location | None) -> Ingested:
    manifest = generate_dump(tmp_path / "gen", cameras=3, shots_per_camera=4, bad=False)
    store: StoreAt = s3_location.url if s3_location else tmp_path / "store"
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    out = cli("ingest", manifest.dump_dir, "--settle", "0", "--workers", "0", "--store", store)
    assert out.code == 0, out.output
    return Ingested(cli, db_url, store, tmp_path)


@both_stores
def test_dry_run_says_what_it_would_free_and_reclaim_frees_it(ingested: Ingested) -> None:
    (pack,) = ingested.packs()
    ingested.forget(8)  # 4 of 12 photos still live: a third of the pack
    size = ingested.size(pack)
    dry = ingested.cli("store", "reclaim", "--dry-run", "--json")
    assert dry.code == 0, dry.output
    plan = dry.json()
    assert (plan["dry_run"], plan["rewritten"], plan["deleted"]) == (True, 1, 0)
    assert [use["pack"] for use in plan["chosen"]] == [pack]
    assert 0 < plan["freed_bytes"] < size
    assert ingested.packs() == [pack]  # nothing changed
    assert ingested.size(pack) == size
    people = ingested.cli("store", "reclaim", "--dry-run")
    assert "would rewrite 1 less than 50% live" in people.stdout, people.output

    done = ingested.cli("store", "reclaim", "--json")
    assert done.code == 0, done.output
    assert done.json()["freed_bytes"] == plan["freed_bytes"]
    (new,) = ingested.packs()
    assert new != pack
    assert {loc.pack for loc in ingested.locations()} == {new}
    ingested.all_read()
    again = ingested.cli("store", "reclaim", "--json").json()
    assert (again["rewritten"], again["deleted"], again["freed_bytes"]) == (0, 0, 0)


@both_stores
def test_a_live_pack_is_kept_and_an_unused_one_is_deleted(ingested: Ingested) -> None:
    (pack,) = ingested.packs()
    ingested.forget(2)
    kept = ingested.cli("store", "reclaim", "--json").json()
    assert (kept["rewritten"], kept["deleted"]) == (0, 0)
    assert (
        ingested.cli("store", "reclaim", "--live-below", "0.95", "--json").json()["rewritten"] == 1
    )
    ingested.forget(10)
    (rewritten,) = ingested.packs()
    gone = ingested.cli("store", "reclaim", "--json").json()
    assert (gone["rewritten"], gone["deleted"]) == (0, 1)
    assert ingested.packs() == []
    assert rewritten != pack


def test_reclaim_refuses_while_an_ingest_run_is_alive(ingested: Ingested) -> None:
    (pack,) = ingested.packs()
    ingested.forget(8)

    async def start_run(connection: Any) -> None:
        await connection.execute(
            insert(IngestRun).values(
                id=uuid.uuid4(),
                status="running",
                paths=["/dump"],
                host=os.uname().nodename,
                pid=os.getpid(),
                dry_run=False,
                counts={},
                bytes=0,
                started_at=datetime.now(UTC),
            )
        )

    on_db(ingested.db_url, start_run)
    out = ingested.cli("store", "reclaim")
    assert out.code == 3, out.output
    assert "1 ingest run(s) alive" in out.stderr
    assert ingested.packs() == [pack]
    assert ingested.cli("store", "reclaim", "--dry-run").code == 0


@both_stores
@pytest.mark.parametrize(
    "step",
    [
        "remove",  # the backend's delete: rows moved, old pack still there
        "move",  # the rows' move: copies durable, rows not
    ],
)
def test_a_reclaim_killed_between_its_steps_loses_nothing_and_a_rerun_finishes(
    ingested: Ingested, step: str
) -> None:
    (pack,) = ingested.packs()
    ingested.forget(8)
    at = {
        "remove": ingested.backend_method("remove"),
        "move": "lizardctl.core.repositories.photos:PhotoRepository.move",
    }[step]
    ingested.killed("store", "reclaim", "--store", str(ingested.store), at=at)
    assert pack in ingested.packs()
    assert len(ingested.packs()) == 2  # the old pack and the copy
    ingested.all_read()
    rerun = ingested.cli("store", "reclaim", "--json")
    assert rerun.code == 0, rerun.output
    (left,) = ingested.packs()
    assert left != pack
    ingested.all_read()
    space = ingested.cli("verify", "--json").json()["space"]
    assert (space["packs"], space["reclaimable_bytes"]) == (1, 0)


def unpack(ingested: Ingested) -> list[PhotoLocation]:
    return sorted(unpack_store(ingested.db_url, ingested.folder), key=lambda loc: loc.sha256)


def test_repack_moves_an_old_store_into_packs_and_keeps_a_damaged_file(
    ingested: Ingested,
) -> None:
    locations = unpack(ingested)
    files = FileStore(ingested.folder)
    ingested.all_read()  # the old layout reads and verifies as before
    damaged = locations[3]
    files.path_for(damaged.sha256).write_bytes(b"not the photo")
    out = ingested.cli("store", "repack", "--json")
    assert out.code == 1, out.output
    report = out.json()
    assert (report["moved"], report["skipped"]) == (len(locations) - 1, 1)
    assert damaged.sha256 in report["skipped_named"][0]
    assert list(files.iter_hashes()) == [damaged.sha256]
    rows = {loc.sha256: loc.pack for loc in ingested.locations()}
    assert rows.pop(damaged.sha256) is None
    assert None not in rows.values()
    problems = ingested.cli("verify", "--read-data", "--json").json()["problems"]
    assert {(p["kind"], p["photo"]) for p in problems} == {("wrong-size", damaged.sha256)}


@pytest.mark.parametrize(
    "at",
    [
        "lizardctl.core.services.store_space:remove_file",  # rows committed, files kept
        "lizardctl.core.repositories.photos:PhotoRepository.pack_files",  # pack synced only
    ],
)
def test_a_killed_repack_is_finished_by_the_next(ingested: Ingested, at: str) -> None:
    locations = unpack(ingested)
    ingested.killed("store", "repack", "--store", str(ingested.store), at=at)
    committed = at.endswith("remove_file")
    store = PhotoStore.at(ingested.store)
    for location in ingested.locations():
        assert len(store.read(location)) == location.size
    found = ingested.cli("verify", "--read-data", "--json").json()
    assert found["problems_by_kind"] == ({"leftover-file": len(locations)} if committed else {})
    rerun = ingested.cli("store", "repack", "--json")
    assert rerun.code == 0, rerun.output
    report = rerun.json()
    assert report["moved"] == (0 if committed else len(locations))
    assert report["leftovers_deleted"] == (len(locations) if committed else 0)
    assert list(FileStore(ingested.folder).iter_hashes()) == []
    assert None not in {loc.pack for loc in ingested.locations()}
    ingested.all_read()
    if not committed:  # the killed run's pack holds copies no row points at
        assert ingested.cli("store", "reclaim", "--json").json()["deleted"] == 1
        assert len(ingested.packs()) == 1


@both_stores
def test_reclaim_never_copies_a_damaged_record_and_leaves_its_pack(ingested: Ingested) -> None:
    (pack,) = ingested.packs()
    ingested.forget(8)
    live = [loc for loc in ingested.locations() if loc.pack == pack]
    change_byte(ingested.store, live[0], 48 + 1)
    out = ingested.cli("store", "reclaim", "--json")
    assert out.code == 1, out.output
    report = out.json()
    assert (report["rewritten"], report["freed_bytes"]) == (0, 0)
    assert pack in report["skipped"][0] and live[0].sha256 in report["skipped"][0]
    assert pack in ingested.packs()
    assert {loc.pack for loc in ingested.locations()} == {pack}

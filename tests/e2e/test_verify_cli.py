"""``lizardctl verify`` on a really ingested dump, damaged behind the tool's back.

Every test runs on a SQLite file and on PostgreSQL: twelve cases of the three built-in
camera types are ingested, then a store file is deleted, corrupted, truncated or added,
a case's raw metadata is edited in the database, or temporary files are left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Case
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, Outcome

CASES = 12
TWO_HOURS_AGO = time.time() - 7200


@dataclass(frozen=True)
class Ingested:
    cli: Cli
    db_url: str
    store: Path

    def verify(self, *args: str) -> Outcome:
        return self.cli("verify", "--store", self.store, *args)

    def photos(self) -> list[Path]:
        return sorted(p for p in self.store.rglob("*") if p.is_file())

    def case_of(self, photo: Path) -> str:
        """The id of the case whose photo this is, as ``cases`` shows it."""
        for case in self.cli("cases", "list", "--json").json()["items"]:
            if self.cli("cases", "show", case["id"], "--json").json()["photo_sha256"] == photo.name:
                return str(case["id"])
        raise AssertionError(f"no case uses {photo}")


@pytest.fixture
def ingested(cli: Cli, db_url: str, tmp_path: Path) -> Ingested:
    manifest = generate_dump(tmp_path / "gen", cameras=3, shots_per_camera=4, bad=False)
    store = tmp_path / "store"
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    out = cli("ingest", manifest.dump_dir, "--settle", "0", "--workers", "0", "--store", store)
    assert out.code == 0, out.output
    return Ingested(cli, db_url, store)


def problems(out: Outcome) -> list[dict[str, Any]]:
    assert out.code == 1, out.output
    listed: list[dict[str, Any]] = out.json()["problems"]
    return listed


def set_raw(db_url: str, case_id: str, raw: dict[str, Any]) -> None:
    """Overwrite one case's raw metadata straight in the database."""

    async def write() -> None:
        db = Database(parse_db_url(db_url))
        try:
            async with db.engine.begin() as connection:
                await connection.execute(
                    update(Case).where(Case.id == uuid.UUID(case_id)).values(raw=raw)
                )
        finally:
            await db.dispose()

    asyncio.run(write())


def test_clean_store_and_database_exit_0(ingested: Ingested) -> None:
    out = ingested.verify("--json")
    assert out.code == 0, out.output
    report = out.json()
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["counts"] | {"problems": 0} == {
        "cases": CASES,
        "photos": CASES,
        "store_files": CASES,
        "bytes_hashed": 0,
        "problems": 0,
        "pruned": 0,
        "kept_recent": 0,
    }
    human = ingested.verify("--read-data")
    assert human.code == 0, human.output
    assert f"checked {CASES} cases" in human.stdout
    assert "no problems found" in human.stdout


def test_deleted_photo_is_found_and_names_the_case(ingested: Ingested) -> None:
    photo = ingested.photos()[5]
    case_id = ingested.case_of(photo)
    photo.unlink()
    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["case_id"], p["photo"]) for p in found] == [
        ("missing-photo", case_id, photo.name)
    ]
    human = ingested.verify()
    assert human.code == 1
    for shown in ("missing-photo", case_id, photo.name, "1 problem(s)"):
        assert shown in human.stdout


def test_corruption_of_same_size_is_found_only_by_read_data(ingested: Ingested) -> None:
    photo = ingested.photos()[3]
    data = bytearray(photo.read_bytes())
    data[len(data) // 2] ^= 0xFF
    photo.write_bytes(bytes(data))
    case_id = ingested.case_of(photo)
    assert ingested.verify().code == 0
    found = problems(ingested.verify("--read-data", "--json"))
    assert [(p["kind"], p["case_id"], p["photo"]) for p in found] == [
        ("wrong-hash", case_id, photo.name)
    ]
    assert hashlib.sha256(data).hexdigest() in found[0]["message"]


def test_truncated_photo_is_found_without_read_data(ingested: Ingested) -> None:
    photo = ingested.photos()[0]
    size = photo.stat().st_size
    with photo.open("r+b") as f:
        f.truncate(size // 2)
    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["photo"]) for p in found] == [("wrong-size", photo.name)]
    assert f"{size // 2} bytes, the database says {size}" in found[0]["message"]


def test_unreferenced_photo_is_an_orphan_and_prune_deletes_it(ingested: Ingested) -> None:
    data = b"a photo no case uses"
    digest = hashlib.sha256(data).hexdigest()
    orphan = ingested.store / digest[:2] / digest[2:4] / digest
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(data)

    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["photo"], p["case_id"]) for p in found] == [
        ("orphan-photo", digest, None)
    ]
    young = ingested.verify("--prune", "--json")  # a running ingest's photo may be this young
    assert young.code == 1
    assert young.json()["counts"]["kept_recent"] == 1
    assert orphan.exists()

    pruned = ingested.verify("--prune", "--min-age", "0", "--json")
    assert pruned.code == 0, pruned.output
    assert [(p["kind"], p["pruned"]) for p in pruned.json()["problems"]] == [("orphan-photo", True)]
    assert not orphan.exists()
    assert len(ingested.photos()) == CASES
    assert ingested.verify().code == 0


def test_stale_temporary_files_are_reported_and_pruned_fresh_ones_left(
    ingested: Ingested,
) -> None:
    leaf = ingested.photos()[0].parent
    stale, fresh = leaf / ".tmp-0123456789abcdef", leaf / ".tmp-fedcba9876543210"
    stale.write_bytes(b"half a photo from a killed ingest")
    fresh.write_bytes(b"a photo being written right now")
    os.utime(stale, (TWO_HOURS_AGO, TWO_HOURS_AGO))

    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["path"]) for p in found] == [("stale-temporary", str(stale))]
    out = ingested.verify("--prune")
    assert out.code == 0, out.output
    assert "pruned 1 file(s)" in out.stdout
    assert not stale.exists()
    assert fresh.exists()
    assert ingested.verify().code == 0


def test_raw_metadata_that_no_longer_validates_is_reported(ingested: Ingested) -> None:
    case = ingested.cli("cases", "list", "--json").json()["items"][0]
    raw = ingested.cli("cases", "show", case["id"], "--json").json()["raw"]
    del raw["datetime"]
    set_raw(ingested.db_url, case["id"], raw)

    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["case_id"]) for p in found] == [("invalid-metadata", case["id"])]
    assert "datetime: required" in found[0]["message"]


def test_every_problem_is_counted_and_limit_caps_the_list(ingested: Ingested) -> None:
    for photo in ingested.photos()[:3]:
        photo.unlink()
    report = problems(ingested.verify("--json", "--limit", "2"))
    assert len(report) == 2
    full = ingested.verify("--json", "--limit", "2").json()
    assert full["counts"]["problems"] == 3
    assert full["problems_by_kind"] == {"missing-photo": 3}
    human = ingested.verify("--limit", "2")
    assert "2 of 3 problem(s); more: --offset 2" in human.stdout


def test_offset_pages_on_through_the_problems(ingested: Ingested) -> None:
    for photo in ingested.photos()[:3]:
        photo.unlink()
    first = ingested.verify("--json", "--limit", "2").json()
    rest = ingested.verify("--json", "--limit", "2", "--offset", "2").json()
    assert (rest["offset"], rest["listed"], rest["counts"]["problems"]) == (2, 1, 3)
    photos = [p["photo"] for p in first["problems"] + rest["problems"]]
    assert len(set(photos)) == 3
    human = ingested.verify("--limit", "2", "--offset", "2")
    assert "1 of 3 problem(s), from #3" in human.stdout
    assert "more:" not in human.stdout


def test_quiet_prints_nothing_when_clean_and_the_problems_when_not(ingested: Ingested) -> None:
    quiet = ingested.cli("--quiet", "verify", "--store", ingested.store)
    assert (quiet.code, quiet.stdout) == (0, "")
    ingested.photos()[0].unlink()
    loud = ingested.cli("--quiet", "verify", "--store", ingested.store)
    assert loud.code == 1
    assert "missing-photo" in loud.stdout


def test_missing_store_is_a_usage_error(ingested: Ingested, tmp_path: Path) -> None:
    out = ingested.cli("verify", "--store", tmp_path / "elsewhere")
    assert out.code == 2
    assert out.stderr.count("\n") == 1
    assert "does not exist" in out.stderr


def test_empty_database_without_a_store_is_clean(cli: Cli, tmp_path: Path) -> None:
    out = cli("verify", "--store", tmp_path / "no-store", "--json")
    assert out.code == 0, out.output
    assert out.json()["counts"]["cases"] == 0

"""``lizardctl verify`` on a really ingested dump, damaged behind the tool's back.

Every test runs on a SQLite file and on PostgreSQL: twelve cases of the three built-in
camera types are ingested into a pack, then the pack is cut short, changed or deleted (in a
folder, and, for ``both_stores``, as an object re-uploaded changed or deleted in an S3
bucket), a case's raw metadata is edited in the database; or the store is turned into the
first layout (a file per photo) and a file is deleted, corrupted, added, or temporary files
are left behind.
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
from sqlalchemy import select, update

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Case
from lizardctl.core.store import PhotoLocation
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, Outcome, both_stores
from tests.e2e.layouts import change_byte, locations, on_db, unpack
from tests.s3server import S3Location
from tests.stored import StoreAt, delete_pack, pack_bytes, replace_pack

CASES = 12
TWO_HOURS_AGO = time.time() - 7200


@dataclass(frozen=True)
class Ingested:
    cli: Cli
    db_url: str
    store: StoreAt

    def verify(self, *args: str) -> Outcome:
        return self.cli("verify", "--store", self.store, *args)

    def packed(self) -> list[PhotoLocation]:
        """The photos in their pack's order."""
        return locations(self.db_url)

    @property
    def folder(self) -> Path:
        """The store's folder, for the tests of the first layout (folder stores only)."""
        assert isinstance(self.store, Path)
        return self.store

    def photos(self) -> list[Path]:
        """The store's files, once ``unpack`` made it a first-layout one."""
        return sorted(
            p for p in self.folder.rglob("*") if p.is_file() and p.parent != self.folder / "packs"
        )

    def unpack(self) -> None:
        unpack(self.db_url, self.folder)

    def case_of(self, photo: str) -> str:
        """The id of the (one) case whose photo this is, read in the database."""

        async def case(connection: Any) -> uuid.UUID:
            query = select(Case.id).where(Case.photo_sha256 == photo)
            return (await connection.scalars(query)).one()  # type: ignore[no-any-return]

        return str(on_db(self.db_url, case))


@pytest.fixture
def ingested(cli: Cli, db_url: str, tmp_path: Path, s3_location: S3Location | None) -> Ingested:
    manifest = generate_dump(tmp_path / "gen", cameras=3, shots_per_camera=4, bad=False)
    store: StoreAt = s3_location.url if s3_location else tmp_path / "store"
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


@both_stores
def test_clean_store_and_database_exit_0(ingested: Ingested) -> None:
    out = ingested.verify("--json")
    assert out.code == 0, out.output
    report = out.json()
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["counts"] | {"problems": 0} == {
        "cases": CASES,
        "photos": CASES,
        "store_files": 0,
        "packed_photos": CASES,
        "bytes_hashed": 0,
        "problems": 0,
        "pruned": 0,
        "kept_recent": 0,
    }
    space = report["space"]
    assert (space["packs"], space["reclaimable_bytes"], space["active_packs"]) == (1, 0, 0)
    assert space["live_bytes"] == sum(48 + loc.size for loc in ingested.packed())
    human = ingested.verify("--read-data")
    assert human.code == 0, human.output
    assert f"checked {CASES} cases" in human.stdout
    assert f"{CASES} photos in 1 pack(s)" in human.stdout
    assert "no problems found" in human.stdout
    hashed = ingested.verify("--read-data", "--json").json()["counts"]["bytes_hashed"]
    assert hashed == sum(loc.size for loc in ingested.packed())


@both_stores
def test_a_pack_cut_short_names_the_case_of_the_cut_record(ingested: Ingested) -> None:
    last = ingested.packed()[-1]
    assert last.pack is not None and last.offset is not None
    case_id = ingested.case_of(last.sha256)
    data = pack_bytes(ingested.store, last.pack)
    replace_pack(ingested.store, last.pack, data[: last.offset + 48 + last.size // 2])
    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["case_id"], p["photo"]) for p in found] == [
        ("damaged-record", case_id, last.sha256)
    ]
    assert "the pack ends at" in found[0]["message"]
    human = ingested.verify()
    assert human.code == 1
    for shown in ("damaged-record", case_id, last.sha256, "1 problem(s)"):
        assert shown in human.stdout


@both_stores
def test_a_deleted_pack_makes_every_photo_in_it_missing(ingested: Ingested) -> None:
    (pack,) = {loc.pack for loc in ingested.packed()}
    assert pack is not None
    delete_pack(ingested.store, pack)
    report = ingested.verify("--json").json()
    assert report["problems_by_kind"] == {"missing-photo": CASES}
    assert f"pack {pack} is not in the store" in report["problems"][0]["message"]


@both_stores
def test_corruption_of_same_size_is_found_only_by_read_data(ingested: Ingested) -> None:
    photo = ingested.packed()[3]
    change_byte(ingested.store, photo, 48 + photo.size // 2)
    case_id = ingested.case_of(photo.sha256)
    assert ingested.verify().code == 0
    found = problems(ingested.verify("--read-data", "--json"))
    assert [(p["kind"], p["case_id"], p["photo"]) for p in found] == [
        ("wrong-hash", case_id, photo.sha256)
    ]
    assert "content hashes to" in found[0]["message"]


@both_stores
def test_a_changed_record_header_is_found_without_read_data(ingested: Ingested) -> None:
    photo = ingested.packed()[0]
    change_byte(ingested.store, photo, 10)  # inside the sha256 the header names
    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["photo"]) for p in found] == [("damaged-record", photo.sha256)]


def test_old_layout_store_is_clean_and_a_deleted_file_names_the_case(ingested: Ingested) -> None:
    ingested.unpack()
    clean = ingested.verify("--read-data", "--json")
    assert clean.code == 0, clean.output
    assert (clean.json()["counts"]["store_files"], clean.json()["counts"]["packed_photos"]) == (
        CASES,
        0,
    )
    photo = ingested.photos()[5]
    case_id = ingested.case_of(photo.name)
    photo.unlink()
    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["case_id"], p["photo"]) for p in found] == [
        ("missing-photo", case_id, photo.name)
    ]


def test_old_layout_truncated_and_corrupt_files_are_found(ingested: Ingested) -> None:
    ingested.unpack()
    truncated, corrupt = ingested.photos()[0], ingested.photos()[3]
    size = truncated.stat().st_size
    with truncated.open("r+b") as f:
        f.truncate(size // 2)
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["photo"]) for p in found] == [("wrong-size", truncated.name)]
    assert f"{size // 2} bytes, the database says {size}" in found[0]["message"]
    full = problems(ingested.verify("--read-data", "--json"))
    assert {(p["kind"], p["photo"]) for p in full} == {
        ("wrong-size", truncated.name),
        ("wrong-hash", corrupt.name),
    }
    assert hashlib.sha256(data).hexdigest() in next(
        p["message"] for p in full if p["kind"] == "wrong-hash"
    )


def test_unreferenced_photo_is_an_orphan_and_prune_deletes_it(ingested: Ingested) -> None:
    ingested.unpack()
    data = b"a photo no case uses"
    digest = hashlib.sha256(data).hexdigest()
    orphan = ingested.folder / digest[:2] / digest[2:4] / digest
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
    assert len(ingested.photos()) == CASES + 1  # and the store's identity file
    assert ingested.verify().code == 0


def test_stale_temporary_files_are_reported_and_pruned_fresh_ones_left(
    ingested: Ingested,
) -> None:
    ingested.unpack()
    leaf = next(p for p in ingested.photos() if p.parent != ingested.folder).parent
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
    async def first(connection: Any) -> tuple[uuid.UUID, dict[str, Any]]:
        return (await connection.execute(select(Case.id, Case.raw).limit(1))).one()  # type: ignore[no-any-return]

    case_id, raw = on_db(ingested.db_url, first)
    del raw["datetime"]
    set_raw(ingested.db_url, str(case_id), raw)

    found = problems(ingested.verify("--json"))
    assert [(p["kind"], p["case_id"]) for p in found] == [("invalid-metadata", str(case_id))]
    assert "datetime: required" in found[0]["message"]


def damage_three(ingested: Ingested) -> None:
    for photo in ingested.packed()[:3]:
        change_byte(ingested.store, photo, 10)


def test_every_problem_is_counted_and_limit_caps_the_list(ingested: Ingested) -> None:
    damage_three(ingested)
    report = problems(ingested.verify("--json", "--limit", "2"))
    assert len(report) == 2
    full = ingested.verify("--json", "--limit", "2").json()
    assert full["counts"]["problems"] == 3
    assert full["problems_by_kind"] == {"damaged-record": 3}
    human = ingested.verify("--limit", "2")
    assert "2 of 3 problem(s); more: --offset 2" in human.stdout


def test_offset_pages_on_through_the_problems(ingested: Ingested) -> None:
    damage_three(ingested)
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
    damage_three(ingested)
    loud = ingested.cli("--quiet", "verify", "--store", ingested.store)
    assert loud.code == 1
    assert "damaged-record" in loud.stdout


def test_missing_store_is_a_usage_error(ingested: Ingested, tmp_path: Path) -> None:
    out = ingested.cli("verify", "--store", tmp_path / "elsewhere")
    assert out.code == 2
    assert out.stderr.count("\n") == 1
    assert "does not exist" in out.stderr


def test_empty_database_without_a_store_is_clean(cli: Cli, tmp_path: Path) -> None:
    out = cli("verify", "--store", tmp_path / "no-store", "--json")
    assert out.code == 0, out.output
    assert out.json()["counts"]["cases"] == 0

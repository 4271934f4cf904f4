"""VerifyService on both engines: the merge of case pages with the store listing.

Pages of three cases make every boundary case happen: a photo shared by cases on two pages,
unused and missing photos at page edges, orphans found in batches. Expected problems are
computed with set arithmetic from how each photo was damaged.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Camera, Case, Photo, SchemaVersion
from lizardctl.core.repositories.verify import PageKey
from lizardctl.core.services import verify as verify_module
from lizardctl.core.services.verify import VerifyOptions, VerifyReport, VerifyService
from lizardctl.core.store import PhotoStore

CAMERA = uuid.UUID("104fc08a-efb6-427f-9193-2d54e4ed3e12")
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = 3600.0

Found = set[tuple[str, uuid.UUID | None, str | None]]


@pytest.fixture
async def db(migrated_db_url: str) -> AsyncIterator[Database]:
    database = Database(parse_db_url(migrated_db_url))
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(Camera).values(id=CAMERA, camera_type="camerus1", latitude=0, longitude=0)
        )
    try:
        yield database
    finally:
        await database.dispose()


def raw(n: int) -> dict[str, Any]:
    return {
        "transport_chars": "ABC",
        "transport_numbers": "123",
        "transport_region": "77",
        "camera_id": str(CAMERA),
        "violation_id": "de163a57-fd92-47a6-9b78-82bb0d41be71",
        "violation_value": f"{60 + n}km/h",
        "skill_value": 1,
        "datetime": (WHEN + timedelta(seconds=n)).isoformat(),
    }


async def add_cases(db: Database, photos: Sequence[tuple[str, int]]) -> list[uuid.UUID]:
    """One case per (photo digest, size); a digest given twice is a photo two cases share."""
    async with db.engine.begin() as connection:
        schema_id = await connection.scalar(
            select(SchemaVersion.id).where(SchemaVersion.camera_type == "camerus1")
        )
        existing = set(await connection.scalars(select(Photo.sha256)))
        new = {digest: size for digest, size in photos if digest not in existing}
        if new:
            await connection.execute(
                insert(Photo),
                [
                    {"sha256": d, "size": s, "format": "jpeg", "width": 1, "height": 1}
                    for d, s in new.items()
                ],
            )
        ids = [uuid.uuid4() for _ in photos]
        await connection.execute(
            insert(Case),
            [
                {
                    "id": case_id,
                    "photo_sha256": digest,
                    "metadata_sha256": uuid.uuid4().hex * 2,
                    "camera_id": CAMERA,
                    "schema_version_id": schema_id,
                    "plate": "1ABC2377",
                    "violation_id": CAMERA,
                    "violation_value": "62km/h",
                    "skill": 1,
                    "occurred_at": WHEN,
                    "raw": raw(n),
                    "source_photo": f"/dump/{n}.jpg",
                    "source_metadata": f"/dump/{n}.json",
                    "required_skill": 1,
                }
                for n, (case_id, (digest, _)) in enumerate(zip(ids, photos, strict=True))
            ],
        )
    return ids


def put(store: PhotoStore, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    store.put(digest, data)
    return digest


def found(report: VerifyReport) -> Found:
    return {(p.kind, p.case_id, p.photo) for p in report.listed}


@pytest.mark.parametrize("seed", range(4))
async def test_every_damage_is_found_across_page_boundaries(
    db: Database, tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_module, "_ORPHAN_BATCH", 2)
    rng = random.Random(seed)
    store = PhotoStore(tmp_path / "store")
    expected: Found = set()
    hash_only: Found = set()
    photos: list[tuple[str, int]] = []
    owners: list[str] = []
    for _ in range(40):
        data = rng.randbytes(rng.randint(10, 200))
        digest = put(store, data)
        damage = rng.choice(["none", "none", "missing", "truncated", "corrupt", "orphan"])
        path = store.path_for(digest)
        if damage == "orphan":
            expected.add(("orphan-photo", None, digest))
            continue
        if damage == "missing":
            path.unlink()
        elif damage == "truncated":
            path.write_bytes(data[:-1])
        elif damage == "corrupt":
            path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
        for _ in range(rng.choice([1, 1, 2, 3])):
            photos.append((digest, len(data)))
            owners.append(damage)
    ids = await add_cases(db, photos)
    kinds = {"missing": "missing-photo", "truncated": "wrong-size", "corrupt": "wrong-hash"}
    for case_id, (digest, _), damage in zip(ids, photos, owners, strict=True):
        if damage in kinds:
            target = hash_only if damage == "corrupt" else expected
            target.add((kinds[damage], case_id, digest))

    service = VerifyService(db.uow, store.root, page=3)
    quick = await service.verify(VerifyOptions())
    assert found(quick) == expected
    assert quick.cases == len(photos)
    assert quick.photos == len({digest for digest, _ in photos})
    full = await service.verify(VerifyOptions(read_data=True, hash_workers=2))
    assert found(full) == expected | hash_only
    assert full.ok is (not expected | hash_only)


async def test_a_case_committed_during_the_pass_makes_its_photo_used(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest stores a photo before committing its case: verify must look again."""
    store = PhotoStore(tmp_path / "store")
    digests = sorted(put(store, f"photo {n}".encode()) for n in range(8))
    await add_cases(db, [(d, 7) for d in digests[1:]])
    service = VerifyService(db.uow, store.root, page=2)
    fetch = service._page

    async def page_then_ingest(after: PageKey | None) -> Sequence[Any]:
        rows = await fetch(after)
        if after is not None and after[0] == digests[2]:  # digests[0] has been passed over
            await add_cases(db, [(digests[0], 7)])
        return rows

    monkeypatch.setattr(service, "_page", page_then_ingest)
    report = await service.verify(VerifyOptions(prune=True, min_age_s=0))
    assert report.ok, report.listed
    assert store.path_for(digests[0]).exists()


async def test_a_schema_version_that_no_longer_compiles_is_one_problem(db: Database) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(
            insert(SchemaVersion).values(
                camera_type="camerus1", version=99, digest="0" * 64, content="{", file_format="json"
            )
        )
    report = await VerifyService(db.uow, Path("/nonexistent")).verify(VerifyOptions())
    assert [(p.kind, p.case_id) for p in report.listed] == [("bad-schema", None)]
    assert "camerus1 v99 no longer compiles" in report.listed[0].message


async def test_prune_removes_old_unused_photos_and_keeps_young_ones(
    db: Database, tmp_path: Path
) -> None:
    store = PhotoStore(tmp_path / "store")
    used = put(store, b"used")
    await add_cases(db, [(used, 4)])
    old, young = put(store, b"old orphan"), put(store, b"young orphan")
    long_ago = time.time() - 2 * HOUR
    os.utime(store.path_for(old), (long_ago, long_ago))
    report = await VerifyService(db.uow, store.root).verify(VerifyOptions(prune=True))
    assert {(p.photo, p.pruned) for p in report.listed} == {(old, True), (young, False)}
    assert (report.pruned, report.kept_recent, report.ok) == (1, 1, False)
    assert sorted(store.iter_hashes()) == sorted([used, young])

"""VerifyService on both engines: the merge of case pages with the store listing (photos
stored as files, the first layout), and the pass over packed photos in pack order.

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
from lizardctl.core.store import FileStore, PhotoLocation, PhotoStore
from lizardctl.core.store.identity import create_identity
from lizardctl.core.store.packs import PACK_HEADER, RECORD, pack_path

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


async def add_cases(
    db: Database,
    photos: Sequence[tuple[str, int]],
    places: dict[str, tuple[str, int]] | None = None,
) -> list[uuid.UUID]:
    """One case per (photo digest, size); a digest given twice is a photo two cases share.
    ``places`` gives the (pack, offset) of packed photos; the others are files."""
    places = places or {}
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
                    {
                        "sha256": d,
                        "size": s,
                        "format": "jpeg",
                        "width": 1,
                        "height": 1,
                        "pack": places.get(d, (None, None))[0],
                        "pack_offset": places.get(d, (None, None))[1],
                    }
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


def put(store: FileStore, data: bytes) -> str:
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
    store = FileStore(tmp_path / "store")
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

    service = VerifyService(db.uow, PhotoStore.at(store.root), page=3)
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
    store = FileStore(tmp_path / "store")
    digests = sorted(put(store, f"photo {n}".encode()) for n in range(8))
    await add_cases(db, [(d, 7) for d in digests[1:]])
    service = VerifyService(db.uow, PhotoStore.at(store.root), page=2)
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
    report = await VerifyService(db.uow, PhotoStore.at("/nonexistent")).verify(VerifyOptions())
    assert [(p.kind, p.case_id) for p in report.listed] == [("bad-schema", None)]
    assert "camerus1 v99 no longer compiles" in report.listed[0].message


async def test_prune_removes_old_unused_photos_and_keeps_young_ones(
    db: Database, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    used = put(store, b"used")
    await add_cases(db, [(used, 4)])
    old, young = put(store, b"old orphan"), put(store, b"young orphan")
    long_ago = time.time() - 2 * HOUR
    os.utime(store.path_for(old), (long_ago, long_ago))
    report = await VerifyService(db.uow, PhotoStore.at(store.root)).verify(
        VerifyOptions(prune=True)
    )
    assert {(p.photo, p.pruned) for p in report.listed} == {(old, True), (young, False)}
    assert (report.pruned, report.kept_recent, report.ok) == (1, 1, False)
    assert sorted(store.iter_hashes()) == sorted([used, young])


def packed(
    store: PhotoStore, store_id: uuid.UUID, photos: list[bytes]
) -> dict[str, tuple[str, int]]:
    """Append ``photos`` to a pack of their own, sealed; their (pack, offset) by digest."""
    writer = store.writer(store_id)
    items = [(hashlib.sha256(data).hexdigest(), data) for data in photos]
    places = writer.append(items)
    writer.sync()
    writer.close()
    return {digest: place for (digest, _), place in zip(items, places, strict=True)}


def flip(path: Path, at: int) -> None:
    """Change one byte of a (read-only) pack behind the store's back."""
    path.chmod(0o644)
    with path.open("r+b") as file:
        file.seek(at)
        byte = file.read(1)
        file.seek(at)
        file.write(bytes([byte[0] ^ 0xFF]))


async def test_damaged_packs_name_their_cases_and_unused_bytes_are_reclaimable(
    db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    store_id = create_identity(root)
    data = [f"photo number {n} ".encode() * (n + 3) for n in range(13)]
    digest = [hashlib.sha256(d).hexdigest() for d in data]
    places: dict[str, tuple[str, int]] = {}
    for first in (0, 4, 8):  # packs A, B and C: four photos each
        places |= packed(store, store_id, data[first : first + 4])
    pack_b, pack_c = (places[digest[n]][0] for n in (4, 8))
    unused_pack = next(iter(packed(store, store_id, [b"nobody's", b"photos"]).values()))[0]
    gone = packed(store, store_id, [data[12]])  # pack E: removed below
    places |= gone
    places.pop(digest[3])  # A's last record: no row points at it
    # B is cut inside its third record; C's second record's header and first photo change.
    cut = places[digest[6]][1] + RECORD.size + 3
    os.truncate(pack_path(root, pack_b), cut)
    flip(pack_path(root, pack_c), places[digest[9]][1] + 8)
    flip(pack_path(root, pack_c), places[digest[8]][1] + RECORD.size)
    pack_path(root, places[digest[12]][0]).unlink()
    # A file a pack also holds: left over by a repack killed before its deletions.
    store.files.put(digest[0], data[0])
    wanted = [n for n in range(13) if n != 3]
    ids = await add_cases(
        db, [(digest[n], len(data[n])) for n in wanted] + [(digest[6], len(data[6]))], places
    )
    case_of: dict[int, set[uuid.UUID]] = {}
    for n, case_id in zip([*wanted, 6], ids, strict=True):
        case_of.setdefault(n, set()).add(case_id)
    damaged = {6: "damaged-record", 7: "damaged-record", 9: "damaged-record", 12: "missing-photo"}
    expected: Found = {
        (kind, case_id, digest[n]) for n, kind in damaged.items() for case_id in case_of[n]
    }
    expected.add(("leftover-file", None, digest[0]))

    service = VerifyService(db.uow, store, page=3)
    quick = await service.verify(VerifyOptions())
    assert found(quick) == expected
    assert quick.packed_photos == 12
    assert "the pack ends at" in next(p.message for p in quick.listed if p.photo == digest[7])
    unused = pack_path(root, unused_pack).stat().st_size
    assert quick.space.unreferenced_packs == 1
    assert quick.space.reclaimable_bytes == unused + RECORD.size + len(data[3])
    assert quick.space.packs == 4  # A to D: E is gone
    full = await service.verify(VerifyOptions(read_data=True, hash_workers=2))
    assert found(full) == expected | {("wrong-hash", c, digest[8]) for c in case_of[8]}
    healthy = {0, 1, 2, 4, 5, 10, 11}  # 9's header is damaged, so it is not hashed
    assert full.bytes_hashed == sum(len(data[n]) for n in healthy | {8})

    pruned = await service.verify(VerifyOptions(prune=True, min_age_s=0))
    assert {p.photo for p in pruned.listed if p.pruned} == {digest[0]}
    assert not store.files.contains(digest[0])
    assert store.read(PhotoLocation(digest[1], len(data[1]), *places[digest[1]])) == data[1]


async def test_a_pack_header_the_size_of_the_file_is_a_damaged_record(
    db: Database, tmp_path: Path
) -> None:
    """A pack cut right after its own header: every record it held is named."""
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    store_id = create_identity(root)
    places = packed(store, store_id, [b"first", b"second"])
    name = next(iter(places.values()))[0]
    os.truncate(pack_path(root, name), PACK_HEADER.size)
    ids = await add_cases(
        db, [(d, 5 if o == PACK_HEADER.size else 6) for d, (_, o) in places.items()], places
    )
    report = await VerifyService(db.uow, store).verify(VerifyOptions(read_data=True))
    assert {(p.kind, p.case_id) for p in report.listed} == {("damaged-record", i) for i in ids}
    assert not report.ok


async def test_a_photo_repacked_during_the_pass_is_not_missing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``store repack`` commits a photo's pack, then deletes its file: verify, reading the
    case before and the store after, must ask where the photo is now."""
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    store_id = create_identity(root)
    data = {put(store.files, f"photo {n}".encode()): f"photo {n}".encode() for n in range(8)}
    digests = sorted(data)
    await add_cases(db, [(d, 7) for d in digests])
    service = VerifyService(db.uow, store, page=2)
    fetch = service._page
    moved = digests[5]

    async def page_then_repack(after: PageKey | None) -> Sequence[Any]:
        rows = await fetch(after)
        if after is not None and after[0] == digests[3]:  # its file is not listed yet
            writer = store.writer(store_id)
            ((pack, offset),) = writer.append([(moved, data[moved])])
            writer.close()
            async with db.uow() as uow:
                await uow.photos.pack_files([(moved, pack, offset)])
                await uow.commit()
            store.files.path_for(moved).unlink()
        return rows

    monkeypatch.setattr(service, "_page", page_then_repack)
    report = await service.verify(VerifyOptions())
    assert report.ok, report.listed
    assert not store.files.contains(moved)

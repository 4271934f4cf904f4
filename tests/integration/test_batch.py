"""BatchProcessor against a real migrated database (SQLite file and PostgreSQL) and store.

Each test migrates a fresh database, registers the built-in camera types through the
same path as the CLI, registers one camera per type and creates the run rows that cases
and rejections reference.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random
import shutil
import struct
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from lizardctl.core.codecs import encode_binary
from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Case, IngestRun, Photo, Rejection, SchemaVersion
from lizardctl.core.ingest.batch import BatchProcessor, BatchSettings
from lizardctl.core.ingest.jobs import Unit
from lizardctl.core.ingest.outcome import BatchResult
from lizardctl.core.ingest.walk import ShotFiles, Walker, WalkOptions, pair
from lizardctl.core.photos import DEFAULT_MAX_PIXELS
from lizardctl.core.repositories.claims import FolderPlan
from lizardctl.core.repositories.ingest import ShotRepository
from lizardctl.core.services.cameras import CameraService
from lizardctl.core.services.schemas import register_builtins
from lizardctl.core.services.stores import StoreService
from lizardctl.core.store import PackWriter
from lizardctl.core.store.folder import FolderBackend
from lizardctl.core.vocabulary import Reason
from tests.stored import pack_records, stored_photos
from tests.unit.test_identity import encode_binary_padded

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"
EXAMPLES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "design_examples.json").read_text())
CAMERA_IDS = {
    "camerus1": uuid.UUID(EXAMPLES["camerus1"]["camera_id"]),
    "camerus2": uuid.UUID(EXAMPLES["camerus2"]["camera"]["id"]),
    "camerus3": uuid.UUID(EXAMPLES["camerus3"]["camera"]["id"]),
}


def _base_jpeg() -> bytes:
    pixels = random.Random(7).randbytes(48 * 32 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (48, 32), pixels).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


BASE_JPEG = _base_jpeg()


def jpeg(n: int) -> bytes:
    """A valid JPEG with a hash of its own: a comment segment right after the SOI marker."""
    text = f"shot {n}".encode()
    return BASE_JPEG[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + BASE_JPEG[2:]


def metadata(camera_type: str = "camerus1", n: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid shot of ``camera_type``, made distinct by ``n``; top-level keys overridable."""
    raw: dict[str, Any] = json.loads(json.dumps(EXAMPLES[camera_type]))
    if camera_type == "camerus1":
        raw["violation_value"] = f"{n}km/h"
    else:
        raw["violation"]["value"] = f"{n}km/h"
    raw.update(changes)
    return raw


def write_shot(
    folder: Path,
    stem: str,
    photo: bytes,
    raw: dict[str, Any] | bytes,
    suffix: str = ".json",
) -> ShotFiles:
    folder.mkdir(parents=True, exist_ok=True)
    photo_path, metadata_path = folder / f"{stem}.jpg", folder / f"{stem}{suffix}"
    photo_path.write_bytes(photo)
    if isinstance(raw, bytes):
        metadata_path.write_bytes(raw)
    else:
        metadata_path.write_bytes(
            encode_binary(raw) if suffix == ".bin" else json.dumps(raw).encode()
        )
    return ShotFiles(str(photo_path), str(metadata_path))


def copy_shot(shot: ShotFiles, folder: Path) -> ShotFiles:
    folder.mkdir(parents=True, exist_ok=True)
    assert shot.photo is not None and shot.metadata is not None
    return ShotFiles(
        str(shutil.copy(shot.photo, folder / Path(shot.photo).name)),
        str(shutil.copy(shot.metadata, folder / Path(shot.metadata).name)),
    )


@dataclass
class World:
    db: Database
    url: str
    store: Path
    dump: Path
    store_id: uuid.UUID

    async def run(self) -> uuid.UUID:
        run_id = uuid.uuid4()
        async with self.db.uow() as uow:
            await uow.runs.add(IngestRun(id=run_id, paths=[str(self.dump)]))
            await uow.commit()
        return run_id

    async def settings(self, **options: Any) -> BatchSettings:
        return BatchSettings(
            db_url=self.url,
            store=FolderBackend(self.store),
            store_id=self.store_id,
            run_id=options.pop("run_id", None) or await self.run(),
            now=datetime.now(UTC),
            max_pixels=DEFAULT_MAX_PIXELS,
            **({"roots": (os.path.realpath(self.dump),)} | options),
        )

    async def process(
        self, shots: list[ShotFiles], units: list[Unit] | None = None, **options: Any
    ) -> BatchResult:
        processor = await BatchProcessor.open(await self.settings(**options))
        try:
            return await processor.process(shots, units or [])
        finally:
            await processor.close()

    async def stored(self) -> dict[str, bytes]:
        """Every photo the database records, read back from the store by its location."""
        return await stored_photos(self.db, self.store)

    async def count(self, model: Any) -> int:
        async with self.db.uow() as uow:
            return int(await uow.shots.session.scalar(select(func.count()).select_from(model)))

    async def rows(self, model: Any) -> list[Any]:
        """Plain rows (attribute access by column name), usable after the session is gone."""
        async with self.db.uow() as uow:
            return list((await uow.shots.session.execute(select(model.__table__))).all())


@asynccontextmanager
async def make_world(url: str, tmp_path: Path) -> AsyncIterator[World]:
    db = Database(parse_db_url(url))
    await migrate.upgrade(db.engine)
    await register_builtins(db)
    cameras = CameraService(db.uow)
    for camera_type, camera_id in CAMERA_IDS.items():
        await cameras.add(camera_type, 55.75, 37.62, camera_id=camera_id)
    store = await StoreService(db.uow, db.url).open(tmp_path / "photos", create=True)
    assert store.id is not None
    try:
        yield World(db, url, tmp_path / "photos", tmp_path / "dump", store.id)
    finally:
        await db.dispose()


@pytest.fixture
async def world(migrated_db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with make_world(migrated_db_url, tmp_path) as built:
        yield built


def exists(*paths: str | None) -> list[bool]:
    return [Path(p).exists() for p in paths if p is not None]


def files_of(shots: list[ShotFiles]) -> list[str | None]:
    return [p for s in shots for p in (s.photo, s.metadata)]


def size(*paths: str | None) -> int:
    return sum(Path(p).stat().st_size for p in paths if p is not None)


def read(path: str | None) -> bytes:
    assert path is not None
    return Path(path).read_bytes()


def write_named(name: bytes, data: bytes) -> None:
    """Write a file whose name is raw bytes, UTF-8 or not."""
    with open(name, "wb") as file:  # noqa: PTH123 - pathlib has no bytes paths
        file.write(data)


def names_in(folder: bytes) -> list[bytes]:
    return sorted(os.listdir(folder))  # noqa: PTH208 - pathlib has no bytes paths


def outcomes(result: BatchResult) -> dict[str, int]:
    return {key: value for key, value in result.outcomes.items() if value}


def good_shots(world: World, count: int, folder: str = "a") -> list[ShotFiles]:
    types = sorted(CAMERA_IDS)
    return [
        write_shot(
            world.dump / folder,
            f"s{n}",
            jpeg(n),
            metadata(types[n % 3], n),
            ".bin" if n % 2 else ".json",
        )
        for n in range(count)
    ]


# --- ingest and duplicates ----------------------------------------------------------------


async def test_a_batch_becomes_cases_photos_and_store_files(world: World) -> None:
    shots = good_shots(world, 6)
    settings = await world.settings()
    processor = await BatchProcessor.open(settings)
    try:
        result = await processor.process(shots)
    finally:
        await processor.close()
    assert outcomes(result) == {"ingested": 6}
    assert result.shots == 6
    assert result.bytes == size(*files_of(shots))
    assert result.by_type == {"camerus1": 2, "camerus2": 2, "camerus3": 2}
    cases = {case.source_photo: case for case in await world.rows(Case)}
    assert set(cases) == {s.photo for s in shots}
    versions = {row.id: row.camera_type for row in await world.rows(SchemaVersion)}
    for n, shot in enumerate(shots):
        case = cases[shot.photo]
        assert shot.photo is not None and shot.metadata is not None
        assert case.source_metadata == shot.metadata
        assert case.run_id == settings.run_id
        assert case.photo_sha256 == hashlib.sha256(jpeg(n)).hexdigest()
        metadata_bytes = read(shot.metadata)
        assert case.metadata_sha256 == hashlib.sha256(metadata_bytes).hexdigest()
        assert case.plate == "1ABC2377"
        assert case.violation_value == f"{n}km/h"
        assert case.occurred_at == datetime(2024, 1, 1, tzinfo=UTC)
        assert versions[case.schema_version_id] == sorted(CAMERA_IDS)[n % 3]
        assert case.raw == metadata(sorted(CAMERA_IDS)[n % 3], n)
    files = await world.stored()
    assert len(files) == 6
    assert sorted(pack_records(world.store)) == sorted(files), "each photo written once"
    assert all(hashlib.sha256(data).hexdigest() == name for name, data in files.items())
    photos = {photo.sha256: photo for photo in await world.rows(Photo)}
    assert set(photos) == set(files)
    assert {(p.format, p.width, p.height) for p in photos.values()} == {("JPEG", 48, 32)}
    assert all(p.size == len(files[p.sha256]) for p in photos.values())


async def test_duplicates_inside_one_batch(world: World) -> None:
    """Same bytes, or the same photo and canonical case with another measured value: one
    case; the photo's first shot in the batch is the one stored."""
    first, second = good_shots(world, 2)
    again = copy_shot(first, world.dump / "resent")
    other_value = write_shot(world.dump / "b", "other", jpeg(0), metadata("camerus1", 99))
    result = await world.process([first, second, again, other_value])
    assert outcomes(result) == {"ingested": 2, "duplicate": 2}
    assert await world.count(Case) == 2
    assert await world.count(Photo) == 2  # identical photos are kept once
    assert len(await world.stored()) == 2
    assert len(pack_records(world.store)) == 2
    assert {case.source_photo for case in await world.rows(Case)} == {first.photo, second.photo}


async def test_a_second_run_on_the_same_batch_finds_only_duplicates(world: World) -> None:
    shots = good_shots(world, 5)
    bad = write_shot(world.dump / "bad", "bad", jpeg(50), b"{oops")
    first = await world.process([*shots, bad])
    second = await world.process([*shots, bad])
    assert outcomes(first) == {"ingested": 5, "rejected": 1}
    assert outcomes(second) == {"duplicate": 5, "rejected": 1}
    assert await world.count(Case) == 5
    assert await world.count(Photo) == 5
    # Each run records its own rejections.
    assert len({r.run_id for r in await world.rows(Rejection)}) == 2


async def test_a_run_that_checked_before_the_other_committed_counts_duplicates(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs both find a shot new, the other commits first: the insert must not fail."""
    shots = good_shots(world, 4)
    assert outcomes(await world.process(shots)) == {"ingested": 4}

    async def nothing_known(self: ShotRepository, keys: Any) -> set[tuple[str, str]]:
        return set()

    monkeypatch.setattr(ShotRepository, "existing", nothing_known)
    late = await world.process(shots)
    assert outcomes(late) == {"duplicate": 4}
    assert late.by_type == {}
    assert await world.count(Case) == 4
    assert await world.count(Photo) == 4


async def test_concurrent_processors_ingest_each_shot_once(world: World) -> None:
    """Two processors at once on overlapping batches: every shot ingested exactly once."""

    shots = good_shots(world, 12)
    one = await BatchProcessor.open(await world.settings())
    two = await BatchProcessor.open(await world.settings())
    try:
        results = await asyncio.gather(
            one.process(shots[:9]), two.process(shots[3:][::-1]), return_exceptions=True
        )
    finally:
        await one.close()
        await two.close()
    for result in results:
        assert isinstance(result, BatchResult), repr(result)
    first, second = results
    assert isinstance(first, BatchResult) and isinstance(second, BatchResult)
    assert first.outcomes["ingested"] + second.outcomes["ingested"] == 12
    assert first.outcomes["duplicate"] + second.outcomes["duplicate"] == 6
    assert await world.count(Case) == 12
    cases = await world.rows(Case)
    assert len({(c.photo_sha256, c.metadata_sha256) for c in cases}) == 12


@pytest.mark.postgres
async def test_overlapping_batches_in_opposite_orders_do_not_deadlock(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch inserts its first photo, then waits until the other batch has inserted
    its own first photo or is blocked on a row lock, then inserts the rest. Rows taken in
    batch order deadlock every time (each holds the row the other wants next); rows taken
    in one global order never can."""
    add_photos = ShotRepository.add_photos
    arrived: list[bool] = []
    lock_waits = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")

    async def someone_waits_on_a_lock() -> bool:
        async with built.db.engine.connect() as watcher:
            return bool(await watcher.scalar(lock_waits))

    async def add_photos_in_two_steps(self: ShotRepository, rows: Any) -> None:
        await add_photos(self, rows[:1])
        arrived.append(True)
        for _ in range(2000):
            if len(arrived) == 2 or await someone_waits_on_a_lock():
                break
            await asyncio.sleep(0.005)
        else:
            pytest.fail("neither batch got past its first photo")
        await add_photos(self, rows[1:])

    async with make_world(pg_url, tmp_path) as built:
        shots = good_shots(built, 6)
        monkeypatch.setattr(ShotRepository, "add_photos", add_photos_in_two_steps)
        one = await BatchProcessor.open(await built.settings())
        two = await BatchProcessor.open(await built.settings())
        try:
            results = await asyncio.gather(
                one.process(shots), two.process(shots[::-1]), return_exceptions=True
            )
        finally:
            await one.close()
            await two.close()
        assert [type(r) for r in results] == [BatchResult, BatchResult], results
        assert sum(r.outcomes["ingested"] for r in results if isinstance(r, BatchResult)) == 6
        assert await built.count(Case) == 6


# --- one case per photo -------------------------------------------------------------------


def re_encodings(folder: Path, photo: bytes, raw: dict[str, Any]) -> list[ShotFiles]:
    """The shot ``raw`` re-sent three ways the issue found making three cases: re-indented
    JSON, an upper-case camera id, a non-minimal LEB128 integer in binary metadata."""
    upper = json.loads(json.dumps(raw))
    upper["camera_id"] = upper["camera_id"].upper()
    return [
        write_shot(folder, "indented", photo, json.dumps(raw, indent=4).encode()),
        write_shot(folder, "upper", photo, upper),
        write_shot(folder, "leb128", photo, encode_binary_padded(raw), ".bin"),
    ]


OTHER_PLATE = {"transport_numbers": "223", "datetime": "2024-01-02T00:00:00+00:00"}
"""Another canonical case: plate 2ABC2377, a day later."""


async def test_re_encoded_metadata_of_a_stored_photo_is_a_duplicate(world: World) -> None:
    original = write_shot(world.dump / "a", "s", jpeg(0), metadata("camerus1", 0))
    assert outcomes(await world.process([original])) == {"ingested": 1}
    variants = re_encodings(world.dump / "b", jpeg(0), metadata("camerus1", 0))
    assert len({hashlib.sha256(read(v.metadata)).digest() for v in [original, *variants]}) == 4
    for _ in range(2):  # re-sent variants are examined on every run, and stay duplicates
        assert outcomes(await world.process(variants)) == {"duplicate": 3}
    assert [case.source_photo for case in await world.rows(Case)] == [original.photo]
    assert await world.count(Rejection) == 0


async def test_the_same_photo_with_another_case_is_a_photo_conflict(world: World) -> None:
    original = write_shot(world.dump / "a", "s", jpeg(0), metadata("camerus1", 0))
    await world.process([original])
    (case,) = await world.rows(Case)
    other = write_shot(world.dump / "b", "other", jpeg(0), metadata("camerus1", 0, **OTHER_PLATE))
    resent = copy_shot(original, world.dump / "c")
    result = await world.process([other, resent], delete_source=True)
    assert outcomes(result) == {"duplicate": 1, "rejected": 1}
    assert dict(result.reasons) == {"photo-conflict": 1}
    (rejection,) = await world.rows(Rejection)
    assert (rejection.photo_path, rejection.reason) == (other.photo, "photo-conflict")
    assert rejection.message == (
        f"the photo is already the evidence of case {case.id}; this shot differs in plate "
        "(1ABC2377 there, 2ABC2377 here), occurred_at (2024-01-01T00:00:00+00:00 there, "
        "2024-01-02T00:00:00+00:00 here)"
    )
    assert await world.count(Case) == 1
    assert exists(other.photo, other.metadata) == [True, True]  # rejected: never deleted
    assert exists(resent.photo, resent.metadata) == [False, False]


async def test_one_batch_holding_variants_and_a_conflict_makes_one_case(world: World) -> None:
    """The photo's first accepted shot in the batch is its case; the others are judged
    against it inside the same transaction."""
    raw = metadata("camerus1", 0)
    first = write_shot(world.dump / "a", "s", jpeg(0), raw)
    other = write_shot(world.dump / "a", "other", jpeg(0), metadata("camerus1", 0, **OTHER_PLATE))
    shots = [
        first,
        other,
        *re_encodings(world.dump / "b", jpeg(0), raw),
        copy_shot(first, world.dump / "c"),
    ]
    result = await world.process(shots)
    assert outcomes(result) == {"ingested": 1, "duplicate": 4, "rejected": 1}
    assert result.by_type == {"camerus1": 1}
    (case,) = await world.rows(Case)
    assert case.source_photo == first.photo
    (rejection,) = await world.rows(Rejection)
    assert rejection.photo_path == other.photo
    assert f"evidence of case {case.id};" in rejection.message


async def test_dry_run_tells_duplicates_and_conflicts_apart_writing_nothing(world: World) -> None:
    await world.process([write_shot(world.dump / "a", "s", jpeg(0), metadata("camerus1", 0))])
    indented, _, _ = re_encodings(world.dump / "b", jpeg(0), metadata("camerus1", 0))
    conflict = write_shot(
        world.dump / "b", "other", jpeg(0), metadata("camerus1", 0, **OTHER_PLATE)
    )
    new = write_shot(world.dump / "b", "new", jpeg(5), metadata("camerus1", 5))
    new_other = write_shot(
        world.dump / "b", "new-other", jpeg(5), metadata("camerus1", 5, **OTHER_PLATE)
    )
    result = await world.process([indented, conflict, new, new_other], dry_run=True)
    assert outcomes(result) == {"ingested": 1, "duplicate": 1, "rejected": 2}
    assert dict(result.reasons) == {"photo-conflict": 2}
    assert (await world.count(Case), await world.count(Rejection)) == (1, 0)


async def test_a_photo_with_several_cases_from_before_0006_keeps_them_all_working(
    world: World,
) -> None:
    """Older databases may hold several cases of one photo, only the first keyed: a shot of
    any of them is a duplicate, any other case conflicts with the keyed one."""
    await world.process([write_shot(world.dump / "a", "s", jpeg(0), metadata("camerus1", 0))])
    (keyed,) = await world.rows(Case)
    legacy = {**keyed._asdict(), "id": uuid.uuid4(), "photo_key": None, "plate": "2ABC2377"}
    legacy["metadata_sha256"] = "0" * 64
    async with world.db.uow() as uow:
        await uow.shots.session.execute(Case.__table__.insert(), [legacy])  # type: ignore[attr-defined]
        await uow.commit()
    of_legacy = write_shot(
        world.dump / "b", "legacy", jpeg(0), metadata("camerus1", 0, transport_numbers="223")
    )
    third = write_shot(
        world.dump / "b", "third", jpeg(0), metadata("camerus1", 0, transport_numbers="323")
    )
    result = await world.process([of_legacy, third])
    assert outcomes(result) == {"duplicate": 1, "rejected": 1}
    (rejection,) = await world.rows(Rejection)
    assert rejection.photo_path == third.photo
    assert f"evidence of case {keyed.id};" in rejection.message
    assert await world.count(Case) == 2


async def test_racing_batches_with_re_encoded_shots_make_one_case_per_photo(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both batches pass the duplicate lookup and examine every shot before either
    inserts (they meet at the photo store), so only the database's unique photo key can
    keep each photo to one case; on PostgreSQL the loser's insert waits for the winner's
    commit, then finds its case."""
    append = PackWriter.append
    barrier = threading.Barrier(2, timeout=30)

    def append_together(self: PackWriter, items: Any) -> Any:
        barrier.wait()
        return append(self, items)

    monkeypatch.setattr(PackWriter, "append", append_together)
    types = sorted(CAMERA_IDS)
    plain = [
        write_shot(world.dump / "one", f"s{n}", jpeg(n), metadata(types[n % 3], n))
        for n in range(6)
    ]
    resent = [
        write_shot(
            world.dump / "two",
            f"s{n}",
            jpeg(n),
            json.dumps(metadata(types[n % 3], n), indent=2).encode(),
        )
        for n in range(5)
    ]
    resent.append(
        write_shot(world.dump / "two", "s5", jpeg(5), metadata("camerus1", 5, **OTHER_PLATE))
    )
    one = await BatchProcessor.open(await world.settings())
    two = await BatchProcessor.open(await world.settings())
    try:
        results = await asyncio.gather(
            one.process(plain), two.process(resent[::-1]), return_exceptions=True
        )
    finally:
        await one.close()
        await two.close()
    assert [type(r) for r in results] == [BatchResult, BatchResult], results
    total = BatchResult()
    for result in results:
        assert isinstance(result, BatchResult)
        total.add(result)
    assert outcomes(total) == {"ingested": 6, "duplicate": 5, "rejected": 1}
    assert dict(total.reasons) == {"photo-conflict": 1}
    cases = await world.rows(Case)
    assert sorted(c.photo_sha256 for c in cases) == sorted(
        hashlib.sha256(jpeg(n)).hexdigest() for n in range(6)
    )


# --- rejections ---------------------------------------------------------------------------


async def test_rejections_are_stored_with_run_paths_reason_and_message(world: World) -> None:
    folder = world.dump / "mixed"
    good = write_shot(folder, "good", jpeg(1), metadata("camerus2", 1))
    broken = write_shot(folder, "broken", jpeg(2), b"\x00\x09garbage", ".bin")
    month13 = metadata("camerus2", 3)
    month13["datetime"]["month"] = 13
    invalid = write_shot(folder, "invalid", jpeg(3), month13)
    stranger = write_shot(
        folder, "stranger", jpeg(4), metadata("camerus3", 4, camera={"id": str(uuid.UUID(int=1))})
    )
    future = write_shot(folder, "future", jpeg(5), metadata("camerus3", 5, datetime=4102444800))
    cut = write_shot(folder, "cut", jpeg(6)[:300], metadata("camerus1", 6))
    orphan = ShotFiles(str(folder / "lonely.jpg"), None, (Reason.ORPHAN, "no metadata file"))
    missing = ShotFiles(str(folder / "gone.jpg"), str(folder / "gone.json"))
    settings = await world.settings()
    processor = await BatchProcessor.open(settings)
    try:
        result = await processor.process(
            [good, broken, invalid, stranger, future, cut, orphan, missing]
        )
    finally:
        await processor.close()
    expected = {
        broken.photo: Reason.BAD_METADATA,
        invalid.photo: Reason.INVALID,
        stranger.photo: Reason.UNKNOWN_CAMERA,
        future.photo: Reason.FUTURE_TIMESTAMP,
        cut.photo: Reason.BAD_PHOTO,
        orphan.photo: Reason.ORPHAN,
    }
    # Files gone since the walk were taken by someone else: counted, not rejected.
    assert outcomes(result) == {"ingested": 1, "rejected": 6, "vanished": 1}
    assert dict(result.reasons) == {reason.value: 1 for reason in expected.values()}
    rows = {row.photo_path: row for row in await world.rows(Rejection)}
    assert {path: Reason(row.reason) for path, row in rows.items()} == expected
    for row in rows.values():
        assert row.run_id == settings.run_id
        assert row.message
    assert rows[orphan.photo].metadata_path is None
    assert rows[orphan.photo].message == "no metadata file"
    assert rows[broken.photo].metadata_path == broken.metadata
    assert rows[broken.photo].message.startswith("binary metadata:")
    assert "datetime.month: must be <= 12, got 13" in rows[invalid.photo].message
    assert str(uuid.UUID(int=1)) in rows[stranger.photo].message
    assert missing.photo not in rows
    assert await world.count(Case) == 1


async def walked(walker: Walker) -> list[ShotFiles]:
    listings = [listing async for group in walker for listing in group]
    return [s for listing in listings for s in pair(listing.part(), walker.young_after)[0]]


async def test_a_dangling_photo_symlink_found_by_the_walker_is_unreadable(world: World) -> None:
    folder = world.dump / "links"
    folder.mkdir(parents=True)
    (folder / "x.json").write_text(json.dumps(metadata("camerus1", 1)))
    (folder / "x.jpg").symlink_to(folder / "nowhere.jpg")
    shots = await walked(Walker([world.dump], WalkOptions(0), now=2e9))
    message = f"{folder / 'x.jpg'}: a symbolic link, not read (only regular files are)"
    assert [(s.photo, s.problem) for s in shots] == [
        (str(folder / "x.jpg"), (Reason.UNREADABLE, message))
    ]
    result = await world.process(shots)
    assert dict(result.reasons) == {"unreadable": 1}
    [row] = await world.rows(Rejection)
    assert (row.photo_path, row.metadata_path) == (str(folder / "x.jpg"), str(folder / "x.json"))
    assert row.message == message


async def test_a_file_that_is_a_folder_is_unreadable(world: World) -> None:
    (world.dump / "odd.json").mkdir(parents=True)
    (world.dump / "odd.jpg").write_bytes(jpeg(1))
    shot = ShotFiles(str(world.dump / "odd.jpg"), str(world.dump / "odd.json"))
    result = await world.process([shot])
    assert dict(result.reasons) == {"unreadable": 1}


async def test_nul_characters_in_metadata_never_break_a_batch(world: World) -> None:
    """PostgreSQL cannot store NUL in text or jsonb: such a shot is rejected, the rest kept."""
    folder = world.dump / "nul"
    good = write_shot(folder, "good", jpeg(1), metadata("camerus1", 1))
    in_value = write_shot(
        folder, "value", jpeg(2), metadata("camerus1", 2, violation_value="6\x002")
    )
    in_key = write_shot(folder, "key", jpeg(3), {"\x00": "x", "plate": "1ABC2377"})
    in_extra_key = write_shot(
        folder, "extra", jpeg(4), metadata("camerus1", 4, **{"a\x00": 1}), ".bin"
    )
    result = await world.process([good, in_value, in_key, in_extra_key])
    assert outcomes(result) == {"ingested": 1, "rejected": 3}
    assert dict(result.reasons) == {"bad-metadata": 3}
    rows = await world.rows(Rejection)
    assert all("\x00" not in row.message for row in rows)
    assert all("NUL" in row.message for row in rows)


async def test_file_names_that_are_not_utf8_are_stored_readably(world: World) -> None:
    """Linux names are bytes: a Latin-1 name must not fail the batch on either engine."""
    folder = world.dump / "latin1"
    folder.mkdir(parents=True)
    base = os.fsencode(folder)
    write_named(base + b"/caf\xe9.jpg", jpeg(1))
    write_named(base + b"/caf\xe9.json", json.dumps(metadata("camerus1", 1)).encode())
    write_named(base + b"/na\xefve.jpg", jpeg(2))
    write_named(base + b"/bad\xff.json", b"{")
    write_named(base + b"/bad\xff.jpg", jpeg(3))
    shots = await walked(Walker([folder], WalkOptions(0), now=2e9))
    assert len(shots) == 3
    result = await world.process(shots, delete_source=True)
    assert outcomes(result) == {"ingested": 1, "rejected": 2}
    assert dict(result.reasons) == {"orphan": 1, "bad-metadata": 1}
    [case] = await world.rows(Case)
    assert case.source_photo == f"{folder}/caf\\xe9.jpg"
    assert case.source_metadata == f"{folder}/caf\\xe9.json"
    rejections = {row.photo_path: row for row in await world.rows(Rejection)}
    assert set(rejections) == {f"{folder}/na\\xefve.jpg", f"{folder}/bad\\xff.jpg"}
    assert rejections[f"{folder}/bad\\xff.jpg"].metadata_path == f"{folder}/bad\\xff.json"
    # The source files themselves were found and deleted by their real names.
    assert names_in(base) == [b"bad\xff.jpg", b"bad\xff.json", b"na\xefve.jpg"]


async def test_an_unreadable_file_with_a_non_utf8_name_is_recorded(world: World) -> None:
    folder = world.dump / "latin1"
    folder.mkdir(parents=True)
    name = os.fsdecode(os.fsencode(folder) + b"/gon\xe9")
    Path(name + ".jpg").symlink_to(folder / "nowhere.jpg")  # listed, but its data is gone
    Path(name + ".json").write_text("{}")
    shot = ShotFiles(name + ".jpg", name + ".json")
    result = await world.process([shot])
    assert dict(result.reasons) == {"unreadable": 1}
    [row] = await world.rows(Rejection)
    assert (
        row.message == f"{folder}/gon\\xe9.jpg: a symbolic link, not read (only regular files are)"
    )


# --- dry run, delete-source, failures ----------------------------------------------------


async def test_dry_run_writes_nothing(world: World) -> None:
    shots = good_shots(world, 4)
    bad = write_shot(world.dump / "bad", "bad", jpeg(9), b"[]")
    again = copy_shot(shots[0], world.dump / "again")
    result = await world.process([*shots, bad, again], dry_run=True)
    assert outcomes(result) == {"ingested": 4, "duplicate": 1, "rejected": 1}
    assert result.by_type == {"camerus1": 2, "camerus2": 1, "camerus3": 1}
    for model in (Case, Photo, Rejection):
        assert await world.count(model) == 0
    assert pack_records(world.store) == []
    assert all(exists(*files_of(shots)))


async def test_dry_run_with_delete_source_deletes_nothing(world: World) -> None:
    shots = good_shots(world, 2)
    await world.process(shots, dry_run=True, delete_source=True)
    assert all(exists(*files_of(shots)))


async def test_delete_source_removes_ingested_and_duplicate_shots_only(world: World) -> None:
    shots = good_shots(world, 3)
    resent = copy_shot(shots[0], world.dump / "resent")
    bad = write_shot(world.dump / "bad", "bad", jpeg(9), b"{")
    orphan_path = world.dump / "bad" / "lonely.jpg"
    orphan_path.write_bytes(jpeg(10))
    orphan = ShotFiles(str(orphan_path), None, (Reason.ORPHAN, "no metadata file"))
    result = await world.process([*shots, resent, bad, orphan], delete_source=True)
    assert outcomes(result) == {"ingested": 3, "duplicate": 1, "rejected": 2}
    assert result.problems == []
    assert not any(exists(*files_of([*shots, resent])))
    assert all(exists(bad.photo, bad.metadata, orphan.photo))
    # What was deleted is durably in the store and the database.
    files = await world.stored()
    assert {hashlib.sha256(jpeg(n)).hexdigest() for n in range(3)} <= set(files)
    assert await world.count(Case) == 3


async def test_delete_source_failure_is_reported_not_fatal(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = good_shots(world, 2)
    stuck = shots[0].photo
    real_unlink = os.unlink

    def unlink(path: str, *args: Any, **kwargs: Any) -> None:
        if path == stuck:
            raise PermissionError(13, "Permission denied", path)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    result = await world.process(shots, delete_source=True)
    assert outcomes(result) == {"ingested": 2}
    assert result.problems == [f"{stuck}: not deleted: Permission denied"]
    assert exists(stuck, shots[0].metadata, shots[1].photo, shots[1].metadata) == [
        True,
        False,
        False,
        False,
    ]


# --- claims -------------------------------------------------------------------------------

NEVER = datetime(2000, 1, 1, tzinfo=UTC)


async def plan_and_claim(
    world: World, job_id: uuid.UUID, worker: str, parts: int = 1, limit: int = 10
) -> list[Unit]:
    now = datetime.now(UTC)
    async with world.db.uow() as uow:
        await uow.claims.plan(job_id, [FolderPlan("f" * 64, b"/dump/a", parts)], NEVER)
        units = await uow.claims.claim(
            job_id, ["f" * 64], worker, now, now + timedelta(seconds=300), limit
        )
        await uow.commit()
    return units


async def test_parts_are_agreed_by_the_first_lister_and_claimed_once(world: World) -> None:
    job_id = uuid.uuid4()
    now = datetime.now(UTC)
    async with world.db.uow() as uow:
        first = await uow.claims.plan(job_id, [FolderPlan("a" * 64, b"/d/a", 4)], NEVER)
        later = await uow.claims.plan(job_id, [FolderPlan("a" * 64, b"/d/a", 9)], NEVER)
        lease = now + timedelta(seconds=300)
        mine = await uow.claims.claim(job_id, ["a" * 64], "host:1", now, lease, 3)
        rest = await uow.claims.claim(job_id, ["a" * 64], "host:2", now, lease, 3)
        none = await uow.claims.claim(job_id, ["a" * 64], "host:3", now, lease, 3)
        await uow.commit()
    assert first == later == {"a" * 64: 4}
    assert mine == [("a" * 64, 0), ("a" * 64, 1), ("a" * 64, 2)]
    assert rest == [("a" * 64, 3)]
    assert none == []


async def test_a_batch_whose_part_was_taken_over_commits_nothing(world: World) -> None:
    """A worker thought dead (or past its lease) must not commit a part another worker
    now holds: both would store the part's rejections."""
    job_id = uuid.uuid4()
    shots = good_shots(world, 2)
    bad = write_shot(world.dump / "a", "bad", b"not a jpeg", metadata("camerus1", 9))
    units = await plan_and_claim(world, job_id, "host:1")
    async with world.db.uow() as uow:
        await uow.claims.release(job_id, ["host:1"], datetime.now(UTC))
        await uow.commit()
    assert await plan_and_claim(world, job_id, "host:2") == units

    late = await world.process([*shots, bad], units, job_id=job_id, worker="host:1")
    assert outcomes(late) == {"elsewhere": 3}
    assert (await world.count(Case), await world.count(Rejection)) == (0, 0)

    result = await world.process([*shots, bad], units, job_id=job_id, worker="host:2")
    assert outcomes(result) == {"ingested": 2, "rejected": 1}
    again = await world.process([*shots, bad], units, job_id=job_id, worker="host:2")
    assert outcomes(again) == {"elsewhere": 3}, "a part done is never committed twice"
    assert (await world.count(Case), await world.count(Rejection)) == (2, 1)


async def test_a_failing_batch_commits_nothing_and_deletes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = good_shots(world, 3)
    bad = write_shot(world.dump / "bad", "bad", jpeg(9), b"{")

    async def explode(self: ShotRepository, rows: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ShotRepository, "add_rejections", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await world.process([*shots, bad], delete_source=True)
    for model in (Case, Photo, Rejection):
        assert await world.count(model) == 0
    assert all(exists(*files_of(shots)))


async def test_a_run_row_is_required(world: World) -> None:
    """Cases and rejections reference their run: a batch for an unknown run is refused."""
    shots = good_shots(world, 1)
    with pytest.raises(IntegrityError):
        await world.process(shots, run_id=uuid.uuid4())
    assert await world.count(Case) == 0


async def test_delete_source_removes_shots_a_previous_run_ingested(world: World) -> None:
    """A run killed between commit and deletion leaves files that the next run removes."""
    shots = good_shots(world, 2)
    await world.process(shots)
    assert all(exists(*files_of(shots)))
    result = await world.process(shots, delete_source=True)
    assert outcomes(result) == {"duplicate": 2}
    assert not any(exists(*files_of(shots)))

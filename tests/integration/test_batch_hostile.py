"""A batch over hostile files, on both engines: what the walk cannot rule out.

A file can change between the walk and the read (a camera, or someone, swaps it for a
FIFO or a link), can be huge, and can be re-sent between the read and the delete. The
processor must read only regular files, never more than the limits, hold a bounded number
of bytes whatever the batch, and delete only the files it read.
"""

from __future__ import annotations

import json
import os
import random
import struct
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.db.models import Case, Rejection
from lizardctl.core.ingest.batch import MAX_MESSAGE, BatchProcessor
from lizardctl.core.ingest.walk import ShotFiles
from lizardctl.core.store import PackWriter
from tests.integration.test_batch import (
    BASE_JPEG,
    World,
    good_shots,
    jpeg,
    make_world,
    metadata,
    outcomes,
    write_shot,
)

NOT_READ = "not read (only regular files are)"


@pytest.fixture
async def world(migrated_db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with make_world(migrated_db_url, tmp_path) as built:
        yield built


def big_jpeg(n: int, size: int) -> bytes:
    """A valid JPEG of about ``size`` bytes: comment segments of random bytes after SOI."""
    rng = random.Random(n)
    segments = [
        b"\xff\xfe" + struct.pack(">H", 65535) + rng.randbytes(65533) for _ in range(size // 65537)
    ]
    return BASE_JPEG[:2] + b"".join(segments) + BASE_JPEG[2:]


async def messages(world: World) -> dict[str, str]:
    return {Path(r.photo_path).name: r.message for r in await world.rows(Rejection)}


async def test_files_swapped_for_special_ones_after_the_walk_are_refused(
    world: World, tmp_path: Path
) -> None:
    """Handed straight to the processor, as if changed since the walk: nothing blocks."""
    good = good_shots(world, 2)
    folder = world.dump / "swapped"
    folder.mkdir()
    (tmp_path / "secret.jpg").write_bytes(jpeg(9))
    makers: dict[str, Callable[[Path], object]] = {
        "fifo": os.mkfifo,
        "zero": lambda p: p.symlink_to("/dev/zero"),
        "outside": lambda p: p.symlink_to(tmp_path / "secret.jpg"),
        "dir": Path.mkdir,
    }
    shots = []
    for stem, make in makers.items():
        shot = write_shot(folder, stem, jpeg(1), metadata("camerus1", 1))
        Path(str(shot.photo)).unlink()
        make(Path(str(shot.photo)))
        shots.append(shot)
    meta = write_shot(folder, "mfifo", jpeg(1), metadata("camerus1", 1))
    Path(str(meta.metadata)).unlink()
    os.mkfifo(str(meta.metadata))

    result = await world.process([*good, *shots, meta])

    assert outcomes(result) == {"ingested": 2, "rejected": 5}
    assert dict(result.reasons) == {"unreadable": 5}
    assert await messages(world) == {
        "fifo.jpg": f"{folder / 'fifo.jpg'}: a FIFO, {NOT_READ}",
        "zero.jpg": f"{folder / 'zero.jpg'}: a symbolic link, {NOT_READ}",
        "outside.jpg": f"{folder / 'outside.jpg'}: a symbolic link, {NOT_READ}",
        "dir.jpg": f"{folder / 'dir.jpg'}: a folder, {NOT_READ}",
        "mfifo.jpg": f"{folder / 'mfifo.json'}: a FIFO, {NOT_READ}",
    }


async def test_size_limits_are_exact_and_checked_before_reading(world: World) -> None:
    photo = jpeg(1)
    at_limit = write_shot(world.dump / "a", "at", photo, metadata("camerus1", 1))
    over = write_shot(world.dump / "b", "over", jpeg(22), metadata("camerus1", 2))
    sparse = write_shot(world.dump / "c", "sparse", jpeg(3), metadata("camerus1", 3))
    os.truncate(str(sparse.photo), 1 << 40)  # a terabyte of nothing: read, it never ends
    limit_meta = Path(str(at_limit.metadata)).stat().st_size
    padded = json.dumps(metadata("camerus1", 4)).encode().ljust(limit_meta + 1)
    big_meta = write_shot(world.dump / "d", "meta", jpeg(4), padded)
    assert len(jpeg(22)) == len(photo) + 1

    result = await world.process(
        [at_limit, over, sparse, big_meta],
        max_photo_bytes=len(photo),
        max_metadata_bytes=limit_meta,
    )

    assert outcomes(result) == {"ingested": 1, "rejected": 3}
    assert dict(result.reasons) == {"too-large": 3}
    assert await messages(world) == {
        "over.jpg": f"{over.photo}: {len(photo) + 1:,} bytes, over the limit of "
        f"{len(photo):,} bytes; not read",
        "sparse.jpg": f"{sparse.photo}: 1,099,511,627,776 bytes, over the limit of "
        f"{len(photo):,} bytes; not read",
        "meta.jpg": f"{big_meta.metadata}: {limit_meta + 1:,} bytes, over the limit of "
        f"{limit_meta:,} bytes; not read",
    }
    assert result.bytes == len(photo) + limit_meta


async def test_long_messages_are_cut_with_a_note(world: World) -> None:
    shot = write_shot(world.dump, "keys", jpeg(1), {f"k{i}": i for i in range(5000)})
    result = await world.process([shot])
    assert dict(result.reasons) == {"unknown-type": 1}
    [message] = (await messages(world)).values()
    assert len(message) < MAX_MESSAGE + 60
    assert message.endswith(" more characters cut]")


async def test_rounds_store_photos_as_they_go_and_count_as_one_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = good_shots(world, 6)
    shots += [  # the same bytes as s0 and s3, in another folder: duplicates
        write_shot(world.dump / "again", f"s{n}", jpeg(n), metadata("camerus1", n), suffix)
        for n, suffix in ((0, ".json"), (3, ".bin"))
    ]
    calls: list[int] = []
    append = PackWriter.append

    def counting(self: PackWriter, items: Any) -> Any:
        calls.append(len(items))
        return append(self, items)

    monkeypatch.setattr(PackWriter, "append", counting)
    budget = 2 * len(jpeg(0))  # about two shots a round
    result = await world.process(shots, read_budget=budget)
    assert outcomes(result) == {"ingested": 6, "duplicate": 2}
    assert await world.count(Case) == 6
    assert len(calls) >= 3 and max(calls) <= 2


async def test_memory_held_is_bounded_by_the_read_budget(world: World) -> None:
    """Eight 2 MB photos: with a 4 MB budget what is held at once stays near one round;
    with a budget above the batch, all of them are (the bytes tracemalloc sees)."""
    size = 2_000_000
    peaks = {}
    for first, budget in ((0, 4_000_000), (8, 64 << 20)):
        shots = [
            write_shot(world.dump / "big", f"b{n}", big_jpeg(n, size), metadata("camerus1", n))
            for n in range(first, first + 8)
        ]
        processor = await BatchProcessor.open(await world.settings(read_budget=budget))
        try:
            tracemalloc.start()
            result = await processor.process(shots)
            peaks[budget] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await processor.close()
        assert outcomes(result) == {"ingested": 8}
    assert peaks[64 << 20] > 8 * len(big_jpeg(0, size))  # each a little under ``size``
    # A round stops at the first shot that reaches the budget; then it is stored and let go.
    assert peaks[4_000_000] < 4_000_000 + 2 * size


async def test_delete_source_deletes_only_inside_the_roots(world: World) -> None:
    shots = good_shots(world, 2)
    result = await world.process(
        shots, delete_source=True, roots=(os.path.realpath(world.dump / "elsewhere"),)
    )
    assert outcomes(result) == {"ingested": 2}
    assert sorted(result.problems) == sorted(
        f"{s.photo}: not deleted: outside the given folders" for s in shots
    )
    assert all(Path(str(p)).exists() for s in shots for p in (s.photo, s.metadata))


async def test_delete_source_keeps_a_shot_whose_file_changed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    shots = good_shots(world, 3)
    changed: ShotFiles = shots[1]
    append = PackWriter.append

    def append_and_touch(self: PackWriter, items: Any) -> Any:
        os.utime(str(changed.metadata), ns=(1, 1))
        return append(self, items)

    monkeypatch.setattr(PackWriter, "append", append_and_touch)
    result = await world.process(shots, delete_source=True)
    assert outcomes(result) == {"ingested": 3, "kept_changed": 1}
    assert [Path(str(p)).exists() for s in shots for p in (s.photo, s.metadata)] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]

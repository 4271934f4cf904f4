"""Pack files and the store identity, on real files: what is appended and synced reads back,
a scan rebuilds the index and stops where the pack stops being whole, and a pack is
written by one live writer only, never again once it is sealed or its writer has died."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lizardctl.core.store import PackError
from lizardctl.core.store.identity import (
    IDENTITY_FILE,
    StoreIdentityError,
    create_identity,
    read_identity,
)
from lizardctl.core.store.packs import (
    PACK_HEADER,
    PACKS_DIR,
    RECORD,
    DamagedRecord,
    PackWriter,
    is_being_written,
    is_pack_name,
    list_packs,
    pack_path,
    pack_store_id,
    read_record,
    scan_pack,
)
from tests.mounts import remount, tmpfs

STORE_ID = uuid.UUID("5f0c2b4e-8a51-4a8e-9d0b-3f6f2c1d7e90")


def photo(n: int, size: int = 300) -> tuple[str, bytes]:
    data = (f"photo {n} ".encode() * (size // 8 + 1))[:size]
    return hashlib.sha256(data).hexdigest(), data


def write(root: Path, photos: list[tuple[str, bytes]], **kwargs: int) -> tuple[str, list[int]]:
    """Append, sync and close ``photos`` in one pack; its name and the records' offsets."""
    writer = PackWriter(root, STORE_ID, **kwargs)
    places = writer.append(photos)
    writer.sync()
    writer.close()
    (name,) = {pack for pack, _ in places}
    return name, [offset for _, offset in places]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(min_size=0, max_size=5000), min_size=1, max_size=12))
def test_what_is_appended_and_synced_reads_back_and_a_scan_finds_every_record(
    tmp_path: Path, contents: list[bytes]
) -> None:
    root = tmp_path / uuid.uuid4().hex
    photos = [(hashlib.sha256(c).hexdigest(), c) for c in contents]
    writer = PackWriter(root, STORE_ID)
    places = writer.append(photos[: len(photos) // 2]) + writer.append(photos[len(photos) // 2 :])
    writer.sync()
    for (sha256, data), (pack, offset) in zip(photos, places, strict=True):
        assert read_record(root, pack, offset, sha256, len(data)) == data
    writer.close()

    (name,) = list_packs(root)
    scan = scan_pack(pack_path(root, name))
    found = [(r.offset, r.sha256, r.length) for r in scan.records]
    assert found == [(o, s, len(d)) for (s, d), (_, o) in zip(photos, places, strict=True)]
    assert scan.sealed and scan.end == scan.size
    assert pack_store_id(pack_path(root, name)) == STORE_ID


def test_a_scan_stops_at_a_record_cut_short_and_keeps_those_before(tmp_path: Path) -> None:
    photos = [photo(n) for n in range(3)]
    name, offsets = write(tmp_path, photos)
    path = pack_path(tmp_path, name)
    with path.open("r+b") as file:
        file.truncate(offsets[2] + RECORD.size + 10)  # the last photo torn mid-write

    scan = scan_pack(path)
    assert [r.offset for r in scan.records] == offsets[:2]
    assert not scan.sealed
    assert scan.end == offsets[2] < scan.size
    with pytest.raises(DamagedRecord):
        read_record(tmp_path, name, offsets[2], photos[2][0], len(photos[2][1]))


@pytest.mark.parametrize("where", ["magic", "crc", "digest", "length"])
def test_a_scan_stops_at_a_damaged_header_and_a_read_refuses_it(tmp_path: Path, where: str) -> None:
    photos = [photo(n) for n in range(3)]
    name, offsets = write(tmp_path, photos)
    path = pack_path(tmp_path, name)
    byte = offsets[1] + {"magic": 0, "crc": 5, "digest": 20, "length": 40}[where]
    with path.open("r+b") as file:
        file.seek(byte)
        flipped = file.read(1)[0] ^ 0x40
        file.seek(byte)
        file.write(bytes([flipped]))

    scan = scan_pack(path)
    assert [r.offset for r in scan.records] == offsets[:1]
    assert (scan.sealed, scan.end) == (False, offsets[1])
    sha256, data = photos[1]
    with pytest.raises(DamagedRecord, match=f"offset {offsets[1]} is not photo {sha256}"):
        read_record(tmp_path, name, offsets[1], sha256, len(data))
    assert read_record(tmp_path, name, offsets[2], photos[2][0], len(photos[2][1])) == photos[2][1]


def test_a_file_that_is_not_a_pack_scans_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "x.pack"
    path.write_bytes(b"JPEG" * 100)
    assert scan_pack(path).records == ()
    assert scan_pack(path).end == 0
    assert pack_store_id(path) is None
    path.write_bytes(b"")
    assert pack_store_id(path) is None


def test_read_record_refuses_a_record_that_is_not_the_photo_asked_for(tmp_path: Path) -> None:
    photos = [photo(n) for n in range(2)]
    name, offsets = write(tmp_path, photos)
    (sha0, data0), (sha1, _) = photos
    assert read_record(tmp_path, name, offsets[0], sha0, len(data0)) == data0
    for args in (
        (offsets[0], sha1, len(data0)),  # another photo's digest
        (offsets[0], sha0, len(data0) - 1),  # another length
        (offsets[0] + 1, sha0, len(data0)),  # not where a record starts
        (offsets[1] + 10_000, sha0, len(data0)),  # past the end
    ):
        with pytest.raises(DamagedRecord):
            read_record(tmp_path, name, *args)
    for bad in ("../../etc/passwd", name.replace(".pack", ".jpg"), f"{PACKS_DIR}/{name}"):
        with pytest.raises(DamagedRecord, match="not a pack name"):
            read_record(tmp_path, bad, offsets[0], sha0, len(data0))


def test_the_size_limit_seals_the_pack_and_the_next_append_rolls_to_a_new_one(
    tmp_path: Path,
) -> None:
    writer = PackWriter(tmp_path, STORE_ID, limit=2_000)
    first = writer.append([photo(n, 1_000) for n in range(2)])
    writer.sync()
    assert writer.name == ""  # over the limit: sealed and let go
    second = writer.append([photo(9, 1_000)])
    writer.sync()
    writer.close()

    packs = list_packs(tmp_path)
    assert len(packs) == 2
    assert {p for p, _ in first} != {p for p, _ in second}
    for name, records in ((first[0][0], 2), (second[0][0], 1)):
        scan = scan_pack(pack_path(tmp_path, name))
        assert scan.sealed and len(scan.records) == records and scan.end == scan.size


def test_a_sealed_pack_is_read_only_and_never_written_again(tmp_path: Path) -> None:
    writer = PackWriter(tmp_path, STORE_ID)
    ((first, _),) = writer.append([photo(1)])
    writer.sync()
    writer.close()
    writer.close()  # closing twice is harmless
    sealed = pack_path(tmp_path, first)
    before = sealed.read_bytes()
    assert sealed.stat().st_mode & 0o222 == 0

    ((second, _),) = writer.append([photo(2)])
    writer.sync()
    writer.close()
    assert second != first
    assert sealed.read_bytes() == before


def test_sync_without_appends_makes_no_pack_and_an_empty_append_does_nothing(
    tmp_path: Path,
) -> None:
    writer = PackWriter(tmp_path, STORE_ID)
    assert writer.append([]) == []
    writer.sync()
    writer.close()
    assert list_packs(tmp_path) == []


def test_pack_names_are_unique_and_recognised(tmp_path: Path) -> None:
    names = set()
    for n in range(50):
        writer = PackWriter(tmp_path, STORE_ID, host="lizard host/1")
        ((name, _),) = writer.append([photo(n)])
        writer.close()
        assert is_pack_name(name) and "-lizard_host_1-" in name
        names.add(name)
    assert len(names) == 50
    assert sorted(names) == list_packs(tmp_path)
    (tmp_path / PACKS_DIR / "notes.txt").write_text("not a pack")
    assert len(list_packs(tmp_path)) == 50
    good = min(names)
    for bad in (
        "",
        good[:-5],
        good + ".tmp",
        "../" + good,
        good.replace("-lizard_host_1-", "-a/b-"),
        good.replace("T", "X", 1),
        "x" * 200 + ".pack",
    ):
        assert not is_pack_name(bad), bad


def test_is_being_written_while_a_writer_holds_the_pack_and_not_after_close(
    tmp_path: Path,
) -> None:
    writer = PackWriter(tmp_path, STORE_ID)
    ((name, _),) = writer.append([photo(1)])
    assert is_being_written(tmp_path, name)
    writer.sync()
    assert is_being_written(tmp_path, name)
    writer.close()
    assert not is_being_written(tmp_path, name)
    assert not is_being_written(tmp_path, name.replace("-", "-0", 1))  # no such pack


WRITER = """
import sys, uuid
from pathlib import Path
from lizardctl.core.store.packs import PackWriter
writer = PackWriter(Path(sys.argv[1]), uuid.UUID(sys.argv[2]))
((name, _),) = writer.append([("00" * 32, b"x")])
writer.sync()
print(name, flush=True)
sys.stdin.read()
"""


def test_a_pack_whose_writer_was_killed_is_not_being_written(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(STORE_ID)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        name = process.stdout.readline().strip()
        assert is_being_written(tmp_path, name)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not is_being_written(tmp_path, name)
    scan = scan_pack(pack_path(tmp_path, name))
    assert (len(scan.records), scan.sealed) == (1, False)  # whole, but never sealed


def test_a_full_disk_gives_the_pack_up_cut_back_to_what_was_synced(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as root:
        writer = PackWriter(root, STORE_ID)
        kept = [photo(n, 8_000) for n in range(2)]
        places = writer.append(kept)
        writer.sync()
        name = writer.name
        with pytest.raises(PackError, match=r"cannot write.*No space left on device"):
            writer.append([photo(n, 8_000) for n in range(2, 12)])
        assert writer.name == ""  # given up, never sealed
        assert not is_being_written(root, name)
        scan = scan_pack(pack_path(root, name))
        assert [r.offset for r in scan.records] == [o for _, o in places]
        assert not scan.sealed and scan.end == scan.size
        for (sha256, data), (_, offset) in zip(kept, places, strict=True):
            assert read_record(root, name, offset, sha256, len(data)) == data

        remount(root, "ro")
        with pytest.raises(PackError, match=r"cannot write.*Read-only file system"):
            writer.append([photo(20)])
        remount(root, "rw,size=1m")
        ((again, _),) = writer.append([photo(20)])
        writer.sync()
        writer.close()
        assert again != name and scan_pack(pack_path(root, again)).sealed


def test_a_batch_whose_unsynced_photos_another_batch_failure_cut_cannot_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches share a writer (``--workers 0``): the second one's failed write gives the
    pack up and cuts the first one's unsynced photos, so the first one's sync must fail
    rather than let it commit rows that point past the end of the pack."""
    writer = PackWriter(tmp_path, STORE_ID)
    synced = writer.append([photo(0)])
    writer.sync(synced)
    first = writer.append([photo(1), photo(2)])
    failing = photo(3)
    real_writev = os.writev

    def writev(fd: int, buffers: list[Any]) -> int:
        if any(bytes(buffer) == failing[1] for buffer in buffers):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    with pytest.raises(PackError, match="cannot write"):
        writer.append([failing])
    with pytest.raises(PackError, match="2 photos appended were cut"):
        writer.sync(first)
    writer.sync(synced)  # what was durable before the failure stays so
    ((name, offset),) = synced
    assert read_record(tmp_path, name, offset, photo(0)[0], 300) == photo(0)[1]
    monkeypatch.setattr(os, "writev", real_writev)
    again = writer.append([photo(1)])
    writer.sync(again)
    assert again[0][0] != name


def test_batches_appending_from_several_threads_get_places_of_their_own(tmp_path: Path) -> None:
    """``--workers 0`` runs batches side by side, each appending from the thread pool."""
    writer = PackWriter(tmp_path, STORE_ID, limit=200_000)
    batches = [[photo(t * 1000 + n, 100 + n) for n in range(20)] for t in range(8)]
    barrier = threading.Barrier(len(batches))

    def run(batch: list[tuple[str, bytes]]) -> list[tuple[str, int]]:
        barrier.wait()
        places = [place for item in batch for place in writer.append([item])]
        writer.sync(places)
        return places

    with ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(run, batches))
    writer.close()
    for batch, places in zip(batches, results, strict=True):
        for (sha256, data), (pack, offset) in zip(batch, places, strict=True):
            assert read_record(tmp_path, pack, offset, sha256, len(data)) == data
    records = [
        r for name in list_packs(tmp_path) for r in scan_pack(pack_path(tmp_path, name)).records
    ]
    assert len(records) == sum(map(len, batches))


def test_a_new_pack_starts_with_the_store_id(tmp_path: Path) -> None:
    writer = PackWriter(tmp_path, STORE_ID)
    ((name, offset),) = writer.append([photo(1)])
    writer.close()
    assert offset == PACK_HEADER.size
    assert pack_store_id(pack_path(tmp_path, name)) == STORE_ID


def test_identity_is_created_once_and_read_back(tmp_path: Path) -> None:
    root = tmp_path / "store"
    assert read_identity(root) is None
    made = create_identity(root)
    assert read_identity(root) == made
    assert create_identity(root) == made  # an existing identity stands
    assert sorted(p.name for p in root.iterdir()) == [IDENTITY_FILE]
    assert json.loads((root / IDENTITY_FILE).read_text())["id"] == str(made)


IDENTITY = """
import sys
from pathlib import Path
from lizardctl.core.store.identity import create_identity
sys.stdin.read()  # all start together
print(create_identity(Path(sys.argv[1])))
"""


def test_two_processes_using_a_new_store_at_once_agree_on_one_id(tmp_path: Path) -> None:
    for attempt in range(3):
        root = tmp_path / f"store-{attempt}"
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", IDENTITY, str(root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
        ids = set()
        for process in processes:
            assert process.stdout is not None
            ids.add(process.stdout.read().strip())
            assert process.wait(timeout=60) == 0
        assert ids == {str(read_identity(root))}
        assert sorted(p.name for p in root.iterdir()) == [IDENTITY_FILE]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage",
        b"[1, 2]",
        b'{"format": "something else", "id": "5f0c2b4e-8a51-4a8e-9d0b-3f6f2c1d7e90"}',
        b'{"format": "lizardctl photo store", "id": "not a uuid"}',
        b'{"format": "lizardctl photo store"}',
        b"{" * 10_000,
    ],
)
def test_a_garbage_identity_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / IDENTITY_FILE).write_bytes(content)
    message = f"{tmp_path / IDENTITY_FILE}: not a lizardctl store identity file"
    with pytest.raises(StoreIdentityError, match=message) as caught:
        read_identity(tmp_path)
    assert caught.value.exit_code == 3
    with pytest.raises(StoreIdentityError):
        create_identity(tmp_path)  # never replaced
    assert (tmp_path / IDENTITY_FILE).read_bytes() == content


def test_an_identity_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / IDENTITY_FILE).mkdir()
    with pytest.raises(StoreIdentityError, match="cannot read"):
        read_identity(tmp_path)
    assert (tmp_path / IDENTITY_FILE).is_dir()


def test_a_seal_that_does_not_fit_loses_nothing_and_fails_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as root:
        writer = PackWriter(root, STORE_ID, limit=8_000)
        (root / "filler").write_bytes(bytes(56 << 10))  # 8 KiB left: two pages
        sha256, data = photo(1, 8_192 - PACK_HEADER.size - RECORD.size)
        ((name, offset),) = writer.append([(sha256, data)])
        writer.sync()  # over the limit: the seal would need a third page
        assert writer.name == ""
        scan = scan_pack(pack_path(root, name))
        assert (len(scan.records), scan.sealed, scan.end) == (1, False, scan.size)
        assert read_record(root, name, offset, sha256, len(data)) == data
        with pytest.raises(PackError, match="No space left on device"):
            writer.append([photo(2)])
        writer.close()  # nothing open: nothing to seal


def test_a_failed_fdatasync_gives_the_pack_up_and_keeps_what_was_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = PackWriter(tmp_path, STORE_ID)
    kept = photo(1)
    ((name, offset),) = writer.append([kept])
    writer.sync()
    writer.append([photo(2)])

    def fail(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdatasync", fail)
        with pytest.raises(PackError, match="cannot sync: Input/output error"):
            writer.sync()
    assert writer.name == ""  # never trusted, nor written, again
    scan = scan_pack(pack_path(tmp_path, name))
    assert [r.offset for r in scan.records] == [offset] and not scan.sealed
    assert scan.end == scan.size  # the unsynced record was cut off
    ((again, _),) = writer.append([photo(3)])
    writer.close()
    assert again != name

"""FileStore, the first layout (a file per photo): layout, idempotence, batch durability,
concurrency, and failures as StoreError.

Tests that touch the disk run under both durability strategies: one syncfs per stage of a
batch, and the per-file fsync fallback. Tests run as root, which ignores permission bits, so
an unwritable store is simulated by a root whose parent is a regular file, or by making the
OS calls fail with the real errno.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import multiprocessing
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lizardctl.core.errors import EnvironmentFailure, UsageError
from lizardctl.core.store import FileStore, StoreError
from lizardctl.core.store import files as store_module


def photo(n: int) -> tuple[str, bytes]:
    data = f"photo {n}".encode() * 100
    return hashlib.sha256(data).hexdigest(), data


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def temporaries_under(root: Path) -> list[Path]:
    return [path for path in files_under(root) if path.name.startswith(".tmp-")]


@pytest.fixture(params=["syncfs", "fsync"])
def strategy(request: pytest.FixtureRequest) -> str:
    if request.param == "syncfs" and store_module._syncfs is None:
        pytest.skip("needs syncfs(2) from Linux 5.8")
    return str(request.param)


def open_store(tmp_path: Path, strategy: str) -> FileStore:
    """A store using ``strategy``; open it after patching the flush it calls."""
    return FileStore(tmp_path / "photos", syncfs=strategy == "syncfs")


def flush_call(strategy: str) -> tuple[object, str]:
    """Where the call that makes a batch durable lives, for monkeypatching."""
    return (store_module, "_syncfs") if strategy == "syncfs" else (os, "fsync")


@pytest.fixture
def store(tmp_path: Path, strategy: str) -> FileStore:
    return open_store(tmp_path, strategy)


def test_store_error_is_an_environment_failure() -> None:
    assert issubclass(StoreError, EnvironmentFailure)
    assert StoreError.exit_code == 3


# --- layout and lookups ----------------------------------------------------------------------


def test_path_is_derived_from_the_hash_only(store: FileStore) -> None:
    sha, _ = photo(1)
    assert store.path_for(sha) == store.root / sha[:2] / sha[2:4] / sha


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "A" * 64,  # upper case would give the same photo a second name
        "g" * 64,
        "a" * 63,
        "a" * 65,
        "../" + "a" * 61,
        "a" * 64 + "\n",
    ],
)
def test_invalid_digests_are_refused(store: FileStore, bad: str) -> None:
    for call in (
        store.path_for,
        store.contains,
        store.remove,
        lambda sha: store.put(sha, b"x"),
        lambda sha: store.put_many([(photo(1)[0], b"x"), (sha, b"x")]),
    ):
        with pytest.raises(UsageError, match="not a lower-case sha256 hex digest"):
            call(bad)
    assert not store.root.exists()


def test_put_then_contains_and_read_back(store: FileStore) -> None:
    sha, data = photo(1)
    assert not store.contains(sha)
    assert store.put(sha, data) is True
    assert store.contains(sha)
    assert store.contains(sha, size=len(data))
    assert not store.contains(sha, size=len(data) + 1)
    assert store.path_for(sha).read_bytes() == data
    assert files_under(store.root) == [store.path_for(sha)]


def test_put_is_idempotent(store: FileStore) -> None:
    sha, data = photo(1)
    assert store.put(sha, data) is True
    mtime = store.path_for(sha).stat().st_mtime_ns
    assert store.put(sha, data) is False
    assert store.path_for(sha).stat().st_mtime_ns == mtime
    assert files_under(store.root) == [store.path_for(sha)]


def test_empty_photo_is_stored(store: FileStore) -> None:
    sha = hashlib.sha256(b"").hexdigest()
    assert store.put(sha, b"") is True
    assert store.contains(sha, size=0)


def test_put_many_counts_new_photos_once(store: FileStore) -> None:
    photos = [photo(n) for n in range(5)]
    store.put(*photos[0])
    batch = [*photos, photos[3], photos[1]]  # one already stored, two repeated in the batch
    assert store.put_many(batch) == 4
    assert store.put_many(batch) == 0
    assert store.put_many([]) == 0
    assert sorted(store.iter_hashes()) == sorted(sha for sha, _ in photos)
    for sha, data in photos:
        assert store.path_for(sha).read_bytes() == data
    assert temporaries_under(store.root) == []


# --- durability --------------------------------------------------------------------------------


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Paths passed to os.fsync during the test, in call order (resolved through /proc)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name file descriptors")
    paths: list[Path] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        paths.append(Path(f"/proc/self/fd/{fd}").readlink())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return paths


def same_directory_photos(count: int) -> list[tuple[str, bytes]]:
    """Digests sharing a directory; the store trusts callers, so content need not match."""
    return [(f"abcd{n:060x}", f"photo {n}".encode()) for n in range(count)]


@pytest.fixture
def syncfsed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Directories passed to syncfs during the test; stores must be opened after this."""
    real_syncfs = store_module._syncfs
    if real_syncfs is None:
        pytest.skip("needs syncfs(2) from Linux 5.8")
    paths: list[Path] = []

    def recording_syncfs(fd: int) -> None:
        paths.append(Path(f"/proc/self/fd/{fd}").readlink())
        real_syncfs(fd)

    monkeypatch.setattr(store_module, "_syncfs", recording_syncfs)
    return paths


def test_put_many_syncs_the_file_system_twice_per_batch(
    tmp_path: Path, fsynced: list[Path], syncfsed: list[Path]
) -> None:
    store = open_store(tmp_path, "syncfs")
    assert store.put_many(same_directory_photos(5)) == 5
    assert syncfsed == [store.root.resolve()] * 2, "once before the renames, once after"
    assert fsynced == []

    syncfsed.clear()
    assert store.put_many(same_directory_photos(5)) == 0
    assert syncfsed == [store.root.resolve()], (
        "a photo another process just renamed in is made durable"
    )


def test_put_many_fsyncs_each_file_and_each_directory_once(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    store = open_store(tmp_path, "fsync")
    items = same_directory_photos(5)
    leaf = store.path_for(items[0][0]).parent
    assert store.put_many(items) == 5

    files = [path for path in fsynced if path.name.startswith(".tmp-")]
    directories = [path for path in fsynced if not path.name.startswith(".tmp-")]
    assert len(files) == 5
    assert fsynced[:5] == files, "every photo is durable before any directory is synced"
    # The leaf holds the renames; each created directory's parent holds its new entry.
    expected = [leaf, leaf.parent, store.root, store.root.parent]
    assert sorted(directories) == sorted(path.resolve() for path in expected)

    fsynced.clear()
    assert store.put_many(items) == 0
    assert fsynced == [leaf.resolve()], (
        "a photo another process just renamed in is made durable too"
    )


def test_fsyncs_of_a_stage_run_in_parallel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Four files, then four directories (leaf, its parent, root, root's parent): each stage's
    # fsyncs can only pass the barrier together, so serial fsyncs would break it.
    barrier = threading.Barrier(4, timeout=10)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        barrier.wait()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert open_store(tmp_path, "fsync").put_many(same_directory_photos(4)) == 4


def test_put_many_renames_only_after_every_file_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    events: list[str] = []

    def recording(name: str, real: Callable[..., None]) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            events.append(name)
            real(*args, **kwargs)

        return record

    monkeypatch.setattr(os, "replace", recording("replace", os.replace))
    target, name = flush_call(strategy)
    monkeypatch.setattr(target, name, recording("flush", getattr(target, name)))
    open_store(tmp_path, strategy).put_many(same_directory_photos(3))
    if strategy == "syncfs":
        assert events == ["flush"] + ["replace"] * 3 + ["flush"]
    else:  # the three files, then the leaf, its parent, the root and the root's parent
        assert events == ["flush"] * 3 + ["replace"] * 3 + ["flush"] * 4


def test_syncfs_refused_by_the_system_falls_back_to_fsync_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsynced: list[Path]
) -> None:
    calls: list[int] = []

    def refused(fd: int) -> None:
        calls.append(fd)
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

    monkeypatch.setattr(store_module, "_syncfs", refused)
    store = open_store(tmp_path, "syncfs")
    items = same_directory_photos(6)
    assert store.put_many(items[:3]) == 3
    assert len(calls) == 1
    assert [path.name.startswith(".tmp-") for path in fsynced] == [True] * 3 + [False] * 4
    assert store.put_many(items[3:]) == 3
    assert len(calls) == 1, "not asked again"
    assert [store.path_for(sha).read_bytes() for sha, _ in items] == [data for _, data in items]


def test_without_syncfs_the_store_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsynced: list[Path]
) -> None:
    monkeypatch.setattr(store_module, "_syncfs", None)
    assert FileStore(tmp_path / "photos").put_many(same_directory_photos(2)) == 2
    assert len(fsynced) == 2 + 4  # two files, then the leaf and its three ancestors


@pytest.mark.parametrize(
    ("platform", "release", "usable"),
    [
        ("linux", "6.18.44-fc-v669", True),
        ("linux", "5.8.0", True),
        ("linux", "5.4.0-42-generic", False),  # syncfs returned 0 after failed writeback
        ("darwin", "23.1.0", False),
    ],
)
def test_syncfs_is_used_only_where_it_reports_writeback_errors(
    monkeypatch: pytest.MonkeyPatch, platform: str, release: str, usable: bool
) -> None:
    if usable and sys.platform != "linux":
        pytest.skip("needs a C library with syncfs")
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(os, "uname", lambda: SimpleNamespace(release=release))
    assert (store_module._load_syncfs() is not None) is usable


def test_syncfs_failure_is_an_oserror_with_its_errno() -> None:
    if store_module._syncfs is None:
        pytest.skip("needs syncfs(2) from Linux 5.8")
    with pytest.raises(OSError) as caught:
        store_module._syncfs(-1)
    assert caught.value.errno == errno.EBADF
    assert caught.value.strerror == os.strerror(errno.EBADF)


# --- concurrency -------------------------------------------------------------------------------


def _put_all(store: FileStore, items: list[tuple[str, bytes]], start: Any, written: Any) -> None:
    start.wait()
    for sha, data in items:
        if store.put(sha, data):
            with written.get_lock():
                written.value += 1


@pytest.mark.slow
def test_two_processes_putting_the_same_photos_leave_one_correct_file(store: FileStore) -> None:
    items = [photo(n) for n in range(40)]
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    written = context.Value("i", 0)
    workers = [
        context.Process(target=_put_all, args=(store, items, start, written)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]

    assert list(store.iter_hashes()) == sorted(sha for sha, _ in items)
    for sha, data in items:
        assert store.path_for(sha).read_bytes() == data
    assert temporaries_under(store.root) == []
    assert len(items) <= written.value <= 2 * len(items)


# --- failures ----------------------------------------------------------------------------------


def test_store_under_a_regular_file_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = FileStore(blocker / "photos")
    sha, data = photo(1)
    for call in (
        lambda: store.put(sha, data),
        lambda: store.contains(sha),
        lambda: list(store.iter_hashes()),
        lambda: store.remove(sha),
    ):
        with pytest.raises(
            StoreError, match=rf"^photo store {re.escape(str(store.root))}: .*Not a directory$"
        ):
            call()


def failing(errno_code: int, after: int = 0) -> Callable[..., Any]:
    """A stand-in for an os function that works ``after`` times, then fails with the errno.

    The count is thread-safe (``next`` on ``itertools.count`` is atomic): fsyncs run in a pool.
    """
    calls = itertools.count(1)

    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            if next(calls) > after:
                raise OSError(errno_code, os.strerror(errno_code))
            return real(*args, **kwargs)

        return fail

    return wrap


# Flushes fail per strategy: fsync on the third file or the first directory (after the
# renames); syncfs before the renames or after them.
FLUSH_FAILURES = [("fsync", 2), ("fsync", 4), ("syncfs", 0), ("syncfs", 1)]


@pytest.mark.parametrize(("strategy", "after"), FLUSH_FAILURES, indirect=["strategy"])
def test_flush_failures_become_one_line_store_errors_and_leave_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, after: int
) -> None:
    target, name = flush_call(strategy)
    monkeypatch.setattr(target, name, failing(errno.EIO, after)(getattr(target, name)))
    store = open_store(tmp_path, strategy)
    with pytest.raises(StoreError) as caught:
        store.put_many([photo(n) for n in range(4)])
    assert str(caught.value).startswith(f"photo store {store.root}: cannot write")
    assert str(caught.value).endswith("Input/output error")
    assert "\n" not in str(caught.value)
    monkeypatch.undo()
    assert temporaries_under(store.root) == []


@pytest.mark.parametrize(
    ("function", "errno_code", "after", "reason"),
    [
        ("open", errno.EROFS, 0, "Read-only file system"),
        ("open", errno.EACCES, 2, "Permission denied"),
        ("write", errno.ENOSPC, 1, "No space left on device"),
        ("replace", errno.ENOSPC, 1, "No space left on device"),
    ],
)
def test_os_failures_become_one_line_store_errors_and_leave_no_temporaries(
    store: FileStore,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    errno_code: int,
    after: int,
    reason: str,
) -> None:
    store.root.mkdir()
    items = [photo(n) for n in range(4)]
    monkeypatch.setattr(os, function, failing(errno_code, after)(getattr(os, function)))
    with pytest.raises(StoreError) as caught:
        store.put_many(items)
    message = str(caught.value)
    assert message.startswith(f"photo store {store.root}: cannot write")
    assert message.endswith(reason)
    assert "\n" not in message
    monkeypatch.undo()
    assert temporaries_under(store.root) == []


@pytest.mark.parametrize(
    ("strategy", "after"), [("fsync", 3), ("syncfs", 0)], indirect=["strategy"]
)
def test_nothing_is_final_when_a_batch_fails_before_renaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, after: int
) -> None:
    items = [photo(n) for n in range(4)]
    target, name = flush_call(strategy)
    monkeypatch.setattr(target, name, failing(errno.ENOSPC, after)(getattr(target, name)))
    store = open_store(tmp_path, strategy)
    with pytest.raises(StoreError, match="No space left on device"):
        store.put_many(items)
    monkeypatch.undo()
    assert files_under(store.root) == []
    retry = open_store(tmp_path, strategy)
    assert retry.put_many(items) == 4, "a retry after the failure stores the whole batch"


def test_temporary_files_are_removed_when_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(*flush_call(strategy), interrupted)
    store = open_store(tmp_path, strategy)
    with pytest.raises(KeyboardInterrupt):
        store.put_many([photo(n) for n in range(4)])
    monkeypatch.undo()
    assert files_under(store.root) == []


# --- iteration and removal -----------------------------------------------------------------------


def test_iter_hashes_yields_only_stored_photos(store: FileStore) -> None:
    photos = [photo(n) for n in range(3)]
    store.put_many(photos)
    leaf = store.path_for(photos[0][0]).parent
    (leaf / ".tmp-0123456789abcdef").write_bytes(b"half a photo")  # left by a crash
    (store.root / "README").write_text("foreign")
    (store.root / "zz").mkdir()
    misplaced = "f" * 64
    (leaf / misplaced).write_bytes(b"not under ff/ff")
    (leaf / (photos[0][0][:63] + "X")).write_bytes(b"")
    (leaf / (photos[0][0][:4] + "0" * 60)).mkdir()  # a directory is never a photo

    assert list(store.iter_hashes()) == sorted(sha for sha, _ in photos)


def test_iter_hashes_of_a_missing_store_is_empty(store: FileStore) -> None:
    assert list(store.iter_hashes()) == []


def test_remove(store: FileStore) -> None:
    kept, removed = photo(1), photo(2)
    store.put_many([kept, removed])
    store.remove(removed[0])
    assert not store.contains(removed[0])
    assert list(store.iter_hashes()) == [kept[0]]
    store.remove(removed[0])  # absent: nothing to do
    store.remove(photo(3)[0])  # its directory never existed
    assert store.put(*removed) is True

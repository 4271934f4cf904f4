"""The first store layout: one file per distinct photo, named by its sha256.

Stores written before pack files (``packs.py``) keep this layout; they are read as before,
verified, and emptied into packs by ``lizardctl store repack``. New photos go to packs.

Layout: ``root/ab/cd/abcd…``; two levels of 256 directories keep each directory small
(~150 files per 10 million photos). A final name is only ever created by renaming a complete,
durable temporary file from the same directory, so a file existing under its final name is
the whole photo: existence alone proves a hash is stored, and no content is re-read or
re-hashed. The caller vouches that each digest is the sha256 of its bytes
(``probe_photo`` computed it); the store does not hash again.

Durability is paid per batch, not per photo. An fsync waits for a journal commit and a disk
flush whatever the file's size (~0.4 ms a photo here, more than the rest of the per-shot work
together), so on Linux ``put_many`` writes every temporary file, makes them all durable with
one ``syncfs(2)`` of the store's file system, renames them all, and makes the renames durable
with a second ``syncfs``: two flushes per batch, however large. syncfs also flushes every
other dirty page on that file system; during a nightly run those are mostly our own writes,
and its cost is bounded by the bytes pending either way (which ``vm.dirty_*`` bounds too). It
is only used from Linux 5.8, whose syncfs reports writeback errors (earlier ones return 0
after losing data), and it assumes no other file system is mounted inside the store.
Elsewhere, or where the system call is refused (ENOSYS), each file and then each directory
is fsynced, several at a time: fsync releases the GIL, and concurrent fsyncs share journal
commits.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import itertools
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from lizardctl.core.errors import EnvironmentFailure, UsageError

_DIGEST = re.compile(r"[0-9a-f]{64}")
_LEVEL = re.compile(r"[0-9a-f]{2}")
_TEMP_PREFIX = ".tmp-"
_FSYNC_THREADS = 8  # halves the serial cost on our VM; more threads gain nothing
_READ_BUFFER = 1 << 20
_read_buffers = threading.local()
_temporary_numbers = itertools.count()
"""Temporary names are ``.tmp-PID-N``: unique within the process without asking for
entropy per photo; ``O_EXCL`` settles the rest (a file left by a dead namesake process)."""


class StoreError(EnvironmentFailure):
    """The store's file system failed us: not writable, read-only, full."""


class StoreEntry(NamedTuple):
    """A file ``scan`` found: a photo (``digest`` set) or a temporary file (``digest`` None)."""

    path: str
    digest: str | None
    size: int
    mtime: float


def _load_syncfs() -> Callable[[int], None] | None:
    """``syncfs(fd)`` raising OSError, or None where it cannot be trusted to report failures."""
    release = re.match(r"(\d+)\.(\d+)", os.uname().release) if sys.platform == "linux" else None
    if release is None or (int(release[1]), int(release[2])) < (5, 8):
        return None
    native: Callable[[int], None] | None = getattr(os, "syncfs", None)
    if native is not None:
        return native
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # no libc to load, or one too old to wrap syncfs
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int

    def syncfs(fd: int) -> None:
        if function(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return syncfs


_syncfs = _load_syncfs()


class FileStore:
    """Photos on disk under ``root``, a file each; safe to share between processes and hosts."""

    def __init__(
        self, root: Path, *, syncfs: bool = True, fsync_threads: int = _FSYNC_THREADS
    ) -> None:
        """``syncfs=False`` forces per-file fsync, on ``fsync_threads`` threads at a time."""
        self.root = Path(root)
        self._syncfs = _syncfs if syncfs else None
        self._fsync_threads = fsync_threads

    def path_for(self, sha256: str) -> Path:
        """Final path of a photo: derived from its lower-case hex digest and nothing else."""
        if not _DIGEST.fullmatch(sha256):
            raise UsageError(f"not a lower-case sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def contains(self, sha256: str, size: int | None = None) -> bool:
        """Whether the photo is stored (with exactly ``size`` bytes, when given)."""
        path = self.path_for(sha256)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("cannot read", exc) from exc
        return size is None or stat.st_size == size

    def check_writable(self) -> None:
        """Fail before a run starts, not at its first batch, when photos cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f"{_TEMP_PREFIX}probe-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise self._error("not writable", exc) from exc

    def put(self, sha256: str, data: bytes) -> bool:
        """Store one photo durably; True if this call wrote it, False if it was already there."""
        return self.put_many([(sha256, data)]) == 1

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> int:
        """Store a batch durably and return how many photos were newly written.

        Every temporary file is durable before any rename, so no final name can point at
        partial data; every directory entry the batch depends on is made durable after all
        renames, so on return every photo of the batch survives a crash and may be
        referenced by a committed case. That includes photos that already existed: another
        process may have renamed them in without syncing yet.

        Two processes storing the same photo at once each rename a complete copy over the
        other: one correct file remains, and both may count it as newly written.

        Every call names files relative to one descriptor of the root, with plain strings:
        building ``Path`` objects cost more than the system calls on a fast file system.
        """
        named: dict[str, bytes] = {}  # "ab/cd/abcd…" -> bytes, the first of each digest
        for sha256, data in items:
            if not _DIGEST.fullmatch(sha256):
                raise UsageError(f"not a lower-case sha256 hex digest: {sha256!r}")
            named.setdefault(f"{sha256[:2]}/{sha256[2:4]}/{sha256}", data)
        if not named:
            return 0
        dirty = {name[:5] for name in named}  # to flush: relative to the root, or absolute
        batch: dict[str, bytes] = {}
        staged: list[tuple[str, str]] = []
        renamed = 0
        root_fd: int | None = None
        try:
            root_fd = self._open_root(dirty)
            batch = {name: data for name, data in named.items() if not self._exists(name, root_fd)}
            prefix = f"{_TEMP_PREFIX}{os.getpid()}-"
            for name, data in batch.items():
                leaf = name[:5]
                staged.append((_write_temporary(root_fd, leaf, prefix, data, dirty), name))
            if staged:
                self._make_durable([temporary for temporary, _ in staged], root_fd)
            for temporary, name in staged:
                os.replace(temporary, name, src_dir_fd=root_fd, dst_dir_fd=root_fd)
                renamed += 1
            self._make_durable(dirty, root_fd)
        except OSError as exc:
            raise self._error("cannot write", exc) from exc
        finally:
            if root_fd is not None:
                for temporary, _ in staged[renamed:]:
                    with suppress(OSError):
                        os.unlink(temporary, dir_fd=root_fd)
                with suppress(OSError):
                    os.close(root_fd)
        return len(batch)

    def iter_hashes(self) -> Iterator[str]:
        """Yield every stored digest in sorted order; temporary and foreign files are skipped."""
        for first in self._names(self.root, _LEVEL, directories=True):
            for second in self._names(self.root / first, _LEVEL, directories=True):
                prefix = first + second
                for name in self._names(self.root / first / second, _DIGEST, directories=False):
                    if name.startswith(prefix):
                        yield name

    def scan(self) -> Iterator[StoreEntry]:
        """Every photo, in digest order, and every temporary file, with size and mtime.

        One ``scandir`` per directory and one ``stat`` per file, for checking the whole store
        without a lookup per case. A directory's temporary files come before its photos;
        foreign files are skipped, as by ``iter_hashes``; a file removed meanwhile is too.
        """
        root = os.fspath(self.root) + os.sep
        for first in self._names(self.root, _LEVEL, directories=True):
            for second in self._names(self.root / first, _LEVEL, directories=True):
                # A str path: building a Path per directory cost a quarter of the scan.
                leaf = f"{root}{first}{os.sep}{second}"
                yield from self._scan_leaf(leaf, first + second)

    def size_of(self, sha256: str) -> int | None:
        """The stored photo's size in bytes; None if it is not stored."""
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("cannot read", exc) from exc

    def read_digest(self, sha256: str) -> str | None:
        """The sha256 of the stored photo's bytes as read now; None if it is gone.

        Reads into a buffer kept per thread: allocating one per photo (as ``file_digest``
        does) doubled the cost of checking a 40 KB photo. Safe to call from many threads.
        """
        buffer = getattr(_read_buffers, "buffer", None)
        if buffer is None:
            buffer = _read_buffers.buffer = memoryview(bytearray(_READ_BUFFER))
        digest = hashlib.sha256()
        try:
            fd = os.open(self.path_for(sha256), os.O_RDONLY | os.O_CLOEXEC)
            try:
                while read := os.readv(fd, [buffer]):
                    digest.update(buffer[:read])
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("cannot read", exc) from exc
        return digest.hexdigest()

    def remove_temporary(self, path: str) -> None:
        """Delete a temporary file ``scan`` found (left by a killed writer); no fsync needed."""
        temporary = Path(path)
        if not temporary.name.startswith(_TEMP_PREFIX) or temporary.parents[2] != self.root:
            raise UsageError(f"not a temporary file of {self.root}: {path}")
        try:
            temporary.unlink(missing_ok=True)
        except OSError as exc:
            raise self._error("cannot remove", exc) from exc

    def remove(self, sha256: str) -> None:
        """Delete a photo durably; removing an absent photo is not an error."""
        path = self.path_for(sha256)
        try:
            path.unlink(missing_ok=True)
            _fsync(path.parent)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("cannot remove", exc) from exc

    def _open_root(self, dirty: set[str]) -> int:
        """Open the root, creating it if need be; opened before writing, it is what syncfs
        reports writeback errors since, and every name of a batch is relative to it."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
        root = os.fspath(self.root)
        try:
            return os.open(root, flags)
        except FileNotFoundError:
            # Absolute: in ``dirty``, a relative name is relative to the root.
            _make_directories(os.fspath(self.root.absolute()), dirty, None)
            return os.open(root, flags)

    def _make_durable(self, paths: Collection[str], root_fd: int) -> None:
        """Flush ``paths`` (relative to ``root_fd``, or absolute): one syncfs of the whole
        file system, or an fsync each."""
        if self._syncfs is not None:
            try:
                self._syncfs(root_fd)
                return
            except OSError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
                self._syncfs = None  # refused here (a sandbox, an emulator): for good
        if self._fsync_threads <= 1 or len(paths) <= 1:
            for path in paths:
                _fsync(path, root_fd)
            return
        with ThreadPoolExecutor(min(self._fsync_threads, len(paths))) as pool:
            for _ in pool.map(_fsync, paths, itertools.repeat(root_fd)):  # re-raises the first
                pass

    def _exists(self, name: str, root_fd: int) -> bool:
        try:
            os.stat(name, dir_fd=root_fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("cannot read", exc) from exc
        return True

    def _names(self, directory: Path, pattern: re.Pattern[str], *, directories: bool) -> list[str]:
        """Sorted names in ``directory`` that fit the layout; a missing directory is empty."""
        try:
            with os.scandir(directory) as entries:
                return sorted(
                    entry.name
                    for entry in entries
                    if pattern.fullmatch(entry.name)
                    and (entry.is_dir() if directories else entry.is_file())
                )
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("cannot list", exc) from exc

    def _scan_leaf(self, directory: str, prefix: str) -> list[StoreEntry]:
        found: list[StoreEntry] = []
        try:
            with os.scandir(directory) as entries:
                for entry in sorted(entries, key=lambda entry: entry.name):
                    name = entry.name
                    if name.startswith(_TEMP_PREFIX):
                        digest = None
                    elif name.startswith(prefix) and _DIGEST.fullmatch(name):
                        digest = name
                    else:
                        continue
                    try:
                        if not entry.is_file():
                            continue
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    found.append(StoreEntry(entry.path, digest, stat.st_size, stat.st_mtime))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error("cannot list", exc) from exc
        return found

    def _error(self, action: str, exc: OSError) -> StoreError:
        where = f" {exc.filename}" if exc.filename else ""
        return StoreError(f"photo store {self.root}: {action}{where}: {exc.strerror or exc}")


def _write_temporary(root_fd: int, leaf: str, prefix: str, data: bytes, dirty: set[str]) -> str:
    """Write ``data`` to a fresh temporary file in ``leaf`` and return its name (both
    relative to ``root_fd``).

    Not synced: the caller flushes the whole batch at once. Missing directories are created
    only when the open fails, so the common case costs no extra system call. On failure the
    temporary file is removed before the error propagates.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        temporary = f"{leaf}/{prefix}{next(_temporary_numbers)}"
        try:
            fd = os.open(temporary, flags, 0o644, dir_fd=root_fd)
        except FileNotFoundError:
            _make_directories(leaf, dirty, root_fd)
            continue
        except FileExistsError:  # left by a dead process that had our pid
            continue
        break
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary, dir_fd=root_fd)
        raise
    return temporary


def _make_directories(directory: str, dirty: set[str], dir_fd: int | None) -> None:
    """Create ``directory`` (relative to ``dir_fd``, or absolute) and missing ancestors,
    marking each parent for an fsync ("." is ``dir_fd`` itself)."""
    parent = os.path.dirname(directory) or "."  # noqa: PTH120 - str paths on purpose
    try:
        os.mkdir(directory, dir_fd=dir_fd)
    except FileNotFoundError:
        _make_directories(parent, dirty, dir_fd)
        with suppress(FileExistsError):
            os.mkdir(directory, dir_fd=dir_fd)
    except FileExistsError:
        # Created concurrently; its entry may not be durable yet either.
        pass
    dirty.add(parent)


def _fsync(path: str | Path, dir_fd: int | None = None) -> None:
    """Make a file's data, or a directory's entries, durable (POSIX needs a descriptor)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

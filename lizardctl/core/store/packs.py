"""Pack files: photos appended to large files, one writer each, read back by offset.

Creating a durable file per photo is bound by file-system metadata work, not by bytes; an
append to an open file is not. So each writer (one per worker process) appends photos to a
pack of its own and pays one ``fdatasync`` per batch, like Haystack's volumes or restic's
packs. The database records each photo's pack and offset; a read is one ``pread``.

Layout: ``ROOT/packs/NAME.pack``. NAME is ``UTC-TIME-HOST-PID-RANDOM``: no other process or
host can pick it, so hosts sharing a store (NFS) need no shared lock. A pack starts with a
header naming the store it belongs to, then holds records, each self-describing::

    record = magic "LZR1" | crc32 of the next two fields | sha256 (32 bytes) | length (u64 LE)
             | the photo's bytes

so the photo index can be rebuilt from the packs alone, and each record can be checked in
place. The database's offset is the record's, and a read takes header and photo in one
``pread`` and checks that the header names the photo asked for.

A pack is written by one open descriptor holding an exclusive ``flock``: a pack whose lock
can be taken has no live writer. A writer that reaches the size limit, or finishes, seals its
pack by appending a seal record (magic "LZS1", the number of records) and syncing; a pack is
never written again once its writer has gone, sealed or not (a restarted writer starts a new
pack), so every byte past the last record a row references is garbage to reclaim, never a
photo still to come.

On S3 (``s3.py``) every object is one whole, sealed pack in this same format, uploaded by
one PUT; the functions here that name, head and seal a pack serve both backends.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lizardctl.core.errors import EnvironmentFailure

PACKS_DIR = "packs"
PACK_SUFFIX = ".pack"
PACK_MAGIC = b"LZPACK\x00\x01"
PACK_HEADER = struct.Struct("<8s16s8x")  # magic+version, store id, reserved
RECORD = struct.Struct("<4sI32sQ")  # magic, crc32(sha256 + length), sha256, length
RECORD_MAGIC = b"LZR1"
SEAL_MAGIC = b"LZS1"
DEFAULT_PACK_BYTES = 256 << 20
"""A pack is sealed once it holds this much. Large enough that even a billion photos make a
few hundred thousand files, small enough that rewriting one to reclaim space is a few
seconds of I/O."""

_IOV_MAX = 1024  # os.writev takes at most this many buffers per call on Linux
_NAME = re.compile(r"[0-9]{8}T[0-9]{6}-[A-Za-z0-9._-]{1,64}-[0-9]+-[0-9a-f]{8}\.pack")
_HOST_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class PackError(EnvironmentFailure):
    """A pack could not be written or read: the file system failed us."""


class DamagedRecord(Exception):
    """A record does not hold the photo its row names: the pack was cut short or changed."""


@dataclass(frozen=True, slots=True)
class PackRecord:
    """A record found by scanning a pack: ``ok`` is False when its header is damaged."""

    offset: int
    sha256: str
    length: int


@dataclass(frozen=True, slots=True)
class PackScan:
    """What a scan of one pack found: its records, whether a seal ends it, and where the
    readable part stops (bytes past it are a torn write or damage)."""

    records: tuple[PackRecord, ...]
    sealed: bool
    end: int
    size: int


def is_pack_name(name: str) -> bool:
    """Whether ``name`` is a pack's file name, as writers make them (and no other file)."""
    return _NAME.fullmatch(name) is not None


def host_label(host: str | None = None) -> str:
    """This host's name as it goes into pack names: safe characters only, at most 64."""
    label = _HOST_CHARS.sub("_", host if host is not None else socket.gethostname())
    return label.strip("._-")[:64] or "host"


def new_pack_name(host: str) -> str:
    """A fresh pack name, ``UTCTIME-HOST-PID-RANDOM.pack``: no other process or host picks
    it, so writers that share a store need no shared lock to name their packs."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{stamp}-{host}-{os.getpid()}-{secrets.token_hex(4)}{PACK_SUFFIX}"


def pack_header(store_id: uuid.UUID) -> bytes:
    """The bytes every pack starts with: the format and the store it belongs to."""
    return PACK_HEADER.pack(PACK_MAGIC, store_id.bytes)


def seal_record(records: int) -> bytes:
    """The record that ends a sealed pack of ``records`` records."""
    return RECORD.pack(SEAL_MAGIC, 0, bytes(32), records)


def record_header(sha256: str, length: int) -> bytes:
    """The header that precedes a photo of ``length`` bytes whose digest is ``sha256``."""
    digest = bytes.fromhex(sha256)
    return RECORD.pack(RECORD_MAGIC, _crc(digest, length), digest, length)


def _crc(digest: bytes, length: int) -> int:
    return zlib.crc32(digest + length.to_bytes(8, "little"))


class PackWriter:
    """Appends photos to packs of its own under ``root/packs``; one per writer process.

    ``append`` writes (not durable), ``sync`` makes everything appended durable, and only
    then may rows pointing at it be committed. ``close`` seals the open pack. Batches run
    side by side in one process (``--workers 0``) share a writer: each call holds a lock, and
    a batch's ``sync`` names the places it appended, because another batch's failure gives
    up the pack and cuts what was not synced yet, the first batch's photos included.
    """

    def __init__(
        self,
        root: Path,
        store_id: uuid.UUID,
        *,
        limit: int = DEFAULT_PACK_BYTES,
        host: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.store_id = store_id
        self.limit = limit
        self.host = host_label(host)
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        self._records = 0
        self._synced = 0
        self._new = False  # the pack's directory entry is not durable yet
        self._root_synced = False  # the packs folder's entry in the root is durable
        self._lost: dict[str, int] = {}  # pack given up -> its bytes that were durable
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The pack being written ('' before the first append)."""
        return self._name

    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[str, int]]:
        """Append photos (sha256, bytes); returns (pack, record offset) of each, in order.

        Not durable until ``sync``. On failure the pack is cut back to what was synced and
        given up, so the next append starts a new pack, and ``PackError`` is raised.
        """
        if not items:
            return []
        with self._lock:
            return self._append(items)

    def _append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[str, int]]:
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            buffers: list[bytes] = []
            places = []
            offset = self._size
            for sha256, data in items:
                places.append((self._name, offset))
                buffers.append(record_header(sha256, len(data)))
                buffers.append(data)
                offset += RECORD.size + len(data)
            for start in range(0, len(buffers), _IOV_MAX):
                _write_all(self._fd, buffers[start : start + _IOV_MAX])
        except OSError as exc:
            self._give_up()
            raise self._error("cannot write", exc) from exc
        self._size = offset
        self._records += len(items)
        return places

    def sync(self, places: Iterable[tuple[str, int]] = ()) -> None:
        """Make every append durable: ``fdatasync`` the pack, and its directory entry when
        the pack is new. Seals the pack afterwards if it has reached the size limit. On
        failure the pack is given up and ``PackError`` raised: commit nothing then. Also
        raised when any of ``places`` (as ``append`` returned them) was cut since, when a
        failure gave its pack up."""
        with self._lock:
            self._sync()
            cut = [offset for pack, offset in places if offset >= self._lost.get(pack, offset + 1)]
            if cut:
                raise PackError(
                    f"photo store {self.root}: {len(cut)} photos appended were cut when their "
                    "pack was given up after a failure to write it"
                )

    def _sync(self) -> None:
        if self._fd is None or (self._synced == self._size and not self._new):
            return
        try:
            os.fdatasync(self._fd)
            if self._new:
                fsync_directory(self.root / PACKS_DIR)
                self._new = False
        except OSError as exc:
            # After a failed fsync the page cache may claim bytes the disk never got: give
            # the pack up rather than trust anything more written to it.
            self._give_up()
            raise self._error("cannot sync", exc) from exc
        self._synced = self._size
        if self._size >= self.limit:
            # Its photos are durable already: a seal that fails (the disk is full) costs
            # only the seal. The pack is given up unsealed, like a dead writer's, and the
            # batch goes on; the next append, in a new pack, meets the full disk if any.
            with contextlib.suppress(PackError):
                self._close()

    def close(self) -> None:
        """Seal the open pack (durably) and let it go; the next append starts a new one."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd is None:
            return
        try:
            if self._synced != self._size:
                os.fdatasync(self._fd)
                self._synced = self._size
            _write_all(self._fd, [seal_record(self._records)])
            os.fdatasync(self._fd)
            if self._new:
                fsync_directory(self.root / PACKS_DIR)
        except OSError as exc:
            self._give_up()
            raise self._error("cannot seal", exc) from exc
        os.close(self._fd)  # releases the lock
        self._fd = None
        self._name = ""

    def _open(self) -> None:
        directory = self.root / PACKS_DIR
        if not self._root_synced:
            # Even when the folder exists: the process that made it may not have synced
            # its entry yet, and our rows must not point into a folder a crash can lose.
            directory.mkdir(parents=True, exist_ok=True)
            fsync_directory(self.root)
            self._root_synced = True
        name = new_pack_name(self.host)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(directory / name, flags, 0o444)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, [pack_header(self.store_id)])
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                (directory / name).unlink()
            raise
        self._fd, self._name = fd, name
        self._size = self._synced = PACK_HEADER.size
        self._records = 0
        self._new = True

    def _give_up(self) -> None:
        """Drop the pack after a failure: cut unsynced bytes (best effort), never seal it."""
        if self._fd is None:
            return
        self._lost[self._name] = self._synced
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._synced)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None
        self._name = ""

    def _error(self, action: str, exc: OSError) -> PackError:
        where = f" {exc.filename}" if exc.filename else ""
        message = exc.strerror or str(exc)
        return PackError(f"photo store {self.root}: {action}{where}: {message}")


def read_record(root: Path, pack: str, offset: int, sha256: str, length: int) -> bytes:
    """The photo of the record at ``offset``, in one ``pread`` (see ``check_read``)."""
    path = pack_path(root, pack)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.pread(fd, RECORD.size + length, offset)
    finally:
        os.close(fd)
    return check_read(str(path), offset, sha256, length, data)


def check_read(where: str, offset: int, sha256: str, length: int, data: bytes) -> bytes:
    """The photo in ``data``, a record read whole; ``DamagedRecord`` when the record is
    not that photo's (cut short, or its header changed). The bytes are not hashed: that is
    ``verify --read-data``'s work."""
    if len(data) != RECORD.size + length or data[: RECORD.size] != record_header(sha256, length):
        raise DamagedRecord(f"{where}: the record at offset {offset} is not photo {sha256}")
    return data[RECORD.size :]


def pack_path(root: Path, pack: str) -> Path:
    """The file of pack ``pack`` under ``root``; refuses any name a writer cannot make."""
    if not is_pack_name(pack):
        raise DamagedRecord(f"not a pack name: {pack!r}")
    return Path(root) / PACKS_DIR / pack


def list_packs(root: Path) -> list[str]:
    """Names of every pack under ``root``, oldest first; other files are ignored."""
    try:
        with os.scandir(Path(root) / PACKS_DIR) as entries:
            return sorted(e.name for e in entries if is_pack_name(e.name) and e.is_file())
    except FileNotFoundError:
        return []


def is_being_written(root: Path, pack: str) -> bool:
    """Whether a live writer holds the pack's lock (``flock``; on NFS, the server's lock)."""
    try:
        fd = os.open(pack_path(root, pack), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)
    return False


def scan_pack(path: Path, chunk: int = 1 << 20) -> PackScan:
    """Every record of a pack, found by walking headers from the start (the photo index
    rebuilt from the pack alone). Stops at the seal, at a damaged header, or at a record
    cut short; ``end`` says where, ``size`` how long the file is."""
    records: list[PackRecord] = []
    with path.open("rb", buffering=0) as file:
        size = os.fstat(file.fileno()).st_size
        head = file.read(PACK_HEADER.size)
        if len(head) < PACK_HEADER.size or PACK_HEADER.unpack(head)[0] != PACK_MAGIC:
            return PackScan((), False, 0, size)
        offset = PACK_HEADER.size
        while offset + RECORD.size <= size:
            magic, crc, digest, length = RECORD.unpack(os.pread(file.fileno(), RECORD.size, offset))
            if magic == SEAL_MAGIC:
                return PackScan(tuple(records), True, offset + RECORD.size, size)
            if magic != RECORD_MAGIC or crc != _crc(digest, length):
                break
            if offset + RECORD.size + length > size:
                break
            records.append(PackRecord(offset, digest.hex(), length))
            offset += RECORD.size + length
    return PackScan(tuple(records), False, offset, size)


def pack_store_id(path: Path) -> uuid.UUID | None:
    """The store a pack says it belongs to; None when its header is not a pack's."""
    with path.open("rb") as file:
        head = file.read(PACK_HEADER.size)
    if len(head) < PACK_HEADER.size:
        return None
    magic, store_id = PACK_HEADER.unpack(head)
    return uuid.UUID(bytes=store_id) if magic == PACK_MAGIC else None


def _write_all(fd: int, buffers: list[bytes]) -> None:
    """``writev`` until every byte is written (a write may be short: a signal, a full disk
    reports ENOSPC only on the next call)."""
    views = [memoryview(b) for b in buffers if b]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first:] if first else views)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def fsync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` (files created, renamed or linked in it) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""A store in a folder: packs under ``ROOT/packs``, the identity file beside them, and, for
stores older than packs, a file per photo (``files.py``)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from lizardctl.core.store.backend import PackFinding
from lizardctl.core.store.files import FileStore
from lizardctl.core.store.identity import create_identity, make_folder, read_identity
from lizardctl.core.store.packs import (
    PACK_HEADER,
    PACKS_DIR,
    RECORD,
    SEAL_MAGIC,
    PackWriter,
    fsync_directory,
    is_being_written,
    list_packs,
    pack_path,
    read_record,
    record_header,
)


class FolderBackend:
    """Packs in the folder ``root``; locks are ``flock``s, durability is ``fdatasync``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __eq__(self, other: object) -> bool:
        """The same folder: a worker keeps its writer while its batches name one store."""
        return isinstance(other, FolderBackend) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def location(self) -> str:
        return str(self.root.resolve())

    def exists(self) -> bool:
        return self.root.is_dir()

    def make(self) -> None:
        make_folder(self.root)

    def check_writable(self) -> None:
        # The first layout's probe covers the folder; packs live in a subfolder of it.
        FileStore(self.root).check_writable()

    def identity(self) -> uuid.UUID | None:
        return read_identity(self.root)

    def create_identity(self, store_id: uuid.UUID | None = None) -> uuid.UUID:
        return create_identity(self.root, store_id)

    def writer(self, store_id: uuid.UUID, limit: int) -> PackWriter:
        return PackWriter(self.root, store_id, limit=limit)

    def read(self, pack: str, offset: int, sha256: str, length: int) -> bytes:
        return read_record(self.root, pack, offset, sha256, length)

    def where(self, pack: str, offset: int) -> str:
        return f"{pack_path(self.root, pack)} at offset {offset}"

    def packs(self) -> list[str]:
        return list_packs(self.root)

    def size(self, pack: str) -> int | None:
        try:
            return pack_path(self.root, pack).stat().st_size
        except FileNotFoundError:
            return None

    def being_written(self, pack: str) -> bool:
        return is_being_written(self.root, pack)

    def seal_bytes(self, pack: str, size: int) -> int:
        if size < PACK_HEADER.size + RECORD.size:
            return 0
        with pack_path(self.root, pack).open("rb", buffering=0) as file:
            tail = os.pread(file.fileno(), RECORD.size, size - RECORD.size)
        return RECORD.size if tail[:4] == SEAL_MAGIC else 0

    def remove(self, pack: str) -> None:
        pack_path(self.root, pack).unlink(missing_ok=True)
        fsync_directory(self.root / PACKS_DIR)

    def check_records(
        self, pack: str, records: Sequence[tuple[int, str, int]], read_data: bool
    ) -> tuple[int, list[PackFinding]]:
        """One ``pread`` per record, front to back, so the kernel reads the pack ahead;
        without ``read_data`` only the 48-byte header is read."""
        findings: list[PackFinding] = []
        hashed = 0
        try:
            fd = os.open(pack_path(self.root, pack), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            message = f"pack {pack} is not in the store"
            return 0, [
                (sha256, "missing-photo", message, pack, offset) for offset, sha256, _ in records
            ]
        try:
            end = os.fstat(fd).st_size
            for offset, sha256, size in records:
                if offset + RECORD.size + size > end:
                    findings.append(cut_short(pack, offset, sha256, end))
                    continue
                data = os.pread(fd, RECORD.size + size if read_data else RECORD.size, offset)
                finding = check_record(pack, offset, sha256, size, data, read_data)
                if finding is not None:
                    findings.append(finding)
                if read_data and (finding is None or finding[1] != "damaged-record"):
                    hashed += size
        finally:
            os.close(fd)
        return hashed, findings


def cut_short(pack: str, offset: int, sha256: str, end: int) -> PackFinding:
    """The finding for a record that runs past the pack's end (every backend's)."""
    where = f"pack {pack} at offset {offset}"
    message = f"{where}: the pack ends at {end} bytes, before the record does"
    return (sha256, "damaged-record", message, pack, offset)


def check_record(
    pack: str, offset: int, sha256: str, size: int, data: bytes | memoryview, read_data: bool
) -> PackFinding | None:
    """What is wrong with a record read whole (or its header alone, without ``read_data``);
    None when it is the photo its row names. Every backend checks records this way."""
    where = f"pack {pack} at offset {offset}"
    if data[: RECORD.size] != record_header(sha256, size):
        message = f"{where}: the record's header does not name this photo"
        return (sha256, "damaged-record", message, pack, offset)
    if read_data:
        actual = hashlib.sha256(memoryview(data)[RECORD.size :]).hexdigest()
        if actual != sha256:
            message = f"{where}: the stored photo's content hashes to {actual}"
            return (sha256, "wrong-hash", message, pack, offset)
    return None

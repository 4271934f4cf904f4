"""Re-hashing stored photos in worker processes, for ``verify --read-data``; and checking
the records of a pack, there or (headers only) in the caller.

Processes, not threads: a thread that reads and hashes photos must take the GIL back after
every system call, while the main thread validates metadata and holds it; measured, two
such threads checked no more photos per second than one.
"""

from __future__ import annotations

import hashlib
import os
import signal
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

from lizardctl.core.liveness import belong_to
from lizardctl.core.store import FileStore
from lizardctl.core.store.packs import RECORD, pack_path, record_header

PackFinding = tuple[str, str, str, str, int]
"""``(photo, problem kind, message, pack, offset)`` for a record that is not what its row
says: the place checked, so that a row moved meanwhile (``store reclaim``) is not blamed."""


def context(preload: str = __name__) -> BaseContext:
    """Workers fork from a clean forkserver that imported only ``preload`` (this module by
    default): forking the caller (threads, an event loop, connections) is unsafe, spawning
    re-imports everything. ``schema add --replay`` preloads the schema compiler."""
    forkserver = get_context("forkserver")
    forkserver.set_forkserver_preload([preload])
    return forkserver


def initialize(owner: int) -> None:
    """Workers leave Ctrl-C to ``owner``, which cancels what is queued, and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    belong_to(owner)


def read_digests(root: Path, photos: list[str]) -> list[str | None]:
    """``FileStore.read_digest`` of each photo: what a worker does with one batch."""
    store = FileStore(root)
    return [store.read_digest(photo) for photo in photos]


def check_records(
    root: Path, pack: str, records: list[tuple[int, str, int]], read_data: bool
) -> tuple[int, list[PackFinding]]:
    """Check records ``(offset, sha256, size)`` of one pack, in offset order: each must lie
    inside the file and its header name that photo; with ``read_data`` its bytes must hash
    to it too. Returns the photo bytes hashed and what is wrong.

    One ``pread`` per record, front to back, so the kernel reads the pack ahead; without
    ``read_data`` only the 48-byte header is read.
    """
    findings: list[PackFinding] = []
    hashed = 0
    path = pack_path(root, pack)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        message = f"pack {pack} is not in the store"
        return 0, [
            (sha256, "missing-photo", message, pack, offset) for offset, sha256, _ in records
        ]
    try:
        end = os.fstat(fd).st_size
        for offset, sha256, size in records:
            where = f"pack {pack} at offset {offset}"
            if offset + RECORD.size + size > end:
                message = f"{where}: the pack ends at {end} bytes, before the record does"
                findings.append((sha256, "damaged-record", message, pack, offset))
                continue
            data = os.pread(fd, RECORD.size + size if read_data else RECORD.size, offset)
            if data[: RECORD.size] != record_header(sha256, size):
                message = f"{where}: the record's header does not name this photo"
                findings.append((sha256, "damaged-record", message, pack, offset))
                continue
            if read_data:
                hashed += size
                actual = hashlib.sha256(memoryview(data)[RECORD.size :]).hexdigest()
                if actual != sha256:
                    message = f"{where}: the stored photo's content hashes to {actual}"
                    findings.append((sha256, "wrong-hash", message, pack, offset))
    finally:
        os.close(fd)
    return hashed, findings

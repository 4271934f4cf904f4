"""Re-hashing stored photos in worker processes, for ``verify --read-data``: files of the
first layout, and records of packs (through the store's backend).

Processes, not threads: a thread that reads and hashes photos must take the GIL back after
every system call, while the main thread validates metadata and holds it; measured, two
such threads checked no more photos per second than one.
"""

from __future__ import annotations

import signal
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path

from lizardctl.core.liveness import belong_to
from lizardctl.core.store import FileStore
from lizardctl.core.store.backend import Backend, PackFinding


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
    backend: Backend, pack: str, records: list[tuple[int, str, int]]
) -> tuple[int, list[PackFinding]]:
    """``Backend.check_records`` with the photos' bytes hashed: a worker's job."""
    return backend.check_records(pack, records, True)

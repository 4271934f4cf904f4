"""The process-pool side of ingest: one BatchProcessor and one event loop per worker process.

``start_workers`` runs in the main process; the other functions run in the workers. The
processor is opened on the first batch, not in a pool initializer, so that a failure to
open it (database unreachable) reaches the parent as that batch's exception instead of a
bare BrokenProcessPool. Its pooled connection is closed when the worker exits
(multiprocessing runs ``Finalize`` callbacks then), so PostgreSQL sees a clean disconnect.

Workers belong to their parent. SIGINT and SIGTERM sent to the whole process group (Ctrl-C,
``timeout``, systemd) are the parent's to handle: it stops feeding batches, lets those in
flight commit and then shuts the pool down. If the parent dies without doing so (SIGKILL),
the kernel kills every worker at once (``PR_SET_PDEATHSIG``), so none is left holding the
SQLite file or a PostgreSQL connection, and whatever batch it was in never commits.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from multiprocessing.util import Finalize
from pathlib import Path

from lizardctl.core.ingest.batch import BatchProcessor, BatchSettings
from lizardctl.core.ingest.jobs import Unit
from lizardctl.core.ingest.outcome import BatchResult
from lizardctl.core.ingest.walk import Part
from lizardctl.core.liveness import belong_to

_loop: asyncio.AbstractEventLoop | None = None
_processor: BatchProcessor | None = None

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def _fork_is_safe() -> bool:
    """Forking copies one thread and every open socket: safe only before any exist. The
    threads counted are the kernel's, native ones too: the S3 client's runtime (tokio)
    runs threads Python does not know of, and a child forked without them crashes."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return (
            sys.platform == "linux"
            and threading.active_count() == 1
            and sum(1 for _ in Path("/proc/self/task").iterdir()) == 1
        )
    return False


def _context() -> BaseContext:
    """Fork when it is safe: the workers then start with this process's imports (pydantic,
    SQLAlchemy, PIL, the pipeline) instead of importing them again, ~0.8 s of CPU each.
    Otherwise a forkserver, started clean, with the pipeline preloaded once."""
    if _fork_is_safe():
        return get_context("fork")
    context = get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _started() -> None:
    """A first task, so that the pool starts its processes now."""


def start_workers(workers: int) -> ProcessPoolExecutor:
    """Start ``workers`` worker processes now.

    Called through ``IngestService.forked_workers`` before the event loop, its threads
    and the database connections exist, so the workers can be forked from a process that
    has imported everything already; the dispatcher calls it otherwise, and gets a
    forkserver.
    """
    context = _context()
    forking = context.get_start_method() == "fork"
    if forking:
        # What exists now is kept for the whole run: out of the collector's sight, its
        # pages stay shared with the workers instead of being copied into each of them
        # the first time a collection walks them.
        gc.freeze()
    executor = ProcessPoolExecutor(
        workers, mp_context=context, initializer=initialize, initargs=(os.getpid(),)
    )
    # Forked with the stop signals blocked, so that a signal to the group cannot kill a
    # worker before its initializer has ignored them. (Not around a forkserver's start:
    # it would keep them blocked for every pool it serves. A forkserver dies of a SIGTERM
    # to the group, and its workers with it: the command forks, the dispatcher only falls
    # back to one when forking is unsafe.)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS if forking else ())
    try:
        executor.submit(_started)  # a fork pool forks all its workers within this call
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return executor


def initialize(owner: int) -> None:
    """Leave SIGINT and SIGTERM to ``owner``, the process that started the pool, and die
    with it: the owner tells workers to stop by shutting the pool down, never by a signal."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # pending ones are dropped
    belong_to(owner)


def _close() -> None:
    if _loop is not None and _processor is not None:
        _loop.run_until_complete(_processor.close())


def run_batch(settings: BatchSettings, parts: list[Part], units: list[Unit]) -> BatchResult:
    global _loop, _processor
    if _loop is None:
        _loop = asyncio.new_event_loop()
        Finalize(None, _close, exitpriority=10)
    if _processor is None or _processor.settings != settings:
        _close()
        _processor = _loop.run_until_complete(BatchProcessor.open(settings))
    return _loop.run_until_complete(_processor.process_parts(parts, units))

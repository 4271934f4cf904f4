"""The process-pool side of ingest: one BatchProcessor and one event loop per worker process.

``start_workers`` runs in the main process; the other functions run in the workers. The
processor is opened on the first batch, not in a pool initializer, so that a failure to
open it (database unreachable) reaches the parent as that batch's exception instead of a
bare BrokenProcessPool. Its pooled connection is closed when the worker exits
(multiprocessing runs ``Finalize`` callbacks then), so PostgreSQL sees a clean disconnect.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from multiprocessing.util import Finalize

from lizardctl.core.ingest.batch import BatchProcessor, BatchResult, BatchSettings, Unit
from lizardctl.core.ingest.walk import ShotFiles

_loop: asyncio.AbstractEventLoop | None = None
_processor: BatchProcessor | None = None


def _fork_is_safe() -> bool:
    """Forking copies one thread and every open socket: safe only before any exist."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return sys.platform == "linux" and threading.active_count() == 1
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

    Called by the ingest command before the event loop, its threads and the database
    connections exist, so the workers can be forked from a process that has imported
    everything already; the service calls it otherwise, and gets a forkserver.
    """
    context = _context()
    if context.get_start_method() == "fork":
        # What exists now is kept for the whole run: out of the collector's sight, its
        # pages stay shared with the workers instead of being copied into each of them
        # the first time a collection walks them.
        gc.freeze()
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=initialize)
    executor.submit(_started)  # a fork pool forks all its workers within this call
    return executor


def initialize() -> None:
    """Workers leave Ctrl-C to the parent, which stops feeding them and lets batches finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _close() -> None:
    if _loop is not None and _processor is not None:
        _loop.run_until_complete(_processor.close())


def run_batch(settings: BatchSettings, shots: list[ShotFiles], units: list[Unit]) -> BatchResult:
    global _loop, _processor
    if _loop is None:
        _loop = asyncio.new_event_loop()
        Finalize(None, _close, exitpriority=10)
    if _processor is None or _processor.settings != settings:
        _close()
        _processor = _loop.run_until_complete(BatchProcessor.open(settings))
    return _loop.run_until_complete(_processor.process(shots, units))

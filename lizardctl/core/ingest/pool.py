"""The process-pool side of ingest: one BatchProcessor and one event loop per worker process.

Functions here run in the worker processes. The processor is opened on the first batch,
not in a pool initializer, so that a failure to open it (database unreachable) reaches
the parent as that batch's exception instead of a bare BrokenProcessPool. Its pooled
connection is closed when the worker exits (multiprocessing runs ``Finalize`` callbacks
then), so PostgreSQL sees a clean disconnect.
"""

from __future__ import annotations

import asyncio
import signal
from multiprocessing.util import Finalize

from lizardctl.core.ingest.batch import BatchProcessor, BatchResult, BatchSettings, Unit
from lizardctl.core.ingest.walk import ShotFiles

_loop: asyncio.AbstractEventLoop | None = None
_processor: BatchProcessor | None = None


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

"""SIGINT and SIGTERM during a run: finish the batches in flight, record, then exit 130/143.

The workers ignore both (``pool.py``): a signal to the whole process group (Ctrl-C,
``timeout``, systemd) is the main process's alone to handle, so it behaves exactly as one
sent to the main process.
"""

from __future__ import annotations

import asyncio
import signal

from lizardctl.core.errors import LizardError
from lizardctl.core.ingest.outcome import IngestSummary

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(LizardError):
    """SIGINT or SIGTERM: the batches in flight were finished and the run recorded."""

    def __init__(self, signum: int, summary: IngestSummary) -> None:
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name} after {summary.result.outcomes['ingested']} new case(s); "
            f"the batches in flight were committed and run {summary.run_id} recorded as "
            "interrupted: run the same command again to finish"
        )
        self.exit_code = SIGNAL_EXIT.get(signum, 130)
        self.summary = summary


class StopOnSignal:
    """While active, SIGINT and SIGTERM ask the run to stop after the batches in flight."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __enter__(self) -> StopOnSignal:
        loop = asyncio.get_running_loop()
        for signum in SIGNAL_EXIT:
            loop.add_signal_handler(signum, self._stop, signum)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for signum in SIGNAL_EXIT:
            loop.remove_signal_handler(signum)

    def _stop(self, signum: int) -> None:
        self.signal = self.signal or signum

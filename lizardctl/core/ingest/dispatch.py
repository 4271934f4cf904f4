"""Gather claimed parts into batches and run them on the workers, a bounded number at once.

The ``Batcher`` gathers parts into batches of about ``batch_size`` stems; the
``Dispatcher`` hands each to a worker process (or, with no workers, runs it here) with at
most two per worker in flight, so memory stays flat however large the dump. A batch
travels as file names (``walk.Part``): the worker stats, pairs, reads and judges them,
and sends back counts; the main process only lists folders and claims parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from lizardctl.core.errors import EnvironmentFailure
from lizardctl.core.ingest import pool
from lizardctl.core.ingest.batch import BatchProcessor, BatchSettings
from lizardctl.core.ingest.jobs import Unit
from lizardctl.core.ingest.outcome import BatchResult
from lizardctl.core.ingest.walk import Listing, Part


class WorkerDied(EnvironmentFailure):
    """A worker process was killed (the OOM killer, ``kill -9``) or crashed: not a bug of
    ours to report as one. What its batches had committed stands; the rest was not."""

    def __init__(self) -> None:
        super().__init__(
            "an ingest worker process died (killed, out of memory?); the batches it had not "
            "committed were not ingested: run the same ingest again to finish"
        )


class Dispatcher:
    """Feeds batches to the workers with a bounded number in flight, so memory stays flat."""

    def __init__(
        self,
        settings: BatchSettings,
        workers: int,
        total: BatchResult,
        on_batch: Callable[[BatchResult], Awaitable[None]],
        executor: ProcessPoolExecutor | None,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.executor = executor
        self.total = total
        self.on_batch = on_batch
        self.limit = max(1, workers) * 2
        self.in_flight: set[asyncio.Future[BatchResult]] = set()
        self.processor: BatchProcessor | None = None

    async def __aenter__(self) -> Dispatcher:
        if self.workers == 0:
            self.processor = await BatchProcessor.open(self.settings)
        elif self.executor is None:
            self.executor = pool.start_workers(self.workers)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """On failure, batches not started are dropped, but those already running are let
        finish: each is one transaction that may commit, and the run must count it."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        try:
            if self.in_flight:
                outcomes = await asyncio.gather(*self.in_flight, return_exceptions=True)
                for outcome in outcomes:
                    if isinstance(outcome, BatchResult):
                        self.total.add(outcome)
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=True)
            if self.processor is not None:
                await self.processor.close()

    async def feed(self, batch: list[Part], units: list[Unit]) -> None:
        if self.processor is not None:
            future = asyncio.ensure_future(self.processor.process_parts(batch, units))
        else:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                self.executor, pool.run_batch, self.settings, batch, units
            )
        self.in_flight.add(future)
        await self._settle(self.limit - 1)

    async def drain(self) -> None:
        await self._settle(0)

    async def _settle(self, block_until: int) -> None:
        while len(self.in_flight) > block_until:
            done, _ = await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                self.in_flight.discard(future)
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    raise WorkerDied() from exc
                self.total.add(result)
                await self.on_batch(result)


class Batcher:
    """Gathers folder parts into batches of about ``batch_size`` stems for the dispatcher.

    A part is never split across batches: its claim is marked done by the one transaction
    that commits its shots.
    """

    def __init__(self, dispatcher: Dispatcher, batch_size: int) -> None:
        self.dispatcher = dispatcher
        self.batch_size = batch_size
        self.parts: list[Part] = []
        self.stems = 0
        self.units: list[Unit] = []

    async def add(self, listing: Listing, parts: Sequence[tuple[Unit | None, list[str]]]) -> None:
        for unit, stems in parts:
            self.parts.append(listing.part(stems))
            self.stems += len(stems)
            if unit is not None:
                self.units.append(unit)
            if self.stems >= self.batch_size:
                await self.flush()

    async def flush(self) -> None:
        if self.parts or self.units:
            parts, units = self.parts, self.units
            self.parts, self.units, self.stems = [], [], 0
            await self.dispatcher.feed(parts, units)

    async def drain(self) -> None:
        await self.flush()
        await self.dispatcher.drain()

"""Pair claimed parts into batches and run them on the workers, a bounded number at once.

The ``Batcher`` gathers parts into batches of about ``batch_size`` shots; the
``Dispatcher`` hands each to a worker process (or, with no workers, runs it here) with at
most two per worker in flight, so memory stays flat however large the dump.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

from lizardctl.core.ingest import pool
from lizardctl.core.ingest.batch import BatchProcessor, BatchSettings
from lizardctl.core.ingest.jobs import Unit
from lizardctl.core.ingest.outcome import BatchResult
from lizardctl.core.ingest.walk import Listing, ShotFiles, Walker


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

    async def feed(self, batch: list[ShotFiles], units: list[Unit]) -> None:
        if self.processor is not None:
            future = asyncio.ensure_future(self.processor.process(batch, units))
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
                result = future.result()
                self.total.add(result)
                await self.on_batch(result)


class Batcher:
    """Gathers folder parts into batches of about ``batch_size`` shots for the dispatcher.

    A part is never split across batches: its claim is marked done by the one transaction
    that commits its shots. Pairing stats every file of a part, so it runs in threads.
    """

    def __init__(self, dispatcher: Dispatcher, walker: Walker, batch_size: int) -> None:
        self.dispatcher = dispatcher
        self.walker = walker
        self.batch_size = batch_size
        self.shots: list[ShotFiles] = []
        self.units: list[Unit] = []

    async def add(self, listing: Listing, parts: Sequence[tuple[Unit | None, list[str]]]) -> None:
        found = await asyncio.gather(
            *(asyncio.to_thread(self.walker.shots, listing, stems) for _, stems in parts)
        )
        for (unit, _), shots in zip(parts, found, strict=True):
            self.shots.extend(shots)
            if unit is not None:
                self.units.append(unit)
            if len(self.shots) >= self.batch_size:
                await self.flush()

    async def flush(self) -> None:
        if self.shots or self.units:
            shots, units = self.shots, self.units
            self.shots, self.units = [], []
            await self.dispatcher.feed(shots, units)

    async def drain(self) -> None:
        await self.flush()
        await self.dispatcher.drain()

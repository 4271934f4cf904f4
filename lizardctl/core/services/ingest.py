"""``lizardctl ingest``: walk dumps, fan batches out to worker processes, record the run."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from lizardctl.core.config import default_store_dir
from lizardctl.core.database import Database
from lizardctl.core.db.models import IngestRun, utcnow
from lizardctl.core.errors import UsageError
from lizardctl.core.ingest import pool
from lizardctl.core.ingest.batch import BatchProcessor, BatchResult, BatchSettings
from lizardctl.core.ingest.walk import ShotFiles, Walker, WalkOptions
from lizardctl.core.photos import DEFAULT_MAX_PIXELS
from lizardctl.core.store import PhotoStore


@dataclass(frozen=True, slots=True)
class IngestOptions:
    paths: Sequence[Path]
    dry_run: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    batch_size: int = 256
    settle_seconds: float = 60.0
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    store: Path | None = None
    delete_source: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True, slots=True)
class IngestSummary:
    run_id: uuid.UUID
    dry_run: bool
    database: str
    store: str
    elapsed_s: float
    pending: int
    ignored_files: int
    result: BatchResult
    problems: list[str]

    @property
    def rejected(self) -> int:
        return self.result.outcomes["rejected"]

    def to_dict(self) -> dict[str, Any]:
        elapsed = max(self.elapsed_s, 1e-9)
        outcomes = self.result.outcomes
        return {
            "run_id": str(self.run_id),
            "dry_run": self.dry_run,
            "ingested": outcomes["ingested"],
            "duplicate": outcomes["duplicate"],
            "pending": self.pending,
            "rejected": outcomes["rejected"],
            "vanished": outcomes["vanished"],
            "rejected_by_reason": dict(sorted(self.result.reasons.items())),
            "ingested_by_type": dict(sorted(self.result.by_type.items())),
            "shots": self.result.shots,
            "ignored_files": self.ignored_files,
            "elapsed_s": round(self.elapsed_s, 3),
            "shots_per_s": round(self.result.shots / elapsed, 1),
            "bytes": self.result.bytes,
            "mb_per_s": round(self.result.bytes / elapsed / 1e6, 2),
            "database": self.database,
            "store": self.store,
            "problems": self.problems,
        }


Progress = Callable[[BatchResult], None]


def _worker_context() -> BaseContext:
    """Workers fork from a fresh forkserver that imported the pipeline once.

    Forking this process (threads, an event loop, open connections) is unsafe; spawning
    makes every worker import pydantic, SQLAlchemy and the schemas again (~0.7 s of CPU
    each). A forkserver started clean, with the pipeline preloaded, avoids both.
    """
    context = get_context("forkserver")
    context.set_forkserver_preload(["lizardctl.core.ingest.pool"])
    return context


class IngestService:
    """Runs one ingest: the walk and the dispatch here, the per-shot work in ``BatchProcessor``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ingest(
        self, options: IngestOptions, progress: Progress | None = None
    ) -> IngestSummary:
        missing = [str(p) for p in options.paths if not p.exists()]
        if missing:
            raise UsageError(f"no such folder: {', '.join(missing)}")
        files = [str(p) for p in options.paths if not p.is_dir()]
        if files:
            raise UsageError(f"not a folder: {', '.join(files)}")
        store = PhotoStore(options.store or default_store_dir(self.db.url))
        if not options.dry_run:
            store.check_writable()
        run_id = uuid.uuid4()
        started = time.monotonic()
        settings = BatchSettings(
            db_url=self.db.url.render_as_string(hide_password=False),
            store_root=str(store.root),
            run_id=run_id,
            now=utcnow(),
            max_pixels=options.max_pixels,
            dry_run=options.dry_run,
            delete_source=options.delete_source,
        )
        if not options.dry_run:
            await self._start_run(run_id, options)
        walker = Walker(
            options.paths,
            WalkOptions(options.settle_seconds, options.include, options.exclude),
            now=time.time(),
        )
        total = BatchResult()
        status = "failed"
        try:
            await self._dispatch(walker, settings, options, total, progress)
            status = "finished"
        except (KeyboardInterrupt, asyncio.CancelledError):
            status = "interrupted"
            raise
        finally:
            total.problems[:0] = walker.stats.problems
            summary = IngestSummary(
                run_id=run_id,
                dry_run=options.dry_run,
                database=self.db.display_url,
                store=str(store.root),
                elapsed_s=time.monotonic() - started,
                pending=walker.stats.pending,
                ignored_files=walker.stats.ignored_files,
                result=total,
                problems=total.problems,
            )
            if not options.dry_run:
                await self._finish_run(run_id, status, summary, failing=status != "finished")
        return summary

    async def _dispatch(
        self,
        walker: Walker,
        settings: BatchSettings,
        options: IngestOptions,
        total: BatchResult,
        progress: Progress | None,
    ) -> None:
        """Feed batches to the workers with a bounded number in flight, so memory stays flat."""
        loop = asyncio.get_running_loop()
        in_flight: set[asyncio.Future[BatchResult]] = set()
        limit = max(1, options.workers) * 2

        async def settle(block_until: int) -> None:
            while len(in_flight) > block_until:
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    in_flight.discard(future)
                    result = future.result()
                    total.add(result)
                    if progress is not None:
                        progress(result)

        processor: BatchProcessor | None = None
        executor: ProcessPoolExecutor | None = None
        if options.workers == 0:
            processor = await BatchProcessor.open(settings)
        else:
            executor = ProcessPoolExecutor(
                options.workers, mp_context=_worker_context(), initializer=pool.initialize
            )

        def submit(batch: list[ShotFiles]) -> asyncio.Future[BatchResult]:
            if processor is not None:
                return asyncio.ensure_future(processor.process(batch))
            return loop.run_in_executor(executor, pool.run_batch, settings, batch)

        try:
            batch: list[ShotFiles] = []
            async for shots in walker:
                batch.extend(shots)
                while len(batch) >= options.batch_size:
                    in_flight.add(submit(batch[: options.batch_size]))
                    del batch[: options.batch_size]
                    await settle(limit - 1)
            if batch:
                in_flight.add(submit(batch))
            await settle(0)
        finally:
            # On failure, batches not started are dropped, but those already running are
            # let finish: each is one transaction that may commit, and the run must count it.
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            try:
                if in_flight:
                    outcomes = await asyncio.gather(*in_flight, return_exceptions=True)
                    for outcome in outcomes:
                        if isinstance(outcome, BatchResult):
                            total.add(outcome)
                            if progress is not None:
                                progress(outcome)
            finally:
                if executor is not None:
                    executor.shutdown(wait=True)
                if processor is not None:
                    await processor.close()

    async def _start_run(self, run_id: uuid.UUID, options: IngestOptions) -> None:
        async with self.db.uow() as uow:
            await uow.runs.add(
                IngestRun(
                    id=run_id,
                    paths=[str(p.absolute()) for p in options.paths],
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    dry_run=False,
                    started_at=utcnow(),
                )
            )
            await uow.commit()

    async def _finish_run(
        self, run_id: uuid.UUID, status: str, summary: IngestSummary, *, failing: bool
    ) -> None:
        """Record the outcome; when the run is already failing, the first error is the story."""
        try:
            await self._record_outcome(run_id, status, summary)
        except Exception:
            if not failing:
                raise

    async def _record_outcome(self, run_id: uuid.UUID, status: str, summary: IngestSummary) -> None:
        counts = summary.to_dict()
        record = {
            key: counts[key]
            for key in (
                "ingested",
                "duplicate",
                "pending",
                "rejected",
                "vanished",
                "rejected_by_reason",
                "ingested_by_type",
                "shots",
                "ignored_files",
                "elapsed_s",
                "problems",
            )
        }
        async with self.db.uow() as uow:
            await uow.runs.finish(
                run_id,
                status=status,
                finished_at=utcnow(),
                counts=record,
                bytes_read=summary.result.bytes,
            )
            await uow.commit()

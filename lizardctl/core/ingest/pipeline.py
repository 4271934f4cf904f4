"""One ingest run, top to bottom.

In the main process: walk (``walk.py``: list folders, names only) → claim (``jobs.py``,
``feed.py``: take folder parts through the database) → dispatch (``dispatch.py``: a
batch of parts, as file names, to a worker). In a worker process (``pool.py``,
``batch.py``): pair (``walk.pair``: stat, photo with metadata file) → read → examine
(``examine.py``: decode, detect, validate, map, probe) → store (the photo store) →
commit (the repository, one transaction per batch). Back in the main process: outcome
(``outcome.py``, ``runs.py``: counted, recorded). The main process mostly waits.

SIGINT and SIGTERM stop the feed; the batches in flight still commit and the run is
recorded ``interrupted`` (``signals.py``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lizardctl.core.choices import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLAIM_LEASE,
    DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_PHOTO_BYTES,
    DEFAULT_SETTLE_S,
)
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import utcnow
from lizardctl.core.ingest.batch import BatchSettings
from lizardctl.core.ingest.dispatch import Batcher, Dispatcher
from lizardctl.core.ingest.feed import Feed
from lizardctl.core.ingest.jobs import JobMembership, job_key
from lizardctl.core.ingest.outcome import BatchResult, IngestSummary, Outcome, Progress
from lizardctl.core.ingest.runs import RunRecord
from lizardctl.core.ingest.signals import Interrupted, StopOnSignal
from lizardctl.core.ingest.walk import Walker, WalkOptions
from lizardctl.core.photos import DEFAULT_MAX_PIXELS
from lizardctl.core.storable import storable
from lizardctl.core.store.backend import Backend
from lizardctl.core.vocabulary import RunStatus


@dataclass(frozen=True, slots=True)
class IngestOptions:
    paths: Sequence[Path]
    dry_run: bool = False
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    batch_size: int = DEFAULT_BATCH_SIZE
    settle_seconds: float = DEFAULT_SETTLE_S
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    store: str | None = None
    delete_source: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_photo_bytes: int = DEFAULT_MAX_PHOTO_BYTES
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    shard: tuple[int, int] | None = None
    claim_lease: float = DEFAULT_CLAIM_LEASE


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What a run needs from its caller besides the options.

    ``admit`` is asked once the run is recorded, before the first batch, and raises to
    refuse it (a prune is deleting photos: ``services/prune_guard.py``). ``executor`` is
    the pool forked before the event loop started (``pool.start_workers``), or None for
    one to be started here.
    """

    db: Database
    store: Backend
    store_id: uuid.UUID | None
    worker: str
    admit: Callable[[], Awaitable[None]]
    executor: ProcessPoolExecutor | None = None
    warnings: tuple[str, ...] = ()

    async def run(
        self, options: IngestOptions, progress: Progress | None, outcome: Outcome | None
    ) -> IngestSummary:
        run_id = uuid.uuid4()
        started = time.monotonic()
        job = None
        if not options.dry_run:
            key = job_key(options.paths, options.shard, options.include, options.exclude)
            job = JobMembership(self.db, key, self.worker, options.claim_lease, options.batch_size)
            await job.join()
        walk_options = WalkOptions(
            options.settle_seconds, options.include, options.exclude, shard=options.shard
        )
        walker = Walker(options.paths, walk_options, now=time.time())
        settings = self._settings(options, run_id, job, walker)
        record = RunRecord(self.db, run_id)
        if job is not None:
            await record.start(options.paths, job.job_id, options.shard, options.claim_lease)
        total = BatchResult()

        async def on_batch(result: BatchResult) -> None:
            if progress is not None:
                progress(result)
            if job is not None:
                await job.beat()

        status = RunStatus.FAILED
        with StopOnSignal() as stop:
            try:
                if job is not None:
                    # Again now that the run is committed: a prune that started meanwhile
                    # either sees this run or is seen here (services/prune_guard.py).
                    await self.admit()
                async with Dispatcher(
                    settings, options.workers, total, on_batch, self.executor
                ) as dispatcher:
                    batcher = Batcher(dispatcher, options.batch_size)
                    feed = Feed(walker, batcher, job, stop, dispatcher.limit)
                    await feed.run()
                    total.outcomes["elsewhere"] += feed.elsewhere
                    if job is not None and stop.signal is None:
                        await feed.sweep()
                        await job.finish()
                status = RunStatus.FINISHED if stop.signal is None else RunStatus.INTERRUPTED
            finally:
                total.problems[:0] = walker.stats.problems
                summary = self._summary(options, run_id, job, walker, total, started)
                if outcome is not None:
                    outcome(summary, status)
                if job is not None:
                    await record.finish(status, summary, failing=status is RunStatus.FAILED)
                    if status is not RunStatus.FINISHED:
                        await job.release()
        if stop.signal is not None:
            raise Interrupted(stop.signal, summary)
        return summary

    def _settings(
        self,
        options: IngestOptions,
        run_id: uuid.UUID,
        job: JobMembership | None,
        walker: Walker,
    ) -> BatchSettings:
        """What every worker needs to judge and persist shots (picklable)."""
        return BatchSettings(
            db_url=self.db.url.render_as_string(hide_password=False),
            store=self.store,
            store_id=self.store_id,
            lock_timeout=self.db.lock_timeout,
            run_id=run_id,
            now=utcnow(),
            max_pixels=options.max_pixels,
            dry_run=options.dry_run,
            delete_source=options.delete_source,
            job_id=job.job_id if job else None,
            worker=self.worker,
            max_photo_bytes=options.max_photo_bytes,
            max_metadata_bytes=options.max_metadata_bytes,
            roots=tuple(walker.real_roots),
            young_after=walker.young_after,
        )

    def _summary(
        self,
        options: IngestOptions,
        run_id: uuid.UUID,
        job: JobMembership | None,
        walker: Walker,
        total: BatchResult,
        started: float,
    ) -> IngestSummary:
        """Problems name files: shown and stored as the database stores paths."""
        stats, pending = walker.stats, total.pending
        return IngestSummary(
            run_id=run_id,
            dry_run=options.dry_run,
            database=self.db.display_url,
            store=self.store.location,
            elapsed_s=time.monotonic() - started,
            pending=pending.count,
            pending_future=pending.future,
            pending_example=storable(pending.example),
            future_example=storable(pending.future_example),
            ignored_files=stats.ignored_files,
            result=total,
            problems=[storable(problem) for problem in total.problems],
            job_id=job.job_id if job else None,
            warnings=self.warnings,
        )

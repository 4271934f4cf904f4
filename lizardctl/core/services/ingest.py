"""``lizardctl ingest``: walk dumps, fan batches out to worker processes, record the run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from lizardctl.core.choices import (
    DEFAULT_CLAIM_LEASE,
    DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_PHOTO_BYTES,
)
from lizardctl.core.config import default_store_dir
from lizardctl.core.database import Database
from lizardctl.core.db.models import IngestRun, utcnow
from lizardctl.core.errors import LizardError, UsageError
from lizardctl.core.ingest import pool
from lizardctl.core.ingest.batch import BatchProcessor, BatchResult, BatchSettings, Unit
from lizardctl.core.ingest.walk import Listing, ShotFiles, Walker, WalkOptions
from lizardctl.core.liveness import worker_name
from lizardctl.core.photos import DEFAULT_MAX_PIXELS
from lizardctl.core.services.ingest_jobs import IngestJob, folder_key, job_key
from lizardctl.core.services.prune_guard import refuse_if_pruning
from lizardctl.core.storable import storable, storable_json
from lizardctl.core.store import PhotoStore

SWEEP_POLL_S = (0.05, 2.0)
"""A run that has finished its own parts looks at the others' after 0.05 s, then twice
as long each time up to 2 s: others' last batches take a fraction of a second, and a
long wait (a slow host) should not cost the database a query every 50 ms."""


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
    max_photo_bytes: int = DEFAULT_MAX_PHOTO_BYTES
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    shard: tuple[int, int] | None = None
    claim_lease: float = DEFAULT_CLAIM_LEASE


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
    job_id: uuid.UUID | None = None
    warnings: tuple[str, ...] = ()
    pending_future: int = 0
    """Of ``pending``, shots with a file modified in the future; the rest wait for --settle."""
    pending_example: str | None = None
    future_example: str | None = None

    @property
    def rejected(self) -> int:
        return self.result.outcomes["rejected"]

    def to_dict(self) -> dict[str, Any]:
        elapsed = max(self.elapsed_s, 1e-9)
        outcomes = self.result.outcomes
        return {
            "run_id": None if self.dry_run else str(self.run_id),  # a dry run is not recorded
            "dry_run": self.dry_run,
            "ingested": outcomes["ingested"],
            "duplicate": outcomes["duplicate"],
            "pending": self.pending,
            "pending_settle": self.pending - self.pending_future,
            "pending_future": self.pending_future,
            "pending_example": self.pending_example,
            "future_example": self.future_example,
            "rejected": outcomes["rejected"],
            "vanished": outcomes["vanished"],
            "kept_changed": outcomes["kept_changed"],
            "claimed_elsewhere": outcomes["elsewhere"],
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
            "job_id": str(self.job_id) if self.job_id else None,
            "problems": self.problems,
            "warnings": list(self.warnings),
        }


Progress = Callable[[BatchResult], None]
Outcome = Callable[[IngestSummary, str], None]
"""Told the summary and status (``finished``, ``interrupted``, ``failed``) of a run once it
ends, however it ends: what ``--metrics-file`` reports when the run fails or is stopped."""
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


class _StopOnSignal:
    """While active, SIGINT and SIGTERM ask the run to stop after the batches in flight."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __enter__(self) -> _StopOnSignal:
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


class _Dispatcher:
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

    async def __aenter__(self) -> _Dispatcher:
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


class _Walk:
    """The walk of one run: list folders, claim their parts, batch what is ours.

    Without a job (dry run) every part is ours. With one, parts go to whoever claims them
    first; at the end, ``sweep`` takes over parts whose worker died and waits for the
    ones still in progress, so a finished run leaves nothing of its job open.
    """

    def __init__(
        self,
        walker: Walker,
        batcher: _Batcher,
        job: IngestJob | None,
        stop: _StopOnSignal,
        limit: int,
    ) -> None:
        self.walker = walker
        self.batcher = batcher
        self.job = job
        self.stop = stop
        self.limit = limit
        self.elsewhere = 0
        """Stems of listed folders whose parts other workers of the job took."""

    async def run(self) -> None:
        size = self.batcher.batch_size
        async for listings in self.walker:
            if self.stop.signal is not None:
                return
            if self.job is None:
                for listing in listings:
                    cut = listing.split(listing.parts_for(size))
                    await self.batcher.add(listing, [(None, stems) for stems in cut])
            else:
                await self._take(self.job, listings)
        await self.batcher.drain()

    async def _take(self, job: IngestJob, listings: Sequence[Listing]) -> None:
        agreed = await job.plan(listings)
        by_key = {folder_key(listing.directory): listing for listing in listings}
        cuts = {key: (by_key[key], by_key[key].split(parts)) for key, parts in agreed.items()}
        taken: set[Unit] = set()
        while self.stop.signal is None:
            units = await job.claim(list(agreed), self.limit)
            taken.update(units)
            await self._add(units, cuts)
            if len(units) < self.limit:
                break
        self.elsewhere += sum(
            len(stems)
            for key, (_, cut) in cuts.items()
            for part, stems in enumerate(cut)
            if (key, part) not in taken
        )

    async def _add(
        self, units: Sequence[Unit], cuts: dict[str, tuple[Listing, list[list[str]]]]
    ) -> None:
        """Hand claimed parts to the batcher; ``cuts`` has each folder's listing and parts."""
        for key, group in groupby(units, key=itemgetter(0)):
            listing, cut = cuts[key]
            await self.batcher.add(listing, [((key, part), cut[part]) for _, part in group])

    async def sweep(self) -> None:
        """Finish the job: take over parts whose worker died, wait for the live ones.

        Waiting is bounded by the claim lease: a part is either done by its worker or
        lapsed, and then taken over here.
        """
        assert self.job is not None
        cuts: dict[str, tuple[Listing, list[list[str]]]] = {}
        first, longest = SWEEP_POLL_S
        poll = first
        while self.stop.signal is None:
            parts = await self.job.open_parts()
            if not parts:
                return
            now = utcnow()
            lapsed = sorted({p.folder for p in parts if p.lease_until < now})
            units = await self.job.claim(lapsed, self.limit) if lapsed else []
            if not units:
                wait = min(p.lease_until for p in parts) - now
                await asyncio.sleep(min(max(wait.total_seconds(), 0.02), poll))
                poll = min(poll * 2, longest)
                await self.job.beat()
                continue
            poll = first
            planned = {p.folder: (p.path, p.parts) for p in parts}
            for key in {key for key, _ in units} - cuts.keys():
                path, count = planned[key]
                listing = await self.walker.rescan(os.fsdecode(path))
                cuts[key] = (listing, listing.split(count))
            await self._add(units, cuts)
            await self.batcher.drain()


class _Batcher:
    """Gathers folder parts into batches of about ``batch_size`` shots for the dispatcher.

    A part is never split across batches: its claim is marked done by the one transaction
    that commits its shots. Pairing stats every file of a part, so it runs in threads.
    """

    def __init__(self, dispatcher: _Dispatcher, walker: Walker, batch_size: int) -> None:
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


class IngestService:
    """Runs one ingest: the walk and the dispatch here, the per-shot work in ``BatchProcessor``.

    Every run joins a *job* keyed by its paths (and shard and filters): processes started
    on the same paths while one is alive share the job and claim folder parts through the
    database, so each shot is processed by one of them; parts left by a dead worker are
    taken over once their lease expires. See docs/scaling.md.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.worker = worker_name()

    async def ingest(
        self,
        options: IngestOptions,
        progress: Progress | None = None,
        executor: ProcessPoolExecutor | None = None,
        *,
        outcome: Outcome | None = None,
    ) -> IngestSummary:
        """Run the ingest; ``executor``, from ``pool.start_workers`` called before the event
        loop started, saves each worker its own start-up (else one is started here).
        ``outcome`` hears of the run's end even when it raises; a run refused before it
        started (no such folder, store not writable) is not reported to it."""
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
        warnings = await self._warnings()
        job = None
        if not options.dry_run:
            await refuse_if_pruning(self.db.uow)  # the usual refusal: nothing recorded yet
            key = job_key(options.paths, options.shard, options.include, options.exclude)
            job = IngestJob(self.db, key, self.worker, options.claim_lease, options.batch_size)
            await job.join()
        walker = Walker(
            options.paths,
            WalkOptions(
                options.settle_seconds, options.include, options.exclude, shard=options.shard
            ),
            now=time.time(),
        )
        settings = BatchSettings(
            db_url=self.db.url.render_as_string(hide_password=False),
            store_root=str(store.root),
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
        )
        if job is not None:
            await self._start_run(run_id, options, job.job_id)
        total = BatchResult()

        async def on_batch(result: BatchResult) -> None:
            if progress is not None:
                progress(result)
            if job is not None:
                await job.beat()

        status = "failed"
        with _StopOnSignal() as stop:
            try:
                if job is not None:
                    # Again now that the run is committed: a prune that started meanwhile
                    # either sees this run or is seen here (services/prune_guard.py).
                    await refuse_if_pruning(self.db.uow)
                async with _Dispatcher(
                    settings, options.workers, total, on_batch, executor
                ) as dispatcher:
                    batcher = _Batcher(dispatcher, walker, options.batch_size)
                    walk = _Walk(walker, batcher, job, stop, dispatcher.limit)
                    await walk.run()
                    total.outcomes["elsewhere"] += walk.elsewhere
                    if job is not None and stop.signal is None:
                        await walk.sweep()
                        await job.finish()
                status = "finished" if stop.signal is None else "interrupted"
            finally:
                total.problems[:0] = walker.stats.problems
                # Problems name files: shown and stored as the database stores paths.
                summary = IngestSummary(
                    run_id=run_id,
                    dry_run=options.dry_run,
                    database=self.db.display_url,
                    store=str(store.root),
                    elapsed_s=time.monotonic() - started,
                    pending=walker.stats.pending,
                    pending_future=walker.stats.pending_future,
                    pending_example=storable(walker.stats.pending_example),
                    future_example=storable(walker.stats.future_example),
                    ignored_files=walker.stats.ignored_files,
                    result=total,
                    problems=[storable(problem) for problem in total.problems],
                    job_id=job.job_id if job else None,
                    warnings=warnings,
                )
                if outcome is not None:
                    outcome(summary, status)
                if job is not None:
                    await self._finish_run(run_id, status, summary, failing=status == "failed")
                    if status != "finished":
                        await job.release()
        if stop.signal is not None:
            raise Interrupted(stop.signal, summary)
        return summary

    async def _warnings(self) -> tuple[str, ...]:
        async with self.db.uow() as uow:
            if not await uow.violations.ids():
                return (
                    "the violation catalog is empty: violation ids are not checked "
                    "(lizardctl violation import FILE turns the check on)",
                )
        return ()

    async def _start_run(
        self, run_id: uuid.UUID, options: IngestOptions, job_id: uuid.UUID
    ) -> None:
        async with self.db.uow() as uow:
            await uow.runs.add(
                IngestRun(
                    id=run_id,
                    paths=[storable(str(p.absolute())) for p in options.paths],
                    host=storable(socket.gethostname()),
                    pid=os.getpid(),
                    dry_run=False,
                    started_at=utcnow(),
                    job_id=job_id,
                    shard=f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
                    claim_lease_s=options.claim_lease,
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
        """Problems name folders and files, which need not be UTF-8: stored escaped, or
        the update would fail on PostgreSQL and leave the run ``running`` for ever."""
        counts = summary.to_dict()
        record = {
            key: counts[key]
            for key in (
                "ingested",
                "duplicate",
                "pending",
                "rejected",
                "vanished",
                "kept_changed",
                "claimed_elsewhere",
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
                counts=storable_json(record),
                bytes_read=summary.result.bytes,
            )
            await uow.commit()

"""``lizardctl ingest``: walk dumps, fan batches out to worker processes, record the run."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing import get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from lizardctl.core.config import default_store_dir
from lizardctl.core.database import Database
from lizardctl.core.db.models import IngestClaim, IngestRun, utcnow
from lizardctl.core.errors import LizardError, UsageError
from lizardctl.core.ingest import pool
from lizardctl.core.ingest.batch import BatchProcessor, BatchResult, BatchSettings
from lizardctl.core.ingest.reasons import Reason
from lizardctl.core.ingest.walk import ShotFiles, Walker, WalkOptions
from lizardctl.core.liveness import worker_alive, worker_name
from lizardctl.core.photos import DEFAULT_MAX_PIXELS
from lizardctl.core.store import PhotoStore

DEFAULT_CLAIM_LEASE = 300.0
"""Seconds a worker may hold a claim before others take the shot over: far above a batch."""


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


class _Heartbeat:
    """Keeps the job alive for processes that start later, at most every third of a lease."""

    def __init__(
        self, db: Database, key: str, job_id: uuid.UUID | None, lease: float, worker: str
    ) -> None:
        self.db = db
        self.worker = worker
        self.key = key
        self.job_id = job_id
        self.every = lease / 3
        self.last = time.monotonic()

    async def beat(self, *, force: bool = False) -> None:
        if self.job_id is None or (not force and time.monotonic() - self.last < self.every):
            return
        self.last = time.monotonic()
        async with self.db.uow() as uow:
            await uow.claims.heartbeat(self.key, self.job_id, utcnow(), self.worker)
            await uow.commit()


def _job_key(options: IngestOptions) -> str:
    """Runs with the same key cooperate: same folders, shard and filters."""
    spec = {
        "paths": sorted(str(p.absolute()) for p in options.paths),
        "shard": options.shard,
        "include": sorted(options.include),
        "exclude": sorted(options.exclude),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _shot_of(claim: IngestClaim) -> ShotFiles:
    problem = None
    if claim.problem_reason is not None:
        problem = (Reason(claim.problem_reason), claim.problem_message or "")
    return ShotFiles(claim.photo_path, claim.metadata_path, problem)


def _worker_context() -> BaseContext:
    """Workers fork from a fresh forkserver that imported the pipeline once.

    Forking this process (threads, an event loop, open connections) is unsafe; spawning
    makes every worker import pydantic, SQLAlchemy and the schemas again (~0.7 s of CPU
    each). A forkserver started clean, with the pipeline preloaded, avoids both.
    """
    context = get_context("forkserver")
    context.set_forkserver_preload(["lizardctl.core.ingest.pool"])
    return context


class _Dispatcher:
    """Feeds batches to the workers with a bounded number in flight, so memory stays flat."""

    def __init__(
        self,
        settings: BatchSettings,
        workers: int,
        total: BatchResult,
        on_batch: Callable[[BatchResult], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.total = total
        self.on_batch = on_batch
        self.limit = max(1, workers) * 2
        self.in_flight: set[asyncio.Future[BatchResult]] = set()
        self.processor: BatchProcessor | None = None
        self.executor: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> _Dispatcher:
        if self.workers == 0:
            self.processor = await BatchProcessor.open(self.settings)
        else:
            self.executor = ProcessPoolExecutor(
                self.workers, mp_context=_worker_context(), initializer=pool.initialize
            )
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

    async def feed(self, batch: list[ShotFiles]) -> None:
        if self.processor is not None:
            future = asyncio.ensure_future(self.processor.process(batch))
        else:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, pool.run_batch, self.settings, batch)
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


class IngestService:
    """Runs one ingest: the walk and the dispatch here, the per-shot work in ``BatchProcessor``.

    Every run joins a *job* keyed by its paths (and shard and filters): processes started
    on the same paths while one is alive share the job and claim shots through the
    database, so each shot is processed by one of them; claims left by a dead worker are
    taken over once their lease expires. See docs/scaling.md.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.worker = worker_name()

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
        warnings = await self._warnings()
        job_key = _job_key(options)
        job_id = None if options.dry_run else await self._join_job(job_key, options)
        settings = BatchSettings(
            db_url=self.db.url.render_as_string(hide_password=False),
            store_root=str(store.root),
            run_id=run_id,
            now=utcnow(),
            max_pixels=options.max_pixels,
            dry_run=options.dry_run,
            delete_source=options.delete_source,
            job_id=job_id,
            worker=self.worker,
            lease_seconds=options.claim_lease,
        )
        if job_id is not None:
            await self._start_run(run_id, options, job_id)
        walker = Walker(
            options.paths,
            WalkOptions(
                options.settle_seconds, options.include, options.exclude, shard=options.shard
            ),
            now=time.time(),
        )
        total = BatchResult()
        heartbeat = _Heartbeat(self.db, job_key, job_id, options.claim_lease, self.worker)

        async def on_batch(result: BatchResult) -> None:
            if progress is not None:
                progress(result)
            await heartbeat.beat()

        status = "failed"
        with _StopOnSignal() as stop:
            try:
                async with _Dispatcher(settings, options.workers, total, on_batch) as dispatcher:
                    await self._walk(walker, dispatcher, options.batch_size, stop)
                    if job_id is not None and stop.signal is None:
                        await self._sweep(dispatcher, job_id, options.batch_size, stop, heartbeat)
                        await self._finish_job(job_key, job_id)
                status = "finished" if stop.signal is None else "interrupted"
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
                    job_id=job_id,
                    warnings=warnings,
                )
                if job_id is not None:
                    await self._finish_run(run_id, status, summary, failing=status == "failed")
                    if status != "finished":
                        await self._release_claims(job_id)
        if stop.signal is not None:
            raise Interrupted(stop.signal, summary)
        return summary

    async def _walk(
        self, walker: Walker, dispatcher: _Dispatcher, batch_size: int, stop: _StopOnSignal
    ) -> None:
        batch: list[ShotFiles] = []
        async for shots in walker:
            batch.extend(shots)
            while len(batch) >= batch_size and stop.signal is None:
                await dispatcher.feed(batch[:batch_size])
                del batch[:batch_size]
            if stop.signal is not None:
                return
        if batch:
            await dispatcher.feed(batch)
        await dispatcher.drain()

    async def _sweep(
        self,
        dispatcher: _Dispatcher,
        job_id: uuid.UUID,
        batch_size: int,
        stop: _StopOnSignal,
        heartbeat: _Heartbeat,
    ) -> None:
        """Finish the job: take over claims whose worker died, wait for the live ones.

        Waiting is bounded by the claim lease: a claim is either done by its worker or
        expired, and then taken over here.
        """
        while stop.signal is None:
            now = utcnow()
            async with self.db.uow() as uow:
                claims = await uow.claims.open_claims(job_id)
                dead = {c.worker for c in claims if not worker_alive(c.worker)}
                await uow.claims.release(job_id, dead, now)
                await uow.commit()
                open_claims = [
                    (now if c.worker in dead else c.lease_until, _shot_of(c)) for c in claims
                ]
            if not open_claims:
                return
            lapsed = [shot for lease_until, shot in open_claims if lease_until <= now]
            for start in range(0, len(lapsed), batch_size):
                await dispatcher.feed(lapsed[start : start + batch_size])
            await dispatcher.drain()
            if not lapsed:
                wait = min(lease_until for lease_until, _ in open_claims) - now
                await asyncio.sleep(min(max(wait.total_seconds(), 0.1), 2.0))
                await heartbeat.beat(force=True)

    async def _join_job(self, key: str, options: IngestOptions) -> uuid.UUID:
        """Join the live job on these paths, or start one; forget claims of dead jobs."""
        now = utcnow()
        stale_before = now - timedelta(seconds=options.claim_lease)
        candidate = uuid.uuid4()
        async with self.db.uow() as uow:
            job_id = candidate
            if not await uow.claims.create_job(key, candidate, now, self.worker):
                job = await uow.claims.lock_job(key)
                if job.finished or job.heartbeat_at < stale_before or not worker_alive(job.worker):
                    await uow.claims.replace_job(key, candidate, now, self.worker)
                else:
                    job_id = job.job_id
                    await uow.claims.heartbeat(key, job_id, now, self.worker)
            await uow.claims.purge(stale_before)
            await uow.commit()
        return job_id

    async def _warnings(self) -> tuple[str, ...]:
        async with self.db.uow() as uow:
            if not await uow.violations.ids():
                return (
                    "the violation catalog is empty: violation ids are not checked "
                    "(lizardctl violation import FILE turns the check on)",
                )
        return ()

    async def _release_claims(self, job_id: uuid.UUID) -> None:
        """Hand this process's unfinished claims back at once, not after the lease: a failed
        batch's shots are then retried by the next run or by the job's other workers.
        Best effort: when the database is what failed, the lease frees them later."""
        with suppress(Exception):
            async with self.db.uow() as uow:
                await uow.claims.release(job_id, [self.worker], utcnow())
                await uow.commit()

    async def _finish_job(self, key: str, job_id: uuid.UUID) -> None:
        async with self.db.uow() as uow:
            await uow.claims.finish_job(key, job_id)
            await uow.commit()

    async def _start_run(
        self, run_id: uuid.UUID, options: IngestOptions, job_id: uuid.UUID
    ) -> None:
        async with self.db.uow() as uow:
            await uow.runs.add(
                IngestRun(
                    id=run_id,
                    paths=[str(p.absolute()) for p in options.paths],
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    dry_run=False,
                    started_at=utcnow(),
                    job_id=job_id,
                    shard=f"{options.shard[0]}/{options.shard[1]}" if options.shard else None,
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
                counts=record,
                bytes_read=summary.result.bytes,
            )
            await uow.commit()

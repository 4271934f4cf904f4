"""``lizardctl ingest``: the service in front of the pipeline in ``core/ingest/``.

It checks what a run is given (folders exist, the store is writable), refuses while a
prune runs, and hands over to ``Pipeline``; ``forked_workers`` is the seam that lets the
command start the worker processes before its event loop exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial

from lizardctl.core.db.database import Database
from lizardctl.core.errors import UsageError
from lizardctl.core.ingest import pool
from lizardctl.core.ingest.outcome import IngestSummary, Outcome, Progress
from lizardctl.core.ingest.pipeline import IngestOptions, Pipeline
from lizardctl.core.liveness import worker_name
from lizardctl.core.services.prune_guard import refuse_if_pruning
from lizardctl.core.services.stores import StoreService

__all__ = ["IngestOptions", "IngestService", "IngestSummary"]


class IngestService:
    """Runs one ingest; the walk, the claims and the per-shot work are in ``core/ingest/``.

    Every run joins a *job* keyed by its paths (and shard and filters): processes started
    on the same paths while one is alive share the job and claim folder parts through the
    database, so each shot is processed by one of them; parts left by a dead worker are
    taken over once their lease expires. See docs/scaling.md.
    """

    def __init__(self, db: Database, workers: ProcessPoolExecutor | None = None) -> None:
        self.db = db
        self.workers = workers
        self.worker = worker_name()

    @staticmethod
    @contextmanager
    def forked_workers(count: int) -> Iterator[ProcessPoolExecutor | None]:
        """Start ``count`` worker processes now, for ``IngestService(db, workers)``, and
        stop them on exit.

        Called before the event loop, its threads and the database connections exist, the
        workers are forked with this process's imports, ~0.8 s of CPU cheaper each than a
        forkserver's (``pool.start_workers``); ``ingest`` started without them gets one.
        """
        executor = pool.start_workers(count) if count else None
        try:
            yield executor
        finally:
            if executor is not None:
                executor.shutdown(cancel_futures=True)

    async def ingest(
        self,
        options: IngestOptions,
        progress: Progress | None = None,
        *,
        outcome: Outcome | None = None,
    ) -> IngestSummary:
        """Run the ingest. ``outcome`` hears of the run's end even when it raises; a run
        refused before it started (no such folder, store not writable) is not reported."""
        missing = [str(p) for p in options.paths if not p.exists()]
        if missing:
            raise UsageError(f"no such folder: {', '.join(missing)}")
        files = [str(p) for p in options.paths if not p.is_dir()]
        if files:
            raise UsageError(f"not a folder: {', '.join(files)}")
        opened = await StoreService(self.db.uow, self.db.url).open(
            options.store, create=not options.dry_run
        )
        store = opened.store
        if not options.dry_run:
            store.check_writable()
        warnings = await self._warnings()
        if not options.dry_run:
            await refuse_if_pruning(self.db.uow)  # the usual refusal: nothing recorded yet
        pipeline = Pipeline(
            self.db,
            store.backend,
            opened.id,
            self.worker,
            admit=partial(refuse_if_pruning, self.db.uow),
            executor=self.workers,
            warnings=warnings,
        )
        return await pipeline.run(options, progress, outcome)

    async def _warnings(self) -> tuple[str, ...]:
        async with self.db.uow() as uow:
            if not await uow.violations.ids():
                return (
                    "the violation catalog is empty: violation ids are not checked "
                    "(lizardctl violation import FILE turns the check on)",
                )
        return ()

"""``verify --prune`` and ``ingest`` never run at once against one database.

Why: the store keeps one file per distinct photo, and ingest re-uses a file that is already
there instead of writing it again. A photo left unused by an interrupted run, older than
``--min-age``, may be the very one a running ingest is about to reference: a prune deleting
it between the ingest's "already stored" and its commit leaves a committed case without its
photo. Making ingest touch the files it re-uses would still leave a window between the
prune's look at the file and its unlink; so the two are kept apart instead, through rows
both already keep in the database (the store does not record which store a run used, so a
live ingest on the same database blocks a prune of any store):

- a prune commits a ``prunes`` row, then looks for live ingest runs: if there are any it
  removes its row and refuses (exit 3);
- an ingest commits its ``running`` run row, then looks for live prunes: if there are any
  it records the run failed and refuses (exit 3). It looks once before registering too, so
  the usual refusal leaves no failed run behind.

Each side commits its own row before it reads the other's, so of two starting at once at
least one sees the other (a READ COMMITTED statement on PostgreSQL sees every commit made
before it began; SQLite runs one transaction at a time): both may refuse, never both go on.
Before each batch of deletions the prune beats its row and looks for live runs again, so a
prune stalled past the stale window, which an ingest took for dead, stops there.

Alive means: on this host, the process exists and started before the run or prune did
(a later one merely got its pid again); on another host, its heartbeat is recent: a
run's job heartbeat younger than the run's claim lease (the rule by which its claims are
taken over), a prune's own heartbeat younger than ``PRUNE_STALE_S``. A crashed run or prune
stops counting as soon as that rule says so, and never blocks for good.
"""

from __future__ import annotations

import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from lizardctl.core.choices import DEFAULT_CLAIM_LEASE
from lizardctl.core.db.models import utcnow
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import IngestRunning, PruneRunning
from lizardctl.core.liveness import alive_since, worker_name
from lizardctl.core.repositories.prunes import PruneMarker

PRUNE_BEAT_S = 10.0
"""A prune renews its row at most this often, between pages and before each delete batch."""
PRUNE_STALE_S = DEFAULT_CLAIM_LEASE
"""A prune on another host whose row is older than this is taken for dead: thirty beats."""
_NAMED = 3


@dataclass(frozen=True, slots=True)
class LiveIngest:
    run_id: uuid.UUID
    worker: str
    started_at: datetime

    def __str__(self) -> str:
        return f"run {self.run_id} ({self.worker}, started {_when(self.started_at)})"


async def live_ingests(uow: UnitOfWork, now: datetime) -> list[LiveIngest]:
    """Runs recorded ``running`` whose process is alive by the rule above."""
    found = []
    for run in await uow.prunes.running_runs():
        worker = f"{run.host}:{run.pid}"
        lease = run.claim_lease_s or DEFAULT_CLAIM_LEASE
        if alive_since(worker, run.heartbeat_at, lease, now, started_at=run.started_at):
            found.append(LiveIngest(run.run_id, worker, run.started_at))
    return found


async def live_prunes(uow: UnitOfWork, now: datetime) -> list[PruneMarker]:
    return [
        marker
        for marker in await uow.prunes.markers()
        if alive_since(
            marker.worker, marker.heartbeat_at, PRUNE_STALE_S, now, started_at=marker.started_at
        )
    ]


async def refuse_if_pruning(uow_factory: UowFactory) -> None:
    """Raise ``PruneRunning`` when a prune is alive; ingest calls it after committing its run."""
    async with uow_factory() as uow:
        prunes = await live_prunes(uow, utcnow())
    if prunes:
        running = ", ".join(f"{p.worker}, started {_when(p.started_at)}" for p in prunes)
        raise PruneRunning(running)


class PruneGuard:
    """Held by a prune for as long as it may delete store files: ``async with`` it."""

    def __init__(self, uow_factory: UowFactory, worker: str | None = None) -> None:
        self.uow_factory = uow_factory
        self.worker = worker or worker_name()
        self.id = uuid.uuid4()
        self._last_beat = 0.0

    async def __aenter__(self) -> Self:
        async with self.uow_factory() as uow:
            await uow.prunes.add(self.id, self.worker, utcnow())
            await uow.commit()
        self._last_beat = time.monotonic()
        try:
            await self._refuse_if_ingesting("refusing to prune")
        except BaseException:
            await self._release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._release()

    async def beat(self) -> None:
        """Renew the row if the last renewal is ``PRUNE_BEAT_S`` old: cheap to call often."""
        if time.monotonic() - self._last_beat >= PRUNE_BEAT_S:
            await self._beat()

    async def before_deleting(self) -> None:
        """Renew the row, then look for live ingests again (raising ``IngestRunning``)."""
        await self._beat()
        await self._refuse_if_ingesting("stopped pruning")

    async def _beat(self) -> None:
        async with self.uow_factory() as uow:
            await uow.prunes.beat(self.id, utcnow())
            await uow.commit()
        self._last_beat = time.monotonic()

    async def _refuse_if_ingesting(self, what: str) -> None:
        async with self.uow_factory() as uow:
            runs = await live_ingests(uow, utcnow())
        if runs:
            named = "; ".join(str(run) for run in runs[:_NAMED])
            more = f" and {len(runs) - _NAMED} more" if len(runs) > _NAMED else ""
            raise IngestRunning(
                f"{what}: {len(runs)} ingest run(s) alive in this database: {named}{more}; "
                "prune when no ingest runs (a crashed run stops counting once its process is "
                "gone, or, on another host, once its claim lease has passed since its last "
                "heartbeat)"
            )

    async def _release(self) -> None:
        """Best effort: if the database is what failed, the row goes stale by itself."""
        with suppress(Exception):
            async with self.uow_factory() as uow:
                await uow.prunes.remove(self.id)
                await uow.commit()


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")

"""Prunes in progress and the ingest runs they must not race with: the prune guard's rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, insert, select, update

from lizardctl.core.db.models import IngestJob, IngestRun, Prune
from lizardctl.core.repositories.base import Repository
from lizardctl.core.vocabulary import RunStatus


class RunningRun(NamedTuple):
    """A run recorded ``running``, with its job's last heartbeat (None: the job is gone)."""

    run_id: uuid.UUID
    host: str
    pid: int
    started_at: datetime
    claim_lease_s: float | None
    heartbeat_at: datetime | None


class PruneMarker(NamedTuple):
    worker: str
    started_at: datetime
    heartbeat_at: datetime


class PruneRepository(Repository):
    async def add(self, prune_id: uuid.UUID, worker: str, now: datetime) -> None:
        await self.session.execute(
            insert(Prune).values(id=prune_id, worker=worker, started_at=now, heartbeat_at=now)
        )

    async def beat(self, prune_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(Prune).where(Prune.id == prune_id).values(heartbeat_at=now)
        )

    async def remove(self, prune_id: uuid.UUID) -> None:
        await self.session.execute(delete(Prune).where(Prune.id == prune_id))

    async def markers(self) -> list[PruneMarker]:
        query = select(Prune.worker, Prune.started_at, Prune.heartbeat_at).order_by(
            Prune.started_at
        )
        return [PruneMarker(*row) for row in await self.session.execute(query)]

    async def running_runs(self) -> Sequence[RunningRun]:
        """Every run recorded as running, alive or crashed: the caller judges which."""
        query = (
            select(
                IngestRun.id,
                IngestRun.host,
                IngestRun.pid,
                IngestRun.started_at,
                IngestRun.claim_lease_s,
                IngestJob.heartbeat_at,
            )
            .outerjoin(IngestJob, IngestJob.job_id == IngestRun.job_id)
            .where(IngestRun.status == RunStatus.RUNNING, IngestRun.dry_run.is_(False))
            .order_by(IngestRun.started_at)
        )
        return [RunningRun(*row) for row in await self.session.execute(query)]

"""Jobs and shot claims: how several ``ingest`` processes share one dump through the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lizardctl.core.db.models import IngestClaim, IngestJob
from lizardctl.core.repositories.base import Repository

_JOBS: Table = IngestJob.__table__  # type: ignore[assignment]
_CLAIMS: Table = IngestClaim.__table__  # type: ignore[assignment]
_CHUNK = 400


class ClaimRepository(Repository):
    def _insert(self, table: Table) -> Any:
        module = postgresql if self.session.dialect == "postgresql" else sqlite
        return module.insert(table)

    async def create_job(self, key: str, job_id: uuid.UUID, now: datetime, worker: str) -> bool:
        """Start the first job for ``key``; False when a row for it exists already."""
        statement = (
            self._insert(_JOBS)
            .values(key=key, job_id=job_id, heartbeat_at=now, worker=worker, finished=False)
            .on_conflict_do_nothing()
            .returning(_JOBS.c.job_id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def lock_job(self, key: str) -> IngestJob:
        """The job row of ``key``, locked until commit so joiners decide one at a time."""
        query = select(IngestJob).where(IngestJob.key == key).with_for_update()
        return (await self.session.scalars(query)).one()

    async def replace_job(self, key: str, job_id: uuid.UUID, now: datetime, worker: str) -> None:
        await self.session.execute(
            update(_JOBS)
            .where(_JOBS.c.key == key)
            .values(job_id=job_id, heartbeat_at=now, worker=worker, finished=False)
        )

    async def heartbeat(self, key: str, job_id: uuid.UUID, now: datetime, worker: str) -> None:
        await self.session.execute(
            update(_JOBS)
            .where(_JOBS.c.key == key, _JOBS.c.job_id == job_id)
            .values(heartbeat_at=now, worker=worker, finished=False)
        )

    async def finish_job(self, key: str, job_id: uuid.UUID) -> None:
        """No shot of the job is open: the next run on these paths starts a new job."""
        await self.session.execute(
            update(_JOBS).where(_JOBS.c.key == key, _JOBS.c.job_id == job_id).values(finished=True)
        )

    async def release(self, job_id: uuid.UUID, workers: Iterable[str], now: datetime) -> None:
        """Expire the open claims of workers known to be dead, for others to take over."""
        names = list(workers)
        if names:
            await self.session.execute(
                update(_CLAIMS)
                .where(
                    _CLAIMS.c.job_id == job_id,
                    _CLAIMS.c.done.is_(False),
                    _CLAIMS.c.worker.in_(names),
                )
                .values(lease_until=now)
            )

    async def claim(self, rows: Sequence[dict[str, Any]], now: datetime) -> set[str]:
        """Claim shots; returns those now ours: unclaimed, or claimed by a lapsed worker.

        Rows go in in key order, so two workers claiming overlapping batches on PostgreSQL
        take their row locks in the same order and cannot deadlock.
        """
        if not rows:
            return set()
        insert = self._insert(_CLAIMS)
        statement = insert.on_conflict_do_update(
            index_elements=[_CLAIMS.c.job_id, _CLAIMS.c.shot],
            set_={"worker": insert.excluded.worker, "lease_until": insert.excluded.lease_until},
            where=(_CLAIMS.c.done.is_(False)) & (_CLAIMS.c.lease_until < now),
        ).returning(_CLAIMS.c.shot)
        ordered = sorted(rows, key=lambda row: str(row["shot"]))
        result = await self.session.execute(statement, ordered)
        return {row[0] for row in result}

    async def mark_done(self, job_id: uuid.UUID, shots: Iterable[str]) -> None:
        keys = sorted(shots)
        for start in range(0, len(keys), _CHUNK):
            await self.session.execute(
                update(_CLAIMS)
                .where(_CLAIMS.c.job_id == job_id, _CLAIMS.c.shot.in_(keys[start : start + _CHUNK]))
                .values(done=True)
            )

    async def open_claims(self, job_id: uuid.UUID) -> Sequence[IngestClaim]:
        """Claims of the job not done yet: in progress elsewhere, or left by a dead worker."""
        query = select(IngestClaim).where(IngestClaim.job_id == job_id, IngestClaim.done.is_(False))
        return (await self.session.scalars(query)).all()

    async def purge(self, stale_before: datetime) -> None:
        """Forget the claims of jobs no process has spoken for since ``stale_before``."""
        live = select(_JOBS.c.job_id).where(_JOBS.c.heartbeat_at >= stale_before)
        await self.session.execute(delete(_CLAIMS).where(_CLAIMS.c.job_id.not_in(live)))

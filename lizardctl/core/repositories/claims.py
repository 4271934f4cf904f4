"""Jobs and folder-part claims: how several ``ingest`` processes share one dump through the
database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from lizardctl.core.db.models import IngestClaim, IngestFolder, IngestJob
from lizardctl.core.repositories.base import Repository

_JOBS: Table = IngestJob.__table__  # type: ignore[assignment]
_CLAIMS: Table = IngestClaim.__table__  # type: ignore[assignment]
_FOLDERS: Table = IngestFolder.__table__  # type: ignore[assignment]


class FolderPlan(NamedTuple):
    """A listed folder: its key (sha256 of its path), its path as bytes, proposed parts."""

    folder: str
    path: bytes
    parts: int


class OpenPart(NamedTuple):
    folder: str
    part: int
    parts: int
    path: bytes
    worker: str
    lease_until: datetime


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

    async def plan(
        self, job_id: uuid.UUID, folders: Sequence[FolderPlan], free_since: datetime
    ) -> dict[str, int]:
        """Record the folders' parts, or read back what the first lister decided.

        Returns the agreed number of parts of every folder, and makes sure each part has a
        claim row (unclaimed: empty worker, lease long lapsed) for workers to take.
        """
        if not folders:
            return {}
        insert = self._insert(_FOLDERS)
        upsert = insert.on_conflict_do_update(
            index_elements=[_FOLDERS.c.job_id, _FOLDERS.c.folder],
            set_={"parts": _FOLDERS.c.parts},
        ).returning(_FOLDERS.c.folder, _FOLDERS.c.parts)
        rows = [
            {"job_id": job_id, "folder": f.folder, "path": f.path, "parts": f.parts}
            for f in sorted(folders, key=lambda f: f.folder)
        ]
        agreed = {row[0]: row[1] for row in await self.session.execute(upsert, rows)}
        units = [
            {
                "job_id": job_id,
                "folder": folder,
                "part": part,
                "worker": "",
                "lease_until": free_since,
                "done": False,
            }
            for folder in sorted(agreed)
            for part in range(agreed[folder])
        ]
        await self.session.execute(self._insert(_CLAIMS).on_conflict_do_nothing(), units)
        return agreed

    async def claim(
        self,
        job_id: uuid.UUID,
        folders: Sequence[str],
        worker: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
    ) -> list[tuple[str, int]]:
        """Take the free parts of ``folders`` (at most ``limit``): never claimed, or lapsed.

        The lease is checked again on every row the update locks, so two workers racing
        for one part cannot both get it; on PostgreSQL a limited claim also skips rows
        another worker is locking instead of waiting for them.
        """
        if not folders:
            return []

        def free(table: Any) -> Any:
            return (
                (table.c.job_id == job_id)
                & table.c.folder.in_(sorted(folders))
                & table.c.done.is_(False)
                & (table.c.lease_until < now)
            )

        # The pick reads its own alias of the table: a subquery on the updated table
        # itself would be correlated with the row being updated, and the limit lost.
        other = _CLAIMS.alias("free_part")
        pick = (
            select(other.c.folder, other.c.part)
            .where(free(other))
            .order_by(other.c.folder, other.c.part)
            .limit(limit)
        )
        if self.session.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        # Materialised once: PostgreSQL may otherwise run a LIMIT ... SKIP LOCKED subquery
        # again for every row, each time skipping the rows it just locked, and take more.
        picked = pick.cte("picked").prefix_with("MATERIALIZED")
        chosen = select(picked.c.folder, picked.c.part)
        # The lease is checked again on the updated row itself: on PostgreSQL a row
        # another worker claimed meanwhile is re-read after its lock, and then skipped.
        condition = free(_CLAIMS) & tuple_(_CLAIMS.c.folder, _CLAIMS.c.part).in_(chosen)
        statement = (
            update(_CLAIMS)
            .where(condition)
            .values(worker=worker, lease_until=lease_until)
            .returning(_CLAIMS.c.folder, _CLAIMS.c.part)
        )
        return sorted((row[0], row[1]) for row in await self.session.execute(statement))

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

    async def mark_done(
        self, job_id: uuid.UUID, units: Iterable[tuple[str, int]], worker: str
    ) -> bool:
        """Mark parts done in the batch's own transaction, if ``worker`` still holds them.

        False when another worker has taken one over (this worker's process was thought
        dead, or its lease lapsed): the caller must then roll back, or the part's shots
        would be committed twice. The update locks the rows until the batch commits, so
        a takeover racing with it waits and then sees the parts done.
        """
        wanted = sorted(set(units))
        if not wanted:
            return True
        statement = (
            update(_CLAIMS)
            .where(
                _CLAIMS.c.job_id == job_id,
                _CLAIMS.c.worker == worker,
                _CLAIMS.c.done.is_(False),
                # A few parts per batch; SQLite takes no list of row values after IN.
                or_(*((_CLAIMS.c.folder == f) & (_CLAIMS.c.part == p) for f, p in wanted)),
            )
            .values(done=True)
            .returning(_CLAIMS.c.folder)
        )
        return len((await self.session.execute(statement)).all()) == len(wanted)

    async def open_parts(self, job_id: uuid.UUID) -> list[OpenPart]:
        """Parts of the job not done yet: in progress elsewhere, free, or left by a dead worker."""
        query = (
            select(
                _CLAIMS.c.folder,
                _CLAIMS.c.part,
                _FOLDERS.c.parts,
                _FOLDERS.c.path,
                _CLAIMS.c.worker,
                _CLAIMS.c.lease_until,
            )
            .join(
                _FOLDERS,
                (_FOLDERS.c.job_id == _CLAIMS.c.job_id) & (_FOLDERS.c.folder == _CLAIMS.c.folder),
            )
            .where(_CLAIMS.c.job_id == job_id, _CLAIMS.c.done.is_(False))
            .order_by(_CLAIMS.c.folder, _CLAIMS.c.part)
        )
        return [OpenPart(*row) for row in await self.session.execute(query)]

    async def purge(self, stale_before: datetime) -> None:
        """Forget the claims and folders of jobs no process has spoken for since then."""
        live = select(_JOBS.c.job_id).where(_JOBS.c.heartbeat_at >= stale_before)
        await self.session.execute(delete(_CLAIMS).where(_CLAIMS.c.job_id.not_in(live)))
        await self.session.execute(delete(_FOLDERS).where(_FOLDERS.c.job_id.not_in(live)))

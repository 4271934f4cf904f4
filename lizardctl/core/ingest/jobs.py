"""How ``ingest`` processes sharing a dump agree on who does what: jobs and folder parts.

Every run joins a *job* keyed by its paths, shard and filters. A folder is cut into
*parts* of about one batch of shots each; the first worker to list it records the cut,
and every worker claims free parts before it stats or pairs their files. A part's claim
is marked done in the transaction that commits its cases and rejections. See
docs/scaling.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lizardctl.core.db.database import Database
from lizardctl.core.db.models import utcnow
from lizardctl.core.ingest.walk import Listing
from lizardctl.core.liveness import worker_alive
from lizardctl.core.repositories.claims import FolderPlan, OpenPart

Unit = tuple[str, int]
"""A claimed folder part: (folder key, part number)."""

NEVER_CLAIMED = datetime(2000, 1, 1, tzinfo=UTC)
"""The lease of a part nobody has claimed yet: long lapsed, so anyone may take it."""


def job_key(
    paths: Sequence[Path],
    shard: tuple[int, int] | None,
    include: Sequence[str],
    exclude: Sequence[str],
) -> str:
    """Runs with the same key cooperate: same folders, shard and filters."""
    spec = {
        "paths": sorted(str(p.absolute()) for p in paths),
        "shard": shard,
        "include": sorted(include),
        "exclude": sorted(exclude),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def folder_key(directory: str) -> str:
    """A folder's identity in claims: its path as bytes (names need not be UTF-8)."""
    return hashlib.sha256(os.fsencode(directory)).hexdigest()


class JobMembership:
    """One process's membership of a job: joining, claiming parts, heartbeats, hand-back."""

    def __init__(self, db: Database, key: str, worker: str, lease: float, batch_size: int) -> None:
        self.db = db
        self.key = key
        self.worker = worker
        self.lease = lease
        self.batch_size = batch_size
        self.job_id = uuid.uuid4()
        self.last_beat = time.monotonic()

    async def join(self) -> uuid.UUID:
        """Join the live job on these paths, or start one; forget claims of dead jobs."""
        now = utcnow()
        stale_before = now - timedelta(seconds=self.lease)
        candidate = uuid.uuid4()
        async with self.db.uow() as uow:
            job_id = candidate
            if not await uow.claims.create_job(self.key, candidate, now, self.worker):
                job = await uow.claims.lock_job(self.key)
                if job.finished or job.heartbeat_at < stale_before or not worker_alive(job.worker):
                    await uow.claims.replace_job(self.key, candidate, now, self.worker)
                else:
                    job_id = job.job_id
                    await uow.claims.heartbeat(self.key, job_id, now, self.worker)
            await uow.claims.purge(stale_before)
            await uow.commit()
        self.job_id = job_id
        return job_id

    async def plan(self, listings: Sequence[Listing]) -> dict[str, int]:
        """Each folder's agreed number of parts, keyed by folder key."""
        plans = [
            FolderPlan(
                folder_key(listing.directory),
                os.fsencode(listing.directory),
                listing.parts_for(self.batch_size),
            )
            for listing in listings
        ]
        async with self.db.uow() as uow:
            agreed = await uow.claims.plan(self.job_id, plans, NEVER_CLAIMED)
            await uow.commit()
        return agreed

    async def claim(self, folders: Sequence[str], limit: int) -> list[Unit]:
        """Up to ``limit`` free parts of ``folders``, now ours for one lease."""
        now = utcnow()
        async with self.db.uow() as uow:
            units = await uow.claims.claim(
                self.job_id,
                folders,
                self.worker,
                now,
                now + timedelta(seconds=self.lease),
                limit,
            )
            await uow.commit()
        return units

    async def open_parts(self) -> list[OpenPart]:
        """Parts not done yet, with those of processes gone from this host freed at once."""
        async with self.db.uow() as uow:
            parts = await uow.claims.open_parts(self.job_id)
            dead = {p.worker for p in parts if p.worker and not worker_alive(p.worker)}
            if dead:
                now = utcnow()
                await uow.claims.release(self.job_id, dead, now)
                parts = [p._replace(lease_until=now) if p.worker in dead else p for p in parts]
            await uow.commit()
        return parts

    async def beat(self, *, force: bool = False) -> None:
        """Keep the job alive for processes that start later, at most every third of a lease."""
        if not force and time.monotonic() - self.last_beat < self.lease / 3:
            return
        self.last_beat = time.monotonic()
        async with self.db.uow() as uow:
            await uow.claims.heartbeat(self.key, self.job_id, utcnow(), self.worker)
            await uow.commit()

    async def release(self) -> None:
        """Hand this process's unfinished parts back at once, not after the lease: a failed
        batch's shots are then retried by the job's other workers or the next run.
        Best effort: when the database is what failed, the lease frees them later."""
        with suppress(Exception):
            async with self.db.uow() as uow:
                await uow.claims.release(self.job_id, [self.worker], utcnow())
                await uow.commit()

    async def finish(self) -> None:
        """No part is open: the next run on these paths starts a new job."""
        async with self.db.uow() as uow:
            await uow.claims.finish_job(self.key, self.job_id)
            await uow.commit()

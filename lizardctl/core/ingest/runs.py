"""The ``ingest_runs`` row of a run: recorded ``running`` before the first batch, and its
outcome (status and counts) once it ends, however it ends."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from lizardctl.core.db.database import Database
from lizardctl.core.db.models import IngestRun, utcnow
from lizardctl.core.ingest.outcome import IngestSummary
from lizardctl.core.storable import storable, storable_json
from lizardctl.core.vocabulary import RunStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

RECORDED_COUNTS = (
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


class RunRecord:
    def __init__(self, db: Database, run_id: uuid.UUID) -> None:
        self.db = db
        self.run_id = run_id

    async def start(
        self,
        paths: Sequence[Path],
        job_id: uuid.UUID,
        shard: tuple[int, int] | None,
        claim_lease: float,
    ) -> None:
        async with self.db.uow() as uow:
            await uow.runs.add(
                IngestRun(
                    id=self.run_id,
                    paths=[storable(str(p.absolute())) for p in paths],
                    host=storable(socket.gethostname()),
                    pid=os.getpid(),
                    dry_run=False,
                    started_at=utcnow(),
                    job_id=job_id,
                    shard=f"{shard[0]}/{shard[1]}" if shard else None,
                    claim_lease_s=claim_lease,
                )
            )
            await uow.commit()

    async def finish(self, status: RunStatus, summary: IngestSummary, *, failing: bool) -> None:
        """Record the outcome; when the run is already failing, the first error is the story."""
        try:
            await self._record(status, summary)
        except Exception:
            if not failing:
                raise

    async def _record(self, status: RunStatus, summary: IngestSummary) -> None:
        """Problems name folders and files, which need not be UTF-8: stored escaped, or
        the update would fail on PostgreSQL and leave the run ``running`` for ever."""
        counts = summary.to_dict()
        record = {key: counts[key] for key in RECORDED_COUNTS}
        async with self.db.uow() as uow:
            await uow.runs.finish(
                self.run_id,
                status=status,
                finished_at=utcnow(),
                counts=storable_json(record),
                bytes_read=summary.result.bytes,
            )
            await uow.commit()

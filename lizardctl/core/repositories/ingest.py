"""What ingest writes: runs, photos, cases and rejections, in bulk."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, func, insert, select, update

from lizardctl.core.db.models import Case, IngestRun, Photo, Rejection
from lizardctl.core.ids import IdText
from lizardctl.core.ingest.identity import CaseIdentity, StoredCase
from lizardctl.core.ingest.records import NewCase, NewPhoto, RejectedShot
from lizardctl.core.repositories._dialect import insert_ignoring_conflicts
from lizardctl.core.repositories.base import Repository
from lizardctl.core.vocabulary import CaseStatus, RunStatus

ShotKey = tuple[str, str]
# Bulk writes go to the tables, not the mapped classes: Core executemany skips the ORM's
# per-row bookkeeping, which cost more than the insert itself.
_PHOTOS: Table = Photo.__table__  # type: ignore[assignment]
_CASES: Table = Case.__table__  # type: ignore[assignment]
_REJECTIONS: Table = Rejection.__table__  # type: ignore[assignment]
_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Committed:
    """What a run committed, as its rows in the database show it."""

    cases: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    """Rejections per reason code."""


class RunRepository(Repository):
    async def add(self, run: IngestRun) -> None:
        self.session.add(run)
        await self.session.flush()

    async def finish(
        self,
        run_id: uuid.UUID,
        *,
        status: RunStatus,
        finished_at: datetime,
        counts: dict[str, Any],
        bytes_read: int,
    ) -> None:
        await self.session.execute(
            update(IngestRun)
            .where(IngestRun.id == run_id)
            .values(status=status, finished_at=finished_at, counts=counts, bytes=bytes_read)
        )

    async def get(self, run_id: uuid.UUID) -> IngestRun | None:
        return await self.session.get(IngestRun, run_id)

    async def ids_between(self, low: uuid.UUID, high: uuid.UUID, limit: int) -> list[uuid.UUID]:
        return await self._ids_between(IngestRun.id, low, high, limit)

    async def last(self) -> IngestRun | None:
        query = select(IngestRun).order_by(IngestRun.started_at.desc()).limit(1)
        return await self.session.scalar(query)

    async def of_job(self, job_id: uuid.UUID) -> Sequence[IngestRun]:
        """Every run that took part in a job, oldest first."""
        query = select(IngestRun).where(IngestRun.job_id == job_id).order_by(IngestRun.started_at)
        return (await self.session.scalars(query)).all()

    async def since(self, start: datetime) -> Sequence[IngestRun]:
        query = (
            select(IngestRun).where(IngestRun.started_at >= start).order_by(IngestRun.started_at)
        )
        return (await self.session.scalars(query)).all()

    async def committed(self, run_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Committed]:
        """The cases and rejections each run committed (both tables are indexed by run)."""
        if not run_ids:
            return {}
        ids = list(run_ids)
        counted = await self.session.execute(
            select(Case.run_id, func.count()).where(Case.run_id.in_(ids)).group_by(Case.run_id)
        )
        cases: dict[uuid.UUID, int] = dict(counted.all())  # not dict(counted): it has keys()
        rejections: dict[uuid.UUID, dict[str, int]] = {}
        rows = await self.session.execute(
            select(Rejection.run_id, Rejection.reason, func.count())
            .where(Rejection.run_id.in_(ids))
            .group_by(Rejection.run_id, Rejection.reason)
            .order_by(Rejection.reason)
        )
        for run_id, reason, count in rows:  # ordered by reason: stable output
            rejections.setdefault(run_id, {})[reason] = count
        return {
            run_id: Committed(cases.get(run_id, 0), rejections.get(run_id, {})) for run_id in ids
        }


class ShotRepository(Repository):
    """Photos, cases and rejections of ingested shots."""

    async def existing(self, keys: Iterable[ShotKey]) -> set[ShotKey]:
        """Which (photo sha256, metadata sha256) pairs are already cases.

        Looked up by photo hash alone, the leading column of the unique index, and the
        pairs filtered here: SQLite answers a row-value ``(a, b) IN (...)`` with a scan of
        the whole index, which makes every batch cost more as the table grows.
        """
        wanted = set(keys)
        photos = sorted({photo for photo, _ in wanted})
        found: set[ShotKey] = set()
        for start in range(0, len(photos), _CHUNK):
            rows = await self.session.execute(
                select(Case.photo_sha256, Case.metadata_sha256).where(
                    Case.photo_sha256.in_(photos[start : start + _CHUNK])
                )
            )
            found.update(key for key in ((r[0], r[1]) for r in rows) if key in wanted)
        return found

    async def add_photos(self, photos: Sequence[NewPhoto]) -> None:
        if photos:
            rows = [
                {
                    "sha256": p.info.sha256,
                    "size": p.info.size,
                    "format": p.info.format,
                    "width": p.info.width,
                    "height": p.info.height,
                    "created_at": p.created_at,
                    "pack": p.pack,
                    "pack_offset": p.offset,
                }
                for p in photos
            ]
            await self.session.execute(
                insert_ignoring_conflicts(self.session.dialect, _PHOTOS), rows
            )

    async def add_cases(self, cases: Sequence[NewCase]) -> set[str]:
        """Insert new cases (open, needing the skill the shot asks), skipping those whose
        photo already has one (another run may have got in first); returns the photo
        hashes whose case was inserted."""
        if not cases:
            return set()
        statement = insert_ignoring_conflicts(self.session.dialect, _CASES).returning(
            _CASES.c.photo_sha256
        )
        result = await self.session.execute(statement, [_case_row(c) for c in cases])
        return {row[0] for row in result}

    async def cases_of_photos(self, photos: Iterable[str]) -> dict[str, list[StoredCase]]:
        """The stored cases of these photos, to tell a duplicate from a photo conflict."""
        wanted = sorted(set(photos))
        found: dict[str, list[StoredCase]] = {}
        for start in range(0, len(wanted), _CHUNK):
            rows = await self.session.execute(
                select(
                    Case.photo_sha256,
                    Case.id,
                    Case.photo_key,
                    Case.plate,
                    Case.camera_id,
                    Case.violation_id,
                    Case.occurred_at,
                )
                .where(Case.photo_sha256.in_(wanted[start : start + _CHUNK]))
                .order_by(Case.photo_sha256, Case.created_at, Case.id)
            )
            for row in rows:
                stored = StoredCase(row.id, CaseIdentity.of(row), row.photo_key is not None)
                found.setdefault(row.photo_sha256, []).append(stored)
        return found

    async def add_rejections(self, rejections: Sequence[RejectedShot]) -> None:
        if rejections:
            rows = [
                {
                    "run_id": r.run_id,
                    "photo_path": r.photo_path,
                    "metadata_path": r.metadata_path,
                    "reason": r.reason,
                    "message": r.message,
                    "created_at": r.created_at,
                }
                for r in rejections
            ]
            await self.session.execute(insert(_REJECTIONS), rows)


def _case_row(new: NewCase) -> dict[str, Any]:
    case, source = new.case, new.source
    return {
        "id": new.id,
        "photo_sha256": source.photo_sha256,
        "metadata_sha256": source.metadata_sha256,
        "photo_key": source.photo_sha256,
        "camera_id": case.camera_id,
        "schema_version_id": new.schema_id,
        "run_id": source.run_id,
        "plate": case.plate,
        "violation_id": case.violation_id,
        "violation_value": case.violation_value,
        "skill": case.skill,
        "occurred_at": case.occurred_at,
        "raw": new.raw,
        "source_photo": source.photo_path,
        "source_metadata": source.metadata_path,
        "status": CaseStatus.OPEN.value,
        "required_skill": case.skill,
        "created_at": new.created_at,
    }


class RejectionRepository(Repository):
    async def list(
        self, *, run_id: uuid.UUID | None, reason: str | None, limit: int, offset: int = 0
    ) -> Sequence[Rejection]:
        query = select(Rejection).order_by(Rejection.id).limit(limit).offset(offset)
        return (await self.session.scalars(_rejections_where(query, run_id, reason))).all()

    async def count(self, *, run_id: uuid.UUID | None, reason: str | None) -> int:
        query = _rejections_where(select(func.count()).select_from(Rejection), run_id, reason)
        return int(await self.session.scalar(query) or 0)


def _rejections_where(
    query: Select[Any], run_id: uuid.UUID | None, reason: str | None
) -> Select[Any]:
    if run_id is not None:
        query = query.where(Rejection.run_id == run_id)
    if reason is not None:
        query = query.where(Rejection.reason == reason)
    return query


class CaseRepository(Repository):
    async def get(self, case_id: uuid.UUID) -> Case | None:
        return await self.session.get(Case, case_id)

    async def ids_between(self, low: uuid.UUID, high: uuid.UUID, limit: int) -> list[uuid.UUID]:
        return await self._ids_between(Case.id, low, high, limit)

    async def list(
        self, filters: CaseFilters | None = None, *, limit: int = 100, offset: int = 0
    ) -> Sequence[Case]:
        query = select(Case).order_by(Case.occurred_at, Case.id).limit(limit).offset(offset)
        return (await self.session.scalars(_cases_where(query, filters or CaseFilters()))).all()

    async def count(self, filters: CaseFilters) -> int:
        query = _cases_where(select(func.count()).select_from(Case), filters)
        return int(await self.session.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class CaseFilters:
    """What ``cases list`` narrows to; None is no filter."""

    camera_id: IdText | None = None
    plate: str | None = None
    since: datetime | None = None
    status: str | None = None
    run_id: IdText | None = None
    """Ids as typed (a unique prefix, too) until ``CaseService.list`` resolves them."""


def _cases_where(query: Select[Any], filters: CaseFilters) -> Select[Any]:
    if filters.camera_id is not None:
        query = query.where(Case.camera_id == filters.camera_id)
    if filters.plate is not None:
        query = query.where(Case.plate == filters.plate)
    if filters.since is not None:
        query = query.where(Case.occurred_at >= filters.since)
    if filters.status is not None:
        query = query.where(Case.status == filters.status)
    if filters.run_id is not None:
        query = query.where(Case.run_id == filters.run_id)
    return query

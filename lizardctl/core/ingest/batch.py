"""One batch of shots, end to end: read, hash, skip known shots, examine, store, commit.

A ``BatchProcessor`` lives in each worker process with its own database connection, so
the CPU-heavy work (hashing, decoding, validation, probing) and the fsync-heavy work
(the photo store) run in parallel across processes, and each batch is one transaction:
a batch is either wholly committed or not at all, whenever the process dies.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lizardctl.core.config import parse_db_url
from lizardctl.core.database import Database, environment_error
from lizardctl.core.ingest.examine import Accepted, Context, Rejected, examine
from lizardctl.core.ingest.identity import CaseIdentity, StoredCase, photo_conflict
from lizardctl.core.ingest.reasons import Reason
from lizardctl.core.ingest.walk import ShotFiles
from lizardctl.core.schema.detect import TypeDetector
from lizardctl.core.services.schemas import compile_row
from lizardctl.core.storable import storable as _storable
from lizardctl.core.store import PhotoStore

Unit = tuple[str, int]
"""A claimed folder part: (folder key, part number)."""


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """Everything a worker process needs to judge and persist shots (picklable)."""

    db_url: str
    store_root: str
    run_id: uuid.UUID
    now: datetime
    max_pixels: int
    dry_run: bool = False
    delete_source: bool = False
    job_id: uuid.UUID | None = None
    worker: str = ""


@dataclass(slots=True)
class BatchResult:
    """Counts of one batch (or, summed, of a run)."""

    shots: int = 0
    bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.shots += other.shots
        self.bytes += other.bytes
        self.outcomes.update(other.outcomes)
        self.reasons.update(other.reasons)
        self.by_type.update(other.by_type)
        self.problems.extend(other.problems)


@dataclass(slots=True)
class _Read:
    shot: ShotFiles
    photo: bytes
    metadata: bytes
    key: tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An accepted shot and the canonical case it shows, until its case is settled."""

    item: _Read
    identity: CaseIdentity

    @property
    def photo(self) -> str:
        return self.item.key[0]


def _assign_ids(rows: Iterable[dict[str, Any]]) -> None:
    """Random (version 4) case ids from one urandom call per batch: a call per id cost
    ~30 us each here, more than validating the shot."""
    rows = list(rows)
    entropy = os.urandom(16 * len(rows))
    for index, row in enumerate(rows):
        row["id"] = uuid.UUID(bytes=entropy[16 * index : 16 * index + 16], version=4)


def _read_file(path: str) -> bytes:
    """The whole file in one read when its size is right (raw fd: no buffer, no Path)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, os.fstat(fd).st_size + 1)]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
    finally:
        os.close(fd)
    return b"".join(chunks)


def _read_shot(shot: ShotFiles) -> _Read | str | None:
    """Both files and their hashes; a message when unreadable; None when they vanished."""
    assert shot.photo is not None and shot.metadata is not None
    try:
        photo = _read_file(shot.photo)
        metadata = _read_file(shot.metadata)
    except FileNotFoundError as exc:
        if os.path.lexists(exc.filename):  # a dangling symlink: the data is gone
            return f"{exc.filename}: {exc.strerror}"
        return None  # moved, or ingested and deleted by another run, since the walk
    except OSError as exc:
        return f"{exc.filename}: {exc.strerror or exc}"
    key = (hashlib.sha256(photo).hexdigest(), hashlib.sha256(metadata).hexdigest())
    return _Read(shot, photo, metadata, key)


class BatchProcessor:
    """Judges and persists batches; one per worker process, built by ``open``."""

    def __init__(
        self, settings: BatchSettings, db: Database, context: Context, schema_ids: dict[str, int]
    ) -> None:
        self.settings = settings
        self.db = db
        self.context = context
        self.schema_ids = schema_ids
        self.store = PhotoStore(Path(settings.store_root))

    @classmethod
    async def open(cls, settings: BatchSettings) -> BatchProcessor:
        """Load the registry once: latest schema of every type, and every camera's type."""
        db = Database(parse_db_url(settings.db_url), pool_size=1, max_overflow=1)
        try:
            async with db.uow() as uow:
                rows = await uow.schemas.latest_versions()
                schemas = [compile_row(row) for row in rows]
                schema_ids = {f"{row.camera_type}:{row.version}": row.id for row in rows}
                camera_types = await uow.cameras.types_by_id()
                violation_ids = frozenset(await uow.violations.ids()) or None
        except Exception as exc:
            await db.dispose()
            translated = environment_error(exc, db.url)
            if translated is not None:
                raise translated from exc
            raise
        context = Context(
            TypeDetector(schemas), camera_types, settings.now, settings.max_pixels, violation_ids
        )
        return cls(settings, db, context, schema_ids)

    async def close(self) -> None:
        await self.db.dispose()

    async def process(self, shots: list[ShotFiles], units: Sequence[Unit] = ()) -> BatchResult:
        """Judge and persist ``shots``; ``units`` are the claimed folder parts they make up,
        marked done in the same transaction."""
        try:
            return await self._process(shots, units)
        except Exception as exc:
            translated = environment_error(exc, self.db.url)
            if translated is not None:
                raise translated from exc
            raise

    async def _process(self, shots: list[ShotFiles], units: Sequence[Unit]) -> BatchResult:
        result = BatchResult(shots=len(shots))
        rejections: list[dict[str, Any]] = []

        def reject(shot: ShotFiles, reason: Reason, message: str) -> None:
            result.outcomes["rejected"] += 1
            result.reasons[reason.value] += 1
            rejections.append(
                {
                    "run_id": self.settings.run_id,
                    "photo_path": _storable(shot.photo),
                    "metadata_path": _storable(shot.metadata),
                    "reason": reason.value,
                    "message": _storable(message),
                    "created_at": self.settings.now,
                }
            )

        readable: list[_Read] = []
        for shot in shots:
            if shot.problem is not None:
                reject(shot, *shot.problem)
                continue
            read = _read_shot(shot)
            if read is None:
                result.outcomes["vanished"] += 1
            elif isinstance(read, str):
                reject(shot, Reason.UNREADABLE, read)
            else:
                result.bytes += len(read.photo) + len(read.metadata)
                readable.append(read)

        async with self.db.uow() as uow:
            known = await uow.shots.existing(r.key for r in readable)

        # One case per photo: the first accepted shot of each photo is its candidate case;
        # the others, and candidates whose photo turns out to have a case already, are
        # judged against the stored case (duplicate or photo-conflict) once it is known.
        cases: dict[str, dict[str, Any]] = {}
        case_types: dict[str, str] = {}
        candidates: dict[str, _Candidate] = {}
        others: list[_Candidate] = []
        photos: dict[str, dict[str, Any]] = {}
        blobs: dict[str, bytes] = {}
        committed: list[ShotFiles] = []  # shots whose case is in the database once we commit
        for item in readable:
            if item.key in known:
                result.outcomes["duplicate"] += 1
                committed.append(item.shot)
                continue
            verdict = examine(
                item.photo,
                item.metadata,
                Path(item.shot.metadata or "").suffix,
                self.context,
                photo_sha256=item.key[0],
            )
            if isinstance(verdict, Rejected):
                reject(item.shot, verdict.reason, verdict.message)
                continue
            candidate = _Candidate(item, CaseIdentity.of(verdict.case))
            if candidate.photo in cases:
                others.append(candidate)
                continue
            cases[candidate.photo] = self._case_row(item, verdict)
            case_types[candidate.photo] = verdict.case.schema_name
            candidates[candidate.photo] = candidate
            info = verdict.photo
            photos[info.sha256] = {
                "sha256": info.sha256,
                "size": info.size,
                "format": info.format,
                "width": info.width,
                "height": info.height,
                "created_at": self.settings.now,
            }
            blobs[info.sha256] = item.photo

        def settle(inserted: set[str], stored: dict[str, list[StoredCase]]) -> None:
            """Count the inserted cases; judge every other candidate by its photo's case."""
            result.outcomes["ingested"] += len(inserted)
            result.by_type.update(case_types[photo] for photo in inserted)
            committed.extend(candidates[photo].item.shot for photo in inserted)
            contested = [c for photo, c in candidates.items() if photo not in inserted]
            for candidate in contested + others:
                conflict = photo_conflict(candidate.identity, stored.get(candidate.photo, []))
                if conflict is None:
                    result.outcomes["duplicate"] += 1
                    committed.append(candidate.item.shot)
                else:
                    reject(candidate.item.shot, Reason.PHOTO_CONFLICT, conflict)

        _assign_ids(cases.values())
        if self.settings.dry_run:
            async with self.db.uow() as uow:
                stored = await uow.shots.cases_of_photos(candidates)
            new = {photo for photo in candidates if photo not in stored}
            for photo in new:
                stored[photo] = [StoredCase(cases[photo]["id"], candidates[photo].identity, True)]
            settle(new, stored)
            return result

        await asyncio.to_thread(self.store.put_many, list(blobs.items()))
        # Rows go in in photo order, so concurrent runs take their row locks in one global
        # order: on PostgreSQL, two batches inserting the same shots in opposite orders
        # deadlock. The unique photo key makes the insert skip photos that have a case.
        async with self.db.uow() as uow:
            job_id = self.settings.job_id
            if job_id is not None and not await uow.claims.mark_done(
                job_id, units, self.settings.worker
            ):
                return BatchResult(outcomes=Counter(elsewhere=len(shots)))
            await uow.shots.add_photos([photos[sha256] for sha256 in sorted(photos)])
            inserted = await uow.shots.add_cases([cases[photo] for photo in sorted(cases)])
            unsettled = {c.photo for c in others} | (candidates.keys() - inserted)
            settle(inserted, await uow.shots.cases_of_photos(unsettled))
            await uow.shots.add_rejections(rejections)
            await uow.commit()
        if self.settings.delete_source:
            # Duplicates go too: their case and photo were committed by this batch, an
            # earlier run, or the concurrent run that won the insert race.
            result.problems.extend(_delete_sources(committed))
        return result

    def _case_row(self, item: _Read, verdict: Accepted) -> dict[str, Any]:
        case = verdict.case
        return {
            "photo_sha256": item.key[0],
            "metadata_sha256": item.key[1],
            "photo_key": item.key[0],
            "camera_id": case.camera_id,
            "schema_version_id": self.schema_ids[f"{case.schema_name}:{case.schema_version}"],
            "run_id": self.settings.run_id,
            "plate": case.plate,
            "violation_id": case.violation_id,
            "violation_value": case.violation_value,
            "skill": case.skill,
            "occurred_at": case.occurred_at,
            "raw": verdict.raw,
            "source_photo": _storable(item.shot.photo),
            "source_metadata": _storable(item.shot.metadata),
            "status": "open",
            "required_skill": case.skill,
            "created_at": self.settings.now,
        }


def _delete_sources(shots: Iterable[ShotFiles]) -> list[str]:
    """Remove the source files of committed shots; a failure is reported, never fatal."""
    problems = []
    for shot in shots:
        for path in (shot.photo, shot.metadata):
            if path is None:
                continue
            try:
                Path(path).unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{path}: not deleted: {exc.strerror or exc}")
    return problems

"""One batch of shots, end to end: read, hash, skip known shots, examine, store, commit.

A ``BatchProcessor`` lives in each worker process with its own database connection, so
the CPU-heavy work (hashing, decoding, validation, probing) and the fsync-heavy work
(the photo store) run in parallel across processes, and each batch is one transaction:
a batch is either wholly committed or not at all, whenever the process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import math
import os
import stat
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from lizardctl.core.choices import DEFAULT_MAX_METADATA_BYTES, DEFAULT_MAX_PHOTO_BYTES
from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database, environment_error
from lizardctl.core.db.engine import DEFAULT_LOCK_TIMEOUT_S
from lizardctl.core.ingest.examine import Accepted, Context, Rejected, examine
from lizardctl.core.ingest.identity import CaseIdentity, StoredCase, photo_conflict
from lizardctl.core.ingest.jobs import Unit
from lizardctl.core.ingest.outcome import BatchResult, Pending
from lizardctl.core.ingest.records import NewCase, NewPhoto, Provenance, RejectedShot, new_ids
from lizardctl.core.ingest.walk import Part, ShotFiles, inside, pair, refusal
from lizardctl.core.schema.detect import TypeDetector
from lizardctl.core.schema.stored import compile_row
from lizardctl.core.storable import storable as _storable
from lizardctl.core.store import PackError
from lizardctl.core.store.backend import Backend, PackSink
from lizardctl.core.store.packs import DEFAULT_PACK_BYTES
from lizardctl.core.vocabulary import Reason

FileId = tuple[int, int, int, int]
"""A file as read: (st_dev, st_ino, st_size, st_mtime_ns) from the fstat of its open fd."""

READ_BUDGET = 64 << 20
"""Bytes of files a worker reads before it judges and stores them and reads on: memory
per batch stays bounded whatever the photos weigh (256 shots of 40 KB are one round)."""

MAX_MESSAGE = 2000
"""Characters of a rejection message that are stored; the rest is cut, with a note."""

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
"""A file is read only if it is a regular file; these make sure opening it cannot follow
a link, block on a FIFO or take a terminal, before ``fstat`` says what it is."""

_MAX_ONE_READ = 0x7FFFF000
"""The most bytes Linux returns from one ``read`` (``MAX_RW_COUNT``): a read this long
may have stopped short of the end."""


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """Everything a worker process needs to judge and persist shots (picklable)."""

    db_url: str
    store: Backend
    """The store the main process opened and checked, its settings resolved there: a
    worker started from a forkserver does not see the environment the command saw."""
    run_id: uuid.UUID
    now: datetime
    max_pixels: int
    dry_run: bool = False
    delete_source: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    job_id: uuid.UUID | None = None
    worker: str = ""
    max_photo_bytes: int = DEFAULT_MAX_PHOTO_BYTES
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    read_budget: int = READ_BUDGET
    roots: tuple[str, ...] = ()
    """Real paths of the folders given: ``delete_source`` deletes nothing outside them."""
    young_after: float = math.inf
    """Files modified after this time (epoch seconds) may still be being written: their
    shots are held back (``--settle``)."""
    store_id: uuid.UUID | None = None
    """The store's id, written into every pack; None only for a dry run."""
    pack_bytes: int = DEFAULT_PACK_BYTES


@dataclass(slots=True)
class _Read:
    shot: ShotFiles
    photo: bytes
    metadata: bytes
    key: tuple[str, str]
    ids: tuple[FileId, FileId]


class _Refused(Exception):
    """A file not read, or not whole: not a regular file, or over its size limit."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class _Candidate:
    """An accepted shot and the canonical case it shows, until its case is settled."""

    item: _Read
    identity: CaseIdentity

    @property
    def photo(self) -> str:
        return self.item.key[0]


def _read_file(path: str, limit: int) -> tuple[bytes, FileId]:
    """The file in one read when its size is right (raw fd: no buffer, no Path), and what
    it was; never more than ``limit`` + 1 bytes, and only from a regular file."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(Reason.UNREADABLE, refusal(path, info.st_mode))
        if info.st_size > limit:
            raise _Refused(Reason.TOO_LARGE, _too_large(path, f"{info.st_size:,} bytes", limit))
        data = os.read(fd, info.st_size + 1)
        # A short read of a regular file is its end: no second, empty read to find it
        # (half of all read calls), unless the file grew or the kernel capped the read.
        if len(data) > info.st_size or len(data) >= _MAX_ONE_READ:
            data = _read_on(fd, data, path, limit)
    finally:
        os.close(fd)
    return data, (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _read_on(fd: int, first: bytes, path: str, limit: int) -> bytes:
    """The rest of a file that grew since its ``fstat`` (or is over one read's cap), to
    its end; never more than ``limit`` + 1 bytes in all."""
    chunks = [first]
    size = len(first)
    while chunks[-1] and size <= limit:
        chunks.append(os.read(fd, min(1 << 20, limit + 1 - size)))
        size += len(chunks[-1])
    if size > limit:
        raise _Refused(Reason.TOO_LARGE, _too_large(path, "grew while read", limit))
    return b"".join(chunks)


def _too_large(path: str, what: str, limit: int) -> str:
    return f"{path}: {what}, over the limit of {limit:,} bytes; not read"


def _read_shot(shot: ShotFiles, settings: BatchSettings) -> _Read | tuple[Reason, str] | None:
    """Both files and their hashes; why not when refused or unreadable; None when they
    vanished."""
    assert shot.photo is not None and shot.metadata is not None
    try:
        photo, photo_id = _read_file(shot.photo, settings.max_photo_bytes)
        metadata, metadata_id = _read_file(shot.metadata, settings.max_metadata_bytes)
    except _Refused as exc:
        return exc.reason, exc.message
    except FileNotFoundError:
        return None  # moved, or ingested and deleted by another run, since the walk
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW: replaced by a symlink since the walk
            return Reason.UNREADABLE, refusal(exc.filename, stat.S_IFLNK)
        return Reason.UNREADABLE, f"{exc.filename}: {exc.strerror or exc}"
    key = (hashlib.sha256(photo).hexdigest(), hashlib.sha256(metadata).hexdigest())
    return _Read(shot, photo, metadata, key, (photo_id, metadata_id))


def _capped(message: str) -> str:
    """A message short enough to store and print: a hostile file can make one of any size."""
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}… [{len(message) - MAX_MESSAGE:,} more characters cut]"


class BatchProcessor:
    """Judges and persists batches; one per worker process, built by ``open``."""

    def __init__(
        self, settings: BatchSettings, db: Database, context: Context, schema_ids: dict[str, int]
    ) -> None:
        self.settings = settings
        self.db = db
        self.context = context
        self.schema_ids = schema_ids
        self.packs: PackSink | None = None
        if settings.store_id is not None and not settings.dry_run:
            self.packs = settings.store.writer(settings.store_id, settings.pack_bytes)

    @classmethod
    async def open(cls, settings: BatchSettings) -> BatchProcessor:
        """Load the registry once: latest schema of every type, and every camera's type."""
        db = Database(
            parse_db_url(settings.db_url),
            lock_timeout=settings.lock_timeout,
            pool_size=1,
            max_overflow=1,
        )
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
        """Seal this writer's pack and let the database go.

        A seal that fails (a full disk) is not an error of the run: every photo a row
        points at was synced before its commit, and the pack is given up unsealed, as a
        killed worker's would be. A worker closes at exit, where an exception would only
        become a traceback on the operator's terminal.
        """
        try:
            if self.packs is not None:
                with contextlib.suppress(PackError):
                    self.packs.close()
        finally:
            await self.db.dispose()

    async def process_parts(self, parts: Sequence[Part], units: Sequence[Unit]) -> BatchResult:
        """Pair the files of claimed folder parts, then judge and persist the shots."""
        shots: list[ShotFiles] = []
        pending = Pending()
        for part in parts:
            paired, held = pair(part, self.settings.young_after)
            shots.extend(paired)
            pending.add(held)
        result = await self.process(shots, units)
        result.pending.add(pending)
        return result

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
        rejections: list[RejectedShot] = []

        def reject(shot: ShotFiles, reason: Reason, message: str) -> None:
            result.outcomes["rejected"] += 1
            result.reasons[reason.value] += 1
            rejections.append(
                RejectedShot(
                    self.settings.run_id,
                    _storable(shot.photo),
                    _storable(shot.metadata),
                    reason.value,
                    _storable(_capped(message)),
                    self.settings.now,
                )
            )

        # One case per photo: the first accepted shot of each photo is its candidate case;
        # the others, and candidates whose photo turns out to have a case already, are
        # judged against the stored case (duplicate or photo-conflict) once it is known.
        cases: dict[str, Accepted] = {}
        candidates: dict[str, _Candidate] = {}
        others: list[_Candidate] = []
        committed: list[ShotFiles] = []  # shots whose case is in the database once we commit
        places: dict[str, tuple[str, int]] = {}  # photo -> (pack, offset) of its record
        read_ids: dict[ShotFiles, tuple[FileId, FileId]] = {}
        # One round per READ_BUDGET bytes: its photos are appended to this worker's pack
        # before the next round is read; the rows of all rounds are committed together, after
        # one fdatasync has made every appended photo durable.
        for readable in self._rounds(shots, result, reject, read_ids):
            async with self.db.uow() as uow:
                known = await uow.shots.existing(r.key for r in readable)

            blobs: dict[str, bytes] = {}
            for item in readable:
                if item.key in known:
                    result.outcomes["duplicate"] += 1
                    committed.append(item.shot)
                    continue
                verdict = examine(
                    item.photo,
                    item.metadata,
                    os.path.splitext(item.shot.metadata or "")[1],  # noqa: PTH122 - hot path
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
                cases[candidate.photo] = verdict
                candidates[candidate.photo] = candidate
                blobs[verdict.photo.sha256] = item.photo
            if blobs and self.packs is not None:
                stored = list(blobs.items())
                appended = await asyncio.to_thread(self.packs.append, stored)
                places.update(zip(blobs, appended, strict=True))
                stored.clear()  # the pool's thread may hold its arguments a moment longer
            blobs.clear()

        def settle(inserted: set[str], stored: dict[str, list[StoredCase]]) -> None:
            """Count the inserted cases; judge every other candidate by its photo's case."""
            result.outcomes["ingested"] += len(inserted)
            result.by_type.update(cases[photo].case.schema_name for photo in inserted)
            committed.extend(candidates[photo].item.shot for photo in inserted)
            contested = [c for photo, c in candidates.items() if photo not in inserted]
            for candidate in contested + others:
                conflict = photo_conflict(candidate.identity, stored.get(candidate.photo, []))
                if conflict is None:
                    result.outcomes["duplicate"] += 1
                    committed.append(candidate.item.shot)
                else:
                    reject(candidate.item.shot, Reason.PHOTO_CONFLICT, conflict)

        order = sorted(cases)
        new_cases = [
            self._new_case(case_id, candidates[photo].item, cases[photo])
            for case_id, photo in zip(new_ids(len(order)), order, strict=True)
        ]
        if self.settings.dry_run:
            async with self.db.uow() as uow:
                stored = await uow.shots.cases_of_photos(candidates)
            new = {
                c.source.photo_sha256: c for c in new_cases if c.source.photo_sha256 not in stored
            }
            for photo, case in new.items():
                stored[photo] = [StoredCase(case.id, candidates[photo].identity, True)]
            settle(set(new), stored)
            return result

        if self.packs is not None:
            # Durable before any row points at it; fails if another batch's failure cut it.
            await asyncio.to_thread(self.packs.sync, list(places.values()))
        # Rows go in in photo order, so concurrent runs take their row locks in one global
        # order: on PostgreSQL, two batches inserting the same shots in opposite orders
        # deadlock. The unique photo key makes the insert skip photos that have a case.
        async with self.db.uow() as uow:
            job_id = self.settings.job_id
            if job_id is not None and not await uow.claims.mark_done(
                job_id, units, self.settings.worker
            ):
                return BatchResult(outcomes=Counter(elsewhere=len(shots)))
            await uow.shots.add_photos(
                [NewPhoto(cases[photo].photo, self.settings.now, *places[photo]) for photo in order]
            )
            inserted = await uow.shots.add_cases(new_cases)
            unsettled = {c.photo for c in others} | (candidates.keys() - inserted)
            settle(inserted, await uow.shots.cases_of_photos(unsettled))
            await uow.shots.add_rejections(rejections)
            await uow.commit()
        if self.settings.delete_source:
            # Duplicates go too: their case and photo were committed by this batch, an
            # earlier run, or the concurrent run that won the insert race.
            kept, problems = _delete_sources(committed, read_ids, self.settings.roots)
            result.outcomes["kept_changed"] += kept
            result.problems.extend(problems)
        return result

    def _rounds(
        self,
        shots: Iterable[ShotFiles],
        result: BatchResult,
        reject: Callable[[ShotFiles, Reason, str], None],
        read_ids: dict[ShotFiles, tuple[FileId, FileId]],
    ) -> Iterator[list[_Read]]:
        """The readable shots, in rounds of about ``read_budget`` bytes (a round holds at
        least one shot); problems and unreadable files are rejected on the way, and what
        each file read was is noted in ``read_ids``. A round's bytes are dropped before the
        next round is read, so the caller needs to hold none."""
        budget = self.settings.read_budget
        readable: list[_Read] = []
        held = 0
        for shot in shots:
            if shot.problem is not None:
                reject(shot, *shot.problem)
                continue
            read = _read_shot(shot, self.settings)
            if read is None:
                result.outcomes["vanished"] += 1
            elif isinstance(read, tuple):
                reject(shot, *read)
            else:
                size = len(read.photo) + len(read.metadata)
                result.bytes += size
                held += size
                readable.append(read)
                read_ids[shot] = read.ids
                if held >= budget:
                    yield readable
                    for done in readable:
                        done.photo = done.metadata = b""
                    readable, held = [], 0
        if readable:
            yield readable

    def _new_case(self, case_id: uuid.UUID, item: _Read, verdict: Accepted) -> NewCase:
        case = verdict.case
        source = Provenance(
            self.settings.run_id,
            _storable(item.shot.photo),
            _storable(item.shot.metadata),
            *item.key,
        )
        schema_id = self.schema_ids[f"{case.schema_name}:{case.schema_version}"]
        return NewCase(case_id, case, verdict.raw, schema_id, source, self.settings.now)


def _delete_sources(
    shots: Iterable[ShotFiles],
    read_ids: dict[ShotFiles, tuple[FileId, FileId]],
    roots: Sequence[str],
) -> tuple[int, list[str]]:
    """Remove the source files of committed shots, but only the very files that were read:
    same device, inode, size and mtime, in a folder inside ``roots``.

    A shot one of whose files changed or was replaced since it was read (a camera
    re-sending it) keeps both files, for the next run to take as a pair; such shots are
    counted. Returns that count and the failures, which are reported, never fatal.
    """
    problems = []
    kept = 0
    folders: dict[str, bool] = {}
    for shot in shots:
        assert shot.photo is not None and shot.metadata is not None
        folder = os.path.dirname(shot.photo)  # noqa: PTH120 - hot path
        if folder not in folders:
            folders[folder] = inside(os.path.realpath(folder), roots)
        if not folders[folder]:
            problems.append(f"{shot.photo}: not deleted: outside the given folders")
            continue
        paths = (shot.photo, shot.metadata)
        try:
            changed = any(map(_changed, paths, read_ids[shot]))
        except OSError as exc:
            problems.append(f"{exc.filename}: not deleted: {exc.strerror or exc}")
            continue
        if changed:
            kept += 1
            continue
        for path in paths:
            try:
                os.unlink(path)  # noqa: PTH108 - hot path
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{path}: not deleted: {exc.strerror or exc}")
    return kept, problems


def _changed(path: str, read_id: FileId) -> bool:
    """Whether ``path`` now names another file than the one read; a missing one has not."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != read_id

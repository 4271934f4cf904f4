"""``verify``: check the database and the photo store against each other, like ``restic check``.

Every case's photo must be in the store with the size the photos table records (and, with
``read_data``, content that still hashes to its name); every photo file in the store must be
used by a case; every case's raw metadata must still validate, and map, under the schema
version that accepted it. Nothing is loaded whole: cases come in pages in photo-hash order,
the store is listed once in the same order, and the two are merged like sorted files, so
memory stays flat and no file is looked up per case.

Photos in packs are checked in a second pass, in (pack, offset) order so that each pack is
read front to back: each record must lie inside its pack and its header name its photo
(one 48-byte ``pread``), and with ``read_data`` its bytes must hash to it. The cases of a
damaged photo are looked up afterwards and named. Bytes of a pack no row points at are
reported as reclaimable (``store reclaim``), never as problems: an interrupted ingest or
reclaim leaves them, harmlessly. A file of the first layout whose photo a pack now holds is
left over from an interrupted ``store repack``; it is reported, and pruned.

Ingest stores a photo before it commits the case that uses it, so a file can look unused for
a moment; a problem that may be such a race is checked again before it is reported (a
missing file is looked up, an unused one is looked up in the database once more), and
``prune`` deletes only files older than ``min_age_s``. An old unused file may still be one a
running ingest is about to re-use, so ``prune`` holds a ``PruneGuard``: it refuses to start
while an ingest run is alive, no ingest starts while it runs, and it looks again before each
batch of deletions (see ``services/prune_guard.py``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from lizardctl.core import rehash
from lizardctl.core.choices import DEFAULT_MIN_AGE_S
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.errors import LizardError, StoreMissing
from lizardctl.core.repositories.verify import PackKey, PageKey
from lizardctl.core.schema import CompiledSchema, ShotInvalid
from lizardctl.core.schema.stored import compile_row
from lizardctl.core.services.prune_guard import PruneGuard
from lizardctl.core.store import FileStore, PhotoStore, StoreEntry
from lizardctl.core.store.backend import PackFinding
from lizardctl.core.store.packs import (
    PACK_HEADER,
    RECORD,
)

ProblemKind = Literal[
    "missing-photo",
    "wrong-size",
    "wrong-hash",
    "damaged-record",
    "orphan-photo",
    "leftover-file",
    "stale-temporary",
    "invalid-metadata",
    "bad-schema",
]
PAGE = 2000
_ORPHAN_BATCH = 500
_HASH_BATCH = 64
_PACK_JOB_RECORDS = 256
_PACK_JOB_BYTES = 8 << 20
_CASES_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: with the case and photo it concerns, and whether prune fixed it."""

    kind: ProblemKind
    message: str
    case_id: uuid.UUID | None = None
    photo: str | None = None
    path: str | None = None
    pruned: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "case_id": None if self.case_id is None else str(self.case_id),
            "photo": self.photo,
            "path": self.path,
            "message": self.message,
            "pruned": self.pruned,
        }


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    read_data: bool = False
    prune: bool = False
    min_age_s: float = DEFAULT_MIN_AGE_S
    limit: int = 1000
    """Problems listed; all of them are counted."""
    offset: int = 0
    """Problems passed over before the listed ones (they are found in a stable order)."""
    hash_workers: int = 2
    """Processes that re-hash photos for ``read_data``."""


@dataclass(frozen=True, slots=True)
class PackSpace:
    """What the packs hold: ``reclaimable_bytes`` are bytes no row points at (whole
    unreferenced packs included); packs a live writer holds are counted apart, unjudged."""

    packs: int = 0
    pack_bytes: int = 0
    live_bytes: int = 0
    reclaimable_bytes: int = 0
    unreferenced_packs: int = 0
    active_packs: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "packs": self.packs,
            "pack_bytes": self.pack_bytes,
            "live_bytes": self.live_bytes,
            "reclaimable_bytes": self.reclaimable_bytes,
            "unreferenced_packs": self.unreferenced_packs,
            "active_packs": self.active_packs,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    store: str
    read_data: bool
    cases: int
    photos: int
    store_files: int
    bytes_hashed: int
    found: dict[str, int]
    pruned: int
    kept_recent: int
    listed: tuple[Problem, ...]
    elapsed_s: float
    offset: int = 0
    packed_photos: int = 0
    space: PackSpace = field(default_factory=PackSpace)

    @property
    def problems(self) -> int:
        return sum(self.found.values())

    @property
    def ok(self) -> bool:
        """Nothing left wrong: no problem found, or prune fixed every one found."""
        return self.problems == self.pruned

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": self.store,
            "read_data": self.read_data,
            "counts": {
                "cases": self.cases,
                "photos": self.photos,
                "store_files": self.store_files,
                "packed_photos": self.packed_photos,
                "bytes_hashed": self.bytes_hashed,
                "problems": self.problems,
                "pruned": self.pruned,
                "kept_recent": self.kept_recent,
            },
            "space": self.space.to_dict(),
            "problems_by_kind": dict(sorted(self.found.items())),
            "problems": [problem.to_dict() for problem in self.listed],
            "listed": len(self.listed),
            "offset": self.offset,
            "elapsed_s": round(self.elapsed_s, 3),
            "cases_per_s": round(self.cases / max(self.elapsed_s, 1e-9), 1),
        }


@dataclass(slots=True)
class _Tally:
    """Every problem counted; ``limit`` of them kept to list, after the first ``offset``."""

    limit: int
    offset: int = 0
    found: Counter[str] = field(default_factory=Counter)
    listed: list[Problem] = field(default_factory=list)
    pruned: int = 0
    kept_recent: int = 0

    def add(self, problem: Problem) -> None:
        seen = sum(self.found.values())
        self.found[problem.kind] += 1
        self.pruned += problem.pruned
        if seen >= self.offset and len(self.listed) < self.limit:
            self.listed.append(problem)


@dataclass(slots=True)
class _Group:
    """The cases of one photo: they come together in photo order."""

    photo: str
    size: int
    case_ids: list[uuid.UUID]
    pack: str | None = None


class _StoreCursor:
    """The store's listing, consumed in step with the cases: what it passes over is unused."""

    def __init__(self, store: PhotoStore) -> None:
        entries = iter(()) if store.files is None else store.files.scan()
        self._entries: Iterator[StoreEntry] = entries
        self._next: StoreEntry | None = next(self._entries, None)
        self.files = 0

    def skip_to(self, photo: str | None, passed: list[StoreEntry]) -> StoreEntry | None:
        """The file of ``photo`` if stored; every file before it goes to ``passed``.

        ``None`` reads to the end of the store.
        """
        entry = self._next
        while entry is not None and (entry.digest is None or photo is None or entry.digest < photo):
            self.files += entry.digest is not None
            passed.append(entry)
            entry = next(self._entries, None)
        self._next = entry
        if entry is None or entry.digest != photo:
            return None
        self.files += 1
        self._next = next(self._entries, None)
        return entry


class _Hasher:
    """Re-hashes stored photo files on the worker processes of ``pool``.

    Photos go in batches: a future per photo cost as much as hashing a 40 KB photo. A few
    batches in flight keep the workers busy and memory flat.
    """

    def __init__(
        self, store: PhotoStore, pool: ProcessPoolExecutor, workers: int, tally: _Tally
    ) -> None:
        self._store = store
        self._tally = tally
        self._pool = pool
        self._in_flight = 2 * workers
        self._batch: list[_Group] = []
        self._pending: deque[tuple[list[_Group], Future[list[str | None]]]] = deque()
        self.bytes = 0

    def add(self, group: _Group, size: int) -> None:
        self.bytes += size
        self._batch.append(group)
        if len(self._batch) == _HASH_BATCH:
            self._submit()
            while len(self._pending) > self._in_flight:
                self._check(*self._pending.popleft())

    def drain(self) -> None:
        if self._batch:
            self._submit()
        while self._pending:
            self._check(*self._pending.popleft())

    def _submit(self) -> None:
        photos = [group.photo for group in self._batch]
        assert self._store.files is not None  # only photos found as files are hashed here
        future = self._pool.submit(rehash.read_digests, self._store.files.root, photos)
        self._pending.append((self._batch, future))
        self._batch = []

    def _check(self, groups: list[_Group], future: Future[list[str | None]]) -> None:
        for group, actual in zip(groups, future.result(), strict=True):
            if actual == group.photo:
                continue
            if actual is None:
                kind: ProblemKind = "missing-photo"
                message = "photo vanished from the store while being checked"
            else:
                kind = "wrong-hash"
                message = f"stored photo's content hashes to {actual}"
            for case_id in group.case_ids:
                self._tally.add(Problem(kind, message, case_id, group.photo))


class _Pass:
    """One verify pass: the pages of cases merged with the store's listing, as they come."""

    def __init__(
        self,
        uow_factory: UowFactory,
        store: PhotoStore,
        options: VerifyOptions,
        schemas: dict[int, CompiledSchema | None],
        tally: _Tally,
        now: float,
        guard: PruneGuard | None,
        pool: ProcessPoolExecutor | None,
    ) -> None:
        self.uow_factory = uow_factory
        self.guard = guard
        self.store = store
        self.options = options
        self.schemas = schemas
        self.tally = tally
        self.now = now
        self.cursor = _StoreCursor(store)
        self.hasher = None if pool is None else _Hasher(store, pool, options.hash_workers, tally)
        self.group: _Group | None = None
        self.passed: list[StoreEntry] = []
        self.orphans: list[tuple[str, StoreEntry]] = []
        self.leftovers: list[tuple[str, StoreEntry]] = []
        self.vanished: list[_Group] = []
        self.cases = self.photos = 0

    @property
    def _files(self) -> FileStore:
        assert self.store.files is not None  # files are found, and pruned, only in a folder
        return self.store.files

    async def page(self, rows: Sequence[Any]) -> None:
        """Check a page of cases, and the photos and store files they have moved past."""
        tally, schemas = self.tally, self.schemas
        for photo, _, case_id, schema_id, size, raw, pack in rows:
            if self.group is None or photo != self.group.photo:
                if self.group is not None:
                    self._check_photo(self.group)
                self.group = _Group(photo, size, [], pack)
                self.photos += 1
            self.group.case_ids.append(case_id)
            schema = schemas[schema_id]
            if schema is not None:
                try:
                    schema.json_to_case(raw)
                except ShotInvalid as exc:
                    message = f"raw metadata fails {schema.name} v{schema.version}: {exc}"
                    tally.add(Problem("invalid-metadata", message, case_id, photo))
        self.cases += len(rows)
        await self._sort_passed()
        if self.guard is not None:
            await self.guard.beat()

    async def finish(self) -> None:
        """Check the last photo and the rest of the store; wait for the last hashes."""
        if self.group is not None:
            self._check_photo(self.group)
        self.cursor.skip_to(None, self.passed)
        await self._sort_passed(final=True)
        if self.hasher is not None:
            self.hasher.drain()

    def _check_photo(self, group: _Group) -> None:
        entry = self.cursor.skip_to(group.photo, self.passed)
        if group.pack is not None:
            # Its record is checked by the pack pass; a file of it is a repack's leftover.
            if entry is not None:
                self.leftovers.append((group.photo, entry))
            return
        size = None if entry is None else entry.size
        if size != group.size:
            # A concurrent ingest may have stored it after the listing: look again.
            size = None if self.store.files is None else self.store.files.size_of(group.photo)
        if size is None:
            # A concurrent ``store repack`` may have moved it into a pack: asked in batches.
            self.vanished.append(group)
        elif size != group.size:
            message = f"stored photo has {size} bytes, the database says {group.size}"
            for case_id in group.case_ids:
                self.tally.add(Problem("wrong-size", message, case_id, group.photo))
        elif self.hasher is not None:
            self.hasher.add(group, size)

    async def _sort_passed(self, *, final: bool = False) -> None:
        """Report (and prune) the stale temporary files and unused photos passed over.

        Unused photos are looked up once more, in batches: a case committed since its page
        was read uses its photo after all.
        """
        options, now = self.options, self.now
        for entry in self.passed:
            if entry.digest is not None:
                self.orphans.append((entry.digest, entry))
            elif now - entry.mtime >= options.min_age_s:
                if options.prune:
                    self._files.remove_temporary(entry.path)
                age = _age(now - entry.mtime)
                message = f"temporary file left by an interrupted write, {age} old"
                self.tally.add(
                    Problem("stale-temporary", message, path=entry.path, pruned=options.prune)
                )
        self.passed.clear()
        if self.vanished and (len(self.vanished) >= _ORPHAN_BATCH or final):
            await self._sort_vanished()
        if self.leftovers and (len(self.leftovers) >= _ORPHAN_BATCH or final):
            await self._sort_leftovers()
        if not self.orphans or (len(self.orphans) < _ORPHAN_BATCH and not final):
            return
        for start in range(0, len(self.orphans), _ORPHAN_BATCH):
            await self._sort_orphans(self.orphans[start : start + _ORPHAN_BATCH])
        self.orphans.clear()

    async def _sort_orphans(self, orphans: list[tuple[str, StoreEntry]]) -> None:
        """Report a batch of unused photos; prune the old ones once the guard says so."""
        options, now = self.options, self.now
        async with self.uow_factory() as uow:
            used = await uow.verify.referenced([digest for digest, _ in orphans])
        unused = [(digest, entry) for digest, entry in orphans if digest not in used]
        old = {digest for digest, entry in unused if now - entry.mtime >= options.min_age_s}
        if options.prune and old and self.guard is not None:
            await self.guard.before_deleting()
        for digest, entry in unused:
            prune = options.prune and digest in old
            if prune:
                self._files.remove(digest)
            elif options.prune:
                self.tally.kept_recent += 1
            message = f"no case uses this photo ({entry.size} bytes, {_age(now - entry.mtime)} old)"
            self.tally.add(
                Problem("orphan-photo", message, photo=digest, path=entry.path, pruned=prune)
            )

    async def _sort_vanished(self) -> None:
        """Report the photos whose files are missing, unless their rows now name a pack."""
        async with self.uow_factory() as uow:
            packed = await uow.photos.packed_among([group.photo for group in self.vanished])
        for group in self.vanished:
            if group.photo in packed:
                continue
            for case_id in group.case_ids:
                self.tally.add(
                    Problem("missing-photo", "photo is not in the store", case_id, group.photo)
                )
        self.vanished.clear()

    async def _sort_leftovers(self) -> None:
        """Report (and prune) files whose photos a pack holds: a row never leaves its pack
        for a file again, so no look in the database is needed before deleting."""
        options = self.options
        if options.prune and self.guard is not None:
            await self.guard.before_deleting()
        for digest, entry in self.leftovers:
            if options.prune:
                self._files.remove(digest)
            message = (
                f"a pack holds this photo; this file ({entry.size} bytes) is left over from "
                "an interrupted store repack"
            )
            problem = Problem(
                "leftover-file", message, photo=digest, path=entry.path, pruned=options.prune
            )
            self.tally.add(problem)
        self.leftovers.clear()


class _PackPass:
    """The packed photos in (pack, offset) order: records checked in jobs of consecutive
    records of one pack (in worker processes with ``read_data``), space added up per pack."""

    def __init__(
        self, store: PhotoStore, options: VerifyOptions, pool: ProcessPoolExecutor | None
    ) -> None:
        self.backend = store.backend
        self.pool = pool
        self._in_flight = 2 * options.hash_workers
        self._pending: deque[Future[tuple[int, list[PackFinding]]]] = deque()
        self._job: list[tuple[int, str, int]] = []
        self._job_bytes = 0
        self._pack: str | None = None
        self._live = 0
        self.seen: set[str] = set()
        self.findings: list[PackFinding] = []
        self.photos = self.bytes = 0
        self.space = PackSpace()

    def page(self, rows: Sequence[Any]) -> None:
        for pack, offset, sha256, size in rows:
            if pack != self._pack:
                self._end_pack()
                self._pack, self._live = pack, 0
            self._live += RECORD.size + size
            self._job.append((offset, sha256, size))
            self._job_bytes += size
            if len(self._job) >= _PACK_JOB_RECORDS or self._job_bytes >= _PACK_JOB_BYTES:
                self._submit()
        self.photos += len(rows)

    def finish(self) -> PackSpace:
        """Wait for the last jobs; add up the packs no row points at."""
        self._end_pack()
        while self._pending:
            self._collect(self._pending.popleft())
        space = self.space
        for name in self.backend.packs():
            if name in self.seen:
                continue
            if self.backend.being_written(name):
                space = _plus(space, packs=1, active_packs=1)
                continue
            size = self.backend.size(name) or 0
            space = _plus(
                space, packs=1, pack_bytes=size, reclaimable_bytes=size, unreferenced_packs=1
            )
        self.space = space
        return space

    def take_findings(self) -> list[PackFinding]:
        """The damaged records found so far, handed over once (memory stays flat)."""
        findings, self.findings = self.findings, []
        return findings

    def _submit(self) -> None:
        if not self._job:
            return
        assert self._pack is not None
        job, self._job, self._job_bytes = self._job, [], 0
        if self.pool is None:
            self._add(self.backend.check_records(self._pack, job, False))
            return
        self._pending.append(self.pool.submit(rehash.check_records, self.backend, self._pack, job))
        while len(self._pending) > self._in_flight:
            self._collect(self._pending.popleft())

    def _collect(self, future: Future[tuple[int, list[PackFinding]]]) -> None:
        self._add(future.result())

    def _add(self, result: tuple[int, list[PackFinding]]) -> None:
        hashed, findings = result
        self.bytes += hashed
        self.findings.extend(findings)

    def _end_pack(self) -> None:
        """Close the pack being read: its jobs submitted, its space added up."""
        self._submit()
        name = self._pack
        if name is None:
            return
        self.seen.add(name)
        self._pack = None
        size = self.backend.size(name)
        if size is None:
            return  # its records are reported missing by the job
        if self.backend.being_written(name):
            self.space = _plus(self.space, packs=1, active_packs=1)
            return
        unused = max(size - PACK_HEADER.size - self._live - self.backend.seal_bytes(name, size), 0)
        self.space = _plus(
            self.space, packs=1, pack_bytes=size, live_bytes=self._live, reclaimable_bytes=unused
        )


def _plus(space: PackSpace, **more: int) -> PackSpace:
    return PackSpace(**{key: value + more.get(key, 0) for key, value in space.to_dict().items()})


class VerifyService:
    def __init__(self, uow_factory: UowFactory, store: PhotoStore, *, page: int = PAGE) -> None:
        self.uow_factory = uow_factory
        self.store = store
        self.page = page

    async def verify(
        self,
        options: VerifyOptions,
        progress: Callable[[int], None] | None = None,
        *,
        now: float | None = None,
    ) -> VerifyReport:
        """Check every case, photo and store file; ``progress`` gets cases checked so far.

        With ``prune``, only while no ingest runs against this database (``PruneGuard``);
        raises ``IngestRunning`` (exit 3) otherwise.
        """
        if not options.prune:
            return await self._verify(options, progress, now, None)
        async with PruneGuard(self.uow_factory) as guard:
            return await self._verify(options, progress, now, guard)

    async def _verify(
        self,
        options: VerifyOptions,
        progress: Callable[[int], None] | None,
        now: float | None,
        guard: PruneGuard | None,
    ) -> VerifyReport:
        started = time.perf_counter()
        tally = _Tally(options.limit, options.offset)
        schemas = await self._schemas(tally)
        rows = await self._page(None)
        if rows and not self.store.exists():
            raise StoreMissing(self.store.location)
        pool = (
            ProcessPoolExecutor(
                options.hash_workers,
                mp_context=rehash.context(),
                initializer=rehash.initialize,
                initargs=(os.getpid(),),
            )
            if options.read_data
            else None
        )
        check = _Pass(
            self.uow_factory,
            self.store,
            options,
            schemas,
            tally,
            time.time() if now is None else now,
            guard,
            pool,
        )
        packs = _PackPass(self.store, options, pool)
        try:
            # The two passes take turns a page at a time: the workers hash packed photos
            # while this process validates metadata.
            packed = await self._packed(None)
            while rows or packed:
                if rows:
                    await check.page(rows)
                    if progress is not None:
                        progress(check.cases)
                    rows = await self._page((rows[-1][0], rows[-1][1]))
                if packed:
                    packs.page(packed)
                    packed = await self._packed((packed[-1][0], packed[-1][1]))
                if len(packs.findings) >= _CASES_CHUNK:
                    await self._name_cases(packs.take_findings(), tally)
            await check.finish()
            space = packs.finish()
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        await self._name_cases(packs.take_findings(), tally)
        return VerifyReport(
            store=self.store.location,
            read_data=options.read_data,
            cases=check.cases,
            photos=check.photos,
            store_files=check.cursor.files,
            bytes_hashed=(0 if check.hasher is None else check.hasher.bytes) + packs.bytes,
            found=dict(tally.found),
            pruned=tally.pruned,
            kept_recent=tally.kept_recent,
            listed=tuple(tally.listed),
            elapsed_s=time.perf_counter() - started,
            offset=options.offset,
            packed_photos=packs.photos,
            space=space,
        )

    async def _name_cases(self, findings: list[PackFinding], tally: _Tally) -> None:
        """A problem per case using a photo whose record is damaged or missing (one per
        photo no case uses), in the order found; none for a photo whose row no longer names
        the place checked (moved by a concurrent ``store reclaim``, or gone)."""
        for start in range(0, len(findings), _CASES_CHUNK):
            chunk = findings[start : start + _CASES_CHUNK]
            photos = [finding[0] for finding in chunk]
            async with self.uow_factory() as uow:
                places = await uow.verify.places_of(photos)
                cases = await uow.verify.cases_of(photos)
            by_photo: dict[str, list[uuid.UUID | None]] = {}
            for photo, case_id in cases:
                by_photo.setdefault(photo, []).append(case_id)
            for photo, kind, message, pack, offset in chunk:
                if places.get(photo) != (pack, offset):
                    continue
                for case_id in by_photo.get(photo) or [None]:
                    tally.add(Problem(cast(ProblemKind, kind), message, case_id, photo))

    async def _schemas(self, tally: _Tally) -> dict[int, CompiledSchema | None]:
        """Every schema version compiled once; one that no longer compiles is a problem."""
        compiled: dict[int, CompiledSchema | None] = {}
        async with self.uow_factory() as uow:
            for row in await uow.verify.schema_versions():
                try:
                    compiled[row.id] = compile_row(row)
                except LizardError as exc:
                    compiled[row.id] = None
                    message = f"{row.camera_type} v{row.version} no longer compiles: {exc}"
                    tally.add(Problem("bad-schema", message + "; its cases are not checked"))
        return compiled

    async def _packed(self, after: PackKey | None) -> Sequence[Any]:
        async with self.uow_factory() as uow:
            return await uow.verify.packed_after(after, self.page)

    async def _page(self, after: PageKey | None) -> Sequence[Any]:
        """One short transaction per page: a long verify never holds SQLite's write lock."""
        async with self.uow_factory() as uow:
            return await uow.verify.cases_after(after, self.page)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"

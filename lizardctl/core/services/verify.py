"""``verify``: check the database and the photo store against each other, like ``restic check``.

Every case's photo must be in the store with the size the photos table records (and, with
``read_data``, content that still hashes to its name); every photo file in the store must be
used by a case; every case's raw metadata must still validate, and map, under the schema
version that accepted it. Nothing is loaded whole: cases come in pages in photo-hash order,
the store is listed once in the same order, and the two are merged like sorted files, so
memory stays flat and no file is looked up per case.

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
from pathlib import Path
from typing import Any, Literal

from lizardctl.core import rehash
from lizardctl.core.choices import DEFAULT_MIN_AGE_S
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.errors import LizardError, StoreMissing
from lizardctl.core.repositories.verify import PageKey
from lizardctl.core.schema import CompiledSchema, ShotInvalid
from lizardctl.core.schema.stored import compile_row
from lizardctl.core.services.prune_guard import PruneGuard
from lizardctl.core.store import PhotoStore, StoreEntry

ProblemKind = Literal[
    "missing-photo",
    "wrong-size",
    "wrong-hash",
    "orphan-photo",
    "stale-temporary",
    "invalid-metadata",
    "bad-schema",
]
PAGE = 2000
_ORPHAN_BATCH = 500
_HASH_BATCH = 64


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
                "bytes_hashed": self.bytes_hashed,
                "problems": self.problems,
                "pruned": self.pruned,
                "kept_recent": self.kept_recent,
            },
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


class _StoreCursor:
    """The store's listing, consumed in step with the cases: what it passes over is unused."""

    def __init__(self, store: PhotoStore) -> None:
        self._entries: Iterator[StoreEntry] = store.scan()
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
    """Re-hashes stored photos on threads (reading and hashing release the GIL).

    Photos go in batches: a future per photo cost as much as hashing a 40 KB photo. A few
    batches in flight keep the threads busy and memory flat.
    """

    def __init__(self, store: PhotoStore, threads: int, tally: _Tally) -> None:
        self._store = store
        self._tally = tally
        self._pool = ProcessPoolExecutor(
            threads,
            mp_context=rehash.context(),
            initializer=rehash.initialize,
            initargs=(os.getpid(),),
        )
        self._in_flight = 2 * threads
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

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def _submit(self) -> None:
        photos = [group.photo for group in self._batch]
        future = self._pool.submit(rehash.read_digests, self._store.root, photos)
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
    ) -> None:
        self.uow_factory = uow_factory
        self.guard = guard
        self.store = store
        self.options = options
        self.schemas = schemas
        self.tally = tally
        self.now = now
        self.cursor = _StoreCursor(store)
        self.hasher = _Hasher(store, options.hash_workers, tally) if options.read_data else None
        self.group: _Group | None = None
        self.passed: list[StoreEntry] = []
        self.orphans: list[tuple[str, StoreEntry]] = []
        self.cases = self.photos = 0

    async def page(self, rows: Sequence[Any]) -> None:
        """Check a page of cases, and the photos and store files they have moved past."""
        tally, schemas = self.tally, self.schemas
        for photo, _, case_id, schema_id, size, raw in rows:
            if self.group is None or photo != self.group.photo:
                if self.group is not None:
                    self._check_photo(self.group)
                self.group = _Group(photo, size, [])
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

    def close(self) -> None:
        if self.hasher is not None:
            self.hasher.close()

    def _check_photo(self, group: _Group) -> None:
        entry = self.cursor.skip_to(group.photo, self.passed)
        size = None if entry is None else entry.size
        if size != group.size:
            # A concurrent ingest may have stored it after the listing: look again.
            size = self.store.size_of(group.photo)
        if size is None:
            kind: ProblemKind = "missing-photo"
            message = "photo is not in the store"
        elif size != group.size:
            kind = "wrong-size"
            message = f"stored photo has {size} bytes, the database says {group.size}"
        else:
            if self.hasher is not None:
                self.hasher.add(group, size)
            return
        for case_id in group.case_ids:
            self.tally.add(Problem(kind, message, case_id, group.photo))

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
                    self.store.remove_temporary(entry.path)
                age = _age(now - entry.mtime)
                message = f"temporary file left by an interrupted write, {age} old"
                self.tally.add(
                    Problem("stale-temporary", message, path=entry.path, pruned=options.prune)
                )
        self.passed.clear()
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
                self.store.remove(digest)
            elif options.prune:
                self.tally.kept_recent += 1
            message = f"no case uses this photo ({entry.size} bytes, {_age(now - entry.mtime)} old)"
            self.tally.add(
                Problem("orphan-photo", message, photo=digest, path=entry.path, pruned=prune)
            )


class VerifyService:
    def __init__(self, uow_factory: UowFactory, store_root: Path, *, page: int = PAGE) -> None:
        self.uow_factory = uow_factory
        self.store = PhotoStore(store_root)
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
        if rows and not self.store.root.is_dir():
            raise StoreMissing(self.store.root)
        check = _Pass(
            self.uow_factory,
            self.store,
            options,
            schemas,
            tally,
            time.time() if now is None else now,
            guard,
        )
        try:
            while rows:
                await check.page(rows)
                if progress is not None:
                    progress(check.cases)
                rows = await self._page((rows[-1][0], rows[-1][1]))
            await check.finish()
        finally:
            check.close()
        return VerifyReport(
            store=str(self.store.root),
            read_data=options.read_data,
            cases=check.cases,
            photos=check.photos,
            store_files=check.cursor.files,
            bytes_hashed=0 if check.hasher is None else check.hasher.bytes,
            found=dict(tally.found),
            pruned=tally.pruned,
            kept_recent=tally.kept_recent,
            listed=tuple(tally.listed),
            elapsed_s=time.perf_counter() - started,
            offset=options.offset,
        )

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

"""``store reclaim`` and ``store repack``: rewriting packs whose photos are mostly gone, and
moving photos of the first layout (a file each) into packs.

Reclaiming is restic's ``prune``: a pack whose live share (bytes of records a row points at)
is below a threshold is rewritten, its live records copied into a new pack, and then the old
one is deleted; a pack no row points at is deleted outright. Both take the ``PruneGuard``, so
neither runs while an ingest on this database is alive, nor an ingest while they run, and
neither touches a pack a live writer holds (its ``flock``).

Crash safety is the order of the steps, for each pack: copies appended and made durable
(``PackSink.sync``), rows pointed at the copies and committed (each only where it still
names the old place), and only then the old pack unlinked and its directory synced. Killed
before the commit, the new pack is unreferenced: the next reclaim deletes it. Killed after
it, the old pack is: the next reclaim deletes that. Every row reads at every moment.

Repack is the same order per batch: files read and checked against their digest, appended,
synced, rows committed, files deleted. A killed repack re-run finishes the rows still
without a pack and deletes the files whose photos a pack already holds. A file that is
missing or does not hash to its name is left where it is, with its row; ``verify`` names it.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lizardctl.core.choices import DEFAULT_LIVE_BELOW
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.services.prune_guard import PruneGuard
from lizardctl.core.store import FileStore, PhotoStore
from lizardctl.core.store.backend import PackSink
from lizardctl.core.store.packs import (
    PACK_HEADER,
    RECORD,
    DamagedRecord,
)

_PAGE = 1000
_REPACK_BYTES = 64 << 20
_SWEEP = 500
_NAMED = 20


@dataclass(frozen=True, slots=True)
class PackUse:
    """A pack and how much of it rows point at (records, headers included)."""

    name: str
    size: int
    photos: int
    live_bytes: int

    @property
    def live_share(self) -> float:
        return self.live_bytes / max(self.size - PACK_HEADER.size, 1)

    @property
    def frees(self) -> int:
        """Bytes a rewrite frees: the pack, less the live records it copies."""
        return max(self.size - self.live_bytes, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pack": self.name,
            "size": self.size,
            "photos": self.photos,
            "live_bytes": self.live_bytes,
            "live_share": round(self.live_share, 4),
            "frees": self.frees,
        }


@dataclass(frozen=True, slots=True)
class ReclaimReport:
    dry_run: bool
    live_below: float
    packs: int
    pack_bytes: int
    chosen: tuple[PackUse, ...]
    """Packs to rewrite (live records) or delete (none), in name order."""
    freed: int
    """Bytes freed, or with ``dry_run`` that would be."""
    copied: int
    skipped: tuple[str, ...] = ()
    """Packs left as they are, with why (a damaged record is never copied)."""
    active: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "live_below": self.live_below,
            "packs": self.packs,
            "pack_bytes": self.pack_bytes,
            "active_packs": self.active,
            "rewritten": sum(1 for use in self.chosen if use.photos),
            "deleted": sum(1 for use in self.chosen if not use.photos),
            "freed_bytes": self.freed,
            "copied_bytes": self.copied,
            "chosen": [use.to_dict() for use in self.chosen],
            "skipped": list(self.skipped),
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(slots=True)
class RepackReport:
    moved: int = 0
    bytes: int = 0
    leftovers_deleted: int = 0
    skipped: int = 0
    named: list[str] = field(default_factory=list)
    """The first skipped photos, with why."""
    elapsed_s: float = 0.0
    packs_only: bool = False
    """The store never had the file-per-photo layout (an S3 store): nothing to move."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "moved": self.moved,
            "bytes": self.bytes,
            "leftovers_deleted": self.leftovers_deleted,
            "skipped": self.skipped,
            "skipped_named": self.named,
            "elapsed_s": round(self.elapsed_s, 3),
            "packs_only": self.packs_only,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What a reclaim would do: ``chosen`` packs to rewrite or delete, out of ``packs``
    (``pack_bytes`` in all), of which ``active`` a live writer holds."""

    chosen: tuple[PackUse, ...]
    packs: int
    pack_bytes: int
    active: int


class _Unsafe(Exception):
    """A pack cannot be rewritten without losing or corrupting a photo."""


class StoreSpaceService:
    def __init__(self, uow_factory: UowFactory, store: PhotoStore) -> None:
        self.uow_factory = uow_factory
        self.store = store

    async def plan(self, live_below: float = DEFAULT_LIVE_BELOW) -> Plan:
        """The packs whose live share is below ``live_below``; never one a writer holds."""
        photos: dict[str, tuple[int, int]] = {}
        after: str | None = None
        while True:
            async with self.uow_factory() as uow:
                rows = await uow.photos.pack_usage_after(after, _PAGE)
            if not rows:
                break
            for name, count, total in rows:
                photos[name] = (int(count), int(total or 0))
            after = rows[-1][0]
        chosen: list[PackUse] = []
        packs = pack_bytes = active = 0
        backend = self.store.backend
        for name in backend.packs():
            size = backend.size(name)
            if size is None:
                continue
            packs += 1
            pack_bytes += size
            if backend.being_written(name):
                active += 1
                continue
            count, total = photos.get(name, (0, 0))
            use = PackUse(name, size, count, total + count * RECORD.size)
            if use.live_share < live_below:
                chosen.append(use)
        return Plan(tuple(chosen), packs, pack_bytes, active)

    async def reclaim(
        self, live_below: float = DEFAULT_LIVE_BELOW, *, dry_run: bool = False
    ) -> ReclaimReport:
        """Rewrite (or delete) the packs ``plan`` chooses; with ``dry_run`` only say so."""
        started = time.perf_counter()
        if dry_run:
            plan = await self.plan(live_below)
            return ReclaimReport(
                True,
                live_below,
                plan.packs,
                plan.pack_bytes,
                plan.chosen,
                sum(use.frees for use in plan.chosen),
                sum(use.live_bytes for use in plan.chosen),
                active=plan.active,
                elapsed_s=time.perf_counter() - started,
            )
        async with PruneGuard(self.uow_factory) as guard:
            plan = await self.plan(live_below)
            store_id = self.store.identity()
            writer = None if store_id is None else self.store.writer(store_id)
            done: list[PackUse] = []
            skipped: list[str] = []
            freed = copied = 0
            try:
                for use in plan.chosen:
                    try:
                        if use.photos:
                            assert writer is not None
                            copied += await self._rewrite(use, writer)
                    except _Unsafe as exc:
                        skipped.append(f"{use.name}: {exc}")
                        continue
                    await guard.before_deleting()
                    if await self._still_used(use.name):
                        skipped.append(f"{use.name}: a row still points at it; left as it is")
                        continue
                    self.store.backend.remove(use.name)
                    freed += use.size
                    done.append(use)
            finally:
                if writer is not None:
                    writer.close()
        return ReclaimReport(
            False,
            live_below,
            plan.packs,
            plan.pack_bytes,
            tuple(done),
            max(freed - copied, 0),
            copied,
            tuple(skipped),
            plan.active,
            time.perf_counter() - started,
        )

    async def _rewrite(self, use: PackUse, writer: PackSink) -> int:
        """Copy the pack's live records into ``writer``'s pack, make them durable, point
        the rows at them and commit. Returns the bytes copied (records, headers included)."""
        moves: list[tuple[str, str, int, str, int]] = []
        copied = 0
        after: int | None = None
        while True:
            async with self.uow_factory() as uow:
                rows = await uow.photos.in_pack(use.name, after, _PAGE)
            if not rows:
                break
            items = []
            for sha256, size, offset in rows:
                try:
                    data = self.store.backend.read(use.name, offset, sha256, size)
                except (DamagedRecord, FileNotFoundError) as exc:
                    raise _Unsafe(f"photo {sha256} cannot be read ({exc}); left as it is") from exc
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise _Unsafe(f"photo {sha256} does not hash to its name; left as it is")
                items.append((sha256, data))
                copied += RECORD.size + size
            places = writer.append(items)
            moves.extend(
                (sha256, use.name, offset, pack, new_offset)
                for (sha256, _, offset), (pack, new_offset) in zip(rows, places, strict=True)
            )
            after = rows[-1][2]
        writer.sync()  # the copies are durable before any row points at them
        async with self.uow_factory() as uow:
            await uow.photos.move(moves)
            await uow.commit()
        return copied

    @property
    def _files(self) -> FileStore:
        assert self.store.files is not None  # repack returns at once on a store without
        return self.store.files

    async def _still_used(self, pack: str) -> bool:
        async with self.uow_factory() as uow:
            return bool(await uow.photos.in_pack(pack, None, 1))

    async def repack(self) -> RepackReport:
        """Move every photo stored as a file into packs, then delete files whose photos a
        pack holds (this run's, and those a killed run left)."""
        if self.store.files is None:
            return RepackReport(packs_only=True)
        started = time.perf_counter()
        report = RepackReport()
        store_id = self.store.identity()
        if store_id is None:
            return report  # nothing stored yet
        async with PruneGuard(self.uow_factory) as guard:
            writer = self.store.writer(store_id)
            try:
                after: str | None = None
                items: list[tuple[str, bytes]] = []
                pending = 0
                while True:
                    async with self.uow_factory() as uow:
                        rows = await uow.photos.unpacked_after(after, _PAGE)
                    if not rows:
                        break
                    after = rows[-1][0]
                    for sha256, size in rows:
                        data = self._read_file(sha256, size, report)
                        if data is None:
                            continue
                        items.append((sha256, data))
                        pending += size
                        if pending >= _REPACK_BYTES:
                            await self._pack_files(items, writer, guard, report)
                            items, pending = [], 0
                    await guard.beat()
                await self._pack_files(items, writer, guard, report)
            finally:
                writer.close()
            await self._sweep(guard, report)
        report.elapsed_s = time.perf_counter() - started
        return report

    def _read_file(self, sha256: str, size: int, report: RepackReport) -> bytes | None:
        """The file's bytes, if they are the photo its row names; else it is skipped."""
        try:
            data = self._files.path_for(sha256).read_bytes()
        except FileNotFoundError:
            why = "its file is missing"
        else:
            if len(data) == size and hashlib.sha256(data).hexdigest() == sha256:
                return data
            why = "its file does not hash to its name"
        report.skipped += 1
        if len(report.named) < _NAMED:
            report.named.append(f"{sha256}: {why}; left as it is")
        return None

    async def _pack_files(
        self,
        items: list[tuple[str, bytes]],
        writer: PackSink,
        guard: PruneGuard,
        report: RepackReport,
    ) -> None:
        if not items:
            return
        places = writer.append(items)
        writer.sync()  # durable before any row points at the pack
        async with self.uow_factory() as uow:
            await uow.photos.pack_files(
                [
                    (sha256, pack, offset)
                    for (sha256, _), (pack, offset) in zip(items, places, strict=True)
                ]
            )
            await uow.commit()
        await guard.before_deleting()
        for sha256, data in items:
            remove_file(self._files.path_for(sha256))
            report.moved += 1
            report.bytes += len(data)

    async def _sweep(self, guard: PruneGuard, report: RepackReport) -> None:
        """Delete files whose photos rows say a pack holds: left by a killed repack."""
        batch: list[str] = []
        for digest in itertools.chain(self._files.iter_hashes(), [None]):
            if digest is not None:
                batch.append(digest)
            if batch and (len(batch) >= _SWEEP or digest is None):
                async with self.uow_factory() as uow:
                    packed = await uow.photos.packed_among(batch)
                if packed:
                    await guard.before_deleting()
                for sha256 in sorted(packed):
                    remove_file(self._files.path_for(sha256))
                    report.leftovers_deleted += 1
                batch = []


def remove_file(path: Path) -> None:
    """Delete a first-layout file a pack now holds; not synced: should the deletion be lost
    in a crash, the next repack deletes the file again."""
    path.unlink(missing_ok=True)

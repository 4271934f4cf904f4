"""The store this database uses, and where each photo is in it.

Moving photos (``store reclaim``, ``store repack``) updates a row only where it still says
what the mover read: a row changed meanwhile is left as it is, never pointed at bytes that
may not be its photo.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, bindparam, func, select, update

from lizardctl.core.db.models import Case, Photo, PhotoStoreRow
from lizardctl.core.repositories._dialect import insert_ignoring_conflicts
from lizardctl.core.repositories.base import Repository
from lizardctl.core.store import PhotoLocation

_PHOTOS_BETWEEN = (
    select(Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset)
    .where(Photo.sha256.between(bindparam("low"), bindparam("high")))
    .order_by(Photo.sha256)
    .limit(bindparam("n"))
)
_CASES_BETWEEN = (
    select(Case.id, Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset)
    .join(Photo, Photo.sha256 == Case.photo_sha256)
    .where(Case.id.between(bindparam("low"), bindparam("high")))
    .order_by(Case.id)
    .limit(bindparam("n"))
)
"""``photo get``'s two look-ups, built once: building a statement per call cost a third of
a look-up's CPU (``benchmarks/bench_photo_get.py``)."""


class BoundStore(NamedTuple):
    id: uuid.UUID
    location: str


class PhotoRepository(Repository):
    async def store(self) -> BoundStore | None:
        """The store the database is bound to, if it has been used yet."""
        query = select(PhotoStoreRow.id, PhotoStoreRow.location).limit(1)
        row = (await self.session.execute(query)).first()
        return None if row is None else BoundStore(*row)

    async def bind_store(self, store_id: uuid.UUID, location: str, now: datetime) -> None:
        """Record the store, unless a store is recorded already (then that one stands)."""
        statement = insert_ignoring_conflicts(self.session.dialect, PhotoStoreRow)
        await self.session.execute(
            statement.values(slot=1, id=store_id, location=location, created_at=now)
        )

    async def move_store(self, store_id: uuid.UUID, location: str) -> None:
        await self.session.execute(
            update(PhotoStoreRow).where(PhotoStoreRow.id == store_id).values(location=location)
        )

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Photo)) or 0)

    async def locate(self, sha256: str) -> PhotoLocation | None:
        """Where the photo ``sha256`` is stored; None when no row records it."""
        row = (
            await self.session.execute(
                select(Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset).where(
                    Photo.sha256 == sha256
                )
            )
        ).first()
        return None if row is None else PhotoLocation(*row)

    async def between(self, low: str, high: str, limit: int) -> list[PhotoLocation]:
        """Photos whose sha256 is from ``low`` to ``high``, in order: a sha256 prefix's
        matches, found by a range scan of the primary key."""
        rows = await self.session.execute(_PHOTOS_BETWEEN, {"low": low, "high": high, "n": limit})
        return [PhotoLocation(*row) for row in rows]

    async def of_cases_between(
        self, low: uuid.UUID, high: uuid.UUID, limit: int
    ) -> list[tuple[uuid.UUID, PhotoLocation]]:
        """The photo of each case whose id is from ``low`` to ``high`` (a case id prefix's
        matches: a range scan of the cases' primary key, then the photos')."""
        rows = await self.session.execute(_CASES_BETWEEN, {"low": low, "high": high, "n": limit})
        return [(row[0], PhotoLocation(*row[1:])) for row in rows]

    async def format_of(self, sha256: str) -> str | None:
        """The photo's format as probed at ingest (``JPEG``, ``PNG``), for a file name."""
        return await self.session.scalar(select(Photo.format).where(Photo.sha256 == sha256))

    async def pack_usage_after(self, after: str | None, limit: int) -> Sequence[Row[Any]]:
        """``(pack, photos, photo bytes)`` of the next ``limit`` packs rows point at."""
        query = (
            select(Photo.pack, func.count(), func.sum(Photo.size))
            .where(Photo.pack.is_not(None))
            .group_by(Photo.pack)
            .order_by(Photo.pack)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Photo.pack > after)
        return (await self.session.execute(query)).all()

    async def in_pack(self, pack: str, after: int | None, limit: int) -> Sequence[Row[Any]]:
        """``(sha256, size, offset)`` of the photos of ``pack`` past offset ``after``."""
        query = (
            select(Photo.sha256, Photo.size, Photo.pack_offset)
            .where(Photo.pack == pack)
            .order_by(Photo.pack_offset)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Photo.pack_offset > after)
        return (await self.session.execute(query)).all()

    async def move(self, moves: Sequence[tuple[str, str, int, str, int]]) -> None:
        """Point photos ``(sha256, old pack, old offset, new pack, new offset)`` at their
        copies, each only if its row still names the old place."""
        if not moves:
            return
        table = cast(Table, Photo.__table__)
        statement = (
            update(table)
            .where(
                table.c.sha256 == bindparam("b_sha256"),
                table.c.pack == bindparam("b_old_pack"),
                table.c.pack_offset == bindparam("b_old_offset"),
            )
            .values(pack=bindparam("b_pack"), pack_offset=bindparam("b_offset"))
        )
        await self.session.execute(
            statement,
            [
                {
                    "b_sha256": sha256,
                    "b_old_pack": old_pack,
                    "b_old_offset": old_offset,
                    "b_pack": pack,
                    "b_offset": offset,
                }
                for sha256, old_pack, old_offset, pack, offset in moves
            ],
        )

    async def unpacked_after(self, after: str | None, limit: int) -> Sequence[Row[Any]]:
        """``(sha256, size)`` of the next ``limit`` photos stored as files (no pack)."""
        query = (
            select(Photo.sha256, Photo.size)
            .where(Photo.pack.is_(None))
            .order_by(Photo.sha256)
            .limit(limit)
        )
        if after is not None:
            query = query.where(Photo.sha256 > after)
        return (await self.session.execute(query)).all()

    async def pack_files(self, places: Sequence[tuple[str, str, int]]) -> None:
        """Point photos ``(sha256, pack, offset)`` stored as files at their packed copies,
        each only if its row still has no pack."""
        if not places:
            return
        table = cast(Table, Photo.__table__)
        statement = (
            update(table)
            .where(table.c.sha256 == bindparam("b_sha256"), table.c.pack.is_(None))
            .values(pack=bindparam("b_pack"), pack_offset=bindparam("b_offset"))
        )
        await self.session.execute(
            statement,
            [{"b_sha256": s, "b_pack": p, "b_offset": o} for s, p, o in places],
        )

    async def packed_among(self, hashes: Collection[str]) -> set[str]:
        """Which of these photos a pack holds (their files, if any, are left over)."""
        wanted = sorted(hashes)
        found: set[str] = set()
        for start in range(0, len(wanted), 400):
            query = select(Photo.sha256).where(
                Photo.sha256.in_(wanted[start : start + 400]), Photo.pack.is_not(None)
            )
            found.update(await self.session.scalars(query))
        return found

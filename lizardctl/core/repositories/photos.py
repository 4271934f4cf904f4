"""The store this database uses, and where each photo is in it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select, update

from lizardctl.core.db.models import Case, Photo, PhotoStoreRow
from lizardctl.core.repositories._dialect import insert_ignoring_conflicts
from lizardctl.core.repositories.base import Repository
from lizardctl.core.store import PhotoLocation


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
        query = (
            select(Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset)
            .where(Photo.sha256.between(low, high))
            .order_by(Photo.sha256)
            .limit(limit)
        )
        return [PhotoLocation(*row) for row in await self.session.execute(query)]

    async def of_cases_between(
        self, low: uuid.UUID, high: uuid.UUID, limit: int
    ) -> list[tuple[uuid.UUID, PhotoLocation]]:
        """The photo of each case whose id is from ``low`` to ``high`` (a case id prefix's
        matches: a range scan of the cases' primary key, then the photos')."""
        query = (
            select(Case.id, Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset)
            .join(Photo, Photo.sha256 == Case.photo_sha256)
            .where(Case.id.between(low, high))
            .order_by(Case.id)
            .limit(limit)
        )
        return [(row[0], PhotoLocation(*row[1:])) for row in await self.session.execute(query)]

    async def format_of(self, sha256: str) -> str | None:
        """The photo's format as probed at ingest (``JPEG``, ``PNG``), for a file name."""
        return await self.session.scalar(select(Photo.format).where(Photo.sha256 == sha256))

"""Read-only queries for ``verify``: every case beside its photo's recorded size, in pages,
and every packed photo in the order its packs hold them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, Text, cast, select, tuple_

from lizardctl.core.db.models import Case, Photo, SchemaVersion
from lizardctl.core.repositories.base import Repository

PageKey = tuple[str, str]
PackKey = tuple[str, int]
_CHUNK = 400


class VerifyRepository(Repository):
    async def schema_versions(self) -> Sequence[SchemaVersion]:
        return (await self.session.scalars(select(SchemaVersion))).all()

    async def cases_after(self, after: PageKey | None, limit: int) -> Sequence[Row[Any]]:
        """The next ``limit`` cases after ``after`` in (photo, metadata) hash order.

        Rows are ``(photo_sha256, metadata_sha256, id, schema_version_id, size, raw, pack)``,
        raw as JSON text (validating it as text costs half of decoding it first), pack None
        for a photo stored as a file.
        That order is the unique index's, so each page is one range scan of it (keyset
        pagination: no OFFSET, no page costs more than the first), cases sharing a photo
        come together, and photos come in the order the store lists them.
        """
        query = (
            select(
                Case.photo_sha256,
                Case.metadata_sha256,
                Case.id,
                Case.schema_version_id,
                Photo.size,
                cast(Case.raw, Text),
                Photo.pack,
            )
            .join(Photo, Photo.sha256 == Case.photo_sha256)
            .order_by(Case.photo_sha256, Case.metadata_sha256)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tuple_(Case.photo_sha256, Case.metadata_sha256) > tuple_(*after))
        return (await self.session.execute(query)).all()

    async def referenced(self, hashes: Collection[str]) -> set[str]:
        """Which of these photo hashes a case uses now."""
        wanted = sorted(hashes)
        found: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            query = (
                select(Case.photo_sha256)
                .where(Case.photo_sha256.in_(wanted[start : start + _CHUNK]))
                .distinct()
            )
            found.update(await self.session.scalars(query))
        return found

    async def packed_after(self, after: PackKey | None, limit: int) -> Sequence[Row[Any]]:
        """The next ``limit`` packed photos after ``after`` in (pack, offset) order, as
        ``(pack, pack_offset, sha256, size)``: one range scan of ``ix_photos_pack`` per page,
        and each pack read front to back."""
        query = (
            select(Photo.pack, Photo.pack_offset, Photo.sha256, Photo.size)
            .where(Photo.pack.is_not(None))
            .order_by(Photo.pack, Photo.pack_offset)
            .limit(limit)
        )
        if after is not None:
            query = query.where(tuple_(Photo.pack, Photo.pack_offset) > tuple_(*after))
        return (await self.session.execute(query)).all()

    async def cases_of(self, hashes: Collection[str]) -> list[tuple[str, Any]]:
        """``(photo, case id)`` of every case using one of these photos, in photo order."""
        wanted = sorted(hashes)
        found: list[tuple[str, Any]] = []
        for start in range(0, len(wanted), _CHUNK):
            query = (
                select(Case.photo_sha256, Case.id)
                .where(Case.photo_sha256.in_(wanted[start : start + _CHUNK]))
                .order_by(Case.photo_sha256, Case.metadata_sha256)
            )
            found.extend((photo, case_id) for photo, case_id in await self.session.execute(query))
        return found

    async def places_of(self, hashes: Collection[str]) -> dict[str, tuple[str | None, int | None]]:
        """Where each of these photos is now: ``(pack, offset)``, both None for a file."""
        wanted = sorted(hashes)
        found: dict[str, tuple[str | None, int | None]] = {}
        for start in range(0, len(wanted), _CHUNK):
            query = select(Photo.sha256, Photo.pack, Photo.pack_offset).where(
                Photo.sha256.in_(wanted[start : start + _CHUNK])
            )
            for sha256, pack, offset in await self.session.execute(query):
                found[sha256] = (pack, offset)
        return found

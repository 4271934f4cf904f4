"""Reaching behind the tool's back in e2e tests: rows read or changed straight in the
database, a pack damaged in place (in a folder or a bucket), an ingested folder store
turned back into the first layout."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Photo
from lizardctl.core.store import PhotoLocation, PhotoStore
from lizardctl.core.store.packs import list_packs, pack_path
from tests.stored import StoreAt, pack_bytes, replace_pack


def on_db(db_url: str, action: Any) -> Any:
    """Run ``action(connection)`` in one committed transaction."""

    async def main() -> Any:
        db = Database(parse_db_url(db_url))
        try:
            async with db.engine.begin() as connection:
                return await action(connection)
        finally:
            await db.dispose()

    return asyncio.run(main())


def locations(db_url: str) -> list[PhotoLocation]:
    """Every photo row, in (pack, offset) order, files last."""

    async def rows(connection: Any) -> list[PhotoLocation]:
        query = select(Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset)
        return [PhotoLocation(*row) for row in await connection.execute(query)]

    found: list[PhotoLocation] = on_db(db_url, rows)
    return sorted(found, key=lambda loc: (loc.pack is None, loc.pack or "", loc.offset or 0))


def change_byte(store: StoreAt, location: PhotoLocation, at: int) -> None:
    """Flip the byte ``at`` bytes into the photo's record (its header is 48 bytes), in a
    folder's pack file or by uploading the changed object again."""
    assert location.pack is not None and location.offset is not None
    data = bytearray(pack_bytes(store, location.pack))
    data[location.offset + at] ^= 0xFF
    replace_pack(store, location.pack, bytes(data))


def unpack(db_url: str, store: Path) -> list[PhotoLocation]:
    """Make an ingested store a first-layout one: a file per photo, rows with no pack, no
    packs; returns where the photos were."""
    photos = PhotoStore.at(store)
    found = locations(db_url)
    photos.files.put_many([(loc.sha256, photos.read(loc)) for loc in found])

    async def no_packs(connection: Any) -> None:
        await connection.execute(update(Photo).values(pack=None, pack_offset=None))

    on_db(db_url, no_packs)
    for name in list_packs(store):
        pack_path(store, name).unlink()
    return found

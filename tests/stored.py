"""What a photo store holds, for tests: photos as the database locates them, read back
through ``PhotoStore``, and the records its pack files contain.

"A photo is stored" means its row has a pack and an offset and ``PhotoStore.read`` returns
bytes hashing to the row's sha256; ``stored_photos`` checks exactly that for every row.
``pack_records`` says what was written at all, referenced or not, for tests that a run
wrote nothing (a dry run) or nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Photo
from lizardctl.core.store import PhotoLocation, PhotoStore
from lizardctl.core.store.packs import PACKS_DIR, list_packs, read_record, scan_pack


async def stored_photos(db: Database, root: Path) -> dict[str, bytes]:
    """Every photo row's bytes, read from the store at ``root`` by its pack and offset;
    fails the test when a row has no pack or its bytes are not its photo."""
    async with db.uow() as uow:
        query = select(Photo.sha256, Photo.size, Photo.pack, Photo.pack_offset)
        rows = (await uow.photos.session.execute(query)).all()
    store = PhotoStore.at(root)
    photos: dict[str, bytes] = {}
    for row in rows:
        location = PhotoLocation(*row)
        assert location.pack is not None and location.offset is not None, location
        data = store.read(location)
        assert hashlib.sha256(data).hexdigest() == location.sha256, location
        photos[location.sha256] = data
    return photos


def stored_photos_at(url: str, root: Path) -> dict[str, bytes]:
    """``stored_photos`` for a database URL, from synchronous code (the e2e tests)."""

    async def read() -> dict[str, bytes]:
        db = Database(parse_db_url(url))
        try:
            return await stored_photos(db, root)
        finally:
            await db.dispose()

    return asyncio.run(read())


def pack_records(root: Path) -> list[str]:
    """The sha256 of every photo record in the store's packs, in pack and offset order (a
    photo written twice is listed twice); fails the test when a record's bytes are not the
    photo its header names. A torn record at a pack's end is not listed: a scan stops there."""
    found = []
    for pack in list_packs(root):
        path = Path(root) / PACKS_DIR / pack
        for record in scan_pack(path).records:
            data = read_record(root, pack, record.offset, record.sha256, record.length)
            assert hashlib.sha256(data).hexdigest() == record.sha256, (pack, record)
            found.append(record.sha256)
    return found


def default_store(db_url: str, cwd: Path) -> Path:
    """Where a new database's store goes when no ``--store`` is given: ``NAME.photos/``
    beside a SQLite file ``NAME.db``, ``photos/`` in the working folder for PostgreSQL."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        database = Path(url.database)
        return database.parent / f"{database.stem}.photos"
    return cwd / "photos"

"""What a photo store holds, for tests: photos as the database locates them, read back
through ``PhotoStore``, and the records its pack files contain; and a pack's bytes read,
replaced or deleted behind the tool's back. Every helper takes the store's location as
``--store`` does, a folder or ``s3://BUCKET/PREFIX`` (whose AWS variables the test has set),
and opens it with ``PhotoStore.at``, so one test body serves both kinds of store.

"A photo is stored" means its row has a pack and an offset and ``PhotoStore.read`` returns
bytes hashing to the row's sha256; ``stored_photos`` checks exactly that for every row.
``pack_records`` says what was written at all, referenced or not, for tests that a run
wrote nothing (a dry run) or nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import obstore
from sqlalchemy import select
from sqlalchemy.engine import make_url

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Photo
from lizardctl.core.store import PhotoLocation, PhotoStore
from lizardctl.core.store.folder import FolderBackend
from lizardctl.core.store.packs import (
    PACK_HEADER,
    PACK_MAGIC,
    PACKS_DIR,
    RECORD,
    SEAL_MAGIC,
    PackRecord,
    pack_path,
    record_header,
)
from lizardctl.core.store.s3 import S3Backend

StoreAt = Path | str
"""A store as ``--store`` names it: a folder, or ``s3://BUCKET/PREFIX``."""


async def stored_photos(db: Database, root: StoreAt) -> dict[str, bytes]:
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


def stored_photos_at(url: str, root: StoreAt) -> dict[str, bytes]:
    """``stored_photos`` for a database URL, from synchronous code (the e2e tests)."""

    async def read() -> dict[str, bytes]:
        db = Database(parse_db_url(url))
        try:
            return await stored_photos(db, root)
        finally:
            await db.dispose()

    return asyncio.run(read())


def packs_in(root: StoreAt) -> list[str]:
    """The names of the store's packs, oldest first, as the tool lists them."""
    return PhotoStore.at(root).backend.packs()


@dataclass(frozen=True)
class Scanned:
    """A pack's records walked from its start, as ``packs.scan_pack`` walks a file: up to
    the seal, a damaged header or a record cut short; ``end`` is where the walk stopped."""

    records: tuple[PackRecord, ...]
    sealed: bool
    end: int
    size: int


def scan(data: bytes) -> Scanned:
    """Walk the records of a pack's bytes (read whole, from either kind of store)."""
    if data[: len(PACK_MAGIC)] != PACK_MAGIC or len(data) < PACK_HEADER.size:
        return Scanned((), False, 0, len(data))
    records = []
    offset = PACK_HEADER.size
    while offset + RECORD.size <= len(data):
        magic, _, digest, length = RECORD.unpack_from(data, offset)
        if magic == SEAL_MAGIC:
            return Scanned(tuple(records), True, offset + RECORD.size, len(data))
        header = data[offset : offset + RECORD.size]
        if header != record_header(digest.hex(), length) or offset + RECORD.size + length > len(
            data
        ):
            break
        records.append(PackRecord(offset, digest.hex(), length))
        offset += RECORD.size + length
    return Scanned(tuple(records), False, offset, len(data))


def pack_records(root: StoreAt) -> list[str]:
    """The sha256 of every photo record in the store's packs, in pack and offset order (a
    photo written twice is listed twice); fails the test when a record's bytes are not the
    photo its header names. A torn record at a pack's end is not listed: a scan stops there."""
    found = []
    for pack in packs_in(root):
        data = pack_bytes(root, pack)
        for record in scan(data).records:
            start = record.offset + RECORD.size
            photo = data[start : start + record.length]
            assert hashlib.sha256(photo).hexdigest() == record.sha256, (pack, record)
            found.append(record.sha256)
    return found


def pack_bytes(root: StoreAt, pack: str) -> bytes:
    """The whole pack, read behind the tool's back (a file, or one GET of the object)."""
    backend = PhotoStore.at(root).backend
    if isinstance(backend, S3Backend):
        return bytes(obstore.get(backend.client, f"{PACKS_DIR}/{pack}").bytes())
    assert isinstance(backend, FolderBackend)
    return pack_path(backend.root, pack).read_bytes()


def replace_pack(root: StoreAt, pack: str, data: bytes) -> None:
    """Make the pack hold ``data`` instead (a damaged copy, or one cut short): the file
    rewritten in place, or the object uploaded again under its name."""
    backend = PhotoStore.at(root).backend
    if isinstance(backend, S3Backend):
        obstore.put(backend.client, f"{PACKS_DIR}/{pack}", data, use_multipart=False)
        return
    assert isinstance(backend, FolderBackend)
    path = pack_path(backend.root, pack)
    path.chmod(0o644)  # packs are written read-only
    path.write_bytes(data)


def delete_pack(root: StoreAt, pack: str) -> None:
    """Lose a pack: the file or the object deleted."""
    backend = PhotoStore.at(root).backend
    if isinstance(backend, S3Backend):
        obstore.delete(backend.client, f"{PACKS_DIR}/{pack}")
        return
    assert isinstance(backend, FolderBackend)
    pack_path(backend.root, pack).unlink()


def store_contents(root: StoreAt) -> list[str]:
    """Every file under the folder or object under the prefix, by its path relative to the
    store (``lizardctl-store.json``, ``packs/NAME.pack``), sorted; [] when there is none."""
    backend = PhotoStore.at(root).backend
    if isinstance(backend, S3Backend):
        listed = obstore.list(backend.client, chunk_size=1000)
        return sorted(meta["path"] for batch in listed for meta in batch)
    assert isinstance(backend, FolderBackend)
    if not backend.root.is_dir():
        return []
    found = (p for p in backend.root.rglob("*") if p.is_file())
    return sorted(p.relative_to(backend.root).as_posix() for p in found)


def default_store(db_url: str, cwd: Path) -> Path:
    """Where a new database's store goes when no ``--store`` is given: ``NAME.photos/``
    beside a SQLite file ``NAME.db``, ``photos/`` in the working folder for PostgreSQL."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        database = Path(url.database)
        return database.parent / f"{database.stem}.photos"
    return cwd / "photos"

"""Binding a store to its database: first uses racing, and a first use cut short."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.errors import StoreMismatch
from lizardctl.core.services.stores import StoreService
from lizardctl.core.store.identity import IDENTITY_FILE


@pytest.fixture
async def db(migrated_db_url: str) -> AsyncIterator[Database]:
    database = Database(parse_db_url(migrated_db_url), pool_size=8)
    try:
        yield database
    finally:
        await database.dispose()


async def test_racing_first_uses_agree_on_one_store(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "store"
    services = [StoreService(db.uow, db.url) for _ in range(8)]
    opened = await asyncio.gather(*(s.open(root, create=True) for s in services))
    ids = {o.id for o in opened}
    assert len(ids) == 1
    assert json.loads((root / IDENTITY_FILE).read_text())["id"] == str(ids.pop())


async def test_a_first_use_cut_before_the_id_file_is_completed(
    db: Database, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    opened = await StoreService(db.uow, db.url).open(root, create=True)
    (root / IDENTITY_FILE).unlink()  # as if the binder died between commit and file
    again = await StoreService(db.uow, db.url).open(None)
    assert again.id == opened.id
    assert (root / IDENTITY_FILE).exists()


async def test_another_folder_without_an_id_is_refused(db: Database, tmp_path: Path) -> None:
    await StoreService(db.uow, db.url).open(tmp_path / "store", create=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(StoreMismatch, match="is not this database's"):
        await StoreService(db.uow, db.url).open(tmp_path / "elsewhere", create=True)
    assert not (tmp_path / "elsewhere" / IDENTITY_FILE).exists()

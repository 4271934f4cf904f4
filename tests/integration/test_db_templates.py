"""The suite's upgraded databases are what ``lizardctl db upgrade`` makes, every time.

``migrated_db_url`` copies a per-process template instead of migrating (see
``tests/db_templates.py``), and PostgreSQL schemas are reused after a reset. These tests
pin that a copy holds exactly a freshly upgraded database's tables and rows, and that a
reused schema carries nothing over from the test before it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import MetaData, select

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from tests.conftest import PG_URL
from tests.db_templates import PgSchemas, upgrade

PG_DSN = PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _contents(url: str) -> dict[str, Any]:
    """The revision, and every table's columns and rows; ``created_at`` left out, since it
    says when the copy's template was made."""
    db = Database(parse_db_url(url))
    try:
        contents: dict[str, Any] = {"revision": await migrate.current_revisions(db.engine)}
        async with db.engine.connect() as connection:
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
            for name, table in sorted(metadata.tables.items()):
                columns = [c for c in table.columns if c.name != "created_at"]
                rows = (await connection.execute(select(*columns))).all()
                contents[name] = (sorted(c.name for c in columns), sorted(map(repr, rows)))
            return contents
    finally:
        await db.dispose()


async def _sql(schema: str, statement: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        return await connection.fetch(statement)
    finally:
        await connection.close()


async def _schema_names() -> set[str]:
    return {row["nspname"] for row in await _sql("public", "SELECT nspname FROM pg_namespace")}


@pytest.fixture
async def fresh_url(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second, empty database on ``db_url``'s engine."""
    if db_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    schema = f"lizard_test_{uuid.uuid4().hex[:12]}"
    await _sql("public", f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?search_path={schema}"
    finally:
        await _sql("public", f'DROP SCHEMA "{schema}" CASCADE')


async def test_a_copy_is_what_db_upgrade_makes(migrated_db_url: str, fresh_url: str) -> None:
    await upgrade(fresh_url)
    copy = await _contents(migrated_db_url)
    assert copy["revision"] == (migrate.HEAD,)
    assert copy["schema_versions"][1], "the built-in camera types are registered"
    assert copy == await _contents(fresh_url)


@pytest.mark.postgres
def test_a_reused_schema_keeps_nothing_of_the_test_before(pg_url: str) -> None:
    """Rows, sequence positions and a changed structure do not reach the next borrower,
    and closing leaves no schema behind."""
    schemas = PgSchemas(PG_URL)

    def borrow() -> str:
        schema = f"lizard_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_sql("public", f'CREATE SCHEMA "{schema}"'))
        schemas.fill(schema)
        return schema

    add = "INSERT INTO reviewers (name, skill, active, created_at) VALUES ('x', 1, true, now())"
    try:
        first = borrow()
        pristine = asyncio.run(_contents(schemas.url(first)))
        first_id = asyncio.run(_sql(first, add + " RETURNING id"))[0]["id"]
        schemas.release(first)

        second = borrow()
        assert second != first
        assert asyncio.run(_contents(schemas.url(second))) == pristine
        assert asyncio.run(_sql(second, add + " RETURNING id"))[0]["id"] == first_id
        asyncio.run(_sql(second, "ALTER TABLE reviewers ADD COLUMN leftover integer"))
        schemas.release(second)
        assert second not in asyncio.run(_schema_names())

        third = borrow()
        assert asyncio.run(_contents(schemas.url(third))) == pristine
        schemas.release(third)
    finally:
        schemas.close()
    assert not [name for name in asyncio.run(_schema_names()) if schemas.token in name]

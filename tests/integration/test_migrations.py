"""Migrations on both engines: up, down, up again, and agreement with the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from lizardctl.core.config import parse_db_url
from lizardctl.core.database import Database
from lizardctl.core.db import migrate
from lizardctl.core.db.models import Base

TABLES = {
    "camera_types",
    "schema_versions",
    "cameras",
    "photos",
    "cases",
    "ingest_runs",
    "rejections",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    db = Database(parse_db_url(db_url))
    try:
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) >= TABLES
        assert await migrate.current_revisions(db.engine) == migrate.head_revisions()

        await migrate.downgrade(db.engine, "base")
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        assert await migrate.current_revisions(db.engine) == ()

        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) >= TABLES
    finally:
        await db.dispose()


async def test_models_and_migrations_agree(db_url: str) -> None:
    """Autogenerate against a migrated database finds nothing to do."""
    db = Database(parse_db_url(db_url))
    try:
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


def test_history_has_one_head() -> None:
    revisions = migrate.history()
    assert [r.revision for r in revisions if r.is_head] == list(migrate.head_revisions())
    assert len(migrate.head_revisions()) == 1
    assert revisions[-1].down_revision is None

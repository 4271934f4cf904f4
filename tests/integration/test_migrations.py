"""Migrations on both engines: up, down, up again, and agreement with the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
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


def test_the_pinned_head_is_alembics_head() -> None:
    """An up-to-date database is recognised by ``migrate.HEAD`` without loading alembic: a
    new migration must move it, or databases at the old head would not be upgraded."""
    assert migrate.head_revisions() == (migrate.HEAD,)


def test_opening_a_current_database_loads_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    code = (
        "import sys\nfrom lizardctl.__main__ import main\n"
        f"assert main(['--db', {url!r}, 'camera', 'list']) == 0\n"
        "print('alembic' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout.split()[-1] == "True"  # created and migrated
    assert again.stdout.split()[-1] == "False"

"""Migrations on both engines: up, down, up again, and agreement with the models."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, func, insert, inspect, select, table, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import TableClause

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import (
    Assignment,
    Base,
    Camera,
    CameraType,
    Case,
    CaseTransition,
    IngestRun,
    Photo,
    Rejection,
    SchemaVersion,
)
from lizardctl.core.vocabulary import CaseStatus

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
        f"assert main(['--db', {url!r}, 'review', 'config', '--votes', '3']) == 0\n"
        "print('alembic' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout.split()[-1] == "True"  # created and migrated
    assert again.stdout.split()[-1] == "False"


# --- 0006: one case per photo ---------------------------------------------------------------

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SHARED, ALONE = "a" * 64, "b" * 64
CAMERA = uuid.UUID(int=1)


def _case(photo: str, n: int, created_minutes: int) -> dict[str, Any]:
    return {
        "id": uuid.UUID(int=100 + n),
        "photo_sha256": photo,
        "metadata_sha256": f"{n:064x}",
        "camera_id": CAMERA,
        "schema_version_id": 1,
        "plate": f"{n}ABC2377",
        "violation_id": uuid.UUID(int=2),
        "violation_value": "62km/h",
        "skill": 1,
        "occurred_at": T0,
        "raw": {"n": n},
        "source_photo": f"/dump/{n}.jpg",
        "source_metadata": f"/dump/{n}.json",
        "status": "open",
        "required_skill": 1,
        "created_at": T0 + timedelta(minutes=created_minutes),
    }


SCHEMA_VERSION = {"camera_type": "camerus1", "version": 1, "digest": "d", "content": "{}"}
# Three cases of one photo, made before 0006 (the earliest is the second inserted), one alone.
OLD_CASES = [_case(SHARED, 1, 2), _case(SHARED, 2, 0), _case(SHARED, 3, 1), _case(ALONE, 4, 0)]


async def _seed_0005(connection: AsyncConnection) -> None:
    """Cases sharing a photo as a 0005 database may hold them, one of them under review."""
    await connection.execute(insert(CameraType.__table__), [{"name": "camerus1"}])
    await connection.execute(
        insert(SchemaVersion.__table__),
        [{"id": 1, **SCHEMA_VERSION}],
    )
    await connection.execute(
        insert(Camera.__table__),
        [{"id": CAMERA, "camera_type": "camerus1", "latitude": 0.0, "longitude": 0.0}],
    )
    await connection.execute(
        insert(Photo.__table__),
        [
            {"sha256": p, "size": 1, "format": "JPEG", "width": 1, "height": 1}
            for p in (SHARED, ALONE)
        ],
    )
    await connection.execute(insert(Case.__table__), OLD_CASES)
    # The reviewers table as 0005 has it: the model has grown columns since (0008).
    reviewers_0005 = table(
        "reviewers",
        column("id"),
        column("name"),
        column("skill"),
        column("active"),
        column("created_at"),
    )
    await connection.execute(
        insert(reviewers_0005),
        [{"id": 1, "name": "ann", "skill": 1, "active": True, "created_at": T0}],
    )
    await connection.execute(
        insert(Assignment.__table__),
        [
            {
                "case_id": OLD_CASES[0]["id"],
                "reviewer_id": 1,
                "level": 1,
                "assigned_at": T0,
                "expires_at": T0,
            }
        ],
    )


def _columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("cases")}


async def test_0006_keeps_every_case_of_a_shared_photo_and_keys_the_earliest(db_url: str) -> None:
    db = Database(parse_db_url(db_url))
    try:
        await migrate.upgrade(db.engine, "0005")
        async with db.engine.begin() as connection:
            await _seed_0005(connection)

        await migrate.upgrade(db.engine, "0006")
        cases = Case.__table__
        async with db.engine.connect() as connection:
            keys = dict((await connection.execute(select(cases.c.id, cases.c.photo_key))).all())
            assert await connection.scalar(select(func.count()).select_from(Assignment)) == 1
        assert keys == {
            OLD_CASES[0]["id"]: None,
            OLD_CASES[1]["id"]: SHARED,
            OLD_CASES[2]["id"]: None,
            OLD_CASES[3]["id"]: ALONE,
        }
        # From now on the photo is one case: a new case keyed by it is refused.
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as connection:
                await connection.execute(
                    insert(cases), [{**_case(SHARED, 5, 9), "photo_key": SHARED}]
                )

        await migrate.downgrade(db.engine, "0005")
        async with db.engine.connect() as connection:
            assert "photo_key" not in await connection.run_sync(_columns)
            ids = set((await connection.execute(text("SELECT id FROM cases"))).scalars())
            assert len(ids) == len(OLD_CASES)
            assert await connection.scalar(text("SELECT count(*) FROM assignments")) == 1
    finally:
        await db.dispose()


# --- 0009: vocabularies enforced by the database ----------------------------------------------


TRANSITION = {
    "case_id": OLD_CASES[0]["id"],
    "at": T0,
    "from_status": "open",
    "to_status": "escalated",
    "from_level": 1,
    "to_level": 2,
    "cause": "split",
}
RUN = uuid.UUID(int=7)
RUN_0005 = {
    "id": RUN,
    "started_at": T0,
    "status": "finished",
    "paths": [],
    "host": "h",
    "pid": 1,
    "dry_run": False,
    "counts": {},
    "bytes": 0,
}


def _older(name: str, model: type[Base], names: tuple[str, ...]) -> TableClause:
    """Some columns of a table, typed as the model types them."""
    return table(name, *(column(n, model.__table__.c[n].type) for n in names))


async def _seed_reviewed_case(connection: AsyncConnection) -> None:
    """0005's cases, one under review with a transition, and a run with a rejection."""
    await _seed_0005(connection)
    # ingest_runs and case_transitions as 0005 has them: the models have grown since.
    await connection.execute(_older("ingest_runs", IngestRun, tuple(RUN_0005)).insert(), [RUN_0005])
    await connection.execute(
        insert(Rejection.__table__),
        [{"run_id": RUN, "reason": "orphan", "message": "m", "created_at": T0}],
    )
    transitions = _older("case_transitions", CaseTransition, tuple(TRANSITION))
    await connection.execute(insert(transitions), [TRANSITION])


BAD_WORDS = [
    (Case, "status", {**_case(ALONE, 9, 0), "id": uuid.UUID(int=900), "status": "opne"}),
    (IngestRun, "status", {**RUN_0005, "id": uuid.UUID(int=901), "status": "done"}),
    (Rejection, "reason", {"run_id": RUN, "reason": "invalid-metadata", "message": "m"}),
    (CaseTransition, "to_status", {**TRANSITION, "to_status": "closed"}),
    (CaseTransition, "from_status", {**TRANSITION, "from_status": "new"}),
    (SchemaVersion, "file_format", {**SCHEMA_VERSION, "version": 2, "file_format": "yml"}),
]
"""One row per vocabulary with a word outside it (a typo, an old name)."""


async def test_0009_keeps_the_rows_and_refuses_words_outside_the_vocabulary(db_url: str) -> None:
    db = Database(parse_db_url(db_url))
    try:
        await migrate.upgrade(db.engine, "0005")
        async with db.engine.begin() as connection:
            await _seed_reviewed_case(connection)
        await migrate.upgrade(db.engine, "0009")

        # SQLite copies the tables to add the constraints: nothing cascades away.
        async with db.engine.connect() as connection:
            for name, rows in {"cases": 4, "assignments": 1, "case_transitions": 1}.items():
                count = await connection.scalar(text(f"SELECT count(*) FROM {name}"))
                assert count == rows, name
        for model, column_name, row in BAD_WORDS:
            with pytest.raises(IntegrityError, match=f"{column_name}_known|CHECK"):
                async with db.engine.begin() as connection:
                    await connection.execute(insert(model.__table__), [row])
        # Every word of the enum is accepted, and once back at 0008 any other is again.
        cases, alone = Case.__table__, Case.id == OLD_CASES[3]["id"]
        async with db.engine.begin() as connection:
            for status in CaseStatus:
                await connection.execute(update(cases).where(alone).values(status=status))
        await migrate.downgrade(db.engine, "0008")
        async with db.engine.begin() as connection:
            await connection.execute(update(cases).where(alone).values(status="opne"))
            assert await connection.scalar(text("SELECT count(*) FROM assignments")) == 1
    finally:
        await db.dispose()


async def test_migrating_sqlite_turns_foreign_keys_back_on(tmp_path: Path) -> None:
    db = Database(parse_db_url(f"sqlite+aiosqlite:///{tmp_path}/fk.db"))
    try:
        await migrate.upgrade(db.engine)
        async with db.engine.connect() as connection:
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await db.dispose()

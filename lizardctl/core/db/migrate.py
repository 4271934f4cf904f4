"""Alembic driven from code on lizardctl's own async engine.

The migration scripts ship inside the wheel as the ``lizardctl.migrations`` package, so
``pip install .`` followed by ``lizardctl db upgrade`` works from any directory.

Alembic is imported by the functions that use it, not here: it costs more to import
(~0.2 s of CPU) than most commands take to run. A database already at ``HEAD`` is
recognised with one plain query, so everyday commands never load it at all.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

from lizardctl.core.errors import EnvironmentFailure, UsageError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


HEAD = "0011"
"""The newest revision in ``migrations/``; tests keep it equal to alembic's head."""

_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True, slots=True)
class Revision:
    revision: str
    down_revision: str | None
    message: str
    is_head: bool


def _script_location() -> Path:
    """The installed ``lizardctl.migrations``, or ``migrations/`` beside the package when
    Python imported ``lizardctl`` from a source checkout (``python -m lizardctl`` run in
    the repository root puts the checkout first on ``sys.path``)."""
    try:
        with as_file(files("lizardctl.migrations")) as path:
            return Path(path)
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[3] / "migrations"
        if (checkout / "env.py").is_file():
            return checkout
        raise


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_script_location()))
    return cfg


def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revisions() -> tuple[str, ...]:
    return tuple(_script().get_heads())


_REVISION = re.compile(r"[^@\s]+(?:@[^@\s]+)?")
"""A revision, relative step or ``branch@revision``: no empty part around ``@``."""


async def _on_connection(engine: AsyncEngine, action: str, revision: str) -> None:
    from alembic import command
    from alembic.util.exc import CommandError

    if not _REVISION.fullmatch(revision):
        # Alembic answers '', '@' or 'heads@' with an AssertionError: exit 70 for a typo.
        raise UsageError(
            f"not a revision: {revision!r} (e.g. head, base, -1, or an id from "
            "'lizardctl db history')"
        )

    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        try:
            getattr(command, action)(cfg, revision)
        except CommandError as exc:
            raise UsageError(f"cannot {action} to {revision!r}: {exc}") from exc

    async with migrating(engine) as connection:
        await connection.run_sync(run)


@asynccontextmanager
async def migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction to run migrations on, committed when the block ends
    without error; on SQLite with foreign keys off meanwhile, and checked before commit."""
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await connection.run_sync(_sqlite_foreign_keys, on=False)
        try:
            async with connection.begin():
                yield connection
                if sqlite:
                    await connection.run_sync(_check_foreign_keys)
        finally:
            if sqlite:
                await connection.run_sync(_sqlite_foreign_keys, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """Switch SQLite's foreign keys, outside any transaction (inside one it is a no-op).

    A migration that adds a constraint on SQLite copies the table and drops the old one;
    with foreign keys on, dropping ``cases`` would delete every assignment and transition
    that references it (``ON DELETE CASCADE``). This is SQLite's own recipe for altering a
    table (https://sqlite.org/lang_altertable.html#otheralter). The driver's connection is
    used directly: SQLAlchemy's would begin a transaction first.
    """
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _check_foreign_keys(connection: Connection) -> None:
    """With foreign keys off nothing stopped a migration from breaking one: refuse to
    commit if it did."""
    from sqlalchemy import text

    broken = connection.execute(text("PRAGMA foreign_key_check")).all()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise EnvironmentFailure(
            f"migration left {len(broken)} row(s) with a dangling foreign key in "
            f"{', '.join(tables)}; nothing was changed"
        )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _on_connection(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _on_connection(engine, "downgrade", revision)


async def current_revisions(engine: AsyncEngine) -> tuple[str, ...]:
    """The revisions the database is at; empty for a database never migrated.

    Read with a plain query, as alembic itself does: its version table, in the schema
    the connection uses by default (PostgreSQL's ``search_path``).
    """
    from sqlalchemy import inspect, text

    def read(connection: Connection) -> tuple[str, ...]:
        if not inspect(connection).has_table(_VERSION_TABLE):
            return ()
        rows = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}"))
        return tuple(sorted(row[0] for row in rows))

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def history() -> list[Revision]:
    """All revisions, newest first."""
    heads = set(head_revisions())
    revisions = []
    for script in _script().walk_revisions():
        down = script.down_revision
        revisions.append(
            Revision(
                revision=script.revision,
                down_revision=down if isinstance(down, str) or down is None else ",".join(down),
                message=script.doc or "",
                is_head=script.revision in heads,
            )
        )
    return revisions

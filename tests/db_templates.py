"""Migrated test databases without running the migrations for every test.

``lizardctl db upgrade`` on an empty database runs every Alembic migration and registers
the built-in camera types: half a second to two seconds per test and engine, most of the
setup time of the e2e and integration suites. Each pytest process (each xdist worker)
upgrades one template per engine the way ``db upgrade`` does and gives tests copies:

- SQLite: a byte copy of the template file;
- PostgreSQL: a spare schema with the template's tables and rows, renamed to the test's
  own schema name. When the test is over the schema is emptied, refilled from the
  template and kept as a spare for the next test, unless its structure no longer matches
  the template's (a test migrated it down, altered a table): then it is dropped.

The migrations themselves are still run for real, by the template and by every test that
starts from an empty database (``db_url``, ``pg_url``, ``sqlite_url``).
"""

from __future__ import annotations

import asyncio
import graphlib
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg

from lizardctl.core.config import parse_db_url
from lizardctl.core.db.database import Database
from lizardctl.core.services.migrations import MigrationService

T = TypeVar("T")


async def upgrade(url: str) -> None:
    """What ``lizardctl db upgrade`` does to the database at ``url``."""
    db = Database(parse_db_url(url))
    try:
        await MigrationService(db).upgrade()
    finally:
        await db.dispose()


class SqliteTemplate:
    """One upgraded SQLite file, made on first use and copied for each test."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "template.db"
        self._made = False

    def copy_to(self, target: Path) -> None:
        """Create ``target`` as an upgraded database; refuses to overwrite a file."""
        if not self._made:
            asyncio.run(upgrade(f"sqlite+aiosqlite:///{self._path}"))
            self._made = True
        with self._path.open("rb") as source, target.open("xb") as copy:
            shutil.copyfileobj(source, copy)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Everything a test could change about a schema's structure, with the schema's own name
# left for the caller to take out of the definitions: tables, sequences, views and
# indexes, columns with types and defaults, constraints, types and functions.
_STRUCTURE = """
SELECT 'relation', c.relname, c.relkind::text, ''
  FROM pg_class c WHERE c.relnamespace = $1::regnamespace
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', i.relname, pg_get_indexdef(i.oid), ''
  FROM pg_class i WHERE i.relnamespace = $1::regnamespace AND i.relkind = 'i'
UNION ALL
SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid), ''
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE k.connamespace = $1::regnamespace
UNION ALL
SELECT 'type', t.typname, t.typtype::text, ''
  FROM pg_type t WHERE t.typnamespace = $1::regnamespace AND t.typtype NOT IN ('b', 'c')
UNION ALL
SELECT 'function', p.proname, pg_get_function_identity_arguments(p.oid), ''
  FROM pg_proc p WHERE p.pronamespace = $1::regnamespace
ORDER BY 1, 2, 3
"""

_FOREIGN_KEYS = """
SELECT c.relname AS child, p.relname AS parent
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_class p ON p.oid = k.confrelid
 WHERE k.contype = 'f' AND k.connamespace = $1::regnamespace
"""

_TABLES = """
SELECT c.relname, array_agg(a.attname ORDER BY a.attnum)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
 GROUP BY c.relname
"""

_SEQUENCES = """
SELECT c.relname FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'S'
"""


@dataclass(frozen=True)
class _Snapshot:
    """The template as a reset needs it, read once."""

    structure: tuple[tuple[str, ...], ...]
    tables_parents_first: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    filled: tuple[str, ...]
    sequences: tuple[tuple[str, int, bool], ...]


async def _structure(connection: asyncpg.Connection, schema: str) -> tuple[tuple[str, ...], ...]:
    prefixes = (f"{_ident(schema)}.", f"{schema}.")

    def plain(text: str) -> str:
        for prefix in prefixes:
            text = text.replace(prefix, "")
        return text

    rows = await connection.fetch(_STRUCTURE, schema)
    return tuple(tuple(plain(value) for value in row) for row in rows)


class PgSchemas:
    """Upgraded PostgreSQL schemas for tests, from one template per process.

    Only schemas this object created are ever dropped: other test runs may share the
    server (and its database) at the same time.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self.token = uuid.uuid4().hex[:12]
        self._template = f"lizard_template_{self.token}"
        self._snapshot: _Snapshot | None = None
        self._spares: list[str] = []
        self._lent: set[str] = set()
        self._owned: set[str] = set()

    def url(self, schema: str) -> str:
        return f"{self._url}?search_path={schema}"

    def _run(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def main() -> T:
            connection = await asyncpg.connect(self._dsn, timeout=10)
            try:
                return await work(connection)
            finally:
                await connection.close()

        return asyncio.run(main())

    async def _new_upgraded(self, connection: asyncpg.Connection, name: str) -> None:
        await connection.execute(f"CREATE SCHEMA {_ident(name)}")
        self._owned.add(name)
        await upgrade(self.url(name))

    async def _snapshot_of_template(self, connection: asyncpg.Connection) -> _Snapshot:
        if self._snapshot is None:
            await self._new_upgraded(connection, self._template)
            schema = self._template
            columns = {row[0]: tuple(row[1]) for row in await connection.fetch(_TABLES, schema)}
            order = graphlib.TopologicalSorter({table: set() for table in columns})
            for child, parent in await connection.fetch(_FOREIGN_KEYS, schema):
                if child != parent:
                    order.add(child, parent)
            parents_first = tuple(order.static_order())
            filled = [
                table
                for table in parents_first
                if await connection.fetchval(
                    f"SELECT EXISTS (SELECT FROM {_ident(schema)}.{_ident(table)})"
                )
            ]
            sequences = []
            for (sequence,) in await connection.fetch(_SEQUENCES, schema):
                value, called = await connection.fetchrow(
                    f"SELECT last_value, is_called FROM {_ident(schema)}.{_ident(sequence)}"
                )
                sequences.append((sequence, value, called))
            self._snapshot = _Snapshot(
                await _structure(connection, schema),
                parents_first,
                columns,
                tuple(filled),
                tuple(sequences),
            )
        return self._snapshot

    def fill(self, schema: str) -> None:
        """Make the empty schema ``schema`` (made by the caller) an upgraded one: a spare
        takes its place under its name."""

        async def work(connection: asyncpg.Connection) -> None:
            await self._snapshot_of_template(connection)
            if not self._spares:
                spare = f"lizard_spare_{self.token}_{uuid.uuid4().hex[:8]}"
                await self._new_upgraded(connection, spare)
                self._spares.append(spare)
            spare = self._spares.pop()
            async with connection.transaction():
                await connection.execute(f"DROP SCHEMA {_ident(schema)}")
                await connection.execute(f"ALTER SCHEMA {_ident(spare)} RENAME TO {_ident(schema)}")
            self._owned.discard(spare)
            self._lent.add(schema)

        self._run(work)

    def release(self, schema: str) -> None:
        """Drop a test's schema, or keep it as a spare when it came from :meth:`fill` and
        still has the template's structure."""
        lent = schema in self._lent
        self._lent.discard(schema)

        async def work(connection: asyncpg.Connection) -> None:
            snapshot = self._snapshot
            if lent and snapshot and await _structure(connection, schema) == snapshot.structure:
                spare = f"lizard_spare_{self.token}_{uuid.uuid4().hex[:8]}"
                try:
                    async with connection.transaction():
                        await self._reset(connection, snapshot, schema)
                        await connection.execute(
                            f"ALTER SCHEMA {_ident(schema)} RENAME TO {_ident(spare)}"
                        )
                except Exception:
                    await connection.execute(f"DROP SCHEMA {_ident(schema)} CASCADE")
                    raise
                self._owned.add(spare)
                self._spares.append(spare)
            else:
                await connection.execute(f"DROP SCHEMA {_ident(schema)} CASCADE")

        self._run(work)

    async def _reset(
        self, connection: asyncpg.Connection, snapshot: _Snapshot, schema: str
    ) -> None:
        """Give ``schema`` exactly the template's rows and sequence positions."""
        target, source = _ident(schema), _ident(self._template)
        for table in reversed(snapshot.tables_parents_first):
            await connection.execute(f"DELETE FROM {target}.{_ident(table)}")
        for table in snapshot.filled:
            columns = ", ".join(_ident(c) for c in snapshot.columns[table])
            await connection.execute(
                f"INSERT INTO {target}.{_ident(table)} ({columns}) "
                f"SELECT {columns} FROM {source}.{_ident(table)}"
            )
        for sequence, value, called in snapshot.sequences:
            name = f"{target}.{_ident(sequence)}"
            await connection.execute("SELECT setval($1::regclass, $2, $3)", name, value, called)

    def close(self) -> None:
        """Drop every schema this object made: the template, the spares, and any schema
        :meth:`fill` gave out that was never released (its test failed before)."""
        names = sorted(self._owned | self._lent)
        if not names:
            return

        async def work(connection: asyncpg.Connection) -> None:
            for name in names:
                await connection.execute(f"DROP SCHEMA IF EXISTS {_ident(name)} CASCADE")

        self._run(work)
        self._owned.clear()
        self._lent.clear()
        self._spares.clear()
        self._snapshot = None

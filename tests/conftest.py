"""Fixtures shared by every level: database URLs for SQLite and PostgreSQL.

PostgreSQL tests run against ``LIZARD_TEST_PG_URL`` (default: the CI server), each in a
schema of its own that is dropped afterwards. Without a server they skip, unless
``CI=true``, where a missing server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

PG_URL = os.environ.get("LIZARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_dsn() -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _pg_execute(sql: str) -> None:
    connection = await asyncpg.connect(_pg_dsn(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _pg_available() -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {PG_URL} not reachable ({type(exc).__name__}: {exc})"
    return None


_PG_PROBLEM: str | bool | None = False


def pg_problem() -> str | None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _pg_available()
    return _PG_PROBLEM  # type: ignore[return-value]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    problem = pg_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    schema = f"lizard_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?search_path={schema}"
    finally:
        asyncio.run(_pg_execute(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'lizard.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both engines: the same test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'lizard.db'}"
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]

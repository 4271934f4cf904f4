"""Opening the database: engine, schema check, and driver errors turned into our own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from lizardctl.core.config import is_sqlite, mask_url, scrub_secrets, sqlite_path
from lizardctl.core.db import migrate
from lizardctl.core.db.engine import DEFAULT_LOCK_TIMEOUT_S, create_engine, session_factory
from lizardctl.core.db.uow import UnitOfWork
from lizardctl.core.errors import (
    DatabaseMissing,
    EnvironmentFailure,
    InternalError,
    StatementRefused,
    UpgradeNeeded,
)

# SQLSTATE classes that mean the server, not our statement, is the problem: connection,
# authorization, database missing, transaction rollback (deadlock, serialization),
# insufficient resources (disk full, too many connections), operator intervention.
_ENVIRONMENT_SQLSTATE_CLASSES = ("08", "28", "3D", "40", "53", "57")


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def environment_error(exc: BaseException, url: URL) -> EnvironmentFailure | None:
    """The one-line failure for a driver error that means "the database is not usable"."""
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError)
        and (exc.connection_invalidated or _sqlstate(exc)[:2] in _ENVIRONMENT_SQLSTATE_CLASSES)
    ):
        reason = scrub_secrets(str(getattr(exc, "orig", None) or exc).strip(), url).splitlines()[0]
        return EnvironmentFailure(f"database {mask_url(url)} unusable: {reason}")
    if isinstance(exc, OSError | asyncio.TimeoutError):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        reason = scrub_secrets(reason, url)
        return EnvironmentFailure(f"database {mask_url(url)} unreachable: {reason or 'timed out'}")
    return None


def statement_error(exc: BaseException) -> InternalError | None:
    """The one-line failure for a statement the database refused: a bug, since input is
    checked before it is written.

    The driver's text may quote the row (PostgreSQL's "Failing row contains (plate, name,
    phone, ...)", "invalid input syntax for type integer: ...") and the parameters hold
    it: the message names only the error's class and SQLSTATE, and the driver's text and
    exceptions are cut from ``exc`` itself, so that the ``--verbose`` traceback shows our
    frames, the class and the statement, never the row.
    """
    if not isinstance(exc, StatementError):
        return None
    sqlstate = _sqlstate(exc) if isinstance(exc, DBAPIError) else ""
    kind = type(exc).__name__ if isinstance(exc, DBAPIError) else type(exc.orig).__name__
    described = f"{kind}, SQLSTATE {sqlstate}" if sqlstate else kind
    exc.args = (f"({described}; the driver's message is withheld: it may quote the row)",)
    exc.orig = None
    exc.hide_parameters = True  # the engine's setting, made sure of whoever built it
    exc.__cause__ = exc.__context__ = None
    exc.__suppress_context__ = True
    return StatementRefused(described)


def require_existing_database(url: URL) -> None:
    """Refuse (exit 3) a SQLite file that does not exist, for commands that only read."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise DatabaseMissing(path)


class Database:
    """An open database: the engine plus the UnitOfWork factory that services are given."""

    def __init__(
        self, url: URL, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S, **engine_options: Any
    ) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self.engine: AsyncEngine = create_engine(url, lock_timeout=lock_timeout, **engine_options)
        self._sessions = session_factory(self.engine)
        self.created = False

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions)

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    async def ensure_current(
        self, on_upgrade: Callable[[Database], Awaitable[None]] | None = None
    ) -> None:
        """Check the schema is at head; migrate SQLite implicitly, never PostgreSQL.

        ``on_upgrade`` runs after an implicit migration (it registers the built-in types).
        """
        path = sqlite_path(self.url)
        if path is not None and not path.parent.is_dir():
            raise EnvironmentFailure(f"cannot create database {path}: {path.parent} does not exist")
        current = set(await migrate.current_revisions(self.engine))
        if current == {migrate.HEAD}:
            return
        if not current <= {r.revision for r in migrate.history()}:
            raise EnvironmentFailure(
                f"database {self.display_url} is at revision {', '.join(sorted(current))}, "
                "which this lizardctl does not know: upgrade lizardctl"
            )
        if not is_sqlite(self.url):
            state = "not migrated" if not current else "outdated"
            raise UpgradeNeeded(f"database {self.display_url} is {state}")
        self.created = not current
        await migrate.upgrade(self.engine)
        if on_upgrade is not None:
            await on_upgrade(self)

    async def dispose(self) -> None:
        await self.engine.dispose()

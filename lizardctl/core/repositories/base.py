"""The narrow view of a session that repositories get.

Repositories must never end a transaction: only the UnitOfWork commits or rolls back.
Rather than trust that by convention, they are handed this view, which has no
``commit``/``rollback``/``close`` to call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Executable, Result, ScalarResult, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncResult, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")


class SessionView:
    """Forwards the query and staging calls of an ``AsyncSession``, and nothing else."""

    __slots__ = ("_session",)

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def dialect(self) -> str:
        return self._session.get_bind().dialect.name

    async def execute(
        self, statement: Executable, params: Sequence[dict[str, Any]] | dict[str, Any] | None = None
    ) -> Result[Any]:
        return await self._session.execute(statement, params)

    async def scalar(self, statement: Executable, params: dict[str, Any] | None = None) -> Any:
        return await self._session.scalar(statement, params)

    async def scalars(
        self, statement: Executable, params: dict[str, Any] | None = None
    ) -> ScalarResult[Any]:
        return await self._session.scalars(statement, params)

    async def stream(self, statement: Executable) -> AsyncResult[Any]:
        return await self._session.stream(statement)

    async def get(self, entity: type[T], ident: Any) -> T | None:
        return await self._session.get(entity, ident)

    def add(self, instance: object) -> None:
        self._session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        self._session.add_all(instances)

    async def flush(self) -> None:
        await self._session.flush()


class Repository:
    """Base for repositories: holds the session view and nothing else."""

    def __init__(self, session: SessionView) -> None:
        self.session = session

    async def _ids_between(
        self, column: InstrumentedAttribute[uuid.UUID], low: uuid.UUID, high: uuid.UUID, limit: int
    ) -> list[uuid.UUID]:
        """Ids from ``low`` to ``high``, in order: an id prefix's matches (``core.ids``),
        found by a range scan of the primary key."""
        query = select(column).where(column.between(low, high)).order_by(column).limit(limit)
        return list(await self.session.scalars(query))


class UpsertRepository(Repository):
    """Bulk ``INSERT ... ON CONFLICT (key) DO UPDATE`` for the imported tables: concurrent
    imports of the same file cannot collide on a new key, and the last one simply wins."""

    table: Table
    key: str
    _CHUNK = 500
    """Keys per ``IN (...)`` lookup: far below every engine's parameter limit."""

    async def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        module = postgresql if self.session.dialect == "postgresql" else sqlite
        insert = module.insert(self.table)
        changing = [name for name in rows[0] if name not in (self.key, "created_at")]
        statement = insert.on_conflict_do_update(
            index_elements=[self.table.c[self.key]],
            set_={name: insert.excluded[name] for name in changing},
        )
        await self.session.execute(statement, list(rows))

    async def _by_keys(self, model: Any, keys: Iterable[Any]) -> dict[Any, Any]:
        """The stored rows with these keys, by key."""
        column = self.table.c[self.key]
        wanted = list(keys)
        found: dict[Any, Any] = {}
        for start in range(0, len(wanted), self._CHUNK):
            query = select(model).where(column.in_(wanted[start : start + self._CHUNK]))
            found.update((getattr(row, self.key), row) for row in await self.session.scalars(query))
        return found

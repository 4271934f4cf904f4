"""The narrow view of a session that repositories get.

Repositories must never end a transaction: only the UnitOfWork commits or rolls back.
Rather than trust that by convention, they are handed this view, which has no
``commit``/``rollback``/``close`` to call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Executable, Result, ScalarResult, select
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

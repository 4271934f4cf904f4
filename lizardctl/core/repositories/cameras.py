"""Cameras: the registered devices whose shots we accept."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import Table, func, insert, select

from lizardctl.core.db.models import Camera
from lizardctl.core.repositories.base import UpsertRepository


class CameraRepository(UpsertRepository):
    table: Table = Camera.__table__  # type: ignore[assignment]
    key = "id"

    async def get(self, camera_id: uuid.UUID) -> Camera | None:
        return await self.session.get(Camera, camera_id)

    async def ids_between(self, low: uuid.UUID, high: uuid.UUID, limit: int) -> list[uuid.UUID]:
        return await self._ids_between(Camera.id, low, high, limit)

    async def list(self, camera_type: str | None = None) -> Sequence[Camera]:
        query = select(Camera).order_by(Camera.camera_type, Camera.id)
        if camera_type is not None:
            query = query.where(Camera.camera_type == camera_type)
        return (await self.session.scalars(query)).all()

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Camera]:
        return await self._by_keys(Camera, ids)

    async def types_by_id(self) -> dict[uuid.UUID, str]:
        """Every camera's type: the ingest pipeline checks shots against this map."""
        rows = await self.session.execute(select(Camera.id, Camera.camera_type))
        return {row.id: row.camera_type for row in rows}

    async def count_by_type(self) -> dict[str, int]:
        rows = await self.session.execute(
            select(Camera.camera_type, func.count()).group_by(Camera.camera_type)
        )
        return dict(rows.all())

    async def insert_many(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            await self.session.execute(insert(Camera), list(rows))

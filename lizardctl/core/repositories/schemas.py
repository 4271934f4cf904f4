"""Camera types and the versions of their schema files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, Text, cast, delete, func, insert, select

from lizardctl.core.db.models import CameraType, Case, SchemaVersion
from lizardctl.core.repositories.base import Repository

REPLAY_BATCH = 2000
"""Stored shots fetched per round trip while replaying: memory stays flat whatever the total."""
_CASES: Table = Case.__table__  # type: ignore[assignment]
_VERSIONS: Table = SchemaVersion.__table__  # type: ignore[assignment]


class SchemaRepository(Repository):
    async def type_names(self) -> list[str]:
        return list(await self.session.scalars(select(CameraType.name).order_by(CameraType.name)))

    async def type_exists(self, name: str) -> bool:
        return await self.session.get(CameraType, name) is not None

    async def add_type(self, name: str) -> None:
        await self.session.execute(insert(CameraType).values(name=name))

    async def versions(self, name: str) -> Sequence[SchemaVersion]:
        """All versions of one type, oldest first."""
        query = (
            select(SchemaVersion)
            .where(SchemaVersion.camera_type == name)
            .order_by(SchemaVersion.version)
        )
        return (await self.session.scalars(query)).all()

    async def get_version(self, name: str, version: int) -> SchemaVersion | None:
        query = select(SchemaVersion).where(
            SchemaVersion.camera_type == name, SchemaVersion.version == version
        )
        return await self.session.scalar(query)

    async def by_id(self, version_id: int) -> SchemaVersion | None:
        return await self.session.get(SchemaVersion, version_id)

    async def latest_versions(self) -> Sequence[SchemaVersion]:
        """The newest version of every type: what ingest validates new shots against."""
        newest = (
            select(SchemaVersion.camera_type, func.max(SchemaVersion.version).label("version"))
            .group_by(SchemaVersion.camera_type)
            .subquery()
        )
        query = (
            select(SchemaVersion)
            .join(
                newest,
                (SchemaVersion.camera_type == newest.c.camera_type)
                & (SchemaVersion.version == newest.c.version),
            )
            .order_by(SchemaVersion.camera_type)
        )
        return (await self.session.scalars(query)).all()

    async def stored_raw(
        self, name: str, since: datetime | None, limit: int | None
    ) -> AsyncIterator[Sequence[Any]]:
        """``(case id, raw metadata)`` as text, of the stored shots of camera type ``name``,
        whatever version accepted them, shot at ``since`` or later; with ``limit``, the
        newest that many. Streamed in batches of ``REPLAY_BATCH`` (server-side cursor on
        PostgreSQL, stepped cursor on SQLite).

        Hot path: Core table columns (no ORM row loading), the id as text (a ``UUID`` per
        row cost a tenth of the replay: callers convert the few they report), and raw as
        JSON text, which validates at half the cost of decoding it first."""
        cases, versions = _CASES.c, _VERSIONS.c
        query = (
            select(cast(cases.id, String), cast(cases.raw, Text))
            .join_from(_CASES, _VERSIONS, versions.id == cases.schema_version_id)
            .where(versions.camera_type == name)
        )
        if since is not None:
            query = query.where(cases.occurred_at >= since)
        if limit is not None:
            query = query.order_by(cases.occurred_at.desc(), cases.id).limit(limit)
        result = await self.session.stream(query.execution_options(yield_per=REPLAY_BATCH))
        async for batch in result.partitions(REPLAY_BATCH):
            yield batch

    async def cases_using(self, version_id: int) -> int:
        """How many cases a schema version validated."""
        query = select(func.count()).select_from(Case).where(Case.schema_version_id == version_id)
        return int(await self.session.scalar(query) or 0)

    async def delete_version(self, version_id: int) -> None:
        """Remove a version; the cases' foreign key (RESTRICT) refuses it while one uses it."""
        await self.session.execute(delete(SchemaVersion).where(SchemaVersion.id == version_id))

    async def add_version(
        self, name: str, version: int, digest: str, content: str, file_format: str
    ) -> SchemaVersion:
        row = SchemaVersion(
            camera_type=name,
            version=version,
            digest=digest,
            content=content,
            file_format=file_format,
        )
        self.session.add(row)
        await self.session.flush()
        return row

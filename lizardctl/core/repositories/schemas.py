"""Camera types and the versions of their schema files."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select

from lizardctl.core.db.models import CameraType, SchemaVersion
from lizardctl.core.repositories.base import Repository


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

"""Registering cameras, one at a time or from the managers' spreadsheet."""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lizardctl.core.db.models import Camera
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.files import CAMERAS_CSV_BYTES
from lizardctl.core.ids import IdText, resolve_id
from lizardctl.core.services.imports import (
    BadRow,
    ImportReport,
    ImportTable,
    RowRule,
    import_table,
)
from lizardctl.core.spreadsheets import field_problems
from lizardctl.core.validation import describe_validation_error

CAMERA_COLUMNS = ("id", "type", "latitude", "longitude", "description")


class CameraIn(BaseModel):
    """One camera as given by a user, checked before it reaches the database."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    id: uuid.UUID
    camera_type: Annotated[str, Field(min_length=1, max_length=64)]
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    description: Annotated[str, Field(max_length=100)] = ""

    @field_validator("latitude", "longitude")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def row(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True, slots=True)
class CameraView:
    id: uuid.UUID
    camera_type: str
    latitude: float
    longitude: float
    description: str
    created_at: datetime

    @classmethod
    def of(cls, camera: Camera) -> CameraView:
        return cls(
            id=camera.id,
            camera_type=camera.camera_type,
            latitude=camera.latitude,
            longitude=camera.longitude,
            description=camera.description,
            created_at=camera.created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = str(self.id)
        data["created_at"] = self.created_at.isoformat()
        return data


class CameraService:
    def __init__(self, uow_factory: UowFactory) -> None:
        self.uow_factory = uow_factory

    async def add(
        self,
        camera_type: str,
        latitude: float,
        longitude: float,
        description: str = "",
        camera_id: uuid.UUID | None = None,
    ) -> CameraView:
        try:
            camera = CameraIn(
                id=camera_id or uuid.uuid4(),
                camera_type=camera_type,
                latitude=latitude,
                longitude=longitude,
                description=description,
            )
        except ValidationError as exc:
            raise UsageError(describe_validation_error(exc)) from exc
        problems = field_problems({"type": camera.camera_type, "description": camera.description})
        if problems:
            raise UsageError("; ".join(problems))
        async with self.uow_factory() as uow:
            await self._check_types(uow, {camera.camera_type})
            if await uow.cameras.get(camera.id) is not None:
                raise UsageError(f"camera {camera.id} already exists")
            await uow.cameras.insert_many([camera.row()])
            view = await self._view(uow, camera.id)
            await uow.commit()
        return view

    async def list(self, camera_type: str | None = None) -> list[CameraView]:
        async with self.uow_factory() as uow:
            return [CameraView.of(c) for c in await uow.cameras.list(camera_type)]

    async def show(self, camera_id: IdText) -> CameraView:
        """One camera, by id or a unique prefix of one."""
        async with self.uow_factory() as uow:
            camera_id = await resolve_id(camera_id, "camera", uow.cameras.ids_between)
            return await self._view(uow, camera_id)

    @staticmethod
    async def _view(uow: UnitOfWork, camera_id: uuid.UUID) -> CameraView:
        camera = await uow.cameras.get(camera_id)
        if camera is None:
            raise NotFoundError(f"no camera {camera_id}")
        return CameraView.of(camera)

    async def import_file(self, path: Path) -> ImportReport:
        """Import cameras from a CSV or XLSX file in one transaction, as the catalogs are
        imported; a camera may not change type."""
        return await import_table(self.uow_factory, path, CAMERAS)

    @staticmethod
    async def _check_types(uow: UnitOfWork, types: set[str]) -> None:
        known = set(await uow.schemas.type_names())
        unknown = sorted(types - known)
        if unknown:
            raise UsageError(
                f"unknown camera type {unknown[0]!r} (registered: {', '.join(sorted(known))})"
            )


def parse_camera(values: dict[str, str]) -> CameraIn:
    """One row of a cameras sheet (``type`` is the camera type), or ``BadRow``."""
    try:
        return CameraIn.model_validate(
            {
                "id": values["id"],
                "camera_type": values["type"],
                "latitude": values["latitude"],
                "longitude": values["longitude"],
                "description": values["description"],
            }
        )
    except ValidationError as exc:
        raise BadRow(describe_validation_error(exc, aliases={"camera_type": "type"})) from None


async def _camera_rule(uow: UnitOfWork) -> RowRule:
    known = set(await uow.schemas.type_names())

    def rule(new: dict[str, Any], stored: Camera | None) -> str | None:
        if new["camera_type"] not in known:
            return f"type: unknown camera type {new['camera_type']!r}"
        if stored is not None and stored.camera_type != new["camera_type"]:
            return (
                f"type: camera {stored.id} is registered as {stored.camera_type!r}; "
                "a camera cannot change type"
            )
        return None

    return rule


def _describe_camera(stored: Camera, new: dict[str, Any]) -> str | None:
    changes = [
        f"{name} {getattr(stored, name)!r} -> {new[name]!r}"
        for name in ("latitude", "longitude", "description")
        if getattr(stored, name) != new[name]
    ]
    return f"{stored.id}: {', '.join(changes)}" if changes else None


CAMERAS = ImportTable(
    name="camera",
    columns=CAMERA_COLUMNS,
    required=frozenset({"id", "type", "latitude", "longitude"}),
    key="id",
    parse=parse_camera,
    stored=lambda uow, keys: uow.cameras.by_ids(keys),
    upsert=lambda uow, rows: uow.cameras.upsert(rows),
    describe=_describe_camera,
    rule=_camera_rule,
    stamps=("created_at",),
    csv_bytes=CAMERAS_CSV_BYTES,
)

"""Registering cameras, one at a time or from the managers' CSV."""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lizardctl.core.db.models import Camera
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.files import CAMERAS_CSV_BYTES, read_user_file
from lizardctl.core.ids import IdText, resolve_id
from lizardctl.core.spreadsheets import field_problems
from lizardctl.core.uow import UnitOfWork, UowFactory
from lizardctl.core.validation import describe_validation_error

CSV_COLUMNS = ("id", "type", "latitude", "longitude", "description")
REQUIRED_COLUMNS = frozenset({"id", "type", "latitude", "longitude"})


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


@dataclass(frozen=True, slots=True)
class ImportReport:
    file: str
    added: int
    updated: int
    unchanged: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


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

    async def import_csv(self, path: Path) -> ImportReport:
        """Import a cameras CSV in one transaction: every row is good, or nothing is written.

        Rows equal to what is stored are left alone, so re-importing a file is a no-op;
        changed coordinates or descriptions are updated; a camera may not change type.
        """
        cameras, errors = parse_cameras_csv(read_user_file(path, CAMERAS_CSV_BYTES))
        async with self.uow_factory() as uow:
            known_types = set(await uow.schemas.type_names())
            existing = await uow.cameras.by_ids(cam.id for _, cam in cameras)
            added: list[dict[str, Any]] = []
            updated: list[dict[str, Any]] = []
            for line, cam in cameras:
                if cam.camera_type not in known_types:
                    errors.append(f"line {line}: type: unknown camera type {cam.camera_type!r}")
                    continue
                stored = existing.get(cam.id)
                if stored is None:
                    added.append(cam.row())
                elif stored.camera_type != cam.camera_type:
                    errors.append(
                        f"line {line}: type: camera {cam.id} is registered as "
                        f"{stored.camera_type!r}; a camera cannot change type"
                    )
                elif (stored.latitude, stored.longitude, stored.description) != (
                    cam.latitude,
                    cam.longitude,
                    cam.description,
                ):
                    updated.append(cam.row())
            if errors:
                errors.sort(key=lambda e: int(e.split(":", 1)[0].removeprefix("line ")))
                raise UsageError(
                    f"{path}: {len(errors)} bad row(s), nothing imported", details=errors
                )
            await uow.cameras.insert_many(added)
            await uow.cameras.update_many(updated)
            await uow.commit()
        unchanged = len(cameras) - len(added) - len(updated)
        return ImportReport(str(path), len(added), len(updated), unchanged)

    @staticmethod
    async def _check_types(uow: UnitOfWork, types: set[str]) -> None:
        known = set(await uow.schemas.type_names())
        unknown = sorted(types - known)
        if unknown:
            raise UsageError(
                f"unknown camera type {unknown[0]!r} (registered: {', '.join(sorted(known))})"
            )


def parse_cameras_csv(data: bytes) -> tuple[list[tuple[int, CameraIn]], list[str]]:
    """Parse and check every row; return the good ones with their line numbers and the errors."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"not UTF-8 text (byte {exc.start})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = REQUIRED_COLUMNS - set(header)
    unknown = set(header) - set(CSV_COLUMNS)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(sorted(missing))}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(sorted(unknown))}")
        raise UsageError(
            f"bad CSV header: {'; '.join(problems)} (expected {','.join(CSV_COLUMNS)})"
        )
    reader.fieldnames = header
    cameras: list[tuple[int, CameraIn]] = []
    errors: list[str] = []
    first_line: dict[uuid.UUID, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            errors.append(f"line {line}: more fields than columns")
            continue
        problems = field_problems({name: (value or "").strip() for name, value in record.items()})
        if problems:
            errors.append(f"line {line}: {'; '.join(problems)}")
            continue
        try:
            cam = CameraIn(
                id=record.get("id") or "",
                camera_type=record.get("type") or "",
                latitude=record.get("latitude") or "",
                longitude=record.get("longitude") or "",
                description=record.get("description") or "",
            )
        except ValidationError as exc:
            errors.append(
                f"line {line}: {describe_validation_error(exc, aliases={'camera_type': 'type'})}"
            )
            continue
        if cam.id in first_line:
            errors.append(f"line {line}: id: {cam.id} repeats line {first_line[cam.id]}")
            continue
        first_line[cam.id] = line
        cameras.append((line, cam))
    return cameras, errors

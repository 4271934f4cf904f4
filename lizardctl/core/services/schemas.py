"""The camera-type registry: versioned schema files, compiled once, used to check shots."""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from lizardctl.core.codecs import MetadataDecodeError, decode_metadata
from lizardctl.core.database import Database
from lizardctl.core.db.models import SchemaVersion
from lizardctl.core.errors import LizardError, NotFoundError, UsageError
from lizardctl.core.files import read_user_file
from lizardctl.core.schema import builtin_schema_files
from lizardctl.core.schema.compiler import CompiledSchema, compile_schema
from lizardctl.core.schema.detect import TypeDetector
from lizardctl.core.schema.errors import ShotInvalid
from lizardctl.core.schema.format import SchemaDocument, content_digest, parse_schema
from lizardctl.core.shot import CameraMismatch, check_camera
from lizardctl.core.uow import UnitOfWork, UowFactory

TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
SCHEMA_SUFFIXES = (".json", ".toml")

AddStatus = Literal["registered", "unchanged", "matches-older", "would-register"]


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """What ``schema add`` did; ``message`` says it in one sentence."""

    name: str
    status: AddStatus
    version: int | None
    latest: int | None
    digest: str

    @property
    def message(self) -> str:
        if self.status == "registered":
            return f"{self.name}: registered version {self.version}"
        if self.status == "would-register":
            return f"{self.name}: schema is valid; would register version {self.version} (dry run)"
        if self.status == "unchanged":
            return (
                f"{self.name}: identical to the latest version {self.version}; nothing registered"
            )
        return (
            f"{self.name}: identical to older version {self.version}, but the latest is version "
            f"{self.latest}; nothing registered (versions are immutable: to go back, change the "
            "file so it differs from every registered version)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "latest": self.latest,
            "digest": self.digest,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class SchemaSummary:
    name: str
    latest_version: int
    versions: int
    cameras: int


@dataclass(frozen=True, slots=True)
class VersionView:
    name: str
    version: int
    digest: str
    file_format: str
    created_at: datetime
    content: str

    @classmethod
    def of(cls, row: SchemaVersion) -> VersionView:
        return cls(
            row.camera_type, row.version, row.digest, row.file_format, row.created_at, row.content
        )

    def to_dict(self, *, with_content: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "format": self.file_format,
            "created_at": self.created_at.isoformat(),
        }
        if with_content:
            data["content"] = self.content
        return data


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One sample metadata file run through decode, detection, validation and mapping."""

    file: str
    ok: bool
    camera_type: str | None = None
    version: int | None = None
    reason: str | None = None
    errors: list[str] = field(default_factory=list)
    case: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "camera_type": self.camera_type,
            "version": self.version,
            "reason": self.reason,
            "errors": self.errors,
            "case": self.case,
            "notes": self.notes,
        }


def check_type_name(name: str) -> str:
    if not TYPE_NAME.fullmatch(name):
        raise UsageError(
            f"bad camera type name {name!r}: use 1-64 lower-case letters, digits, '-' or '_', "
            "starting with a letter"
        )
    return name


def schema_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SCHEMA_SUFFIXES:
        raise UsageError(f"{path}: schema files must end in .json or .toml")
    return suffix


class SchemaService:
    def __init__(self, uow_factory: UowFactory) -> None:
        self.uow_factory = uow_factory

    async def add_file(self, name: str, path: Path, *, dry_run: bool = False) -> AddOutcome:
        suffix = schema_suffix(path)
        return await self.add(
            name, read_user_file(path), suffix=suffix, source=str(path), dry_run=dry_run
        )

    async def add(
        self, name: str, data: bytes, *, suffix: str, source: str, dry_run: bool = False
    ) -> AddOutcome:
        """Register ``data`` as the next version of ``name`` unless it is already registered.

        Identical to the latest: nothing happens. Identical to an older version: nothing
        happens either, and the outcome says so instead of pretending to succeed.
        """
        check_type_name(name)
        doc = parse_schema(data, suffix=suffix, source=source)
        compile_schema(name, 0, doc)
        digest = content_digest(doc)
        content = data.decode("utf-8")
        async with self.uow_factory() as uow:
            versions = await uow.schemas.versions(name)
            latest = versions[-1].version if versions else None
            for row in versions:
                if row.digest == digest:
                    status: AddStatus = "unchanged" if row.version == latest else "matches-older"
                    return AddOutcome(name, status, row.version, latest, digest)
            version = (latest or 0) + 1
            if dry_run:
                return AddOutcome(name, "would-register", version, latest, digest)
            try:
                # Inside the try: two first registrations of a new type race on the type row.
                if not versions and not await uow.schemas.type_exists(name):
                    await uow.schemas.add_type(name)
                await uow.schemas.add_version(name, version, digest, content, suffix.lstrip("."))
                await uow.commit()
            except IntegrityError as exc:
                raise UsageError(
                    f"{name}: another process registered a version at the same time; run again"
                ) from exc
        return AddOutcome(name, "registered", version, version, digest)

    async def list(self) -> list[SchemaSummary]:
        async with self.uow_factory() as uow:
            cameras = await uow.cameras.count_by_type()
            summaries = []
            for name in await uow.schemas.type_names():
                versions = await uow.schemas.versions(name)
                if versions:
                    summaries.append(
                        SchemaSummary(
                            name, versions[-1].version, len(versions), cameras.get(name, 0)
                        )
                    )
        return summaries

    async def show(self, name: str, version: int | None = None) -> VersionView:
        async with self.uow_factory() as uow:
            return VersionView.of(await _version_row(uow, name, version))

    async def versions(self, name: str) -> builtins.list[VersionView]:
        async with self.uow_factory() as uow:
            views = [VersionView.of(row) for row in await uow.schemas.versions(name)]
        if not views:
            raise NotFoundError(f"no camera type {name!r}")
        return views

    async def detector(self) -> TypeDetector:
        """Every type's latest version, compiled: what new shots are checked against."""
        async with self.uow_factory() as uow:
            return TypeDetector([compile_row(row) for row in await uow.schemas.latest_versions()])

    async def check_files(
        self,
        paths: Sequence[Path],
        *,
        name: str | None = None,
        version: int | None = None,
        now: datetime | None = None,
    ) -> builtins.list[CheckResult]:
        """Decode, detect (or use ``name``), validate and map sample files; write nothing."""
        async with self.uow_factory() as uow:
            schema: CompiledSchema | TypeDetector
            if name is not None:
                # Named: validate against that type directly, so a sample that does not fit
                # gets every field-level error, not a "no camera type has these keys".
                schema = compile_row(await _version_row(uow, name, version))
            else:
                schema = TypeDetector(
                    [compile_row(row) for row in await uow.schemas.latest_versions()]
                )
            camera_types = await uow.cameras.types_by_id()
        return [_check_one(path, schema, camera_types, now) for path in paths]


def compile_row(row: SchemaVersion) -> CompiledSchema:
    doc = parse_schema(
        row.content, suffix=f".{row.file_format}", source=f"{row.camera_type} v{row.version}"
    )
    return compile_schema(row.camera_type, row.version, doc)


async def _version_row(uow: UnitOfWork, name: str, version: int | None) -> SchemaVersion:
    if version is None:
        rows = await uow.schemas.versions(name)
        if not rows:
            raise NotFoundError(f"no camera type {name!r}")
        return rows[-1]
    row = await uow.schemas.get_version(name, version)
    if row is None:
        raise NotFoundError(f"no version {version} of camera type {name!r}")
    return row


def _check_one(
    path: Path,
    schema: CompiledSchema | TypeDetector,
    camera_types: Mapping[uuid.UUID, str],
    now: datetime | None,
) -> CheckResult:
    named: dict[str, Any] = {}
    if isinstance(schema, CompiledSchema):
        named = {"camera_type": schema.name, "version": schema.version}
    try:
        raw = decode_metadata(read_user_file(path), path.suffix)
        if isinstance(schema, CompiledSchema):
            case = schema.to_case(raw, now=now)
        else:
            case = schema.case(raw, now=now)
    except MetadataDecodeError as exc:
        return CheckResult(str(path), False, reason="bad-metadata", errors=[str(exc)])
    except ShotInvalid as exc:
        return CheckResult(str(path), False, **named, reason=exc.reason, errors=exc.errors)
    except LizardError as exc:
        return CheckResult(str(path), False, reason="unreadable", errors=[str(exc)])
    found: dict[str, Any] = {"camera_type": case.schema_name, "version": case.schema_version}
    mapped = case.model_dump(mode="json")
    try:
        check_camera(case, camera_types)
    except CameraMismatch as exc:
        if exc.reason != "unknown-camera":
            return CheckResult(
                str(path), False, **found, reason=exc.reason, errors=[str(exc)], case=mapped
            )
        note = f"{exc} (ingest would reject the shot as unknown-camera)"
        return CheckResult(str(path), True, **found, case=mapped, notes=[note])
    return CheckResult(str(path), True, **found, case=mapped)


async def register_builtins(db: Database) -> None:
    """Register the shipped camera types through the same path as any user's schema file.

    A built-in whose content is already registered (as any version) is left alone, so a
    user's newer version of a built-in type is never overridden by an upgrade.
    """
    service = SchemaService(db.uow)
    for name, path in builtin_schema_files().items():
        data = path.read_bytes()
        doc: SchemaDocument = parse_schema(data, suffix=path.suffix, source=str(path))
        async with db.uow() as uow:
            known = {row.digest for row in await uow.schemas.versions(name)}
        if content_digest(doc) not in known:
            await service.add(name, data, suffix=path.suffix, source=f"built-in {name}")

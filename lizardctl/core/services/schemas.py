"""The camera-type registry: versioned schema files, compiled once, used to check shots.

A new version can be replayed before it is adopted: the raw metadata of every stored shot
of the type (cases keep it verbatim) is validated and mapped with the new file, streamed a
batch at a time, and the failures are grouped by field path. No schema registry can do
this (Confluent and Apicurio check compatibility rules, not the data); lizardctl has the
data.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from lizardctl.core import rehash
from lizardctl.core.choices import DEFAULT_MAX_METADATA_BYTES
from lizardctl.core.codecs import MetadataDecodeError, decode_metadata
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import SchemaVersion, utcnow
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import LizardError, NotFoundError, UsageError
from lizardctl.core.files import SCHEMA_FILE_BYTES, FileTooLarge, read_user_file
from lizardctl.core.output import quoted
from lizardctl.core.replay import Failure, replay_batch
from lizardctl.core.schema import builtin_schema_files
from lizardctl.core.schema.compiler import CompiledSchema, compile_schema
from lizardctl.core.schema.detect import TypeDetector
from lizardctl.core.schema.errors import ShotInvalid
from lizardctl.core.schema.format import SchemaDocument, content_digest, parse_schema
from lizardctl.core.schema.stored import compile_row
from lizardctl.core.shot import CameraMismatch, check_camera
from lizardctl.core.vocabulary import Reason, SchemaFormat

TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
SCHEMA_SUFFIXES = tuple(f".{f}" for f in SchemaFormat)

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
    reason: Reason | None = None
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


MAX_FAILURE_PATHS = 100
"""Field paths a replay reports one by one. Hostile metadata may carry any number of
distinct unexpected keys; failures at paths beyond these are only counted (``other_paths``),
so the report, like the stream, stays bounded."""
MAX_PATH_CHARS = 200
MAX_EXAMPLE_CHARS = 300
POOL_AFTER = 10_000
"""Stored shots a replay checks in its own process before worker processes take over:
below this, starting them costs more than they save."""
MAX_REPLAY_WORKERS = 4


@dataclass(slots=True)
class FailureGroup:
    """Stored shots failing at one field path, with the first one seen as the example."""

    path: str
    shots: int
    example_case_id: uuid.UUID
    example: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "shots": self.shots,
            "example_case_id": str(self.example_case_id),
            "example": self.example,
        }


@dataclass(slots=True)
class ReplayTally:
    """Counts of a replay, and its failures grouped by path in bounded memory."""

    replayed: int = 0
    failed: int = 0
    groups: dict[str, FailureGroup] = field(default_factory=dict)
    other_paths: int = 0
    """(shot, path) failures at paths beyond the first ``MAX_FAILURE_PATHS``."""

    def fail_all(self, failures: Sequence[Failure]) -> None:
        for case_id, problems in failures:
            self.fail(case_id, problems)

    def fail(self, case_id: str | uuid.UUID, problems: Sequence[tuple[str, str]]) -> None:
        """One failing shot (its id as stored, text or UUID); it counts once per distinct
        path it fails at."""
        self.failed += 1
        seen: set[str] = set()
        for path, message in problems:
            path = path[:MAX_PATH_CHARS]
            if path in seen:
                continue
            seen.add(path)
            group = self.groups.get(path)
            if group is not None:
                group.shots += 1
            elif len(self.groups) < MAX_FAILURE_PATHS:
                example = case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(case_id)
                self.groups[path] = FailureGroup(path, 1, example, message[:MAX_EXAMPLE_CHARS])
            else:
                self.other_paths += 1

    @property
    def passed(self) -> int:
        return self.replayed - self.failed

    def failures(self) -> builtins.list[FailureGroup]:
        """Most frequent path first."""
        return sorted(self.groups.values(), key=lambda g: (-g.shots, g.path))


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """``schema add --replay``: how the stored shots fare under the new file, and what was
    registered (``added`` None: not registered, because some failed)."""

    name: str
    replayed: int
    passed: int
    failed: int
    failures: tuple[FailureGroup, ...]
    other_paths: int
    since: datetime | None
    limit: int | None
    elapsed_s: float
    added: AddOutcome | None

    @property
    def shots_per_s(self) -> float:
        return round(self.replayed / max(self.elapsed_s, 1e-9), 1)

    @property
    def message(self) -> str:
        if self.added is not None:
            return self.added.message
        return f"{self.name}: {self.failed} stored shot(s) fail the new file; nothing registered"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "replayed": self.replayed,
            "passed": self.passed,
            "failed": self.failed,
            "failures": [group.to_dict() for group in self.failures],
            "other_paths": self.other_paths,
            "since": self.since.isoformat() if self.since else None,
            "limit": self.limit,
            "elapsed_s": round(self.elapsed_s, 3),
            "shots_per_s": self.shots_per_s,
            "registered": self.added is not None and self.added.status == "registered",
            "outcome": self.added.to_dict() if self.added is not None else None,
            "message": self.message,
        }


def check_type_name(name: str) -> str:
    if not TYPE_NAME.fullmatch(name):
        raise UsageError(
            f"bad camera type name {quoted(name)}: use 1-64 lower-case letters, digits, "
            "'-' or '_', starting with a letter"
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
            name,
            read_user_file(path, SCHEMA_FILE_BYTES),
            suffix=suffix,
            source=str(path),
            dry_run=dry_run,
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

    async def replay_file(
        self,
        name: str,
        path: Path,
        *,
        dry_run: bool,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> ReplayReport:
        """Replay the stored shots of ``name`` against the schema file ``path``; without
        ``dry_run``, register it only when none of them fails."""
        suffix = schema_suffix(path)
        data = read_user_file(path, SCHEMA_FILE_BYTES)
        check_type_name(name)
        schema = compile_schema(name, 0, parse_schema(data, suffix=suffix, source=str(path)))
        started = time.perf_counter()
        tally = await self._replay(schema, since, limit)
        elapsed = time.perf_counter() - started
        added = None
        if dry_run or not tally.failed:
            added = await self.add(name, data, suffix=suffix, source=str(path), dry_run=dry_run)
        return ReplayReport(
            name,
            tally.replayed,
            tally.passed,
            tally.failed,
            tuple(tally.failures()),
            tally.other_paths,
            since,
            limit,
            elapsed,
            added,
        )

    async def _replay(
        self, schema: CompiledSchema, since: datetime | None, limit: int | None
    ) -> ReplayTally:
        """The hot loop. Batches stream in, the next one fetched (by the driver, off the
        event loop) while this one is checked: in this process for the first
        ``POOL_AFTER`` shots, then by worker processes, a few batches in flight, so memory
        stays bounded and results come back in stream order (the examples are the first
        failures met)."""
        tally = ReplayTally()
        now = utcnow()
        workers = min(os.cpu_count() or 1, MAX_REPLAY_WORKERS)
        pool: ProcessPoolExecutor | None = None
        pending: deque[asyncio.Future[list[Failure]]] = deque()
        loop = asyncio.get_running_loop()
        try:
            async with self.uow_factory() as uow:
                batches = uow.schemas.stored_raw(schema.name, since, limit)
                fetching = asyncio.ensure_future(anext(batches, None))
                while (batch := await fetching) is not None:
                    fetching = asyncio.ensure_future(anext(batches, None))
                    await asyncio.sleep(0)  # lets that fetch reach the driver first
                    rows = [(case_id, raw) for case_id, raw in batch]
                    tally.replayed += len(rows)
                    if pool is None and workers > 1 and tally.replayed > POOL_AFTER:
                        pool = ProcessPoolExecutor(
                            workers,
                            mp_context=rehash.context("lizardctl.core.replay"),
                            initializer=rehash.initialize,
                            initargs=(os.getpid(),),
                        )
                    if pool is None:
                        tally.fail_all(replay_batch(schema, rows, now))
                        continue
                    pending.append(loop.run_in_executor(pool, replay_batch, schema, rows, now))
                    while len(pending) > 2 * workers:
                        tally.fail_all(await pending.popleft())
                while pending:
                    tally.fail_all(await pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        return tally

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

    async def withdraw(self, name: str, version: int) -> VersionView:
        """Remove a version no case uses (a mistaken ``schema add``): ingest then validates
        new shots against the newest version left. A version that validated cases is
        their record and stays; the database's foreign key settles a race with an ingest."""
        check_type_name(name)
        async with self.uow_factory() as uow:
            row = await _version_row(uow, name, version)
            used = await uow.schemas.cases_using(row.id)
            if used:
                raise UsageError(
                    f"{name} version {version} validated {used} case(s): it cannot be "
                    "withdrawn (register a corrected version with `lizardctl schema add`)"
                )
            view = VersionView.of(row)
            try:
                await uow.schemas.delete_version(row.id)
                await uow.commit()
            except IntegrityError as exc:
                raise UsageError(
                    f"{name} version {version} was just used by an ingest; not withdrawn"
                ) from exc
        return view

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
        raw = decode_metadata(read_user_file(path, DEFAULT_MAX_METADATA_BYTES), path.suffix)
        if isinstance(schema, CompiledSchema):
            case = schema.to_case(raw, now=now)
        else:
            case = schema.case(raw, now=now)
    except MetadataDecodeError as exc:
        return CheckResult(str(path), False, reason=Reason.BAD_METADATA, errors=[str(exc)])
    except ShotInvalid as exc:
        return CheckResult(str(path), False, **named, reason=exc.reason, errors=exc.errors)
    except FileTooLarge as exc:
        return CheckResult(str(path), False, reason=Reason.TOO_LARGE, errors=[str(exc)])
    except LizardError as exc:
        return CheckResult(str(path), False, reason=Reason.UNREADABLE, errors=[str(exc)])
    found: dict[str, Any] = {"camera_type": case.schema_name, "version": case.schema_version}
    mapped = case.model_dump(mode="json")
    try:
        check_camera(case, camera_types)
    except CameraMismatch as exc:
        if exc.reason is not Reason.UNKNOWN_CAMERA:
            return CheckResult(
                str(path), False, **found, reason=exc.reason, errors=[str(exc)], case=mapped
            )
        note = f"{exc} (ingest would reject the shot as {Reason.UNKNOWN_CAMERA})"
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

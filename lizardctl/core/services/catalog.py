"""The managers' reference tables, imported from the spreadsheets they already keep: the
violation catalog (id, name, fine) and the car owners (plate, name, contacts).

An import is an upsert keyed by id or plate, in one transaction: every row is checked,
bad rows are all reported with their line numbers and nothing is written; rows equal to
what is stored are left alone, so re-importing a file is a no-op; rows not in the file
are kept. Rows are read, checked and written a chunk at a time, so a file of a million
owners needs memory for its keys, not for its rows.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lizardctl.core.db.models import CarOwner, ViolationType, utcnow
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.money import format_amount, parse_amount
from lizardctl.core.paging import Page
from lizardctl.core.repositories.catalog import CONFIRMED
from lizardctl.core.schema.canonical import PLATE_PATTERN
from lizardctl.core.spreadsheets import SheetRow, open_sheet
from lizardctl.core.uow import UnitOfWork, UowFactory
from lizardctl.core.validation import describe_validation_error

VIOLATION_COLUMNS = ("id", "name", "fine")
OWNER_COLUMNS = ("plate", "name", "phone", "email", "telegram")
CONTACTS = ("phone", "email", "telegram")
IMPORT_CHUNK = 1000
MAX_LISTED = 50
"""Bad rows and updates listed in full up to this many; the counts are always exact."""

_PLATE = re.compile(PLATE_PATTERN)
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]*[0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TELEGRAM = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{4,31})$")


def canonical_plate(value: str) -> str:
    """A plate as typed, trimmed and upper-cased, if it is in the canonical form."""
    plate = value.strip().upper()
    if not _PLATE.match(plate):
        raise ValueError(
            "not a canonical plate (digit, 3 letters A-Z, 2 digits, 2-3 digit region: 1ABC2377)"
        )
    return plate


def _amount(value: Any) -> int:
    return parse_amount(str(value))


def _optional(check: Callable[[str], str]) -> Callable[[Any], str | None]:
    """Blank cells are "no such contact"; anything else must pass ``check``."""

    def validate(value: Any) -> str | None:
        text = str(value or "").strip()
        return check(text) if text else None

    return validate


def _phone(text: str) -> str:
    digits = sum(ch.isdigit() for ch in text)
    if not _PHONE.match(text) or not 5 <= digits <= 15 or len(text) > 32:
        raise ValueError("not a phone number (5-15 digits, optional +, spaces, dashes, brackets)")
    return text


def _email(text: str) -> str:
    if not _EMAIL.match(text) or len(text) > 254:
        raise ValueError("not an e-mail address")
    return text


def _telegram(text: str) -> str:
    match = _TELEGRAM.match(text)
    if match is None:
        raise ValueError("not a Telegram username (5-32 letters, digits or _, from a letter)")
    return f"@{match.group(1)}"


class ViolationIn(BaseModel):
    """One catalog row as a manager wrote it; ``fine`` becomes integer minor units."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    id: uuid.UUID
    name: Annotated[str, Field(min_length=1, max_length=200)]
    fine_minor: Annotated[int, BeforeValidator(_amount)]

    @classmethod
    def parse(cls, values: dict[str, str]) -> ViolationIn:
        return cls.model_validate(
            {"id": values["id"], "name": values["name"], "fine_minor": values["fine"]}
        )


class OwnerIn(BaseModel):
    """One owner row; blank contacts are absent, and one contact at least is required."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    plate: Annotated[str, BeforeValidator(lambda v: canonical_plate(str(v)))]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    phone: Annotated[str | None, BeforeValidator(_optional(_phone))] = None
    email: Annotated[str | None, BeforeValidator(_optional(_email))] = None
    telegram: Annotated[str | None, BeforeValidator(_optional(_telegram))] = None

    @classmethod
    def parse(cls, values: dict[str, str]) -> OwnerIn:
        return cls.model_validate({name: values[name] for name in OWNER_COLUMNS})


class BadRow(ValueError):
    """One row's problems as ``column: message``; the importer adds where the row is."""


def parse_violation(values: dict[str, str]) -> ViolationIn:
    try:
        return ViolationIn.parse(values)
    except ValidationError as exc:
        raise BadRow(describe_validation_error(exc, aliases={"fine_minor": "fine"})) from None


def parse_owner(values: dict[str, str]) -> OwnerIn:
    try:
        owner = OwnerIn.parse(values)
    except ValidationError as exc:
        raise BadRow(describe_validation_error(exc)) from None
    if not any(getattr(owner, contact) for contact in CONTACTS):
        raise BadRow("phone, email, telegram: at least one contact is required")
    return owner


@dataclass(frozen=True, slots=True)
class ImportReport:
    file: str
    table: str
    added: int
    updated: int
    unchanged: int
    updates: list[str] = field(default_factory=list)
    """What changed in the first ``MAX_LISTED`` updated rows, one line each."""
    priced: int = 0
    """Confirmed cases without a fine that got one: their violation is catalogued now."""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "table": self.table,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "updates": self.updates,
            "priced": self.priced,
        }


@dataclass(frozen=True)
class _Table:
    """What differs between importing violations and owners."""

    name: str
    columns: tuple[str, ...]
    required: frozenset[str]
    key: str
    parse: Callable[[dict[str, str]], BaseModel]
    stored: Callable[[UnitOfWork, list[Any]], Awaitable[dict[Any, Any]]]
    upsert: Callable[[UnitOfWork, Sequence[dict[str, Any]]], Awaitable[None]]
    describe: Callable[[Any, dict[str, Any]], str | None]
    """The change from a stored row to a new one, or None when they are equal."""
    after: Callable[[UnitOfWork], Awaitable[int]] | None = None
    """Run in the import's transaction once every row is written; its count is ``priced``."""


def _describe_violation(stored: ViolationType, new: dict[str, Any]) -> str | None:
    changes = []
    if stored.fine_minor != new["fine_minor"]:
        changes.append(
            f"fine {format_amount(stored.fine_minor)} -> {format_amount(new['fine_minor'])}"
        )
    if stored.name != new["name"]:
        changes.append(f"name {stored.name!r} -> {new['name']!r}")
    return f"{stored.id} ({new['name']}): {', '.join(changes)}" if changes else None


def _describe_owner(stored: CarOwner, new: dict[str, Any]) -> str | None:
    """Names the changed fields, not their values: contacts are personal data, and an
    import log is no place to repeat them."""
    changed = [name for name in ("name", *CONTACTS) if getattr(stored, name) != new[name]]
    return f"{stored.plate}: {', '.join(changed)} changed" if changed else None


VIOLATIONS = _Table(
    name="violation",
    columns=VIOLATION_COLUMNS,
    required=frozenset(VIOLATION_COLUMNS),
    key="id",
    parse=parse_violation,
    stored=lambda uow, keys: uow.violations.by_ids(keys),
    upsert=lambda uow, rows: uow.violations.upsert(rows),
    describe=_describe_violation,
    after=lambda uow: uow.violations.price_unpriced(),
)
OWNERS = _Table(
    name="owner",
    columns=OWNER_COLUMNS,
    required=frozenset({"plate", "name"}),
    key="plate",
    parse=parse_owner,
    stored=lambda uow, keys: uow.owners.by_plates(keys),
    upsert=lambda uow, rows: uow.owners.upsert(rows),
    describe=_describe_owner,
)


def _take(rows: Iterator[SheetRow], count: int) -> list[SheetRow]:
    return list(itertools.islice(rows, count))


@dataclass
class _Tally:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    updates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bad: int = 0

    def error(self, line: str) -> None:
        self.bad += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(line)


async def import_table(uow_factory: UowFactory, path: Path, table: _Table) -> ImportReport:
    """Check every row of ``path`` and upsert the new and changed ones in one transaction;
    any bad row, and the transaction is rolled back with every bad row reported."""
    tally = _Tally()
    seen: dict[Any, str] = {}
    now = utcnow()
    with open_sheet(path, table.columns, table.required) as rows:
        async with uow_factory() as uow:
            # Reading runs in a thread: parsing a big sheet must not block the loop.
            while chunk := await asyncio.to_thread(_take, rows, IMPORT_CHUNK):
                good = _check_chunk(chunk, table, seen, tally)
                if tally.bad:
                    continue  # keep checking to report every bad row, but write nothing
                await _write_chunk(uow, table, good, tally, now)
            if tally.bad:
                details = list(tally.errors)
                if tally.bad > len(details):
                    details.append(f"... and {tally.bad - len(details)} more bad row(s)")
                raise UsageError(
                    f"{path}: {tally.bad} bad row(s), nothing imported", details=details
                )
            priced = await table.after(uow) if table.after is not None else 0
            await uow.commit()
    return ImportReport(
        str(path), table.name, tally.added, tally.updated, tally.unchanged, tally.updates, priced
    )


def _check_chunk(
    chunk: list[SheetRow], table: _Table, seen: dict[Any, str], tally: _Tally
) -> list[dict[str, Any]]:
    good = []
    for row in chunk:
        if row.problem is not None:
            tally.error(f"{row.where}: {row.problem}")
            continue
        try:
            item = table.parse(row.values).model_dump()
        except BadRow as exc:
            tally.error(f"{row.where}: {exc}")
            continue
        key = item[table.key]
        if key in seen:
            tally.error(f"{row.where}: {table.key}: {key} repeats {seen[key]}")
            continue
        seen[key] = row.where
        good.append(item)
    return good


async def _write_chunk(
    uow: UnitOfWork, table: _Table, items: list[dict[str, Any]], tally: _Tally, now: datetime
) -> None:
    stored = await table.stored(uow, [item[table.key] for item in items])
    writes = []
    for item in items:
        old = stored.get(item[table.key])
        if old is None:
            tally.added += 1
        else:
            change = table.describe(old, item)
            if change is None:
                tally.unchanged += 1
                continue
            tally.updated += 1
            if len(tally.updates) < MAX_LISTED:
                tally.updates.append(change)
        # created_at only lands on new rows: the upsert never overwrites it.
        writes.append({**item, "created_at": now, "updated_at": now})
    await table.upsert(uow, writes)


@dataclass(frozen=True, slots=True)
class ViolationView:
    id: uuid.UUID
    name: str
    fine_minor: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: ViolationType) -> ViolationView:
        return cls(row.id, row.name, row.fine_minor, row.created_at, row.updated_at)

    @property
    def fine(self) -> str:
        return format_amount(self.fine_minor)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "fine": self.fine,
            "fine_minor": self.fine_minor,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ViolationDetail:
    violation: ViolationView
    cases_by_status: dict[str, int]
    priced: int = 0
    """Confirmed cases with a fine frozen at decision (the others were confirmed before
    the type was catalogued)."""
    fines_due_minor: int = 0
    """The sum of those frozen fines, whatever the catalog's fine is now."""

    @property
    def confirmed(self) -> int:
        return self.cases_by_status.get(CONFIRMED, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.violation.to_dict(),
            "cases": sum(self.cases_by_status.values()),
            "cases_by_status": self.cases_by_status,
            "confirmed": self.confirmed,
            "unpriced": self.confirmed - self.priced,
            "fines_due": format_amount(self.fines_due_minor),
            "fines_due_minor": self.fines_due_minor,
        }


class ViolationService:
    def __init__(self, uow_factory: UowFactory) -> None:
        self.uow_factory = uow_factory

    async def import_file(self, path: Path) -> ImportReport:
        return await import_table(self.uow_factory, path, VIOLATIONS)

    async def list(self) -> list[ViolationView]:
        async with self.uow_factory() as uow:
            return [ViolationView.of(row) for row in await uow.violations.list()]

    async def show(self, violation_id: uuid.UUID) -> ViolationDetail:
        async with self.uow_factory() as uow:
            row = await uow.violations.get(violation_id)
            if row is None:
                raise NotFoundError(f"no violation {violation_id} in the catalog")
            counts = await uow.violations.case_counts(violation_id)
            priced, due = await uow.violations.fines_due(violation_id)
            return ViolationDetail(ViolationView.of(row), dict(sorted(counts.items())), priced, due)


@dataclass(frozen=True, slots=True)
class OwnerView:
    plate: str
    name: str
    phone: str | None
    email: str | None
    telegram: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: CarOwner) -> OwnerView:
        return cls(
            row.plate, row.name, row.phone, row.email, row.telegram, row.created_at, row.updated_at
        )

    @property
    def contacts(self) -> str:
        return ", ".join(c for c in (self.phone, self.email, self.telegram) if c)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plate": self.plate,
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "telegram": self.telegram,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class PlateCase:
    id: uuid.UUID
    occurred_at: datetime
    status: str
    violation_id: uuid.UUID
    violation_value: str
    violation: str | None
    fine_minor: int | None
    decided_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "occurred_at": self.occurred_at.isoformat(),
            "status": self.status,
            "violation_id": str(self.violation_id),
            "violation_value": self.violation_value,
            "violation": self.violation,
            "fine": None if self.fine_minor is None else format_amount(self.fine_minor),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


@dataclass(frozen=True, slots=True)
class OwnerDetail:
    owner: OwnerView
    cases_by_status: dict[str, int]
    cases: Page[PlateCase]
    """A page of the plate's cases, newest first; ``cases_by_status`` counts them all."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.owner.to_dict(),
            "cases_total": self.cases.total,
            "cases_by_status": self.cases_by_status,
            "cases": self.cases.to_dict(PlateCase.to_dict),
        }


class OwnerService:
    def __init__(self, uow_factory: UowFactory) -> None:
        self.uow_factory = uow_factory

    async def import_file(self, path: Path) -> ImportReport:
        return await import_table(self.uow_factory, path, OWNERS)

    async def list(self, limit: int, offset: int = 0) -> Page[OwnerView]:
        """A page of owners by plate, and how many there are in all."""
        async with self.uow_factory() as uow:
            rows = await uow.owners.list(limit, offset)
            return Page([OwnerView.of(row) for row in rows], await uow.owners.count(), offset)

    async def show(self, plate: str, limit: int = 100, offset: int = 0) -> OwnerDetail:
        try:
            plate = canonical_plate(plate)
        except ValueError as exc:
            raise UsageError(f"{plate!r}: {exc}") from None
        async with self.uow_factory() as uow:
            row = await uow.owners.get(plate)
            if row is None:
                raise NotFoundError(f"no owner of plate {plate}")
            counts = await uow.owners.status_counts(plate)
            found = await uow.owners.cases_of(plate, limit, offset)
            cases = Page([PlateCase(**case) for case in found], sum(counts.values()), offset)
            return OwnerDetail(OwnerView.of(row), dict(sorted(counts.items())), cases)

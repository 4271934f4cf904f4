"""The managers' reference tables, imported from the spreadsheets they already keep: the
violation catalog (id, name, fine) and the car owners (plate, name, contacts). How an
import goes is ``lizardctl.core.services.imports``; what is particular to these two
tables is here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lizardctl.core.db.models import CarOwner, ViolationType
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.money import format_amount, parse_amount
from lizardctl.core.paging import Page
from lizardctl.core.schema.canonical import PLATE_PATTERN
from lizardctl.core.services.imports import BadRow, ImportReport, ImportTable, import_table
from lizardctl.core.validation import describe_validation_error
from lizardctl.core.vocabulary import CaseStatus

VIOLATION_COLUMNS = ("id", "name", "fine")
OWNER_COLUMNS = ("plate", "name", "phone", "email", "telegram")
CONTACTS = ("phone", "email", "telegram")

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


VIOLATIONS = ImportTable(
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
OWNERS = ImportTable(
    name="owner",
    columns=OWNER_COLUMNS,
    required=frozenset({"plate", "name"}),
    key="plate",
    parse=parse_owner,
    stored=lambda uow, keys: uow.owners.by_plates(keys),
    upsert=lambda uow, rows: uow.owners.upsert(rows),
    describe=_describe_owner,
)


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
        return self.cases_by_status.get(CaseStatus.CONFIRMED, 0)

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

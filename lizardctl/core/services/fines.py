"""Who owes what: confirmed cases joined with the violation catalog and the car owners.

Rows stream out of the database a batch at a time and go straight to the sink (a CSV or
JSON Lines writer here, a paged table in the command), so a million confirmed cases cost
no more memory than ten. A case owes the fine frozen when it was confirmed: re-importing
the catalog changes no past decision. A case whose plate has no owner is listed as
``unknown owner``; one whose violation was not catalogued when it was confirmed is an
``unknown violation`` without a fine, counted apart, never dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from lizardctl.core.choices import FinesFormat
from lizardctl.core.db.models import utcnow
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.errors import BadPlate, UsageError
from lizardctl.core.files import atomic_output
from lizardctl.core.money import format_amount
from lizardctl.core.output import SpreadsheetWriter, json_text
from lizardctl.core.services.catalog import canonical_plate

UNKNOWN_OWNER = "unknown owner"
UNKNOWN_VIOLATION = "unknown violation"
DEFAULT_REPORT_WINDOW = timedelta(days=30)


CSV_COLUMNS = (
    "case_id",
    "plate",
    "owner",
    "phone",
    "email",
    "telegram",
    "violation_id",
    "violation",
    "violation_value",
    "fine",
    "occurred_at",
    "decided_at",
)


@dataclass(frozen=True, slots=True)
class FineRow:
    """One confirmed case and what it costs whom; ``None`` where nothing is on record."""

    case_id: uuid.UUID
    plate: str
    owner: str | None
    phone: str | None
    email: str | None
    telegram: str | None
    violation_id: uuid.UUID
    violation: str | None
    violation_value: str
    fine_minor: int | None
    occurred_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> FineRow:
        return cls(
            row.id,
            row.plate,
            row.owner,
            row.phone,
            row.email,
            row.telegram,
            row.violation_id,
            row.violation,
            row.violation_value,
            row.fine_minor,
            row.occurred_at,
            row.decided_at,
        )

    @property
    def owner_label(self) -> str:
        return self.owner if self.owner is not None else UNKNOWN_OWNER

    @property
    def violation_label(self) -> str:
        return self.violation if self.violation is not None else UNKNOWN_VIOLATION

    @property
    def fine(self) -> str | None:
        return None if self.fine_minor is None else format_amount(self.fine_minor)

    @property
    def contacts(self) -> str:
        return ", ".join(c for c in (self.phone, self.email, self.telegram) if c)

    def to_dict(self) -> dict[str, Any]:
        """JSON keeps ``null`` for what is unknown; only CSV and the table spell it out."""
        return {
            "case_id": str(self.case_id),
            "plate": self.plate,
            "owner": self.owner,
            "phone": self.phone,
            "email": self.email,
            "telegram": self.telegram,
            "violation_id": str(self.violation_id),
            "violation": self.violation,
            "violation_value": self.violation_value,
            "fine": self.fine,
            "fine_minor": self.fine_minor,
            "occurred_at": self.occurred_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }

    def csv_row(self) -> list[str]:
        data = self.to_dict()
        data["owner"] = self.owner_label
        data["violation"] = self.violation_label
        return ["" if data[column] is None else str(data[column]) for column in CSV_COLUMNS]


@dataclass(frozen=True, slots=True)
class OwnerTotal:
    """What one owner (or, with ``owner`` None, one plate nobody owns) owes in all."""

    owner: str | None
    phone: str | None
    email: str | None
    telegram: str | None
    plates: tuple[str, ...]
    cases: int
    priced: int
    fine_minor: int

    @classmethod
    def of(cls, row: Any) -> OwnerTotal:
        return cls(
            row.owner,
            row.phone,
            row.email,
            row.telegram,
            tuple(sorted((row.plates or "").split(","))),
            int(row.cases),
            int(row.priced),
            int(row.fine_minor),
        )

    @property
    def owner_label(self) -> str:
        return self.owner if self.owner is not None else UNKNOWN_OWNER

    @property
    def contacts(self) -> str:
        return ", ".join(c for c in (self.phone, self.email, self.telegram) if c)

    @property
    def fine(self) -> str:
        return format_amount(self.fine_minor)


@dataclass(slots=True)
class FinesSummary:
    """Counted while streaming: confirmed cases, those with a catalogued fine, the sum."""

    cases: int = 0
    priced: int = 0
    fine_minor: int = 0
    unknown_owner: int = 0

    def add(self, rows: Sequence[FineRow]) -> None:
        for row in rows:
            self.cases += 1
            if row.fine_minor is not None:
                self.priced += 1
                self.fine_minor += row.fine_minor
            if row.owner is None:
                self.unknown_owner += 1

    @property
    def unpriced(self) -> int:
        return self.cases - self.priced

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "priced": self.priced,
            "unpriced": self.unpriced,
            "unknown_owner": self.unknown_owner,
            "total": format_amount(self.fine_minor),
            "total_minor": self.fine_minor,
        }


RowSink = Callable[[Sequence[FineRow]], None]
TotalSink = Callable[[Sequence[OwnerTotal]], None]


@dataclass(frozen=True, slots=True)
class FinesReport:
    """``report fines``: confirmed cases and fine totals per violation type and per day."""

    since: datetime
    by_violation: list[dict[str, Any]]
    by_day: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        cases = sum(row["cases"] for row in self.by_day)
        priced = sum(row["priced"] for row in self.by_day)
        total = sum(row["total_minor"] for row in self.by_day)
        return {
            "since": self.since.isoformat(),
            "cases": cases,
            "unpriced": cases - priced,
            "total": format_amount(total),
            "total_minor": total,
            "by_violation": self.by_violation,
            "by_day": self.by_day,
        }


def _plate(plate: str | None) -> str | None:
    if plate is None:
        return None
    try:
        return canonical_plate(plate)
    except ValueError as exc:
        raise BadPlate(plate, str(exc)) from None


class FinesService:
    def __init__(self, uow_factory: UowFactory, now: Callable[[], datetime] = utcnow) -> None:
        self.uow_factory = uow_factory
        self.now = now

    async def stream(
        self,
        rows: RowSink,
        totals: TotalSink | None = None,
        *,
        since: datetime | None = None,
        plate: str | None = None,
    ) -> FinesSummary:
        """Hand confirmed cases (oldest decision first) to ``rows`` a batch at a time, then,
        if asked, the per-owner totals (biggest first) to ``totals``. ``since`` filters on
        the decision time, as ``export`` does."""
        plate = _plate(plate)
        summary = FinesSummary()
        async with self.uow_factory() as uow:
            async for batch in uow.fines.rows(since, plate):
                fines = [FineRow.of(row) for row in batch]
                summary.add(fines)
                rows(fines)
            if totals is not None:
                async for batch in uow.fines.totals_by_owner(since, plate):
                    totals([OwnerTotal.of(row) for row in batch])
        return summary

    async def export(
        self,
        out: TextIO,
        *,
        fmt: FinesFormat,
        since: datetime | None = None,
        plate: str | None = None,
    ) -> FinesSummary:
        """Write one CSV or JSON Lines row per confirmed case to ``out``."""
        if fmt is FinesFormat.TABLE:
            raise UsageError("the table form is for the terminal: an export is csv or jsonl")
        writer = SpreadsheetWriter(out)
        if fmt is FinesFormat.CSV:
            writer.writerow(CSV_COLUMNS)

            def sink(rows: Sequence[FineRow]) -> None:
                writer.writerows(row.csv_row() for row in rows)
        else:

            def sink(rows: Sequence[FineRow]) -> None:
                out.writelines(json_text(row.to_dict(), indent=None) + "\n" for row in rows)

        return await self.stream(sink, since=since, plate=plate)

    async def export_file(
        self,
        path: Path,
        *,
        fmt: FinesFormat,
        since: datetime | None = None,
        plate: str | None = None,
    ) -> FinesSummary:
        """Like ``export``, into ``path``, which appears only once complete: a failed run
        never leaves a truncated list of debtors behind."""
        with atomic_output(path) as out:
            return await self.export(out, fmt=fmt, since=since, plate=plate)

    async def report(self, since: datetime | None = None) -> FinesReport:
        """Confirmed cases and fines per violation type (biggest total first) and per UTC
        day of decision, since ``since`` (default: the last 30 days)."""
        since = since if since is not None else self.now() - DEFAULT_REPORT_WINDOW
        async with self.uow_factory() as uow:
            violations = await uow.fines.by_violation(since)
            days = await uow.fines.by_day(since)
        by_violation = [_violation_totals(row) for row in violations]
        by_violation.sort(key=lambda r: (-r["total_minor"], -r["cases"], r["violation"] or ""))
        by_day = [
            {
                "day": row["day"],
                "cases": int(row["cases"]),
                "priced": int(row["priced"]),
                "total": format_amount(int(row["fine_minor"])),
                "total_minor": int(row["fine_minor"]),
            }
            for row in days
        ]
        return FinesReport(since, by_violation, by_day)


def _violation_totals(row: dict[str, Any]) -> dict[str, Any]:
    """``fine`` is the catalog's today; ``total`` sums the fines frozen at decision."""
    fine = row["fine_minor"]
    cases, priced, total = int(row["cases"]), int(row["priced"]), int(row["total_minor"])
    return {
        "violation_id": str(row["violation_id"]),
        "violation": row["violation"],
        "fine": None if fine is None else format_amount(int(fine)),
        "cases": cases,
        "unpriced": cases - priced,
        "total": format_amount(total),
        "total_minor": total,
    }

"""The one importer of the managers' spreadsheets: cameras, the violation catalog, owners.

An import is an upsert keyed by id or plate, in one transaction: every row is checked,
bad rows are all reported with their line (CSV) or row (XLSX) numbers and nothing is
written; rows equal to what is stored are left alone, so re-importing a file is a no-op;
rows not in the file are kept. Rows are read, checked and written a chunk at a time, so a
file of a million owners needs memory for its keys, not for its rows. What differs
between the tables is an ``ImportTable``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lizardctl.core.db.models import utcnow
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import UsageError
from lizardctl.core.files import SHEET_CSV_BYTES
from lizardctl.core.spreadsheets import SheetRow, open_sheet

IMPORT_CHUNK = 1000
MAX_LISTED = 50
"""Bad rows and updates listed in full up to this many; the counts are always exact."""

RowRule = Callable[[dict[str, Any], Any], str | None]
"""What is wrong with a checked row given the stored one (None if new), or None."""


class BadRow(ValueError):
    """One row's problems as ``column: message``; the importer adds where the row is."""


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
class ImportTable:
    """What differs between importing one table and another."""

    name: str
    columns: tuple[str, ...]
    required: frozenset[str]
    key: str
    parse: Callable[[dict[str, str]], BaseModel]
    """A row's text as the table's model, or ``BadRow``."""
    stored: Callable[[UnitOfWork, list[Any]], Awaitable[dict[Any, Any]]]
    upsert: Callable[[UnitOfWork, Sequence[dict[str, Any]]], Awaitable[None]]
    describe: Callable[[Any, dict[str, Any]], str | None]
    """The change from a stored row to a new one, or None when they are equal."""
    rule: Callable[[UnitOfWork], Awaitable[RowRule]] | None = None
    """Checks against the database (a known camera type, one that does not change),
    built once per import in its transaction."""
    after: Callable[[UnitOfWork], Awaitable[int]] | None = None
    """Run in the import's transaction once every row is written; its count is ``priced``."""
    stamps: tuple[str, ...] = ("created_at", "updated_at")
    """Columns set to the import's time (``created_at`` only lands on new rows)."""
    csv_bytes: int = SHEET_CSV_BYTES


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


async def import_table(uow_factory: UowFactory, path: Path, table: ImportTable) -> ImportReport:
    """Check every row of ``path`` and upsert the new and changed ones in one transaction;
    any bad row, and the transaction is rolled back with every bad row reported."""
    tally = _Tally()
    seen: dict[Any, str] = {}
    now = utcnow()
    with open_sheet(path, table.columns, table.required, csv_bytes=table.csv_bytes) as rows:
        async with uow_factory() as uow:
            rule = await table.rule(uow) if table.rule is not None else None
            # Reading runs in a thread: parsing a big sheet must not block the loop.
            while chunk := await asyncio.to_thread(_take, rows, IMPORT_CHUNK):
                parsed = _parse_chunk(chunk, table, seen)
                keys = [item[table.key] for _, item in parsed if isinstance(item, dict)]
                stored = await table.stored(uow, keys)
                good = _check_chunk(parsed, table, stored, rule, tally)
                if tally.bad:
                    continue  # keep checking to report every bad row, but write nothing
                await _write_chunk(uow, table, good, stored, tally, now)
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


def _parse_chunk(
    chunk: list[SheetRow], table: ImportTable, seen: dict[Any, str]
) -> list[tuple[str, dict[str, Any] | str]]:
    """Each row's place with its checked values, or with what is wrong with it."""
    parsed: list[tuple[str, dict[str, Any] | str]] = []
    for row in chunk:
        if row.problem is not None:
            parsed.append((row.where, row.problem))
            continue
        try:
            item = table.parse(row.values).model_dump()
        except BadRow as exc:
            parsed.append((row.where, str(exc)))
            continue
        key = item[table.key]
        if key in seen:
            parsed.append((row.where, f"{table.key}: {key} repeats {seen[key]}"))
            continue
        seen[key] = row.where
        parsed.append((row.where, item))
    return parsed


def _check_chunk(
    parsed: list[tuple[str, dict[str, Any] | str]],
    table: ImportTable,
    stored: dict[Any, Any],
    rule: RowRule | None,
    tally: _Tally,
) -> list[dict[str, Any]]:
    """The good rows; the others are counted bad, in the file's order."""
    good = []
    for where, item in parsed:
        problem = item if isinstance(item, str) else None
        if isinstance(item, dict) and rule is not None:
            problem = rule(item, stored.get(item[table.key]))
        if problem is not None:
            tally.error(f"{where}: {problem}")
        elif isinstance(item, dict):
            good.append(item)
    return good


async def _write_chunk(
    uow: UnitOfWork,
    table: ImportTable,
    items: list[dict[str, Any]],
    stored: dict[Any, Any],
    tally: _Tally,
    now: datetime,
) -> None:
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
        writes.append({**item, **dict.fromkeys(table.stamps, now)})
    await table.upsert(uow, writes)

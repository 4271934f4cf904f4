"""Reading the managers' spreadsheets: CSV always, XLSX when the ``xlsx`` extra is installed.

Both formats come out the same: a checked header, then one row at a time as a dict of
stripped text, labelled with the place a person would look (``line 7`` of the CSV file,
``row 7`` of the sheet), so import errors point at what to fix. Rows are read lazily:
a million owners cost no more memory here than ten.
"""

from __future__ import annotations

import csv
import errno
import itertools
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO

from lizardctl.core.errors import EnvironmentFailure, UsageError

XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
XLSX_HINT = "pip install 'lizardctl[xlsx]'"


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One data row; ``problem`` is set when the row's shape is wrong (too many fields)."""

    where: str
    values: dict[str, str]
    problem: str | None = None


def xlsx_available() -> bool:
    try:
        import openpyxl  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def open_sheet(
    path: Path, columns: Sequence[str], required: Collection[str]
) -> Iterator[Iterator[SheetRow]]:
    """Open a CSV or XLSX file (by suffix) and yield its data rows after checking the header.

    Column names are matched case-insensitively; missing required or unknown columns are
    one usage error naming them all. Missing optional columns read as empty text.
    """
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise UsageError(f"{path}: the old .xls format is not read; save the sheet as .xlsx or CSV")
    if suffix in XLSX_SUFFIXES:
        with _xlsx_rows(path, columns, required) as rows:
            yield rows
        return
    with _open_text(path) as handle:
        yield _csv_rows(path, handle, columns, required)


def _os_error(path: Path, exc: OSError) -> Exception:
    """Missing is the user's typo (exit 2); unreadable is the environment's fault (exit 3)."""
    if isinstance(exc, FileNotFoundError):
        return UsageError(f"{path}: no such file")
    if isinstance(exc, IsADirectoryError):
        return UsageError(f"{path}: is a directory, expected a file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return EnvironmentFailure(f"{path}: permission denied")
    return EnvironmentFailure(f"{path}: cannot read: {exc.strerror or exc}")


@contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise _os_error(path, exc) from exc
    with handle:
        yield handle


def _header(
    path: Path, cells: Sequence[str], columns: Sequence[str], required: Collection[str]
) -> list[str]:
    """The header as lower-case names ("" for blank cells), or a usage error naming every
    missing, unknown or repeated column."""
    names = [cell.strip().lower() for cell in cells]
    given = [name for name in names if name]
    problems = []
    missing = sorted(set(required) - set(given))
    unknown = sorted(set(given) - set(columns))
    repeated = sorted({name for name in given if given.count(name) > 1})
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise UsageError(
            f"{path}: bad header: {'; '.join(problems)} (expected {','.join(columns)})"
        )
    return names


def _row(where: str, header: list[str], cells: Sequence[str], columns: Sequence[str]) -> SheetRow:
    values = dict.fromkeys(columns, "")
    problem = None
    for index, cell in enumerate(cells):
        name = header[index] if index < len(header) else ""
        if name:
            values[name] = cell.strip()
        elif cell.strip():
            problem = "more fields than columns"
    return SheetRow(where, values, problem)


def _csv_rows(
    path: Path, handle: TextIO, columns: Sequence[str], required: Collection[str]
) -> Iterator[SheetRow]:
    """Comma-separated, or semicolon-separated when the header has semicolons and no
    commas (what spreadsheet programs in many locales write)."""
    try:
        first = handle.readline()
        if not first.strip():
            raise UsageError(f"{path}: empty file, expected a header: {','.join(columns)}")
        delimiter = ";" if ";" in first and "," not in first else ","
        reader = csv.reader(itertools.chain([first], handle), delimiter=delimiter)
        header = _header(path, next(reader), columns, required)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            yield _row(f"line {reader.line_num}", header, record, columns)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (save the sheet as CSV UTF-8)") from exc
    except csv.Error as exc:
        raise UsageError(f"{path}: not a readable CSV file: {exc}") from exc
    except OSError as exc:
        raise _os_error(path, exc) from exc


def _cell_text(value: Any) -> str:
    """A cell as the text a person sees; integral floats lose their ``.0`` (phones, fines)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


@contextmanager
def _xlsx_rows(
    path: Path, columns: Sequence[str], required: Collection[str]
) -> Iterator[Iterator[SheetRow]]:
    """The first worksheet, read in openpyxl's read-only (streaming) mode, with the cached
    values of formulas rather than the formulas. The header is the first non-blank row."""
    try:
        import openpyxl  # type: ignore[import-untyped, unused-ignore]
        from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:
        raise UsageError(
            f"{path}: reading XLSX needs openpyxl: {XLSX_HINT}, or save the sheet as CSV"
        ) from exc
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise _os_error(path, exc) from exc
    except (InvalidFileException, KeyError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable XLSX workbook ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and openpyxl's parse errors alike
        raise UsageError(f"{path}: not a readable XLSX workbook ({type(exc).__name__})") from exc
    try:
        yield _sheet_rows(path, workbook, columns, required)
    finally:
        workbook.close()


def _sheet_rows(
    path: Path, workbook: Any, columns: Sequence[str], required: Collection[str]
) -> Iterator[SheetRow]:
    if not workbook.worksheets:
        raise UsageError(f"{path}: the workbook has no worksheet")
    header: list[str] | None = None
    for number, raw in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1):
        cells = [_cell_text(value) for value in raw]
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _header(path, cells, columns, required)
            continue
        yield _row(f"row {number}", header, cells, columns)
    if header is None:
        raise UsageError(f"{path}: empty sheet, expected a header: {','.join(columns)}")

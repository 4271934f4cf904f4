"""Reading the managers' spreadsheets: CSV always, XLSX when the ``xlsx`` extra is installed.

Both formats come out the same: a checked header, then one row at a time as a dict of
stripped text, labelled with the place a person would look (``line 7`` of the CSV file,
``row 7`` of the sheet), so import errors point at what to fix. Rows are read lazily:
a million owners cost no more memory here than ten.

The files come from other people and are hostile until checked. Only regular files
are read, and no more than their size limit (``lizardctl.core.files``). A field holding a
control character (NUL, ESC, DEL, C1) or more than ``CELL_CHARS`` characters makes
its row bad, so such text never reaches the database or a terminal. An XLSX is a zip
of XML that openpyxl partly loads whole: its entries are checked against ``XlsxLimits``
(sizes from the central directory, compression ratio, XML elements and text lengths,
streamed through expat) before openpyxl reads a byte, and rows are capped while
streaming, so a zip bomb is refused in seconds and in bounded memory.
"""

from __future__ import annotations

import csv
import itertools
import re
import zipfile
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, TextIO
from xml.parsers import expat

from lizardctl.core.errors import LizardError, UsageError
from lizardctl.core.files import (
    SHEET_CSV_BYTES,
    open_user_file,
    open_user_text,
    user_file_error,
)

XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
XLSX_HINT = "pip install 'lizardctl[xlsx]'"
CELL_CHARS = 1_000
"""The longest field an import takes; the longest real one (an e-mail address) is 254."""
_MIB = 1 << 20
_HEADER_CHARS = 1 << 16
"""A header names at most a few columns; a longer first line would be read whole."""
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 but tab and line breaks (a cell may hold several lines, as XML text may), DEL,
C1, and lone surrogates (XLSX's ``_xD800_`` escape). NUL ends PostgreSQL text; ESC and
CSI drive terminals; none of them has a place in a name, plate or contact."""
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_CLEARED = frozenset({f"{_MAIN_NS}}}row", f"{_MAIN_NS}}}si"})
"""Sheet rows and shared strings: openpyxl frees each one's content once it is read."""


@dataclass(frozen=True, slots=True)
class XlsxLimits:
    """What an XLSX may hold; over any of these it is refused (exit 2) naming the limit.

    The defaults admit ~900,000 owners as openpyxl writes them (100,000 unpack to 27 MB);
    CSV, which streams, has none of them. Checked before openpyxl opens the file:
    ``entries``, ``unpacked_bytes``, ``ratio`` (for entries over ``ratio_from_bytes``:
    Apache POI's zip-bomb rule), ``units`` (rows and shared strings, per XML entry:
    openpyxl keeps an empty shell of each), ``elements`` and ``kept_chars`` (the other
    elements and their text and attributes, which it keeps whole), ``unit_elements``
    (inside one row or shared string) and ``text_chars`` (one text or one element's
    attributes: Excel's own cell limit). Checked while streaming rows: ``sheet_rows``
    (Excel's maximum), ``data_rows``, ``blank_run`` (blank rows in a row), ``columns``.
    """

    entries: int = 1_000
    unpacked_bytes: int = 256 * _MIB
    ratio: int = 100
    ratio_from_bytes: int = _MIB
    units: int = 2_000_000
    elements: int = 500_000
    kept_chars: int = 16 * _MIB
    unit_elements: int = 2_048
    text_chars: int = 32_767
    sheet_rows: int = 1_048_576
    data_rows: int = 1_000_000
    blank_run: int = 10_000
    columns: int = 100


XLSX_LIMITS = XlsxLimits()


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
    path: Path,
    columns: Sequence[str],
    required: Collection[str],
    limits: XlsxLimits = XLSX_LIMITS,
    csv_bytes: int = SHEET_CSV_BYTES,
) -> Iterator[Iterator[SheetRow]]:
    """Open a CSV or XLSX file (by suffix) and yield its data rows after checking the header.

    Column names are matched case-insensitively; missing required or unknown columns are
    one usage error naming them all. Missing optional columns read as empty text. A CSV
    over ``csv_bytes`` is refused.
    """
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise UsageError(f"{path}: the old .xls format is not read; save the sheet as .xlsx or CSV")
    if suffix in XLSX_SUFFIXES:
        with _xlsx_rows(path, columns, required, limits) as rows:
            yield rows
        return
    with open_user_text(path, csv_bytes) as handle:
        yield _csv_rows(path, handle, columns, required)


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


def field_problems(values: dict[str, str]) -> list[str]:
    """``column: problem`` for each field that may not be imported as it is: a control
    character, which would reach the database (PostgreSQL refuses NUL) and terminals,
    or more than ``CELL_CHARS`` characters. The value itself is not repeated."""
    problems = []
    for name, value in values.items():
        control = _CONTROL.search(value)
        if control is not None:
            problems.append(f"{name}: control character U+{ord(control.group()):04X} not allowed")
        elif len(value) > CELL_CHARS:
            problems.append(f"{name}: longer than {CELL_CHARS:,} characters (the limit)")
    return problems


def _row(where: str, header: list[str], cells: Sequence[str], columns: Sequence[str]) -> SheetRow:
    values = dict.fromkeys(columns, "")
    problems = []
    for index, cell in enumerate(cells):
        name = header[index] if index < len(header) else ""
        if name:
            values[name] = cell.strip()
        elif cell.strip() and not problems:
            problems.append("more fields than columns")
    problems.extend(field_problems(values))
    return SheetRow(where, values, "; ".join(problems) or None)


def _csv_rows(
    path: Path, handle: TextIO, columns: Sequence[str], required: Collection[str]
) -> Iterator[SheetRow]:
    """Comma-separated, or semicolon-separated when the header has semicolons and no
    commas (what spreadsheet programs in many locales write)."""
    try:
        first = handle.readline(_HEADER_CHARS + 1)
        if len(first) > _HEADER_CHARS:
            raise UsageError(f"{path}: the header line is longer than {_HEADER_CHARS:,} characters")
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
        raise user_file_error(path, exc) from exc


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
    path: Path, columns: Sequence[str], required: Collection[str], limits: XlsxLimits
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
    # One open file for the check and the read: what was checked is read. A zip is never
    # larger than what it unpacks to, so ``unpacked_bytes`` bounds the file too.
    with open_user_file(path, limits.unpacked_bytes) as handle:
        check_xlsx(path, limits, handle)
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except OSError as exc:
            raise user_file_error(path, exc) from exc
        except (InvalidFileException, KeyError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable XLSX workbook ({exc})") from exc
        except Exception as exc:  # zipfile.BadZipFile and openpyxl's parse errors alike
            raise UsageError(
                f"{path}: not a readable XLSX workbook ({type(exc).__name__})"
            ) from exc
        try:
            yield _sheet_rows(path, workbook, columns, required, limits)
        finally:
            workbook.close()


def _refused(path: Path, what: str) -> UsageError:
    return UsageError(f"{path}: refused: {what} (XLSX limit; CSV has none)")


def check_xlsx(
    path: Path, limits: XlsxLimits = XLSX_LIMITS, source: IO[bytes] | None = None
) -> None:
    """Refuse a workbook over ``limits`` before openpyxl reads it: the sizes the central
    directory declares (zipfile never unpacks more than declared: the CRC check fails),
    then every XML entry streamed through expat, in bounded memory. ``source`` is the
    open file, when the caller reads it next; ``path`` names it in messages."""
    if source is None:
        with open_user_file(path, limits.unpacked_bytes) as handle:
            check_xlsx(path, limits, handle)
        return
    try:
        archive = zipfile.ZipFile(source)
    except OSError as exc:
        raise user_file_error(path, exc) from exc
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UsageError(f"{path}: not a readable XLSX workbook ({exc})") from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > limits.entries:
            raise _refused(
                path, f"{len(entries):,} files in the archive, more than {limits.entries:,}"
            )
        total = 0
        for entry in entries:
            total += entry.file_size
            if total > limits.unpacked_bytes:
                raise _refused(path, f"unpacks to more than {limits.unpacked_bytes // _MIB:,} MiB")
            ratio = entry.file_size / max(entry.compress_size, 1)
            if entry.file_size > limits.ratio_from_bytes and ratio > limits.ratio:
                raise _refused(
                    path,
                    f"{entry.filename!r} is compressed {ratio:,.0f}:1, more than "
                    f"{limits.ratio}:1 (a zip bomb)",
                )
        for entry in entries:
            try:
                with archive.open(entry) as stream:
                    _check_xml(path, entry.filename, stream, limits)
            except LizardError:
                raise
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                raise UsageError(f"{path}: not a readable XLSX workbook ({exc})") from exc


def _check_xml(path: Path, name: str, stream: IO[bytes], limits: XlsxLimits) -> None:
    """Stream one entry through expat if it is XML (images and the like are not)."""
    first = stream.read(1 << 16)
    if not first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and not first.startswith(
        (b"\xff\xfe", b"\xfe\xff")
    ):
        return
    guard = _XmlGuard(path, name, limits)
    try:
        guard.parser.Parse(first, False)
        while chunk := stream.read(1 << 20):
            guard.parser.Parse(chunk, False)
        guard.parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise UsageError(f"{path}: not a readable XLSX workbook ({name!r}: {exc})") from exc


class _XmlGuard:
    """Counts, in one XML entry, what openpyxl would hold in memory at once: the rows
    and shared strings whose content it frees as it goes (an empty shell of each stays),
    the elements inside one of them, the other elements (kept whole), and the length of
    each text and of each element's attributes."""

    def __init__(self, path: Path, name: str, limits: XlsxLimits) -> None:
        self.path, self.name, self.limits = path, name, limits
        self.depth = self.units = self.elements = self.unit_elements = self.text = 0
        self.kept = 0
        self.unit_depth: int | None = None
        self.parser = expat.ParserCreate(namespace_separator="}")
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text
        self.parser.StartDoctypeDeclHandler = self._doctype

    def _refuse(self, what: str) -> UsageError:
        return _refused(self.path, f"{self.name!r} has {what}")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        self.text = 0
        length = sum(len(key) + len(value) for key, value in attributes.items())
        if length > self.limits.text_chars:
            raise self._refuse(f"attributes longer than {self.limits.text_chars:,} characters")
        if self.unit_depth is not None:
            self.unit_elements += 1
            if self.unit_elements > self.limits.unit_elements:
                raise self._refuse(
                    f"a row or string of more than {self.limits.unit_elements:,} XML elements"
                )
            return
        if tag in _CLEARED:
            self.units += 1
            if self.units > self.limits.units:
                raise self._refuse(f"more than {self.limits.units:,} rows or shared strings")
            self.unit_depth, self.unit_elements = self.depth, 0
            return
        self.elements += 1
        if self.elements > self.limits.elements:
            raise self._refuse(
                f"more than {self.limits.elements:,} XML elements outside rows and strings"
            )
        self._keep(length)

    def _end(self, _tag: str) -> None:
        if self.unit_depth == self.depth:
            self.unit_depth = None
        self.depth -= 1
        self.text = 0

    def _text(self, data: str) -> None:
        self.text += len(data)
        if self.text > self.limits.text_chars:
            raise self._refuse(f"a text longer than {self.limits.text_chars:,} characters")
        if self.unit_depth is None:
            self._keep(len(data))

    def _keep(self, chars: int) -> None:
        self.kept += chars
        if self.kept > self.limits.kept_chars:
            raise self._refuse(
                f"more than {self.limits.kept_chars:,} characters outside rows and strings"
            )

    def _doctype(self, *_args: object) -> None:
        raise self._refuse("a DOCTYPE, which no XLSX has (entity expansion)")


def _sheet_rows(
    path: Path, workbook: Any, columns: Sequence[str], required: Collection[str], limits: XlsxLimits
) -> Iterator[SheetRow]:
    if not workbook.worksheets:
        raise UsageError(f"{path}: the workbook has no worksheet")
    sheet = workbook.worksheets[0]
    # The sheet's <dimension> is the writer's claim, not a fact: rows would be padded
    # to it (A1:XFD1048576 makes every row 16,384 cells), so rows end at their last cell.
    sheet.reset_dimensions()
    header: list[str] | None = None
    data = blank = 0
    for number, raw in enumerate(_values(path, sheet), start=1):
        if number > limits.sheet_rows:
            raise _refused(path, f"more than {limits.sheet_rows:,} rows")
        if len(raw) > limits.columns:
            raise _refused(path, f"row {number:,} has a cell beyond column {limits.columns}")
        cells = [_cell_text(value) for value in raw]
        if not any(cell.strip() for cell in cells):
            blank += 1
            if blank > limits.blank_run:
                raise _refused(
                    path, f"more than {limits.blank_run:,} blank rows in a row at row {number:,}"
                )
            continue
        blank = 0
        if header is None:
            header = _header(path, cells, columns, required)
            continue
        data += 1
        if data > limits.data_rows:
            raise _refused(path, f"more than {limits.data_rows:,} data rows")
        yield _row(f"row {number}", header, cells, columns)
    if header is None:
        raise UsageError(f"{path}: empty sheet, expected a header: {','.join(columns)}")


def _values(path: Path, sheet: Any) -> Iterator[tuple[Any, ...]]:
    """The sheet's rows of values; a sheet openpyxl cannot parse is the file's fault."""
    rows = sheet.iter_rows(values_only=True)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # a parse error, a shared string index out of range...
            raise UsageError(
                f"{path}: not a readable XLSX workbook ({type(exc).__name__} in the sheet)"
            ) from exc
        yield row

"""What lizardctl writes for people and programs, made safe against hostile text.

Plates, values, names and file names come from field devices and other people's
spreadsheets. Three renderers keep them from acting on whoever reads the output:

- ``printable``: control characters (C0, DEL, C1), Unicode line separators and bidi
  overrides, and lone surrogates (bytes of a file name that are not UTF-8, decoded with
  ``surrogateescape``) become visible escapes such as ``\\x1b``, ``\\n``, ``\\xff`` or
  ``\\u202e``, so nothing printed can move the cursor, recolour the terminal or forge a line.
- ``json_text``: always valid JSON (RFC 8259 and I-JSON): such characters become ``\\u``
  escapes (the data is unchanged), and non-UTF-8 bytes become the text ``\\xff`` (as in
  tables), because a lone surrogate escape is refused by strict parsers and by PostgreSQL.
- ``SpreadsheetWriter``: CSV with formulas neutralised (OWASP's CSV-injection rule).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TextIO

_SEPARATORS_AND_BIDI = "\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
_UNPRINTABLE = re.compile(f"[\x00-\x1f\x7f-\x9f{_SEPARATORS_AND_BIDI}{_SURROGATES}]")
_UNPRINTABLE_BUT_LINES = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_SEPARATORS_AND_BIDI}{_SURROGATES}]"
)
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_SEPARATORS_AND_BIDI}{_SURROGATES}]")
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
"""``surrogateescape`` decodes an undecodable byte B as the lone surrogate U+DC00 + B."""


def _visible(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object, *, lines: bool = False) -> str:
    """``value`` as text safe for a terminal or a log; ``lines`` keeps newlines and tabs
    (for multi-line output such as a schema file or indented JSON)."""
    text = value if isinstance(value, str) else str(value)
    pattern = _UNPRINTABLE_BUT_LINES if lines else _UNPRINTABLE
    if pattern.search(text) is None:
        return text
    return pattern.sub(lambda match: _visible(match.group()), text)


QUOTED_CHARS = 80


def quoted(value: str, limit: int = QUOTED_CHARS) -> str:
    """A value typed by the user, quoted back in an error: at most ``limit`` characters of
    it, since a hostile one may be of any length."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _ESCAPED_BYTES:
        return f"\\\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\\\u{code:04x}"
    return f"\\u{code:04x}"


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON that every parser accepts and no terminal acts on.

    ``json.dumps`` already escapes C0 controls; everything it writes outside strings is
    ASCII, so whatever the pattern finds lies inside a string and can be escaped there."""
    text = json.dumps(data, indent=indent, default=str, ensure_ascii=False)
    return _JSON_UNSAFE.sub(_json_escape, text)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A CSV cell a spreadsheet program shows as text, never runs as a formula.

    Text starting with ``= + - @``, tab or carriage return gets a leading ``'`` (OWASP).
    Numbers (``int``, ``float``, ``Decimal``) are lizardctl's own values, not text from a
    dump, and a negative one is only a number to a spreadsheet: they are left alone, so
    numeric columns stay numeric. Everything else, even text that looks like a number
    (``-5km/h`` from a camera), is treated as the text it is."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class SpreadsheetWriter:
    """``csv.writer`` for every CSV lizardctl writes: each cell through ``spreadsheet_cell``."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([spreadsheet_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        self._writer.writerows([spreadsheet_cell(cell) for cell in row] for row in rows)

"""XLSX limits against hand-built hostile workbooks (issue 11, item 8): pure reading.

``build_xlsx`` writes a workbook part by part, so a test can make any part as large as
it likes: a repeated piece is compressed once and its compressed bytes repeated (each
ends with a full flush, so the copies are independent), which builds a 1 GB zip bomb in
a fraction of a second.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from lizardctl.core.errors import UsageError
from lizardctl.core.spreadsheets import XlsxLimits, check_xlsx, open_sheet, xlsx_available

pytestmark = pytest.mark.skipif(not xlsx_available(), reason="openpyxl not installed")

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
COLUMNS = ("id", "name", "fine")

Piece = bytes | tuple[bytes, int]
"""Bytes, or (bytes, times) for bytes repeated that many times."""


def _deflate(pieces: Sequence[Piece]) -> tuple[bytes, int, int]:
    """Raw deflate data, CRC-32 and unpacked size of the pieces in order."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out, crc, size = [], 0, 0
    for piece in pieces:
        data, times = piece if isinstance(piece, tuple) else (piece, 1)
        block = compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)
        out.append(block * times)
        for _ in range(times):
            crc = zlib.crc32(data, crc)
        size += len(data) * times
    out.append(compressor.flush())
    return b"".join(out), crc, size


def write_zip(path: Path, entries: dict[str, Sequence[Piece]]) -> Path:
    """A zip of deflated entries, written by hand: zipfile cannot take pre-compressed data."""
    local, central = bytearray(), bytearray()
    for name, pieces in entries.items():
        data, crc, size = _deflate(pieces)
        encoded = name.encode()
        fields = (20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded))
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, len(local))
        central += encoded
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields, 0) + encoded + data
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0
    )
    path.write_bytes(bytes(local + central + end))
    return path


def _cells(values: Sequence[str]) -> str:
    return "".join(f'<c t="inlineStr"><is><t>{value}</t></is></c>' for value in values)


def build_xlsx(
    path: Path,
    sheet: Sequence[Piece] | None = None,
    strings: Sequence[Piece] | None = None,
    *,
    rows: Sequence[Sequence[str]] = (COLUMNS, ("x", "y", "1")),
) -> Path:
    """A one-sheet workbook; ``sheet`` (else ``rows`` as inline strings) and ``strings``
    (a shared-strings part) are the raw XML pieces of those parts."""
    if sheet is None:
        body = "".join(f"<row>{_cells(row)}</row>" for row in rows)
        sheet = [f'<worksheet xmlns="{MAIN}"><sheetData>{body}</sheetData></worksheet>'.encode()]
    overrides = [
        ("/xl/workbook.xml", f"{_CT}.sheet.main+xml"),
        ("/xl/worksheets/sheet1.xml", f"{_CT}.worksheet+xml"),
    ]
    relations = [("worksheet", "worksheets/sheet1.xml")]
    if strings is not None:
        overrides.append(("/xl/sharedStrings.xml", f"{_CT}.sharedStrings+xml"))
        relations.append(("sharedStrings", "sharedStrings.xml"))
    types = "".join(f'<Override PartName="{n}" ContentType="{t}"/>' for n, t in overrides)
    links = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL}/{kind}" Target="{target}"/>'
        for i, (kind, target) in enumerate(relations, start=1)
    )
    entries: dict[str, Sequence[Piece]] = {
        "[Content_Types].xml": [
            f'<Types xmlns="{_PKG}/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            f'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f"{types}</Types>".encode()
        ],
        "_rels/.rels": [
            f'<Relationships xmlns="{_PKG}/relationships"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'.encode()
        ],
        "xl/workbook.xml": [
            f'<workbook xmlns="{MAIN}" xmlns:r="{_REL}"><sheets><sheet name="S" sheetId="1" '
            f'r:id="rId1"/></sheets></workbook>'.encode()
        ],
        "xl/_rels/workbook.xml.rels": [
            f'<Relationships xmlns="{_PKG}/relationships">{links}</Relationships>'.encode()
        ],
        "xl/worksheets/sheet1.xml": sheet,
    }
    if strings is not None:
        entries["xl/sharedStrings.xml"] = strings
    return write_zip(path, entries)


def read_all(path: Path, limits: XlsxLimits | None = None) -> list[dict[str, str]]:
    extra = {} if limits is None else {"limits": limits}
    with open_sheet(path, COLUMNS, set(COLUMNS), **extra) as rows:
        return [row.values for row in rows]


def _refused(path: Path, match: str, limits: XlsxLimits | None = None) -> float:
    """Seconds it took to refuse ``path`` with a message matching ``match``."""
    started = time.monotonic()
    with pytest.raises(UsageError, match=match):
        read_all(path, limits)
    return time.monotonic() - started


def _rows_xml(numbers: Iterator[int]) -> bytes:
    return "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>x</t></is></c></row>' for n in numbers
    ).encode()


def test_a_hand_built_workbook_reads(tmp_path: Path) -> None:
    assert read_all(build_xlsx(tmp_path / "ok.xlsx")) == [{"id": "x", "name": "y", "fine": "1"}]
    strings = [f'<sst xmlns="{MAIN}"><si><t>id</t></si><si><t>name</t></si></sst>'.encode()]
    shared = '<c t="s"><v>0</v></c><c t="s"><v>1</v></c>'
    header = f'<row>{shared}<c t="inlineStr"><is><t>fine</t></is></c></row>'
    sheet = [
        f'<worksheet xmlns="{MAIN}"><sheetData>{header}{header}</sheetData></worksheet>'.encode()
    ]
    assert read_all(build_xlsx(tmp_path / "s.xlsx", sheet, strings)) == [
        {"id": "id", "name": "name", "fine": "fine"}
    ]


def test_shared_string_bomb_is_refused_from_the_central_directory(tmp_path: Path) -> None:
    """The reproduction: ~1 MB on disk, one shared string of 1 GiB."""
    strings = [
        f'<sst xmlns="{MAIN}"><si><t>'.encode(),
        (b"A" * (1 << 20), 1024),
        b"</t></si></sst>",
    ]
    bomb = build_xlsx(tmp_path / "bomb.xlsx", strings=strings)
    assert bomb.stat().st_size < 2 << 20
    assert _refused(bomb, r"refused: unpacks to more than 256 MiB \(XLSX limit; CSV has none\)") < 1


def test_compression_ratio_over_100_is_refused(tmp_path: Path) -> None:
    strings = [f'<sst xmlns="{MAIN}"><si><t>'.encode(), (b"A" * (1 << 20), 8), b"</t></si></sst>"]
    bomb = build_xlsx(tmp_path / "bomb.xlsx", strings=strings)
    assert _refused(bomb, r"'xl/sharedStrings.xml' is compressed [\d,]+:1, more than 100:1") < 1


def empty_rows_xlsx(path: Path) -> Path:
    """The reproduction: a small sheet of 20 M empty rows (it ran for minutes at 2 GB)."""
    sheet = [
        f'<worksheet xmlns="{MAIN}"><sheetData>'.encode(),
        (b"<row/>" * 100_000, 200),
        b"</sheetData></worksheet>",
    ]
    return build_xlsx(path, sheet)


def test_twenty_million_empty_rows_are_refused_before_reading(tmp_path: Path) -> None:
    bomb = empty_rows_xlsx(tmp_path / "rows.xlsx")
    assert bomb.stat().st_size < 1 << 20
    assert _refused(bomb, r"refused: .*sheet1.xml' is compressed") < 1


def test_millions_of_empty_rows_within_the_ratio_are_refused_while_streaming(
    tmp_path: Path,
) -> None:
    """One row at r=5,000,000 makes openpyxl yield millions of empty rows from a few bytes."""
    sheet = [
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">{_cells(COLUMNS)}</row>'
        f'<row r="5000000">{_cells(("x", "y", "1"))}</row></sheetData></worksheet>'.encode()
    ]
    elapsed = _refused(
        build_xlsx(tmp_path / "gap.xlsx", sheet),
        r"refused: more than 10,000 blank rows in a row at row 10,002",
    )
    assert elapsed < 2


def test_row_caps_count_blank_and_data_rows(tmp_path: Path) -> None:
    rows = [COLUMNS, *[(f"id{n}", "n", "1") for n in range(5)]]
    path = build_xlsx(tmp_path / "five.xlsx", rows=rows)
    assert len(read_all(path, XlsxLimits(data_rows=5))) == 5
    _refused(path, "more than 4 data rows", XlsxLimits(data_rows=4))
    _refused(path, "more than 5 rows", XlsxLimits(sheet_rows=5))
    sparse = [
        f'<worksheet xmlns="{MAIN}"><sheetData><row r="1">{_cells(COLUMNS)}</row>'.encode(),
        _rows_xml(iter([4, 8])),
        b"</sheetData></worksheet>",
    ]
    gappy = build_xlsx(tmp_path / "gappy.xlsx", sparse)
    _refused(gappy, "more than 2 blank rows in a row at row 7", XlsxLimits(blank_run=2))
    assert len(read_all(gappy, XlsxLimits(blank_run=3))) == 2


def test_a_claimed_dimension_does_not_pad_rows_and_far_cells_are_refused(tmp_path: Path) -> None:
    rows = f"<row>{_cells(COLUMNS)}</row><row>{_cells(('x', 'y', '1'))}</row>"
    claimed = f'<worksheet xmlns="{MAIN}"><dimension ref="A1:XFD1048576"/><sheetData>{rows}'
    path = build_xlsx(tmp_path / "dim.xlsx", [f"{claimed}</sheetData></worksheet>".encode()])
    started = time.monotonic()
    assert read_all(path) == [{"id": "x", "name": "y", "fine": "1"}]
    assert time.monotonic() - started < 2
    far = f'{rows}<row><c r="XFD3" t="inlineStr"><is><t>z</t></is></c></row>'
    wide = [f'<worksheet xmlns="{MAIN}"><sheetData>{far}</sheetData></worksheet>'.encode()]
    _refused(build_xlsx(tmp_path / "wide.xlsx", wide), "row 3 has a cell beyond column 100")


@pytest.mark.parametrize(
    ("inside", "match"),
    [
        ("<c/>" * 3000, "a row or string of more than 2,048 XML elements"),
        (f'<c t="inlineStr"><is><t>{"n" * 40_000}</t></is></c>', "a text longer than 32,767"),
        (f'<c t="inlineStr" x="{"n" * 40_000}"/>', "attributes longer than 32,767"),
    ],
)
def test_one_huge_row_or_text_is_refused_before_openpyxl_holds_it(
    tmp_path: Path, inside: str, match: str
) -> None:
    sheet = [
        f'<worksheet xmlns="{MAIN}"><sheetData><row>{inside}</row></sheetData></worksheet>'.encode()
    ]
    _refused(build_xlsx(tmp_path / "row.xlsx", sheet), match)


def test_elements_outside_rows_are_capped_and_doctypes_refused(tmp_path: Path) -> None:
    junk = [f'<worksheet xmlns="{MAIN}"><sheetData/>'.encode(), (b"<junk/>", 50), b"</worksheet>"]
    path = build_xlsx(tmp_path / "junk.xlsx", junk)
    check_xlsx(path)
    with pytest.raises(UsageError, match="more than 40 XML elements outside rows and strings"):
        check_xlsx(path, XlsxLimits(elements=40))
    with pytest.raises(UsageError, match="more than 300 characters outside rows and strings"):
        check_xlsx(
            build_xlsx(tmp_path / "kept.xlsx", [junk[0], (b'<j a="12345"/>', 50), junk[2]]),
            XlsxLimits(kept_chars=300),
        )
    rows = build_xlsx(tmp_path / "rows.xlsx", rows=[COLUMNS, *[("x", "y", "1")] * 9])
    check_xlsx(rows, XlsxLimits(units=10, elements=6))
    with pytest.raises(UsageError, match="more than 9 rows or shared strings"):
        check_xlsx(rows, XlsxLimits(units=9))
    laughs = (
        b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">]>'
        + f'<worksheet xmlns="{MAIN}"><sheetData/></worksheet>'.encode()
    )
    _refused(build_xlsx(tmp_path / "dtd.xlsx", [laughs]), "a DOCTYPE")


def test_too_many_entries_and_broken_xml_are_usage_errors(tmp_path: Path) -> None:
    many = write_zip(tmp_path / "many.xlsx", {f"f{n}.xml": [b"<a/>"] for n in range(6)})
    with pytest.raises(UsageError, match="6 files in the archive, more than 5"):
        check_xlsx(many, XlsxLimits(entries=5))
    broken = build_xlsx(tmp_path / "broken.xlsx", [b"<worksheet><sheetData>"])
    _refused(broken, "not a readable XLSX workbook")


def test_control_characters_and_long_cells_make_rows_bad(tmp_path: Path) -> None:
    """XML cannot carry C0 controls but tab and line breaks; C1 (CSI) and DEL it can."""
    rows = [COLUMNS, ("a", "\x9b31mred\x7f", "1"), ("b", "n" * 1001, "2"), ("c", "two\nlines", "3")]
    path = build_xlsx(tmp_path / "c.xlsx", rows=rows)
    with open_sheet(path, COLUMNS, set(COLUMNS)) as found:
        problems = [(row.where, row.problem) for row in found]
    assert problems == [
        ("row 2", "name: control character U+009B not allowed"),
        ("row 3", "name: longer than 1,000 characters (the limit)"),
        ("row 4", None),
    ]

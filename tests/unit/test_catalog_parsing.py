"""Money, row checks and spreadsheet reading for the managers' tables: pure functions."""

from __future__ import annotations

import errno
import sys
import uuid
from pathlib import Path

import pytest

from lizardctl.core.errors import EnvironmentFailure, UsageError
from lizardctl.core.money import MAX_FINE_MINOR, format_amount, parse_amount
from lizardctl.core.services.catalog import (
    OWNER_COLUMNS,
    VIOLATION_COLUMNS,
    canonical_plate,
    parse_owner,
    parse_violation,
)
from lizardctl.core.services.imports import BadRow
from lizardctl.core.spreadsheets import SheetRow, open_sheet, xlsx_available

VID = "de163a57-fd92-47a6-9b78-82bb0d41be71"
needs_xlsx = pytest.mark.skipif(
    not xlsx_available(), reason="openpyxl not installed (pip install 'lizardctl[xlsx]')"
)


@pytest.mark.parametrize(
    ("text", "minor"),
    [("0", 0), ("500", 50000), ("1500.5", 150050), (" 1500.50 ", 150050), ("0.01", 1)],
)
def test_amounts_become_exact_minor_units(text: str, minor: int) -> None:
    assert parse_amount(text) == minor
    assert parse_amount(format_amount(minor)) == minor


@pytest.mark.parametrize("text", ["", "-5", "+5", "1,5", "1.234", "1e3", "12.", ".5", "NaN"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="at most 2 decimals"):
        parse_amount(text)


def test_amount_ceiling() -> None:
    with pytest.raises(ValueError, match="at most"):
        parse_amount(str(MAX_FINE_MINOR // 100 + 1))
    assert format_amount(123456789012345) == "1234567890123.45"


def test_violation_row() -> None:
    row = parse_violation({"id": VID, "name": " Speeding ", "fine": "1500.50"})
    assert (row.id, row.name, row.fine_minor) == (uuid.UUID(VID), "Speeding", 150050)


def test_violation_row_reports_every_problem_by_column() -> None:
    with pytest.raises(BadRow) as info:
        parse_violation({"id": "nope", "name": "", "fine": "12.345"})
    message = str(info.value)
    assert message.startswith("id: must be a UUID")
    assert "name: " in message
    assert "fine: must be an amount" in message


def test_owner_row_normalises_plate_and_contacts() -> None:
    owner = parse_owner(
        {
            "plate": " 1abc2377 ",
            "name": "Ann Smith",
            "phone": "+7 (916) 123-45-67",
            "email": "",
            "telegram": "ann_smith",
        }
    )
    assert owner.plate == "1ABC2377"
    assert (owner.phone, owner.email, owner.telegram) == ("+7 (916) 123-45-67", None, "@ann_smith")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"plate": "ABC123"}, "plate: not a canonical plate"),
        ({"plate": "1\u0410\u0412\u04212377"}, "plate: not a canonical plate"),  # Cyrillic
        ({"phone": "", "email": "", "telegram": ""}, "at least one contact is required"),
        ({"phone": "12"}, "phone: not a phone number"),
        ({"email": "ann@"}, "email: not an e-mail address"),
        ({"telegram": "@a"}, "telegram: not a Telegram username"),
        ({"name": ""}, "name: "),
    ],
)
def test_owner_row_problems(values: dict[str, str], message: str) -> None:
    row = {"plate": "1ABC2377", "name": "Ann", "phone": "", "email": "a@b.cd", "telegram": ""}
    with pytest.raises(BadRow, match=message):
        parse_owner({**row, **values})


def test_canonical_plate_accepts_three_digit_regions() -> None:
    assert canonical_plate("7phc52137") == "7PHC52137"


def _rows(path: Path, columns: tuple[str, ...], required: set[str]) -> list[SheetRow]:
    with open_sheet(path, columns, required) as rows:
        return list(rows)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_carry_line_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "v.csv",
        '\ufeffID, Name ,FINE\n\na,"two\nlines",1\nb,x,2,\nc,y,3,extra\n',
    )
    rows = _rows(path, VIOLATION_COLUMNS, set(VIOLATION_COLUMNS))
    assert [(r.where, r.values["id"], r.problem) for r in rows] == [
        ("line 4", "a", None),
        ("line 5", "b", None),  # a trailing empty field is what spreadsheets write
        ("line 6", "c", "more fields than columns"),
    ]
    assert rows[0].values["name"] == "two\nlines"


def test_csv_with_semicolons_and_optional_columns_missing(tmp_path: Path) -> None:
    path = _write(tmp_path, "o.csv", "plate;name;email\n1ABC2377;Ann;a@b.cd\n")
    (row,) = _rows(path, OWNER_COLUMNS, {"plate", "name"})
    assert row.values == {
        "plate": "1ABC2377",
        "name": "Ann",
        "phone": "",
        "email": "a@b.cd",
        "telegram": "",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,name\n", "missing column\\(s\\) fine"),
        ("id,name,fine,colour\n", "unknown column\\(s\\) colour"),
        ("id,name,fine,name\n", "repeated column\\(s\\) name"),
        ("", "empty file"),
    ],
)
def test_csv_header_problems(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _rows(_write(tmp_path, "v.csv", text), VIOLATION_COLUMNS, set(VIOLATION_COLUMNS))


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_bytes("id,name,fine\na,Превышение,1\n".encode("cp1251"))
    with pytest.raises(UsageError, match="not UTF-8"):
        _rows(path, VIOLATION_COLUMNS, set(VIOLATION_COLUMNS))


def test_missing_file_and_old_xls(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        _rows(tmp_path / "none.csv", VIOLATION_COLUMNS, set())
    with pytest.raises(UsageError, match=r"\.xls format"):
        _rows(_write(tmp_path, "v.xls", "x"), VIOLATION_COLUMNS, set())


def test_unreadable_file_is_an_environment_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 3, not 2: a cron job must tell a permission problem from a typo (tests run as
    root here, so the refusal is simulated)."""
    path = _write(tmp_path, "v.csv", "id,name,fine\n")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("lizardctl.core.files.os.open", refuse)
    with pytest.raises(EnvironmentFailure, match="permission denied"):
        _rows(path, VIOLATION_COLUMNS, set())


def test_xlsx_without_openpyxl_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(UsageError, match=r"lizardctl\[xlsx\]"):
        _rows(_write(tmp_path, "v.xlsx", "x"), VIOLATION_COLUMNS, set())


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    """A workbook whose first sheet holds ``rows`` from A1 (None leaves a cell empty)."""
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@needs_xlsx
def test_xlsx_rows_carry_sheet_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "o.xlsx",
        [
            [None],
            ["Plate", "Name", "Phone", "Email", "Telegram"],
            ["1ABC2377", "Ann", 79161234567, None, None],
            [None, None, None, None, None],
            ["2ABC2377", "Bob", None, "b@c.de", None, "stray"],
            ["3ABC2377", "Cid", 1500.5, None, None],
        ],
    )
    rows = _rows(path, OWNER_COLUMNS, {"plate", "name"})
    assert [(r.where, r.values["plate"], r.problem) for r in rows] == [
        ("row 3", "1ABC2377", None),
        ("row 5", "2ABC2377", "more fields than columns"),
        ("row 6", "3ABC2377", None),
    ]
    assert rows[0].values["phone"] == "79161234567"  # not 79161234567.0
    assert rows[2].values["phone"] == "1500.5"


@needs_xlsx
def test_xlsx_header_and_garbage(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "v.xlsx", [["id", "fine"]])
    with pytest.raises(UsageError, match="missing column"):
        _rows(path, VIOLATION_COLUMNS, set(VIOLATION_COLUMNS))
    with pytest.raises(UsageError, match="not a readable XLSX"):
        _rows(_write(tmp_path, "bad.xlsx", "not a zip"), VIOLATION_COLUMNS, set())
    empty = write_xlsx(tmp_path / "e.xlsx", [])
    with pytest.raises(UsageError, match="empty sheet"):
        _rows(empty, VIOLATION_COLUMNS, set())

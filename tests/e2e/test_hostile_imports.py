"""Hostile spreadsheets and the database's errors, through the CLI (issue 11, items 8 and 9).

The managers' spreadsheets come from other people: an XLSX may be a zip bomb, any field
may carry NUL or terminal control characters, and whatever the database refuses must
not be echoed back with the row's personal data.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from lizardctl.__main__ import main
from tests.e2e.conftest import Cli, Outcome
from tests.e2e.test_ingest_cli import sql
from tests.unit.test_xlsx_limits import MAIN, build_xlsx, empty_rows_xlsx

OWNER = ("1ABC2377", "Ivan Petrov", "+7 900 123 4567", "ivan.petrov@example.com")
"""One owner's personal data, which no error may print."""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _invoke_verbose(db_url: str, *args: str | Path) -> Outcome:
    """As the ``cli`` fixture, with ``--verbose`` and without its no-traceback check:
    a traceback is what ``--verbose`` is for."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        code = main(["--db", db_url, "--verbose", *(str(a) for a in args)])
        sys.stdout.flush()
        sys.stderr.flush()
        return Outcome(code, out.getvalue().decode(), err.getvalue().decode())


def _refuse_owner_inserts(db_url: str) -> None:
    """Make the database refuse any new owner, as a bug or a schema drift would."""
    if db_url.startswith("sqlite"):
        sql(
            db_url,
            "CREATE TRIGGER refuse_owners BEFORE INSERT ON car_owners "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
    else:
        sql(db_url, "ALTER TABLE car_owners ADD CONSTRAINT refuse_owners CHECK (plate = '')")


def test_database_error_prints_one_line_without_statement_or_personal_data(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    owners = _write(tmp_path / "owners.csv", f"plate,name,phone,email\n{','.join(OWNER)}\n")
    _refuse_owner_inserts(db_url)

    failed = cli("owner", "import", owners)
    assert failed.code == 70
    assert failed.stdout == ""
    (line,) = failed.stderr.splitlines()
    assert line.startswith("Error: internal error: the database refused a statement (Integrity")
    if not db_url.startswith("sqlite"):
        assert "SQLSTATE 23514" in line
    for private in (*OWNER, "INSERT", "car_owners"):
        assert private not in line

    verbose = _invoke_verbose(db_url, "owner", "import", owners)
    assert verbose.code == 70
    assert "Traceback" in verbose.stderr
    assert "[SQL parameters hidden" in verbose.stderr
    for private in OWNER:
        assert private not in verbose.output
    assert int(sql(db_url, "SELECT count(*) FROM car_owners")[0][0]) == 0


def test_nul_and_control_characters_in_imports_are_bad_rows_on_both_engines(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """The reproduction: NUL in a CSV field reached PostgreSQL (exit 70, the row printed)."""
    plate, name, phone, email = OWNER
    owners = _write(
        tmp_path / "owners.csv",
        "plate,name,phone,email\n"
        f"{plate},{name},{phone},{email}\n"
        f"2ABC2377,Iv\x00an,{phone},\n"
        f'3ABC2377,"Ann\x1b[2J",,ann@example.com\n'
        f"4ABC2377,Bob,+7 900 000\x9b0000,\n",
    )
    failed = cli("owner", "import", owners)
    assert failed.code == 2, failed.output
    assert failed.stderr.splitlines() == [
        f"Error: {owners}: 3 bad row(s), nothing imported",
        "  line 3: name: control character U+0000 not allowed",
        "  line 4: name: control character U+001B not allowed",
        "  line 5: phone: control character U+009B not allowed",
    ]
    assert not {"\x00", "\x1b", "\x9b"} & set(failed.output)  # the values are not echoed

    violations = _write(
        tmp_path / "violations.csv",
        "id,name,fine\nde163a57-fd92-47a6-9b78-82bb0d41be71,Speed\x7fing,500\n",
    )
    bad = cli("violation", "import", violations)
    assert bad.code == 2, bad.output
    assert "line 2: name: control character U+007F not allowed" in bad.stderr

    cameras = _write(
        tmp_path / "cameras.csv",
        "id,type,latitude,longitude,description\n"
        "104fc08a-efb6-427f-9193-2d54e4ed3e12,camerus1,55.7,37.6,north\x00gate\n",
    )
    refused = cli("camera", "import", cameras)
    assert refused.code == 2, refused.output
    assert "line 2: description: control character U+0000 not allowed" in refused.stderr
    add = ("camera", "add", "--type", "camerus1", "--lat", "1", "--lon", "1")
    added = cli(*add, "--description", "\x1b[2J")
    assert added.code == 2, added.output
    assert added.stderr == "Error: description: control character U+001B not allowed\n"
    for table in ("car_owners", "violation_types", "cameras"):
        assert int(sql(db_url, f"SELECT count(*) FROM {table}")[0][0]) == 0


def test_xlsx_zip_bombs_are_refused_fast_with_one_line(cli: Cli, tmp_path: Path) -> None:
    """The reproductions: a ~1 MB workbook whose shared string unpacks to 1 GiB (2.1 GB
    peak before), and a sheet of 20 M empty rows (minutes at 2 GB before)."""
    strings = [
        f'<sst xmlns="{MAIN}"><si><t>'.encode(),
        (b"A" * (1 << 20), 1024),
        b"</t></si></sst>",
    ]
    bomb = build_xlsx(tmp_path / "violations.xlsx", strings=strings)
    refused = cli("violation", "import", bomb)
    assert refused.code == 2
    assert refused.stderr.splitlines() == [
        f"Error: {bomb}: refused: unpacks to more than 256 MiB (XLSX limit; CSV has none)"
    ]

    rows = empty_rows_xlsx(tmp_path / "owners.xlsx")
    started = time.monotonic()
    refused = cli("owner", "import", rows)
    assert time.monotonic() - started < 5
    assert refused.code == 2
    (line,) = refused.stderr.splitlines()
    assert "refused: 'xl/worksheets/sheet1.xml' is compressed" in line
    assert "more than 100:1 (a zip bomb)" in line


def test_xlsx_with_control_characters_lists_rows_and_imports_nothing(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    rows = [
        ("plate", "name", "phone"),
        ("1ABC2377", "Ann", "+7 900 123 4567"),
        ("2ABC2377", "B\x9b2Job", "+7 900 123 4568"),
    ]
    sheet = build_xlsx(tmp_path / "owners.xlsx", rows=rows)
    failed = cli("owner", "import", sheet)
    assert failed.code == 2, failed.output
    assert "  row 3: name: control character U+009B not allowed" in failed.stderr.splitlines()
    assert int(sql(db_url, "SELECT count(*) FROM car_owners")[0][0]) == 0

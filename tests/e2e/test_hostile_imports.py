"""Hostile spreadsheets and the database's errors, through the CLI (issue 11, items 8 and 9).

The managers' spreadsheets come from other people: an XLSX may be a zip bomb, any field
may carry NUL or terminal control characters, and whatever the database refuses must
not be echoed back with the row's personal data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer.testing import CliRunner

from lizardctl.__main__ import main
from tests.e2e.conftest import Cli, Outcome
from tests.e2e.test_ingest_cli import sql

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

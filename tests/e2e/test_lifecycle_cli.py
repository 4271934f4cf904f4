"""The end of the case lifecycle through the command line, on SQLite and PostgreSQL: a
supervisor decides a split case, a newly staffed level takes over a waiting one."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli

CREW = ("ann", "bob", "cid")
SPLIT = ("violation", "no-violation", "violation")


def split_one(cli: Cli) -> str:
    """The crew takes the next case and splits on it; returns its id."""
    case_ids = set()
    for name, verdict in zip(CREW, SPLIT, strict=True):
        lease = cli("review", "next", "-r", name, "--json").json()
        case_ids.add(lease["case"]["id"])
        assert cli("review", "vote", "-r", name, "--verdict", verdict).code == 0
    (case_id,) = case_ids
    return case_id  # type: ignore[no-any-return]


@pytest.fixture
def level(cli: Cli, tmp_path: Path) -> int:
    """An ingested dump; the crew at the lowest level with 3 cases or more, nobody above
    it; eve a supervisor at that level."""
    manifest = generate_dump(tmp_path / "generated", cameras=3, shots_per_camera=5, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    assert cli("ingest", manifest.dump_dir, "--workers", "0", "--settle", "0").code == 0
    skills = Counter(case["skill"] for case in cli("cases", "list", "--json").json()["items"])
    low = min(s for s, n in skills.items() if n >= 3)
    for name in CREW:
        assert cli("reviewer", "add", name, "--skill", str(low)).code == 0
    added = cli("reviewer", "add", "eve", "--skill", str(low), "--supervisor")
    assert (added.code, added.stdout) == (
        0,
        f"added reviewer eve: skill {low}, active, supervisor\n",
    )
    return low


def test_a_supervisor_decides_and_the_decision_is_on_record(
    cli: Cli, level: int, tmp_path: Path
) -> None:
    case_id = split_one(cli)
    waiting = cli("cases", "list", "--status", "escalated")
    assert case_id in waiting.stdout and "supervisor" in waiting.stdout

    refused = cli("cases", "decide", case_id, "--verdict", "violation", "--by", "ann")
    assert (refused.code, refused.stderr) == (
        2,
        "Error: ann is not a supervisor: `lizardctl reviewer set ann --supervisor`\n",
    )
    bad = cli("cases", "decide", case_id, "--verdict", "maybe", "--by", "eve")
    assert bad.code == 2 and "Traceback" not in bad.output

    decided = cli(
        "cases", "decide", case_id, "--verdict", "violation", "--by", "eve", "--note", "seen it"
    )
    assert (decided.code, decided.stdout) == (0, f"case {case_id} confirmed by supervisor eve\n")
    again = cli("cases", "decide", case_id, "--verdict", "violation", "--by", "eve")
    assert again.code == 2 and "already confirmed" in again.stderr

    shown = cli("cases", "show", case_id, "--json").json()
    assert shown["status"] == "confirmed" and shown["awaiting"] is None
    last = shown["transitions"][-1]
    assert (last["actor"], last["note"], last["to_status"]) == ("eve", "seen it", "confirmed")
    table = cli("cases", "show", case_id).stdout
    assert "eve" in table and "seen it" in table

    assert cli("export", "--format", "csv", "-o", tmp_path / "out.csv").code == 0
    (row,) = csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text()))
    assert (row["case_id"], row["decided_by"], row["decision_note"]) == (case_id, "eve", "seen it")

    report = cli("report", "reviews", "--json").json()
    assert (report["awaiting_supervisor"], report["supervisor_decisions"]) == (0, 1)
    assert report["supervisors"] == [{"name": "eve", "confirmed": 1, "dismissed": 0, "total": 1}]
    assert "Supervisor decisions" in cli("report", "reviews").stdout

    assert cli("reviewer", "set", "eve", "--no-supervisor").code == 0
    listed = {r["name"]: r["supervisor"] for r in cli("reviewer", "list", "--json").json()}
    assert listed == {"ann": False, "bob": False, "cid": False, "eve": False}


def test_a_waiting_case_moves_up_to_a_new_level(cli: Cli, level: int) -> None:
    case_id = split_one(cli)
    report = cli("report", "reviews", "--json").json()
    assert report["awaiting_supervisor"] == 1
    added = cli("reviewer", "add", "hi", "--skill", str(level + 10))
    assert added.code == 0
    assert "1 escalated case(s) moved up" in added.stdout
    (listed,) = cli("cases", "list", "--status", "escalated", "--json").json()["items"]
    assert (listed["id"], listed["level"], listed["awaiting"]) == (case_id, level + 10, "review")
    refused = cli("cases", "decide", case_id, "--verdict", "violation", "--by", "eve")
    assert refused.code == 2 and "not awaiting a supervisor" in refused.stderr
    lease = cli("review", "next", "-r", "hi", "--json").json()
    assert (lease["case"]["id"], lease["level"]) == (case_id, level + 10)


def test_fines_do_not_move_with_the_catalog(cli: Cli, level: int, tmp_path: Path) -> None:
    """Confirmed before the catalog knew the violation: priced by the import that adds it.
    Re-imported with another fine: only cases confirmed afterwards owe the new one."""
    assert cli("review", "config", "--votes", "1").code == 0

    def confirm() -> str:
        lease = cli("review", "next", "-r", "ann", "--json").json()
        assert cli("review", "vote", "-r", "ann", "--verdict", "violation").code == 0
        return lease["case"]["id"]  # type: ignore[no-any-return]

    def catalog(fine: str) -> str:
        ids = {c["violation_id"] for c in cli("cases", "list", "--json").json()["items"]}
        sheet = tmp_path / f"catalog-{fine}.csv"
        sheet.write_text("id,name,fine\n" + "".join(f"{i},Type,{fine}\n" for i in sorted(ids)))
        out = cli("violation", "import", sheet)
        assert out.code == 0, out.output
        return out.stdout

    early = confirm()
    unpriced = cli("fines", "--format", "jsonl").stdout
    assert '"violation": null' in unpriced and '"fine": null' in unpriced
    assert "1 confirmed case(s) without a fine got this fine" in catalog("500")
    middle = confirm()
    assert "got this fine" not in catalog("900.25")
    late = confirm()

    fines = {
        row["case_id"]: row["fine"]
        for row in map(json.loads, cli("fines", "--json").stdout.splitlines())
    }
    assert fines == {early: "500.00", middle: "500.00", late: "900.25"}
    assert cli("report", "fines", "--json").json()["total"] == "1900.25"
    violation = cli("cases", "show", late, "--json").json()["violation_id"]
    shown = cli("violation", "show", violation, "--json").json()
    assert shown["fine"] == "900.25"
    assert int(shown["fines_due_minor"]) == sum(
        {early: 50000, middle: 50000, late: 90025}[c]
        for c in fines
        if cli("cases", "show", c, "--json").json()["violation_id"] == violation
    )

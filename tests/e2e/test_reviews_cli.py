"""The reviewers' loop through the command line, on a SQLite file and on PostgreSQL:
ingest a generated dump, staff two skill levels, drive cases to every outcome, export; the
loop's photos from a folder store and from an S3 one (``both_stores``)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli, both_stores

LOW_CREW = ("ann", "bob", "cid")
HIGH_CREW = ("dan", "eve", "fay")
V, NV = "violation", "no-violation"


def _one_case(cli: Cli, crew: tuple[str, ...], verdicts: tuple[str, ...]) -> dict[str, Any]:
    """Each reviewer takes the next case and votes on it; all must get the same case."""
    leases = []
    for name, verdict in zip(crew, verdicts, strict=True):
        out = cli("review", "next", "--reviewer", name, "--json")
        assert out.code == 0, out.output
        lease = out.json()
        leases.append(lease)
        case_id = lease["case"]["id"]
        vote = cli("review", "vote", "-r", name, "--verdict", verdict, "--case", case_id, "--json")
        assert vote.code == 0, vote.output
    assert len({lease["case"]["id"] for lease in leases}) == 1
    return vote.json()  # type: ignore[no-any-return]


@pytest.fixture
def backlog(cli: Cli, tmp_path: Path) -> tuple[int, int]:
    """A generated dump, ingested; reviewers at the lowest skill level with three cases
    or more, and at a level above every case's, so only escalations reach them."""
    manifest = generate_dump(tmp_path / "generated", cameras=6, shots_per_camera=5, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    ingested = cli("ingest", manifest.dump_dir, "--workers", "0", "--settle", "0")
    assert ingested.code == 0, ingested.output
    skills = Counter(case["skill"] for case in cli("cases", "list", "--json").json()["items"])
    low, high = min(s for s, n in skills.items() if n >= 3), max(skills) + 1
    for name in LOW_CREW:
        assert cli("reviewer", "add", name, "--skill", str(low)).code == 0
    for name in HIGH_CREW:
        assert cli("reviewer", "add", name, "--skill", str(high)).code == 0
    return low, high


@both_stores
def test_confirmed_dismissed_escalated_and_exported(
    cli: Cli, backlog: tuple[int, int], tmp_path: Path
) -> None:
    low, high = backlog
    lease = cli("review", "next", "--reviewer", "ann", "--json").json()
    assert lease["level"] == low and lease["resumed"] is False
    copy = Path(lease["case"]["photo_path"])  # a readable cache copy, whatever the store
    assert copy.is_file()
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == lease["case"]["photo_sha256"]
    assert cli("review", "next", "--reviewer", "ann", "--json").json()["resumed"] is True

    confirmed = _one_case(cli, LOW_CREW, (V, V, V))
    assert confirmed["transition"]["to_status"] == "confirmed"
    dismissed = _one_case(cli, LOW_CREW, (NV, NV, NV))
    assert dismissed["transition"]["to_status"] == "dismissed"
    escalated = _one_case(cli, LOW_CREW, (V, NV, V))
    assert (escalated["transition"]["to_status"], escalated["transition"]["to_level"]) == (
        "escalated",
        high,
    )
    stuck = _one_case(cli, HIGH_CREW, (NV, V, V))
    assert stuck["case_id"] == escalated["case_id"]
    assert stuck["transition"]["cause"].endswith("awaiting a supervisor")
    nothing = cli("review", "next", "--reviewer", "dan", "--json")
    assert (nothing.code, nothing.json()["case"]) == (0, None)

    supervisor = cli("cases", "list", "--status", "escalated", "--json").json()["items"]
    assert [(c["id"], c["level"], c["awaiting"]) for c in supervisor] == [
        (escalated["case_id"], high, "supervisor")
    ]
    shown = cli("cases", "show", escalated["case_id"], "--json").json()
    assert [(v["reviewer"], v["level"]) for v in shown["votes"]] == [
        *((name, low) for name in LOW_CREW),
        *((name, high) for name in HIGH_CREW),
    ]
    assert [t["to_status"] for t in shown["transitions"]] == ["escalated", "escalated"]
    assert "transitions" in cli("cases", "show", escalated["case_id"]).stdout

    out = cli("export", "--format", "csv", "-o", tmp_path / "decided.csv")
    assert out.code == 0, out.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "decided.csv").read_text())))
    assert [(r["case_id"], r["status"]) for r in rows] == [
        (confirmed["case_id"], "confirmed"),
        (dismissed["case_id"], "dismissed"),
    ]
    case = cli("cases", "show", confirmed["case_id"], "--json").json()
    assert (rows[0]["plate"], rows[0]["camera_id"]) == (case["plate"], case["camera_id"])
    assert (rows[0]["violation_value"], rows[0]["occurred_at"]) == (
        case["violation_value"],
        case["occurred_at"],
    )
    assert rows[0]["decided_at"] == case["decided_at"]
    assert rows[0]["votes"] == ";".join(f"{name}@{low}={V}" for name in LOW_CREW)

    only = cli("export", "--status", "dismissed", "--format", "jsonl")
    assert [line.count(dismissed["case_id"]) for line in only.stdout.splitlines()] == [1]

    report = cli("report", "reviews", "--json").json()
    assert report["decisions"] == 2
    assert {"status": "escalated", "level": high, "cases": 1} in report["backlog"]
    agreement = {r["name"]: r["agreement"] for r in report["reviewers"]}
    assert agreement == dict.fromkeys(LOW_CREW, 1.0) | dict.fromkeys(HIGH_CREW)
    assert cli("report", "reviews").code == 0
    assert cli("report", "--json").json()["ingested"] == 30, "ingest report still works"


def test_settings_and_mistakes(cli: Cli, backlog: tuple[int, int]) -> None:
    assert cli("review", "config", "--json").json() == {
        "votes_per_level": 3,
        "lease_minutes": 15,
        "settled": 0,
    }
    changed = cli("review", "config", "--votes", "2", "--lease-minutes", "5", "--json").json()
    assert (changed["votes_per_level"], changed["lease_minutes"]) == (2, 5)
    voted = _one_case(cli, LOW_CREW[:2], (V, V))
    assert voted["transition"]["to_status"] == "confirmed"

    for args, message in [
        (("review", "vote", "-r", "ann", "--verdict", V), "ann holds no case"),
        (("review", "next", "-r", "zed"), "no reviewer 'zed'"),
        (("reviewer", "add", "ann", "--skill", "2"), "already exists"),
        (("reviewer", "set", "ann"), "nothing to change"),
    ]:
        out = cli(*args)
        assert out.code == 2, out.output
        assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr
    assert cli("reviewer", "set", "ann", "--inactive").code == 0
    listed = {r["name"]: r["active"] for r in cli("reviewer", "list", "--json").json()}
    assert listed["ann"] is False and listed["bob"] is True
    assert "inactive" in cli("review", "next", "-r", "ann").stderr
    assert "ann" in cli("reviewer", "list").stdout

"""From a night's dump to who owes what, through the command line, on SQLite and PostgreSQL:
ingest a generated dump, confirm cases with reviewers, import the managers' catalog and
owners, and list the fines."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli

FINES = ("500", "1500.50", "3000")
"""Fines given, in order, to the generated dump's violation types (it uses three)."""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _vote_everything(cli: Cli, skills: set[int]) -> dict[str, str]:
    """One reviewer per skill level with K = 1: every case decided by one vote. The first
    case is dismissed, the rest confirmed. Returns case id -> status."""
    assert cli("review", "config", "--votes", "1").code == 0
    for skill in sorted(skills):
        assert cli("reviewer", "add", f"r{skill}", "--skill", str(skill)).code == 0
    decided: dict[str, str] = {}
    for skill in sorted(skills):
        while True:
            lease = cli("review", "next", "--reviewer", f"r{skill}", "--json")
            assert lease.code == 0, lease.output
            case = lease.json()["case"]
            if case is None:
                break
            verdict = "no-violation" if not decided else "violation"
            vote = cli("review", "vote", "-r", f"r{skill}", "--verdict", verdict, "--json")
            assert vote.code == 0, vote.output
            decided[case["id"]] = "dismissed" if verdict == "no-violation" else "confirmed"
    return decided


@pytest.fixture
def confirmed(cli: Cli, tmp_path: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """An ingested dump whose cases are all decided; the cases as listed, and the statuses."""
    manifest = generate_dump(tmp_path / "generated", cameras=3, shots_per_camera=4, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    ingested = cli("ingest", manifest.dump_dir, "--workers", "0", "--settle", "0")
    assert ingested.code == 0, ingested.output
    cases = cli("cases", "list", "--json").json()["items"]
    assert len(cases) == 12
    decided = _vote_everything(cli, {case["skill"] for case in cases})
    assert len(decided) == 12
    return cases, decided


def test_from_dump_to_fines_csv(
    cli: Cli, tmp_path: Path, confirmed: tuple[list[dict[str, Any]], dict[str, str]]
) -> None:
    cases, decided = confirmed
    violation_ids = sorted({case["violation_id"] for case in cases})
    fine_of = dict(zip(violation_ids, FINES, strict=False))
    catalog = _write(
        tmp_path / "violations.csv",
        "id,name,fine\n"
        + "".join(f"{vid},Type {n},{fine_of[vid]}\n" for n, vid in enumerate(violation_ids)),
    )
    out = cli("violation", "import", catalog)
    assert out.code == 0, out.output
    assert out.stdout.startswith(f"{catalog}: {len(violation_ids)} added")
    again = cli("violation", "import", catalog)
    assert again.stdout.strip() == (
        f"{catalog}: nothing to do, all {len(violation_ids)} violation(s) already stored"
    )

    confirmed_cases = [c for c in cases if decided[c["id"]] == "confirmed"]
    owned = sorted({c["plate"] for c in confirmed_cases})[:2]
    owners = _write(
        tmp_path / "owners.csv",
        "plate,name,phone,email,telegram\n"
        f"{owned[0]},Ann Smith,+79161234567,,\n"
        f"{owned[1].lower()},Bob Jones,,bob@example.com,bob_jones\n",
    )
    out = cli("owner", "import", owners)
    assert out.code == 0, out.output

    target = tmp_path / "fines.csv"
    out = cli("fines", "--format", "csv", "-o", target)
    assert out.code == 0, out.output
    assert out.stdout.startswith(f"wrote {target}: {len(confirmed_cases)} confirmed case(s)")
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert sorted(r["case_id"] for r in rows) == sorted(c["id"] for c in confirmed_cases)
    by_case = {c["id"]: c for c in cases}
    for row in rows:
        case = by_case[row["case_id"]]
        assert row["plate"] == case["plate"]
        assert row["violation_id"] == case["violation_id"]
        assert Decimal(row["fine"]) == Decimal(fine_of[case["violation_id"]])
        expected_owner = {owned[0]: "Ann Smith", owned[1]: "Bob Jones"}.get(
            case["plate"], "unknown owner"
        )
        assert row["owner"] == expected_owner
    bob = next(r for r in rows if r["owner"] == "Bob Jones")
    # Stored as @bob_jones; in CSV a leading @ would start a formula, so it is quoted.
    assert (bob["email"], bob["telegram"]) == ("bob@example.com", "'@bob_jones")
    decided_at = [r["decided_at"] for r in rows]
    assert decided_at == sorted(decided_at)

    table = cli("fines")
    assert table.code == 0
    assert "Totals per owner" in table.stdout
    assert "unknown owner" in table.stdout
    assert f"{len(confirmed_cases)} confirmed case(s)" in table.stdout

    report = cli("report", "fines", "--json").json()
    assert report["cases"] == len(confirmed_cases)
    assert report["unpriced"] == 0
    assert sum(v["cases"] for v in report["by_violation"]) == len(confirmed_cases)
    assert cli("report", "fines").code == 0

    shown = cli("owner", "show", owned[0], "--json").json()
    assert shown["name"] == "Ann Smith"
    assert {c["status"] for c in shown["cases"]["items"]} <= {"confirmed", "dismissed"}
    assert cli("owner", "list", "--json").json()["items"][0]["plate"] == owned[0]
    listed = cli("violation", "list", "--json").json()
    assert sorted(v["id"] for v in listed) == violation_ids
    assert cli("violation", "show", violation_ids[0]).code == 0


def test_fines_to_stdout_and_usage_errors(cli: Cli, tmp_path: Path) -> None:
    empty = cli("fines")
    assert (empty.code, empty.stdout.strip()) == (0, "no confirmed cases")
    jsonl = cli("--json", "fines")
    assert (jsonl.code, jsonl.stdout) == (0, "")
    assert "0 confirmed case(s)" in jsonl.stderr
    header = cli("fines", "--format", "csv")
    assert header.stdout.startswith("case_id,plate,owner,")
    refused = cli("fines", "--format", "table", "-o", tmp_path / "x.txt")
    assert refused.code == 2
    assert not (tmp_path / "x.txt").exists()
    bad_plate = cli("fines", "--plate", "nonsense")
    assert bad_plate.code == 2
    assert bad_plate.stderr.startswith("Error: --plate 'nonsense': not a canonical plate")


def test_bad_import_lists_lines_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    bad = _write(
        tmp_path / "owners.csv",
        "plate,name,phone,email,telegram\n1ABC2377,Ann,,,\n2ABC2377,Bob,+79161234567,,\n",
    )
    out = cli("owner", "import", bad)
    assert out.code == 2
    assert out.stderr.splitlines() == [
        f"Error: {bad}: 1 bad row(s), nothing imported",
        "  line 2: phone, email, telegram: at least one contact is required",
    ]
    assert cli("owner", "list", "--json").json()["items"] == []
    missing = cli("violation", "import", tmp_path / "none.csv")
    assert (missing.code, missing.stderr.strip()) == (
        2,
        f"Error: {tmp_path / 'none.csv'}: no such file",
    )
    assert cli("violation", "show", "de163a57-fd92-47a6-9b78-82bb0d41be71").code == 2
    assert cli("owner", "show", "1ABC2377").code == 2

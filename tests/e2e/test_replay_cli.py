"""``schema add --replay`` through the command line, on SQLite and PostgreSQL: a new
camerus1 file tried on the shots an ingest stored, then registered only if none fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli


@pytest.fixture
def skills(cli: Cli, tmp_path: Path) -> list[int]:
    """An ingested dump; the skills of its camerus1 cases."""
    manifest = generate_dump(tmp_path / "generated", cameras=3, shots_per_camera=6, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    assert cli("ingest", manifest.dump_dir, "--workers", "0", "--settle", "0").code == 0
    types = {c["id"]: c["camera_type"] for c in cli("camera", "list", "--json").json()}
    cases = cli("cases", "list", "--json").json()["items"]
    found = [c["skill"] for c in cases if types[c["camera_id"]] == "camerus1"]
    assert found and any(s > 1 for s in found) and any(s == 1 for s in found), found
    return found


def camerus1(cli: Cli, folder: Path, name: str, **layout: object) -> Path:
    doc = json.loads(cli("schema", "show", "camerus1").stdout)
    doc["layout"].update(layout)
    doc["description"] = name
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def test_replay_reports_and_registers_only_a_file_that_fits(
    cli: Cli, skills: list[int], tmp_path: Path
) -> None:
    strict = camerus1(cli, tmp_path, "strict", skill_value={"type": "int", "ge": 1, "le": 1})
    failing = sum(1 for s in skills if s > 1)

    dry = cli("schema", "add", "camerus1", "--file", strict, "--dry-run", "--replay")
    assert dry.code == 1, dry.output
    assert f"replayed {len(skills)} stored shot(s)" in dry.stdout
    assert f"{len(skills) - failing} pass, {failing} fail" in dry.stdout
    assert "skill_value" in dry.stdout and "would register version 2 (dry run)" in dry.stdout

    report = cli("schema", "add", "camerus1", "-f", strict, "--dry-run", "--replay", "--json")
    assert report.code == 1
    data = report.json()
    assert (data["replayed"], data["failed"], data["registered"]) == (len(skills), failing, False)
    (group,) = data["failures"]
    assert (group["path"], group["shots"]) == ("skill_value", failing)
    shown = cli("cases", "show", group["example_case_id"], "--json").json()
    assert shown["skill"] > 1 and shown["raw"]["skill_value"] == shown["skill"]

    refused = cli("schema", "add", "camerus1", "--file", strict, "--replay")
    assert refused.code == 1
    assert refused.stderr == (
        f"Error: camerus1: {failing} stored shot(s) fail the new file; nothing registered\n"
    )
    assert len(cli("schema", "versions", "camerus1", "--json").json()) == 1

    fits = camerus1(cli, tmp_path, "fits")
    newest = cli("schema", "add", "camerus1", "--file", fits, "--replay", "--limit", "2")
    assert newest.code == 0, newest.output
    assert "replayed 2 stored shot(s)" in newest.stdout
    assert "camerus1: registered version 2" in newest.stdout
    assert len(cli("schema", "versions", "camerus1", "--json").json()) == 2


def test_replay_options_need_replay(cli: Cli, tmp_path: Path) -> None:
    path = camerus1(cli, tmp_path, "any")
    for extra in (("--since", "2026-11-01"), ("--limit", "5")):
        out = cli("schema", "add", "camerus1", "--file", path, *extra)
        assert out.code == 2 and "--since and --limit go with --replay" in out.stderr

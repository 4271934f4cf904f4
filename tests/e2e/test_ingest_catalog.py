"""The violation catalog at ingest: unknown violations are rejected only once it has entries."""

from __future__ import annotations

import json
from pathlib import Path

from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Cli


def _violation_ids(dump: Path) -> set[str]:
    ids = set()
    for path in dump.rglob("*.json"):
        raw = json.loads(path.read_text())
        ids.add(raw.get("violation_id") or raw["violation"]["id"])
    return ids


def test_unknown_violation_only_when_the_catalog_has_entries(cli: Cli, tmp_path: Path) -> None:
    manifest = generate_dump(tmp_path / "gen", cameras=3, shots_per_camera=4, bad=False)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    args = ("ingest", manifest.dump_dir, "--settle", "0", "--workers", "0", "--json")

    empty = cli(*args, "--dry-run")
    assert empty.code == 0, empty.output
    assert empty.json()["rejected"] == 0
    assert "violation catalog is empty" in empty.stderr
    assert empty.json()["warnings"]

    known = sorted(_violation_ids(manifest.dump_dir))
    assert len(known) > 1
    catalog = tmp_path / "violations.csv"
    catalog.write_text("id,name,fine\n" + f"{known[0]},Speeding,500\n")
    assert cli("violation", "import", catalog).code == 0

    checked = cli(*args)
    assert checked.code == 1, checked.output
    summary = checked.json()
    assert summary["warnings"] == []
    assert "violation catalog is empty" not in checked.stderr
    assert summary["ingested"] > 0
    assert summary["rejected_by_reason"] == {"unknown-violation": summary["rejected"]}
    rejects = cli("rejects", "--reason", "unknown-violation", "--json").json()["items"]
    assert len(rejects) == summary["rejected"]
    assert all("not in the violation catalog" in r["message"] for r in rejects)
    assert all(known[0] not in r["message"] for r in rejects)

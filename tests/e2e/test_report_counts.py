"""``report --run`` tells what the ingest summary told (issue 11, leftovers of items 3, 5, 12).

The reproduction: a run that kept 3 re-sent files (``--delete-source``) said so in its
summary, but ``report --run ID`` showed nothing of it; the ``too-large`` and
``photo-conflict`` reasons must be counted there like the others. The summary, the
counts stored with the run and ``report`` (JSON and table) must agree.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from lizardctl.testing.dumpgen import DumpManifest
from tests.e2e import test_ingest_hostile as hostile_tests
from tests.e2e.conftest import Cli
from tests.e2e.test_ingest_cli import good, ingest, ingest_json, must
from tests.e2e.test_ingest_hostile import (
    resend_during_the_run,
    resent_files,
    resent_shots,
    sparse,
)

clean = hostile_tests.clean  # 30 good shots of small photos, cameras registered

SHARED = (
    "run_id",
    "shots",
    "ingested",
    "duplicate",
    "pending",
    "rejected",
    "vanished",
    "kept_changed",
    "claimed_elsewhere",
    "ignored_files",
    "rejected_by_reason",
    "ingested_by_type",
    "problems",
)
"""What the summary of ``ingest --json`` and ``report --run --json`` both carry."""


def agree(cli: Cli, summary: dict[str, Any]) -> dict[str, str]:
    """Check the JSON report of the run against its summary; return the table's fields."""
    reported = cli("report", "--run", summary["run_id"], "--json").json()
    assert {k: reported[k] for k in SHARED} == {k: summary[k] for k in SHARED}
    table = cli("report", "--run", summary["run_id"])
    assert table.code == 0, table.output
    pairs = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in table.stdout.splitlines())
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def test_report_shows_kept_changed(
    cli: Cli,
    clean: DumpManifest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resend_during_the_run(monkeypatch, resent_files(resent_shots(clean)))
    out, summary = ingest_json(cli, clean.dump_dir, "--delete-source")
    assert out.code == 0, out.output
    assert summary["kept_changed"] == 3
    assert agree(cli, summary)["kept_changed"] == "3"


def test_report_counts_too_large_and_photo_conflict(
    cli: Cli,
    clean: DumpManifest,
    tmp_path: Path,
) -> None:
    assert ingest(cli, clean.dump_dir).code == 0
    first, second, third = good(clean)[:3]
    later = tmp_path / "later"
    later.mkdir()
    # The first shot's photo with the second's metadata: another case for one photo.
    shutil.copy(must(first.photo), later / f"conflict{must(first.photo).suffix}")
    shutil.copy(must(second.metadata), later / f"conflict{must(second.metadata).suffix}")
    # A photo over the default --max-photo-bytes (50 MB), sparse: never read.
    sparse(later / f"giant{must(third.photo).suffix}", 50_000_001)
    shutil.copy(must(third.metadata), later / f"giant{must(third.metadata).suffix}")

    out, summary = ingest_json(cli, later)
    assert out.code == 1, out.output
    assert summary["rejected_by_reason"] == {"photo-conflict": 1, "too-large": 1}
    fields = agree(cli, summary)
    assert (fields["photo-conflict"], fields["too-large"]) == ("1", "1")
    assert fields["rejected"] == "2"

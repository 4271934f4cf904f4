"""Exactly once, whatever happens to the processes: kill -9 mid-run, two runs at once.

``lizardctl ingest`` runs here as a real process (``python -m lizardctl``) with its worker
pool, on a SQLite file and on PostgreSQL, over a dump large enough that a kill lands while
batches are still being committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lizardctl.testing.dumpgen import DUPLICATE, INGESTED, DumpManifest
from tests.dumps import SharedDumps
from tests.e2e.conftest import invoke
from tests.e2e.test_ingest_cli import case_keys, check_store, count, expected_counts, shot_keys, sql

pytestmark = pytest.mark.slow

WAIT_S = 120  # a bound against hanging, never an expectation of speed


@pytest.fixture
def big(migrated_db_url: str, shared_dumps: SharedDumps) -> Iterator[DumpManifest]:
    """3,000 good shots of small photos and two sets of bad ones, cameras registered in the
    upgraded database (``db_url``'s). The dump is this process's shared one: read only."""
    manifest = shared_dumps.lend(
        cameras=6, shots_per_camera=500, bad_sets=2, photo_bytes=(1500, 2500)
    )
    out = invoke(["--db", migrated_db_url, "camera", "import", str(manifest.cameras_csv)])
    assert out.code == 0, out.output
    yield manifest
    shared_dumps.check_returned(manifest)


def lizardctl(db_url: str, cwd: Path, *args: str | Path) -> subprocess.Popen[str]:
    """Start ``python -m lizardctl`` as the leader of a new process group."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIZARD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "lizardctl", "--db", db_url, *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    stdout, stderr = process.communicate(timeout=WAIT_S)
    assert "Traceback" not in stdout + stderr, stderr
    assert stdout, f"exit {process.returncode}: {stderr}"
    return process.returncode, json.loads(stdout)


def wait_for_group_to_vanish(pgid: int) -> None:
    """Killed pool workers are reparented and reaped; none may linger holding a connection."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"processes of group {pgid} still alive after SIGKILL")


def check_exactly_once(db_url: str, manifest: DumpManifest, store: Path) -> None:
    keys = case_keys(db_url)
    assert len(keys) == len(set(keys)), "a shot became two cases"
    assert set(keys) == shot_keys(manifest.shots)
    assert len(keys) == expected_counts(manifest.shots)["ingested"]
    stored = check_store(store, db_url)
    # Photos stored by the killed batch belong to valid shots, which the re-run ingested.
    assert stored == {photo for photo, _ in keys}


def test_kill_9_mid_run_then_rerun_ingests_every_shot_exactly_once(
    db_url: str, tmp_path: Path, big: DumpManifest
) -> None:
    store = tmp_path / "photos"
    want = expected_counts(big.shots)
    args = ("ingest", big.dump_dir, "--settle", "0", "--workers", "2", "--store", store)
    victim = lizardctl(db_url, tmp_path, *args, "--batch-size", "20", "--json")
    deadline = time.monotonic() + WAIT_S
    while count(db_url, "cases") < 100:  # some batches are committed: the run is under way
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "no case committed"
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=WAIT_S)
    assert victim.returncode == -signal.SIGKILL
    wait_for_group_to_vanish(victim.pid)

    survived = count(db_url, "cases")
    assert 0 < survived < want["ingested"], "the kill did not land mid-run"
    (killed_run,) = sql(db_url, "SELECT id FROM ingest_runs WHERE status = 'running'")
    killed_id = str(uuid.UUID(str(killed_run[0])))
    killed = invoke(["--db", db_url, "report", "--run", killed_id, "--json"])
    assert killed.json()["status"] == "abandoned"

    code, rerun = finish(lizardctl(db_url, tmp_path, *args, "--json"))
    assert code == 1  # the dump's bad shots
    assert rerun["ingested"] == want["ingested"] - survived
    assert rerun["duplicate"] == want[DUPLICATE] + survived
    assert rerun["rejected_by_reason"] == want["rejected_by_reason"]
    check_exactly_once(db_url, big, store)  # and no final name holds a partial photo


def test_two_concurrent_runs_on_overlapping_folders_ingest_every_shot_once(
    db_url: str, tmp_path: Path, big: DumpManifest
) -> None:
    store = tmp_path / "photos"
    want = expected_counts(big.shots)
    dump = big.dump_dir
    common = ("--settle", "0", "--store", store, "--json", "--batch-size", "50")
    whole = lizardctl(db_url, tmp_path, "ingest", dump, "--workers", "2", *common)
    parts = lizardctl(
        db_url,
        tmp_path,
        "ingest",
        dump / "part-01",
        dump / "resent",
        dump / "part-00",
        "--workers",
        "1",
        *common,
    )
    results = [finish(whole), finish(parts)]

    valid = want[INGESTED] + want[DUPLICATE]
    for code, summary in results:
        assert code == 1, summary
        assert summary["ingested"] + summary["duplicate"] == valid
        assert summary["rejected_by_reason"] == want["rejected_by_reason"]
        assert summary["problems"] == []
    assert sum(summary["ingested"] for _, summary in results) == want[INGESTED]
    check_exactly_once(db_url, big, store)

    views = [
        invoke(["--db", db_url, "report", "--run", s["run_id"], "--json"]).json()
        for _, s in results
    ]
    assert all(view["status"] == "finished" for view in views)
    first, second = sorted(views, key=lambda v: v["started_at"])
    assert second["started_at"] < first["finished_at"], "the runs did not overlap"

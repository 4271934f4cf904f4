"""No process outlives its ingest, and a run stopped from outside reports what it committed.

``python -m lizardctl ingest`` runs as a real process with its worker pool, on a SQLite
file and on PostgreSQL. Every process of the tree is found by a marker in its environment
(inherited by the workers), so a worker that survives its parent is seen wherever it was
re-parented to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lizardctl.testing.dumpgen import DumpManifest
from tests.e2e.conftest import invoke
from tests.e2e.test_ingest_cli import count, sql
from tests.e2e.test_ingest_processes import WAIT_S, big  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

MARKER = "LIZARDCTL_TEST_TREE"
GRACE_S = 2.5
"""Workers must be gone within 2 s of their parent's death; the rest is the test's polling."""


def start(db_url: str, cwd: Path, dump: Path, marker: str) -> subprocess.Popen[str]:
    """``ingest`` with two workers and small batches, as the leader of a new process group."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIZARD_")}
    env[MARKER] = marker
    args = ("ingest", dump, "--settle", "0", "--workers", "2", "--batch-size", "20")
    return subprocess.Popen(
        [sys.executable, "-m", "lizardctl", "--db", db_url, *map(str, args), "--json"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def marked(marker: str) -> set[int]:
    """Live processes whose environment carries ``marker`` (a zombie's reads empty)."""
    needle = f"{MARKER}={marker}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def wait_for_cases(process: subprocess.Popen[str], db_url: str, at_least: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while count(db_url, "cases") < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no case committed"
        time.sleep(0.02)


def assert_tree_gone_within(marker: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while survivors := marked(marker):
        assert time.monotonic() < deadline, f"still alive {seconds} s later: {survivors}"
        time.sleep(0.05)


def only_run(db_url: str) -> str:
    (row,) = sql(db_url, "SELECT id FROM ingest_runs")
    return str(uuid.UUID(str(row[0])))


def report(db_url: str, run_id: str) -> dict[str, object]:
    out = invoke(["--db", db_url, "report", "--run", run_id, "--json"])
    assert out.code == 0, out.output
    return out.json()  # type: ignore[no-any-return]


@pytest.mark.skipif(sys.platform != "linux", reason="/proc and PR_SET_PDEATHSIG are Linux's")
def test_workers_die_within_2s_of_a_kill_9_of_their_parent(
    db_url: str,
    tmp_path: Path,
    big: DumpManifest,  # noqa: F811
) -> None:
    marker = uuid.uuid4().hex
    process = start(db_url, tmp_path, big.dump_dir, marker)
    wait_for_cases(process, db_url, 100)
    workers = children(process.pid)
    assert len(workers) >= 2, workers
    assert workers <= marked(marker)

    os.kill(process.pid, signal.SIGKILL)  # the main process only, as a cron wrapper would
    process.wait(timeout=WAIT_S)  # not communicate(): surviving workers hold its pipes open
    try:
        assert_tree_gone_within(marker, GRACE_S)
    finally:
        for survivor in marked(marker):
            os.kill(survivor, signal.SIGKILL)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()

    committed = count(db_url, "cases")
    assert 0 < committed < len(big.shots), "the kill did not land mid-run"
    time.sleep(0.5)
    assert count(db_url, "cases") == committed, "something committed after the kill"

    # The killed run recorded no counts of its own: the report counts its rows.
    view = report(db_url, only_run(db_url))
    assert view["status"] == "abandoned"
    assert view["ingested"] == committed
    assert view["rejected"] == count(db_url, "rejections")
    assert view["shots"] == committed + count(db_url, "rejections")
    assert view["rejected_by_reason"] == dict(
        sql(db_url, "SELECT reason, count(*) FROM rejections GROUP BY reason ORDER BY reason")
    )
    period = invoke(["--db", db_url, "report", "--since", "2000-01-01", "--json"]).json()
    assert period["totals"]["ingested"] == committed
    assert period["runs"][0]["ingested"] == committed


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_the_whole_group_is_a_clean_interruption(
    db_url: str,
    tmp_path: Path,
    big: DumpManifest,  # noqa: F811
    signum: int,
    code: int,
) -> None:
    """What ``timeout -s TERM``, systemd and Ctrl-C do: signal every process of the group."""
    marker = uuid.uuid4().hex
    process = start(db_url, tmp_path, big.dump_dir, marker)
    wait_for_cases(process, db_url, 100)
    assert len(marked(marker)) >= 3  # the main process and its two workers

    os.killpg(process.pid, signum)
    try:
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        for survivor in marked(marker):
            os.kill(survivor, signal.SIGKILL)
    assert process.returncode == code, stderr
    assert stderr.count("\n") == 1, stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert_tree_gone_within(marker, GRACE_S)

    committed = count(db_url, "cases")
    assert 0 < committed < len(big.shots), "the signal did not land mid-run"
    view = report(db_url, only_run(db_url))
    assert view["status"] == "interrupted"
    assert view["ingested"] == committed  # the batches in flight were counted too
    assert view["rejected"] == count(db_url, "rejections")

"""The verify and replay worker pools die with the command that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")

# A command that starts the verify pool, prints its workers' pids, then hangs: the test
# kills it with SIGKILL, as a cron wrapper would a stuck run.
OWNER = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from lizardctl.core import rehash

pool = ProcessPoolExecutor(
    2, mp_context=rehash.context(), initializer=rehash.initialize, initargs=(os.getpid(),)
)
pids = {pool.submit(os.getpid).result(timeout=60) for _ in range(8)}
pids |= {p.pid for p in pool._processes.values()}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Alive and not a zombie awaiting its (re-parented) reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_workers_die_within_two_seconds_of_a_killed_owner(tmp_path: Path) -> None:
    # The killed owner cannot remove its forkserver's socket folder: TMPDIR puts it in
    # tmp_path, which pytest removes, instead of /tmp.
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    workers: list[int] = []
    try:
        assert owner.stdout is not None
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        assert workers, "the pool reported no workers"
        assert all(_alive(pid) for pid in workers)
        forkservers = {_parent(pid) for pid in workers} - {owner.pid}
        workers += forkservers
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 2.0
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The forkserver that bore them goes too, once no worker holds its pipe open.
        assert [pid for pid in workers if _alive(pid)] == []
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

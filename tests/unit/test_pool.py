"""How ingest starts its worker processes: forked only while forking is safe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lizardctl.core.ingest import pool
from lizardctl.core.liveness import descends_from

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")


def start_method(context: object) -> str:
    return context.get_start_method()  # type: ignore[attr-defined]


def fresh_process(code: str) -> str:
    """What ``code`` prints in a new interpreter: an earlier test of this process may have
    left threads (the S3 client's runtime) that would change the answer."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@linux_only
def test_workers_are_forked_before_any_thread_or_event_loop_exists() -> None:
    code = "from lizardctl.core.ingest import pool\nprint(pool._context().get_start_method())\n"
    assert fresh_process(code) == "fork"


def test_inside_an_event_loop_workers_come_from_a_forkserver() -> None:
    """Forking a process with a running loop and open sockets would share them."""

    async def inside() -> str:
        return start_method(pool._context())

    assert asyncio.run(inside()) == "forkserver"


def test_while_another_thread_runs_workers_come_from_a_forkserver() -> None:
    """A forked child gets one thread: locks held by the others would stay locked."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert start_method(pool._context()) == "forkserver"
    finally:
        release.set()
        thread.join()


@linux_only
def test_once_the_s3_client_runs_its_native_threads_workers_come_from_a_forkserver() -> None:
    """A child forked without the client's runtime threads crashes at its first request."""
    code = (
        "import obstore\n"
        "from obstore.store import MemoryStore\n"
        "obstore.put(MemoryStore(), 'probe', b'1')\n"
        "from lizardctl.core.ingest import pool\n"
        "print(pool._context().get_start_method())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "forkserver"), out.stderr


@linux_only
def test_forked_workers_are_started_at_once_and_run_batches() -> None:
    code = (
        "import os\n"
        "from lizardctl.core.ingest import pool\n"
        "executor = pool.start_workers(2)\n"
        "pids = {p.pid for p in executor._processes.values()}\n"  # before any task ran
        "ran = executor.submit(os.getpid).result(timeout=30)\n"
        "executor.shutdown()\n"
        "print(len(pids), ran in pids)\n"
    )
    assert fresh_process(code) == "2 True"


@linux_only
def test_a_worker_knows_whether_its_owner_is_its_parent_or_grandparent() -> None:
    """The check that closes the race between a fork and PR_SET_PDEATHSIG."""
    parent = os.getppid()
    stat = Path(f"/proc/{parent}/stat").read_text()
    grandparent = int(stat.rsplit(")", 1)[1].split()[1])
    assert descends_from(parent)
    assert descends_from(grandparent)
    assert not descends_from(os.getpid())

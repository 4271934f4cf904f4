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


@linux_only
def test_workers_are_forked_before_any_thread_or_event_loop_exists() -> None:
    if pool.threads_running() != 1:
        pytest.skip("another thread is running in this test process")
    assert start_method(pool._context()) == "fork"


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
def test_after_an_s3_store_was_used_workers_come_from_a_forkserver() -> None:
    """obstore's runtime threads are not Python's: ``threading`` counts one thread, yet a
    child forked beside them hung and crashed its parent (the in-process e2e tests, which
    use S3 stores and then ingest with a pool, found it). In a fresh process, as here."""
    code = (
        "import threading, obstore\n"
        "from obstore.store import MemoryStore\n"
        "obstore.put(MemoryStore(), 'photo', b'bytes')\n"
        "from lizardctl.core.ingest import pool\n"
        "assert threading.active_count() == 1\n"
        "print(pool._context().get_start_method())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "forkserver"


@linux_only
def test_forked_workers_are_started_at_once_and_run_batches() -> None:
    if pool.threads_running() != 1:
        pytest.skip("another thread is running in this test process")
    executor = pool.start_workers(2)
    try:
        pids = {p.pid for p in executor._processes.values()}  # started before any task ran
        assert len(pids) == 2
        assert executor.submit(os.getpid).result(timeout=30) in pids
    finally:
        executor.shutdown()


@linux_only
def test_a_worker_knows_whether_its_owner_is_its_parent_or_grandparent() -> None:
    """The check that closes the race between a fork and PR_SET_PDEATHSIG."""
    parent = os.getppid()
    stat = Path(f"/proc/{parent}/stat").read_text()
    grandparent = int(stat.rsplit(")", 1)[1].split()[1])
    assert descends_from(parent)
    assert descends_from(grandparent)
    assert not descends_from(os.getpid())

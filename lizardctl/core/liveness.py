"""Is the process behind a run or a claim still alive? Only answerable on its own host."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import sys
import threading
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_name() -> str:
    """How this process signs runs, jobs and claims: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str) -> bool:
    """False only when ``host:pid`` names this host and that pid is gone; a worker on
    another host is presumed alive until its lease says otherwise."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return process_alive(int(pid))


def alive_since(
    worker: str,
    heartbeat_at: datetime | None,
    window_s: float,
    now: datetime,
    *,
    started_at: datetime | None = None,
) -> bool:
    """Is ``host:pid`` alive? On this host its process answers exactly; on another host it
    is presumed alive while its last heartbeat is younger than ``window_s``.

    With ``started_at`` (when the run or prune began), a process on this host that started
    later is another one that got the pid again: a crash long ago must not block for good.
    """
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if not process_alive(int(pid)):
            return False
        began = process_started(int(pid))
        return started_at is None or began is None or began <= started_at.timestamp() + _SLACK_S
    return heartbeat_at is not None and now - heartbeat_at <= timedelta(seconds=window_s)


_SLACK_S = 5.0
"""Clock granularity between the kernel's start time (boot time has 1 s resolution) and ours."""


def process_started(pid: int) -> float | None:
    """When process ``pid`` started, in epoch seconds; None where /proc cannot say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
        ticks = int(fields[19])  # field 22, starttime; the split starts at field 3
    except (OSError, IndexError, ValueError):
        return None
    boot = _boot_time()
    return None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        lines = Path("/proc/stat").read_bytes().splitlines()
        return next(float(line.split()[1]) for line in lines if line.startswith(b"btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def belong_to(owner: int) -> None:
    """Make this worker process die with ``owner``, the process that started its pool.

    Called first thing in a pool worker, so that no worker outlives a command killed with
    SIGKILL (holding the SQLite file or a PostgreSQL connection). The kernel sends SIGKILL
    when the parent dies (Linux ``PR_SET_PDEATHSIG``); if the owner died before that was
    asked for, this process has been re-parented already and exits at once.
    """
    _die_with_parent()
    if os.getppid() != owner:
        _watch(owner)
    if not descends_from(owner):
        os._exit(1)


def _watch(owner: int) -> None:
    """Exit when ``owner`` does, for a worker forked by a forkserver.

    Such a worker's parent is the forkserver, which outlives the owner: every worker holds
    the pipe end whose closing would tell the forkserver to exit, so neither would ever
    go. A thread waits on a pidfd of the owner instead (Linux 5.3+; without one, the
    worker relies on the pool's own shutdown).
    """
    try:
        fd = os.pidfd_open(owner)
    except (AttributeError, OSError):
        return

    def wait() -> None:
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="owner-watch", daemon=True).start()


def _die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux; elsewhere a no-op).

    The signal follows the parent *thread* that forked: pools are forked from the main
    thread or from a forkserver's, which exits with its owner.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def descends_from(owner: int) -> bool:
    """Is ``owner`` this process's parent (fork) or grandparent (forkserver)?"""
    parent = os.getppid()
    if parent == owner:
        return True
    try:
        stat = Path(f"/proc/{parent}/stat").read_bytes()
    except OSError:
        return sys.platform != "linux"  # no /proc: trust the pool
    # Fields after the command name, which may hold spaces and parentheses: state, ppid.
    return int(stat.rsplit(b")", 1)[1].split()[1]) == owner

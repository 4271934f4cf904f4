"""Is the process behind a run or a claim still alive? Only answerable on its own host."""

from __future__ import annotations

import os
import socket
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

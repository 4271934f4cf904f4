"""Is the process behind a run or a claim still alive? Only answerable on its own host."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta


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


def alive_since(worker: str, heartbeat_at: datetime | None, window_s: float, now: datetime) -> bool:
    """Is ``host:pid`` alive? On this host its process answers exactly; on another host it
    is presumed alive while its last heartbeat is younger than ``window_s``."""
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return process_alive(int(pid))
    return heartbeat_at is not None and now - heartbeat_at <= timedelta(seconds=window_s)

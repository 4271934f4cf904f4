"""Reading files the user names and writing the ones they ask for, with failures that say
which file and why."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from lizardctl.core.errors import EnvironmentFailure, UsageError


def read_user_file(path: Path) -> bytes:
    """Read a file named on the command line: missing is a usage error, unreadable an
    environment one (exit 3), so a cron job can tell a typo from a permission problem."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path}: is a directory, expected a file") from exc
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise EnvironmentFailure(f"{path}: permission denied") from exc
        raise EnvironmentFailure(f"{path}: cannot read: {exc.strerror or exc}") from exc


_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TEMPORARY_ATTEMPTS = 100


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path`` under an unpredictable name. ``O_CREAT|O_EXCL`` never
    opens what is already there, a symlink planted by someone else included (nor follows
    it: ``O_NOFOLLOW``), so nobody can redirect the write by guessing the name."""
    for _ in range(_TEMPORARY_ATTEMPTS):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(8)}.part")
        try:
            return os.open(candidate, _TEMPORARY_FLAGS, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


@contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text file that appears under ``path`` only once complete: a failed or interrupted
    export never leaves a truncated file for the next job to pick up.

    The bytes go to a fresh temporary in the same folder, are made durable, and are renamed
    over ``path``. Renaming replaces ``path`` itself: when ``path`` is a symlink, the link
    is replaced by the new file and whatever it pointed at is never written. The temporary
    is removed whatever goes wrong."""
    try:
        fd, temporary = _create_temporary(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finished = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(path)
        finished = True
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if not finished:
            temporary.unlink(missing_ok=True)

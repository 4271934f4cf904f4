"""Reading files the user names, with failures that say which file and why."""

from __future__ import annotations

import errno
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


@contextmanager
def atomic_output(path: Path) -> Iterator[TextIO]:
    """A text file that appears under ``path`` only once complete: a failed or interrupted
    export never leaves a truncated file for the next job to pick up."""
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        partial.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)

"""A small tmpfs of a test's own: a photo store that fills up or turns read-only on demand.

Mounting needs root (or CAP_SYS_ADMIN). Where it is refused the test is skipped with the
reason, except under ``CI=true``, where the durability tests must run. Every mount is
unmounted when the test ends, whatever happened.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import IN_CI


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """``path`` as a tmpfs of ``size`` (``mount -o size=``) until the block ends."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    except FileNotFoundError:
        done = None
    if done is None or done.returncode != 0:
        reason = f"cannot mount a tmpfs: {done.stderr.strip() if done else 'no mount(8)'}"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def remount(path: Path, options: str) -> None:
    """Change a mounted tmpfs's options: ``size=...``, ``ro`` or ``rw``."""
    done = _mount("-o", f"remount,{options}", str(path))
    assert done.returncode == 0, done.stderr

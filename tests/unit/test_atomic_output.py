"""``atomic_output``: complete or absent, through a temporary nobody can redirect."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from lizardctl.core.errors import EnvironmentFailure, UsageError
from lizardctl.core.files import atomic_output


def test_writes_complete_file_with_default_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    old = os.umask(0o022)
    try:
        with atomic_output(target) as out:
            out.write("a,b\n")
            assert not target.exists()  # nothing under the final name before the end
            temporaries = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
            assert len(temporaries) == 1 and temporaries[0].name.startswith(".out.csv.")
    finally:
        os.umask(old)
    assert target.read_text() == "a,b\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert list(tmp_path.iterdir()) == [target]


def test_failure_in_the_writer_removes_the_temporary_and_keeps_the_old_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("yesterday\n")
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        out.write("half")
        raise RuntimeError("database went away")
    assert target.read_text() == "yesterday\n"
    assert list(tmp_path.iterdir()) == [target]


def test_every_name_taken_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    monkeypatch.setattr("lizardctl.core.files.secrets.token_hex", lambda _n: "guessed")
    (tmp_path / ".out.csv.guessed.part").symlink_to(victim)
    with pytest.raises(UsageError, match="cannot write"), atomic_output(tmp_path / "out.csv"):
        pytest.fail("must not be reached")
    assert victim.read_text() == "precious\n"


def test_an_error_of_whoever_feeds_it_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    """A lost database connection is an OSError too: it must stay the database's, not
    become "cannot write FILE" (nor the reverse, issue 11: "-o" errors named the database)."""
    target = tmp_path / "out.csv"
    with pytest.raises(ConnectionResetError), atomic_output(target) as out:
        out.write("a,b\n")
        raise ConnectionResetError(104, "Connection reset by peer")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_an_environment_failure_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lizardctl.core.files.os.fsync", full)
    target = tmp_path / "out.csv"
    with pytest.raises(EnvironmentFailure) as caught, atomic_output(target) as out:
        out.write("a,b\n")
    assert str(caught.value) == f"cannot write {target}: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_path_under_a_file_is_a_usage_error_naming_the_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(UsageError) as caught, atomic_output(plain / "x.csv"):
        pytest.fail("must not be reached")
    assert str(caught.value) == (
        f"cannot write {plain / 'x.csv'}: Not a directory (a part of the path is not a folder)"
    )

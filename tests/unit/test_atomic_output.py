"""``atomic_output``: complete or absent, through a temporary nobody can redirect."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lizardctl.core.errors import UsageError
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

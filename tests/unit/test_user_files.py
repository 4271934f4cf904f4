"""``open_user_file``: the size cap holds while reading, not only when the size is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lizardctl.core.files import FileTooLarge, open_user_file, read_user_file


def test_a_file_that_grows_after_the_check_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "growing.csv"
    path.write_bytes(b"x" * 10)
    with open_user_file(path, 20) as handle:
        with path.open("ab") as writer:  # the sender is still writing
            writer.write(b"y" * 30)
        with pytest.raises(FileTooLarge, match="grew while read, over the limit of 20 bytes"):
            handle.read()


def test_a_file_that_says_it_is_empty_is_capped_too() -> None:
    """/proc files are regular files of size 0 whatever they hold."""
    with pytest.raises(FileTooLarge, match="grew while read"):
        read_user_file(Path("/proc/self/status"), 5)


def test_exactly_the_limit_is_read_whole_and_seekable(tmp_path: Path) -> None:
    path = tmp_path / "exact.json"
    path.write_bytes(b"0123456789")
    assert read_user_file(path, 10) == b"0123456789"
    with open_user_file(path, 10) as handle:
        handle.seek(-4, 2)
        assert handle.read() == b"6789"

"""How a worker reads one file: once when its size is right, on when it grew, never past
the limit. A file's size can change between its ``fstat`` and its read (a camera still
writing it); the read must neither stop at the stale size nor run past the limit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lizardctl.core.ingest import batch
from lizardctl.core.ingest.batch import _read_file, _Refused
from lizardctl.core.vocabulary import Reason


class _ReadCounter:
    def __init__(self) -> None:
        self.calls = 0
        self.read = os.read

    def __call__(self, fd: int, n: int) -> bytes:
        self.calls += 1
        return self.read(fd, n)


def _stale_fstat(size: int) -> object:
    """An ``os.fstat`` that reports the size the file had before it grew."""
    real = os.fstat

    def fstat(fd: int) -> os.stat_result:
        info = list(real(fd))
        info[6] = size  # st_size
        return os.stat_result(info)

    return fstat


def test_a_file_of_the_size_fstat_gave_is_read_in_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 5000)
    reads = _ReadCounter()
    monkeypatch.setattr(batch.os, "read", reads)
    data, file_id = _read_file(str(path), limit=10_000)
    assert data == b"x" * 5000
    assert file_id[2] == 5000
    assert reads.calls == 1


def test_a_file_that_grew_after_fstat_is_read_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(bytes(range(256)) * 40)
    monkeypatch.setattr(batch.os, "fstat", _stale_fstat(100))
    data, _ = _read_file(str(path), limit=20_000)
    assert data == bytes(range(256)) * 40


def test_a_file_that_grew_past_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(b"x" * 10_000)
    monkeypatch.setattr(batch.os, "fstat", _stale_fstat(100))
    with pytest.raises(_Refused, match="grew while read") as refused:
        _read_file(str(path), limit=1000)
    assert refused.value.reason is Reason.TOO_LARGE


def test_an_empty_file_is_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"")
    assert _read_file(str(path), limit=10)[0] == b""

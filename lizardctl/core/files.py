"""Reading files the user names and writing the ones they ask for, with failures that say
which file and why."""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from lizardctl.core.errors import EnvironmentFailure, LizardError, UsageError

_MB = 1_000_000
SCHEMA_FILE_BYTES = _MB
"""``schema add --file``: a schema file; the built-in ones are under 3 KB."""
CAMERAS_CSV_BYTES = 16 * _MB
"""``camera import`` of CSV: ~100,000 cameras, a few times more than any fleet; a bigger
file is the wrong file."""
SHEET_CSV_BYTES = 1_000 * _MB
"""``owner/violation import`` of CSV: streamed row by row, so only a bound on the time;
~10 million owners."""
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
"""Opening cannot block on a FIFO nor take a terminal before ``fstat`` says what it is.
Links are followed: a user may name a link to a file; what it leads to is checked."""


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, for a refusal message."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def user_file_error(path: Path, exc: OSError) -> LizardError:
    """Missing is the user's typo (exit 2); unreadable is the environment's fault (exit 3),
    so a cron job can tell a typo from a permission problem."""
    if isinstance(exc, FileNotFoundError):
        return UsageError(f"{path}: no such file")
    if isinstance(exc, NotADirectoryError):
        return UsageError(f"{path}: no such file (a part of the path is not a folder)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return EnvironmentFailure(f"{path}: permission denied")
    return EnvironmentFailure(f"{path}: cannot read: {exc.strerror or exc}")


class FileTooLarge(UsageError):
    """A file named on the command line is over its size limit (the ``too-large`` reason
    of a shot, when ``schema check`` judges a sample)."""


def _too_large(path: Path, what: str, limit: int) -> FileTooLarge:
    return FileTooLarge(
        f"{path}: {what}, over the limit of {limit:,} bytes for this file; not read"
    )


class _CappedFile(io.RawIOBase):
    """A regular file that refuses to be read past ``limit`` bytes: it may grow after the
    size was checked (a file still being written, a /proc file that says 0)."""

    def __init__(self, fd: int, path: Path, limit: int) -> None:
        super().__init__()
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._path, self._limit = path, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        room = max(self._limit + 1 - self._file.tell(), 0)
        with memoryview(buffer) as view:
            count = self._file.readinto(view[:room]) if room else 0
        if self._file.tell() > self._limit:
            raise _too_large(self._path, "grew while read", self._limit)
        return count or 0

    def close(self) -> None:
        self._file.close()
        super().close()


@contextmanager
def open_user_file(path: Path, limit: int) -> Iterator[BinaryIO]:
    """Open a file named on the command line for reading, checked before a byte is read.

    Only a regular file is read (a FIFO would block, ``/dev/zero`` never ends); one over
    ``limit`` bytes is refused from its size, and reading stops at ``limit`` whatever the
    size said. Refusals are usage errors (exit 2) naming the file. The file object is
    seekable, so zipfile and openpyxl can read what was checked."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise user_file_error(path, exc) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(
                f"{path}: {file_kind(info.st_mode)}, not read (only regular files are)"
            )
        if info.st_size > limit:
            raise _too_large(path, f"{info.st_size:,} bytes", limit)
        raw = _CappedFile(fd, path, limit)
    except BaseException:
        os.close(fd)
        raise
    with io.BufferedReader(raw) as handle:
        yield handle  # type: ignore[misc]


def read_user_file(path: Path, limit: int) -> bytes:
    """The whole of a file named on the command line (see ``open_user_file``)."""
    with open_user_file(path, limit) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise user_file_error(path, exc) from exc


@contextmanager
def open_user_text(path: Path, limit: int) -> Iterator[TextIO]:
    """``open_user_file`` as UTF-8 text (a byte-order mark skipped), lines left as they are
    for the csv module."""
    with open_user_file(path, limit) as handle:
        yield io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")


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


_PATH_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP}
)
"""Errors of writing that mean the path named is wrong (exit 2); others, such as a full
disk or a folder we may not write, are the environment's (exit 3)."""


def output_error(path: Path, exc: OSError) -> LizardError:
    """The one line for a file we were asked to write and could not: it names that file,
    never the database."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOTDIR:
        reason += " (a part of the path is not a folder)"
    message = f"cannot write {path}: {reason}"
    if exc.errno in _PATH_ERRNOS:
        return UsageError(message)
    return EnvironmentFailure(message)


class _OutputText(io.TextIOWrapper):
    """The text file of ``atomic_output``: its own write failures name the file, and only
    they, so an error of the database that feeds it is still reported as the database's."""

    path: Path

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError as exc:
            raise output_error(self.path, exc) from exc


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
        raise output_error(path, exc) from exc
    finished = False
    try:
        with _OutputText(
            io.BufferedWriter(io.FileIO(fd, "w")), encoding="utf-8", newline=""
        ) as out:
            out.path = path
            yield out
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise output_error(path, exc) from exc
        try:
            temporary.replace(path)
        except OSError as exc:
            raise output_error(path, exc) from exc
        finished = True
    finally:
        if not finished:
            temporary.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` the way ``atomic_output`` does: a fresh temporary beside
    it (made durable unless ``durable`` is False, as for a cache), renamed over ``path``."""
    try:
        fd, temporary = _create_temporary(path)
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise output_error(path, exc) from exc

"""Files named on the command line are hostile too (issue 11, the leftovers of item 2/3).

Reproductions: ``violation import /dev/zero`` read to EOF forever; a FIFO or a link to
/dev/zero named ``x.json`` or ``x.csv`` hung ``schema add --file``, ``schema check``,
``camera import``, ``owner import`` and ``violation import`` or ate memory; ``camera
import`` read any size of CSV whole. Each must end at once with exit 2 and one line
naming the file (``schema check`` judges each sample: ``unreadable`` or ``too-large``).
The /dev/zero cases run as real processes with a memory ceiling, so a regression fails
instead of eating the machine; a FIFO left unopened by the code under test is opened
for writing after a few seconds by the test itself, so a regression fails, never hangs.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lizardctl.core.files import CAMERAS_CSV_BYTES, SCHEMA_FILE_BYTES
from lizardctl.core.spreadsheets import xlsx_available
from tests.e2e.conftest import Cli, Outcome, invoke
from tests.e2e.test_ingest_hostile import NOT_READ, WAIT_S, sparse
from tests.e2e.test_ingest_processes import lizardctl

MEMORY_CEILING = 2 << 30
"""Address space of a child: far above what a refused file needs, far below /dev/zero."""

COMMANDS: dict[str, tuple[str, ...]] = {
    "schema add": ("schema", "add", "camerus9", "--file"),
    "schema add --replay": ("schema", "add", "camerus1", "--replay", "--dry-run", "--file"),
    "camera import": ("camera", "import"),
    "owner import": ("owner", "import"),
    "violation import": ("violation", "import"),
}
"""Commands that read one file the user names, last on the line."""
SUFFIX = {"schema add": ".json", "schema add --replay": ".json"}


def lizard(db_url: str, cwd: Path, *args: str | Path) -> tuple[int, str]:
    """``python -m lizardctl ARGS`` as a user runs it: exit code and stderr. Its address
    space is capped as soon as it starts, long before it has imported enough to read."""
    process = lizardctl(db_url, cwd, *args)
    try:
        resource.prlimit(process.pid, resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


@contextmanager
def fifo(path: Path) -> Iterator[Path]:
    """A FIFO nobody writes to; after a few seconds the test opens and closes its writing
    end once, so code that blocks on it sees an empty file instead of hanging the test."""
    os.mkfifo(path)
    done = threading.Event()

    def release() -> None:
        while not done.wait(3):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader yet (ENXIO): the code did not block on it
                continue

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        done.set()
        thread.join()


def one_error(out: Outcome) -> str:
    assert out.code == 2, out.output
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["violation import", "camera import", "schema add"])
def test_dev_zero_is_refused_by_a_real_process(
    command: str, sqlite_url: str, tmp_path: Path
) -> None:
    """The reproduction: ``violation import /dev/zero`` read forever; so did a link to it."""
    assert invoke(["--db", sqlite_url, "db", "upgrade"]).code == 0
    named: Path = Path("/dev/zero")
    if command != "violation import":
        named = tmp_path / f"x{SUFFIX.get(command, '.csv')}"
        named.symlink_to("/dev/zero")
    code, stderr = lizard(sqlite_url, tmp_path, *COMMANDS[command], named)
    assert code == 2, stderr
    assert stderr.splitlines() == [f"Error: {named}: a device, {NOT_READ}"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_fifo_is_refused_at_once(command: str, cli: Cli, tmp_path: Path) -> None:
    with fifo(tmp_path / f"x{SUFFIX.get(command, '.csv')}") as named:
        out = cli(*COMMANDS[command], named)
    assert one_error(out) == f"Error: {named}: a FIFO, {NOT_READ}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_folder_and_dev_zero_link_are_refused(command: str, cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / f"folder{SUFFIX.get(command, '.csv')}"
    folder.mkdir()
    assert one_error(cli(*COMMANDS[command], folder)) == f"Error: {folder}: a folder, {NOT_READ}"
    link = tmp_path / f"zero{SUFFIX.get(command, '.csv')}"
    link.symlink_to("/dev/zero")
    assert one_error(cli(*COMMANDS[command], link)) == f"Error: {link}: a device, {NOT_READ}"


@pytest.mark.skipif(not xlsx_available(), reason="openpyxl not installed")
def test_xlsx_fifo_is_refused_at_once(cli: Cli, tmp_path: Path) -> None:
    with fifo(tmp_path / "owners.xlsx") as named:
        out = cli("owner", "import", named)
    assert one_error(out) == f"Error: {named}: a FIFO, {NOT_READ}"


@pytest.mark.parametrize(
    ("command", "limit"),
    [("camera import", CAMERAS_CSV_BYTES), ("schema add", SCHEMA_FILE_BYTES)],
)
def test_files_over_their_limit_are_refused_unread(
    command: str, limit: int, cli: Cli, tmp_path: Path
) -> None:
    """``camera import`` read any CSV whole: now one byte over its limit is refused."""
    big = sparse(tmp_path / f"big{SUFFIX.get(command, '.csv')}", limit + 1)
    assert one_error(cli(*COMMANDS[command], big)) == (
        f"Error: {big}: {limit + 1:,} bytes, over the limit of {limit:,} bytes for this file; "
        "not read"
    )


def test_a_link_to_a_regular_file_is_read(cli: Cli, tmp_path: Path) -> None:
    """Only what a name leads to is checked: a link the user names to a good file works."""
    real = tmp_path / "violations.csv"
    real.write_text("id,name,fine\nde163a57-fd92-47a6-9b78-82bb0d41be71,Speeding,500\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    out = cli("violation", "import", link)
    assert out.code == 0, out.output


def test_schema_check_judges_each_hostile_sample(cli: Cli, tmp_path: Path) -> None:
    """``schema check`` reports each sample; hostile ones are refused, never read."""
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    big = sparse(tmp_path / "big.json", 1_000_001)
    with fifo(tmp_path / "pipe.json") as pipe:
        out = cli("schema", "check", pipe, link, big, "--json")
    assert out.code == 1, out.output
    found = {r["file"]: (r["reason"], r["errors"]) for r in out.json()}
    assert found == {
        str(pipe): ("unreadable", [f"{pipe}: a FIFO, {NOT_READ}"]),
        str(link): ("unreadable", [f"{link}: a device, {NOT_READ}"]),
        str(big): (
            "too-large",
            [f"{big}: 1,000,001 bytes, over the limit of 1,000,000 bytes for this file; not read"],
        ),
    }


@pytest.mark.parametrize("command", ["export", "fines"])
def test_output_into_a_path_under_a_file_names_that_path(
    command: str, cli: Cli, tmp_path: Path
) -> None:
    """``export -o /dev/null/x`` said "database ... unreachable: Not a directory" (exit 3)."""
    out = cli(command, "-o", "/dev/null/x")
    assert one_error(out) == (
        "Error: cannot write /dev/null/x: Not a directory (a part of the path is not a folder)"
    )
    assert list(tmp_path.glob(".x.*")) == []

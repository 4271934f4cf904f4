"""Help and messages read like a person wrote them (issue 16, item 8), as a user sees them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from lizardctl.commands._runtime import humane_help
from lizardctl.commands.app import app
from lizardctl.core.vocabulary import Reason
from tests.e2e.conftest import Cli, invoke
from tests.e2e.test_cli_basics import COMMANDS

TYPE_MARKER = re.compile(r"<(bool|str|int|float|path|UUID|datetime|list\[[^\]]*\])[^>]*>")
CAPS = r"\[?[A-Z][A-Z0-9_/]*\]?(\.\.\.)?"
PLACEHOLDER = re.compile(rf"\[[a-z0-9|_-]+\]|{CAPS}( {CAPS})*")
"""``[table|tsv|json]``, ``N``, ``PATH...``, ``[NAME] FILE...``."""
DOUBLED_WORD = re.compile(r"\b([a-z]+) \1\b")
TERMINAL_80 = {"COLUMNS": "80", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _help(*command: str) -> str:
    out = invoke([*command, "--help"], env=TERMINAL_80)
    assert out.code == 0, out.output
    return ANSI.sub("", out.stdout)


def _words(text: str) -> str:
    """The help's prose without the panel borders, lines joined."""
    return " ".join(line.strip(" │╭╮╰╯─") for line in text.splitlines())


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "root")
def test_help_shows_no_python_types_or_doubled_words(command: tuple[str, ...]) -> None:
    text = _help(*command)
    assert not TYPE_MARKER.search(text), TYPE_MARKER.search(text)
    assert "{" not in text.splitlines()[1], "usage shows arguments as {name}"
    assert not DOUBLED_WORD.search(_words(text)), DOUBLED_WORD.search(_words(text))


def _params(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    found = [(" ".join(path), param) for param in command.params]
    for name, sub in getattr(command, "commands", {}).items():
        found += _params(sub, (*path, name))
    return found


def test_every_metavar_is_a_placeholder_in_capitals_or_a_short_choice() -> None:
    root = humane_help(typer.main.get_command(app))
    for where, param in _params(root):
        if getattr(param, "is_flag", False):
            assert param.metavar == "", (where, param.name)
        else:
            assert PLACEHOLDER.fullmatch(param.metavar), (where, param.name, param.metavar)


def test_lists_of_reason_codes_are_not_split_mid_word() -> None:
    text = _words(_help("rejects"))
    for reason in Reason:
        assert re.search(rf"(?<![\w-]){re.escape(reason.value)}(?![\w-])", text), reason.value
    assert "REASON" in text


def test_command_lists_show_whole_sentences() -> None:
    text = _words(_help())
    assert "--all every run) with their reason and message, to fix and re-run." in " ".join(
        text.split()
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_db_upgrade_says_when_nothing_changed(cli: Cli, db_url: str, tmp_path: Path) -> None:
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    first = cli("db", "upgrade", db=fresh)
    assert first.code == 0 and "upgraded from empty to " in first.stderr, first.output
    again = cli("db", "upgrade", db=fresh)
    assert again.code == 0 and "nothing to do" in again.stderr, again.output
    assert "upgraded" not in again.stderr
    assert cli("db", "upgrade", "--json", db=fresh).json()["changed"] is False


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_json_error_position_reads_once(cli: Cli, tmp_path: Path) -> None:
    """Python's JSON parser says "Unterminated string starting at"; we add "at byte N"."""
    sample = tmp_path / "cut-off.json"
    sample.write_bytes(b'{"plate": "1ABC')
    out = cli("schema", "check", sample)
    assert out.code == 1
    assert "Unterminated string starting at byte 10" in out.stdout, out.output
    assert "at at" not in out.output

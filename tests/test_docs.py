"""The README stays true: CI runs its test command, and it names every command."""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.test_cli_basics import COMMANDS

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quick_start_has_two_commands() -> None:
    assert len(_quick_start_commands()) == 2


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = _quick_start_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_every_command_is_in_the_readme() -> None:
    missing = [" ".join(c) for c in COMMANDS if f"`{' '.join(c)}" not in README]
    assert missing == []

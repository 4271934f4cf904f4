"""Start-up stays light: building the CLI imports no database, migration or image library.

Every command module is imported to build the CLI, even for ``lizardctl --version``, and
every ``lizardctl ingest`` process on a busy host pays for what they import. These tests
look at what a fresh interpreter has imported, not at how long it took.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "alembic", "pydantic", "PIL")


def _imported_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy packages it left imported."""
    report = f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{code}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_importing_the_cli_imports_nothing_heavy() -> None:
    assert _imported_after("import lizardctl.commands.app") == []


@pytest.mark.parametrize("args", [["--version"], ["--help"]], ids=" ".join)
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    code = f"from lizardctl.__main__ import main\nassert main({args!r}) == 0"
    assert _imported_after(code) == []

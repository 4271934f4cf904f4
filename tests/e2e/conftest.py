"""Running the real command line in-process, the way a user's shell would see it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lizardctl.__main__ import main
from tests.dumps import SharedDumps


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


Cli = Callable[..., Outcome]


def invoke(args: list[str], env: dict[str, str] | None = None) -> Outcome:
    """Run ``lizardctl ARGS`` through the real entry point with captured streams."""
    runner = CliRunner()
    with runner.isolation(env=env) as (out, err, _):
        code = main(args)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    outcome = Outcome(code, stdout, stderr)
    assert "Traceback" not in outcome.output, outcome.output
    return outcome


@pytest.fixture
def cli(migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli("camera", "list")`` against this test's database (``db_url``, upgraded as by
    ``lizardctl db upgrade``), from inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIZARD_DB_URL", raising=False)
    monkeypatch.delenv("LIZARD_STORE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # review next's cache

    def run(*args: str | Path, db: str | None = migrated_db_url) -> Outcome:
        prefix = ["--db", db] if db else []
        return invoke(prefix + [str(a) for a in args])

    return run


@pytest.fixture(scope="session")
def shared_dumps(tmp_path_factory: pytest.TempPathFactory) -> SharedDumps:
    """This process's generated dumps, lent to tests that only read them (``tests/dumps.py``)."""
    return SharedDumps(tmp_path_factory.mktemp("shared-dumps"))

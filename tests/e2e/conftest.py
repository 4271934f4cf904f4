"""Running the real command line in-process, the way a user's shell would see it, against
a photo store in a folder or, for tests marked ``both_stores``, in an S3 bucket too."""

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
from tests.s3server import S3Location


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

both_stores = pytest.mark.parametrize(
    "store_kind", ["folder", pytest.param("s3", marks=pytest.mark.s3)], indirect=True
)
"""Run a test with its photo store in a folder and in a bucket prefix on SeaweedFS: for the
tests that prove something about where photos live (the rest run on a folder only)."""


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
def store_kind(request: pytest.FixtureRequest) -> str:
    """``folder``, or what ``both_stores`` parametrizes: ``folder`` or ``s3``."""
    return str(getattr(request, "param", "folder"))


@pytest.fixture
def s3_location(
    store_kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> S3Location | None:
    """For the ``s3`` kind, a fresh ``s3://BUCKET/PREFIX`` on this process's SeaweedFS with
    its AWS variables set for the test (the in-process CLI and every subprocess read them,
    as an operator's shell would have them); None for a folder."""
    if store_kind != "s3":
        return None
    location: S3Location = request.getfixturevalue("s3_store")
    for name, value in location.env.items():
        monkeypatch.setenv(name, value)
    return location


@pytest.fixture
def cli(
    migrated_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_location: S3Location | None,
) -> Cli:
    """``cli("camera", "list")`` against this test's database (``db_url``, upgraded as by
    ``lizardctl db upgrade``), from inside tmp_path; for the ``s3`` kind, ``LIZARD_STORE``
    names the test's bucket prefix, so a command that names no store uses it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIZARD_DB_URL", raising=False)
    monkeypatch.delenv("LIZARD_STORE", raising=False)
    if s3_location is not None:
        monkeypatch.setenv("LIZARD_STORE", s3_location.url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # review next's cache

    def run(*args: str | Path, db: str | None = migrated_db_url) -> Outcome:
        prefix = ["--db", db] if db else []
        return invoke(prefix + [str(a) for a in args])

    return run


@pytest.fixture(scope="session")
def shared_dumps(tmp_path_factory: pytest.TempPathFactory) -> SharedDumps:
    """This process's generated dumps, lent to tests that only read them (``tests/dumps.py``)."""
    return SharedDumps(tmp_path_factory.mktemp("shared-dumps"))

"""The built wheel works on its own: migrations and built-in schemas ship inside it."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    """setuptools is given an explicit package list (for the migrations mapping): keep it whole."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "lizardctl").rglob("__init__.py")
    }
    assert on_disk <= listed
    assert {"lizardctl.migrations", "lizardctl.migrations.versions"} <= listed


@pytest.mark.slow
def test_installed_wheel_migrates_from_any_directory(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = wheels.glob("lizardctl-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
    )
    # Dependencies come from this environment; lizardctl itself only from the wheel.
    venv_site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (venv_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LIZARD_DB_URL", "PYTHONPATH")}
    where = subprocess.check_output(
        [str(python), "-c", "import lizardctl; print(lizardctl.__file__)"],
        cwd=elsewhere,
        text=True,
        env=env,
    )
    assert where.startswith(str(venv)), where

    db = f"sqlite+aiosqlite:///{tmp_path / 'wheel.db'}"
    lizardctl = venv / "bin" / "lizardctl"
    upgraded = subprocess.run(
        [str(lizardctl), "--db", db, "db", "upgrade"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    listed = subprocess.run(
        [str(lizardctl), "--db", db, "schema", "list", "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert {s["name"] for s in json.loads(listed.stdout)} >= {"camerus1", "camerus2", "camerus3"}
    module = subprocess.run(
        [str(python), "-m", "lizardctl", "--version"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert module.stdout.startswith("lizardctl ")


def test_a_source_checkout_finds_its_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m lizardctl`` in the repository root imports the checkout, whose package
    has no ``lizardctl.migrations``: the README's quick start runs exactly that way."""
    from lizardctl.core.db import migrate

    def not_installed(name: str) -> None:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(migrate, "files", not_installed)
    assert migrate._script_location() == ROOT / "migrations"
    assert migrate.head_revisions()

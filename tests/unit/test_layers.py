"""The pipeline's home has no upward arrow: nothing under ``core/ingest/`` imports a
service or a command, so the pipeline reads (and runs, in a worker) on its own.

Read from the source, not from ``sys.modules``: an import inside a function or under
``TYPE_CHECKING`` is an arrow too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lizardctl.core.ingest

FORBIDDEN = ("lizardctl.core.services", "lizardctl.commands")
INGEST = Path(lizardctl.core.ingest.__file__).parent


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in ``source`` names, anywhere."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def upward(source: str) -> list[str]:
    return sorted(
        name
        for name in imported_modules(source)
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    )


@pytest.mark.parametrize("module", sorted(INGEST.glob("*.py")), ids=lambda p: p.name)
def test_the_ingest_pipeline_imports_no_service_and_no_command(module: Path) -> None:
    assert upward(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from lizardctl.core.services.schemas import compile_row",
        "import lizardctl.commands.ingest",
        "from lizardctl.core import services",
        "def f():\n    from lizardctl.commands._runtime import echo",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from lizardctl.core.services.ingest import IngestService",
    ],
)
def test_the_check_sees_every_form_of_an_upward_import(source: str) -> None:
    assert upward(source) != []


def test_the_check_lets_downward_imports_pass() -> None:
    assert upward("from lizardctl.core.schema.stored import compile_row") == []

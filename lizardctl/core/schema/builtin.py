"""The camera types shipped with lizardctl, as schema files inside the package.

They are plain schema files so that they go through the same registration path as any
user's schema: nothing about camerus1-3 is special-cased in code.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def builtin_schema_files() -> dict[str, Path]:
    """Camera type name -> its shipped schema file, e.g. ``{"camerus1": .../camerus1.json}``.

    setuptools installs the package unzipped, so the resources are real paths on disk.
    """
    folder = files("lizardctl").joinpath("schemas")
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }

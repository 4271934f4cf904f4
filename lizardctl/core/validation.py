"""Pydantic validation errors rendered as ``path: message`` for people."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from lizardctl.core.schema.errors import describe_error


def describe_validation_error(
    exc: ValidationError, aliases: Mapping[str, str] | None = None
) -> str:
    """Every error of ``exc`` as ``field.path: message``, joined with ``; ``.

    ``aliases`` renames fields to what the user typed (``camera_type`` is the CSV's ``type``).
    """
    renames = aliases or {}
    lines = []
    for error in exc.errors(include_url=False):
        error["loc"] = tuple(renames.get(str(part), part) for part in error["loc"])
        lines.append(describe_error(error))
    return "; ".join(lines)

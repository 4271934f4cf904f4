"""Dialect-specific statements the repositories need, chosen by the session's dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(dialect: str, model: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING``: idempotent inserts for re-runs and races."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing()

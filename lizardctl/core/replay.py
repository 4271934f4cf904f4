"""Checking stored shots against a schema in worker processes, for ``schema add --replay``.

A module of its own so that the workers' forkserver imports the schema compiler and
nothing else (no database, no CLI): see ``rehash.context``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lizardctl.core.schema import CompiledSchema

Failure = tuple[str, list[tuple[str, str]]]
"""A failing stored shot: its case id as text, and (field path, message) per problem."""


def replay_batch(
    schema: CompiledSchema, rows: Sequence[tuple[str, str]], now: datetime
) -> list[Failure]:
    """The failures among ``(case id, raw JSON)`` rows: one batch of a replay, run in the
    caller's process or in a worker (``schema`` pickles as its document; a worker compiles
    it once and keeps it)."""
    problems_of = schema.json_problems
    failures = []
    for case_id, raw in rows:
        problems = problems_of(raw, now=now)
        if problems:
            failures.append((case_id, problems))
    return failures

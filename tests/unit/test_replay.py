"""Replaying stored shots against a new schema: the per-shot check and the tally that
groups failures by field path in bounded memory, whatever the metadata holds."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from lizardctl.core.schema import compile_schema, parse_schema
from lizardctl.core.services.schemas import (
    MAX_FAILURE_PATHS,
    MAX_PATH_CHARS,
    ReplayTally,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SCHEMA = {
    "layout": {
        "plate": {"type": "string"},
        "camera": "uuid",
        "violation": "uuid",
        "value": "string",
        "skill": {"type": "int", "ge": 1, "le": 5},
        "at": "datetime",
    },
    "mapping": {
        "plate": "plate",
        "camera_id": "camera",
        "violation_id": "violation",
        "violation_value": "value",
        "skill": "skill",
        "occurred_at": "at",
    },
}
GOOD = {
    "plate": "1ABC2377",
    "camera": str(uuid.UUID(int=1)),
    "violation": str(uuid.UUID(int=2)),
    "value": "62km/h",
    "skill": 2,
    "at": "2026-11-30T10:00:00+00:00",
}


def problems(raw: dict[str, object] | str) -> list[tuple[str, str]]:
    schema = compile_schema("t", 1, parse_schema(json.dumps(SCHEMA).encode(), suffix=".json"))
    text = raw if isinstance(raw, str) else json.dumps(raw)
    return schema.json_problems(text, now=NOW)


def test_a_valid_shot_has_no_problems() -> None:
    assert problems(GOOD) == []


def test_layout_paths_come_from_the_error_location() -> None:
    """A hostile key that looks like a path and a message cannot fake either."""
    hostile = {**GOOD, "skill": 9, "x: y.z": 1}
    assert problems(hostile) == [
        ("skill", "skill: must be <= 5, got 9"),
        ("x: y.z", "x: y.z: unexpected key, got 1"),
    ]


def test_mapping_and_canonical_failures_are_at_the_case_field() -> None:
    assert [path for path, _ in problems({**GOOD, "plate": "nope"})] == ["case.plate"]
    future = problems({**GOOD, "at": "2027-01-01T00:00:00+00:00"})
    assert [path for path, _ in future] == ["case.occurred_at"]
    assert "in the future" in future[0][1]


def test_text_that_is_not_json_fails_at_the_root() -> None:
    assert [path for path, _ in problems('{"plate": ')] == ["metadata"]


def test_a_shot_counts_once_per_path_and_the_first_is_the_example() -> None:
    tally = ReplayTally(replayed=4)
    first, second = uuid.uuid4(), uuid.uuid4()
    tally.fail(first.hex, [("skill", "skill: bad"), ("skill", "skill: worse"), ("at", "at: bad")])
    tally.fail(str(second), [("skill", "skill: also bad")])
    assert (tally.replayed, tally.failed, tally.passed) == (4, 2, 2)
    skill, at = tally.failures()
    assert (skill.path, skill.shots, skill.example_case_id, skill.example) == (
        "skill",
        2,
        first,
        "skill: bad",
    )
    assert (at.path, at.shots, at.example_case_id) == ("at", 1, first)


def test_distinct_paths_are_bounded() -> None:
    """Every shot with an unexpected key of its own: the groups stop growing."""
    tally = ReplayTally()
    extra = 25
    for n in range(MAX_FAILURE_PATHS + extra):
        tally.fail(uuid.uuid4(), [(f"key{n}", "unexpected key"), ("x" * 1000, "long")])
    assert len(tally.groups) == MAX_FAILURE_PATHS
    assert tally.other_paths == extra + 1  # the long path took one of the slots
    longest = max(tally.groups, key=len)
    assert len(longest) == MAX_PATH_CHARS
    assert tally.groups[longest].shots == MAX_FAILURE_PATHS + extra

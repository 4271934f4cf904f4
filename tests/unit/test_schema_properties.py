"""Properties: whatever the cameras send, the schema layer answers a case or ShotInvalid."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lizardctl.core.schema import (
    CanonicalCase,
    CompiledSchema,
    ShotInvalid,
    TypeDetector,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"
EXAMPLES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "design_examples.json").read_text())
SCHEMAS: dict[str, CompiledSchema] = {
    name: compile_schema(name, 1, load_schema_file(path))
    for name, path in builtin_schema_files().items()
}
DETECTOR = TypeDetector(SCHEMAS.values())

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["+03:00", "Z", "2024-01-01T00:00:00", "1ABC2377", "ABC", "123"])
)
trees = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(sorted(EXAMPLES["camerus2"])), inner, max_size=6
        )
    ),
    max_leaves=20,
)


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            found += leaves(value, (*prefix, key))
        else:
            found.append((*prefix, key))
    return found


def answers(outcome: object) -> None:
    """The only two acceptable outcomes; anything else propagates and fails the test."""
    assert isinstance(outcome, CanonicalCase)


def run(schema: CompiledSchema | TypeDetector, raw: Any) -> None:
    try:
        answers(schema.case(raw) if isinstance(schema, TypeDetector) else schema.to_case(raw))
    except ShotInvalid as exc:
        assert exc.errors
        assert all(isinstance(e, str) and e for e in exc.errors)


@settings(max_examples=300)
@given(raw=st.dictionaries(st.text(max_size=10), trees, max_size=8))
def test_arbitrary_trees_get_a_case_or_shot_invalid(raw: dict[str, Any]) -> None:
    run(DETECTOR, raw)
    for schema in SCHEMAS.values():
        run(schema, raw)


@settings(max_examples=300)
@given(data=st.data(), name=st.sampled_from(sorted(EXAMPLES)))
def test_one_mutated_leaf_gets_a_case_or_shot_invalid(data: st.DataObject, name: str) -> None:
    raw = copy.deepcopy(EXAMPLES[name])
    *parents, key = data.draw(st.sampled_from(leaves(raw)))
    parent = raw
    for part in parents:
        parent = parent[part]
    parent[key] = data.draw(trees)
    run(SCHEMAS[name], raw)
    run(DETECTOR, raw)


@settings(max_examples=200)
@given(
    chars=st.from_regex(r"^[A-Z]{3}$", fullmatch=True),
    numbers=st.from_regex(r"^[0-9]{3}$", fullmatch=True),
    region=st.from_regex(r"^[0-9]{2,3}$", fullmatch=True),
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_camerus2_shots_within_its_layout_always_map(
    chars: str, numbers: str, region: str, moment: datetime, offset_minutes: int
) -> None:
    """The layout constraints are strict enough that the canonical checks never refuse."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    raw = copy.deepcopy(EXAMPLES["camerus2"])
    raw["transport"] = {"chars": chars, "numbers": numbers, "transport_region": region}
    raw["datetime"] = {
        "year": local.year,
        "month": local.month,
        "day": local.day,
        "hour": local.hour,
        "minute": local.minute,
        "seconds": local.second,
        "utf_offset": f"{sign}{hours:02}:{minutes:02}",
    }
    case = DETECTOR.case(raw, now=datetime(9999, 12, 31, tzinfo=UTC))
    assert case.plate == numbers[0] + chars + numbers[1:] + region
    assert case.occurred_at == moment.replace(microsecond=0)

"""``json_to_case`` (what verify runs on stored JSON) agrees with ``to_case`` (what ingest runs).

pydantic-core validates JSON text in its JSON mode; the layouts are strict in both modes,
so for any metadata the two must give the same case or reject it for the same reason.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lizardctl.core.schema import (
    CanonicalCase,
    CompiledSchema,
    ShotInvalid,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "schemas" / "design_examples.json").read_text()
)
EXAMPLES["camerus4"] = json.loads((FIXTURES / "samples" / "camerus4.json").read_text())
SCHEMAS: dict[str, CompiledSchema] = {
    name: compile_schema(name, 1, load_schema_file(path))
    for name, path in builtin_schema_files().items()
}
SCHEMAS["camerus4"] = compile_schema(
    "camerus4", 1, load_schema_file(FIXTURES / "schemas" / "camerus4.json")
)
NOW = datetime(2030, 1, 1, tzinfo=UTC)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | st.text(max_size=12)
    | st.sampled_from(["+03:00", "2024-01-01T00:00:00+00:00", "1ABC2377", "km/h", "0.5"])
    | st.sampled_from(["104fc08a-efb6-427f-9193-2d54e4ed3e12", "62", "ABC", "123", "77"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for key, value in tree.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found += paths(value, (*prefix, key))
    return found


def outcome(run: Any) -> CanonicalCase | str:
    try:
        case: CanonicalCase = run()
    except ShotInvalid as exc:
        return exc.reason
    return case


def test_valid_examples_agree() -> None:
    for name, raw in EXAMPLES.items():
        schema = SCHEMAS[name]
        by_json = schema.json_to_case(json.dumps(raw), now=NOW)
        assert by_json == schema.to_case(raw, now=NOW)


@settings(max_examples=500)
@given(data=st.data(), name=st.sampled_from(sorted(EXAMPLES)), drop=st.booleans())
def test_any_mutation_gets_the_same_answer_in_both_modes(
    data: st.DataObject, name: str, drop: bool
) -> None:
    raw = copy.deepcopy(EXAMPLES[name])
    *parents, key = data.draw(st.sampled_from(paths(raw)))
    parent = raw
    for part in parents:
        parent = parent[part]
    if drop:
        del parent[key]
    else:
        parent[key] = data.draw(values)
    schema = SCHEMAS[name]
    by_python = outcome(lambda: schema.to_case(raw, now=NOW))
    by_json = outcome(lambda: schema.json_to_case(json.dumps(raw), now=NOW))
    assert by_json == by_python


def test_non_finite_numbers_are_rejected_as_in_python_mode() -> None:
    raw = copy.deepcopy(EXAMPLES["camerus4"])
    raw["offence"]["confidence"] = math.nan
    schema = SCHEMAS["camerus4"]
    assert outcome(lambda: schema.json_to_case(json.dumps(raw))) == "invalid"
    assert outcome(lambda: schema.to_case(raw)) == "invalid"

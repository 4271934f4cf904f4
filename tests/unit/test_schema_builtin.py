"""The shipped camerus1-3 schema files map DESIGN.md's examples onto the same case."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lizardctl.core.schema import (
    ShotInvalid,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
)

EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "schemas" / "design_examples.json").read_text()
)
IDS = {
    "camerus1": ("104fc08a-efb6-427f-9193-2d54e4ed3e12", "de163a57-fd92-47a6-9b78-82bb0d41be71"),
    "camerus2": ("d5cf359d-f9c3-48a1-8bb2-7a2f66f26670", "de163a57-fd92-47a6-9b78-82bb0d41be71"),
    "camerus3": ("baa1b593-4635-45d4-9a29-181a7f5bb77a", "b8c548ca-b143-4e88-9c2d-fc0599ad570b"),
}


def test_three_schemas_ship_inside_the_package() -> None:
    files = builtin_schema_files()
    assert sorted(files) == ["camerus1", "camerus2", "camerus3"]
    assert all(path.is_file() and path.parent.name == "schemas" for path in files.values())


@pytest.mark.parametrize("name", sorted(IDS))
def test_builtin_maps_its_design_example(name: str) -> None:
    compiled = compile_schema(name, 1, load_schema_file(builtin_schema_files()[name]))
    case = compiled.to_case(EXAMPLES[name])
    camera, violation = IDS[name]
    assert case.plate == "1ABC2377"
    assert case.camera_id == UUID(camera)
    assert case.violation_id == UUID(violation)
    assert case.violation_value == "62km/h"
    assert case.skill == 1
    assert case.occurred_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert case.occurred_at.isoformat() == "2024-01-01T00:00:00+00:00"
    assert (case.schema_name, case.schema_version) == (name, 1)


@pytest.mark.parametrize(
    ("name", "path", "value", "message"),
    [
        ("camerus1", ("transport_chars",), "AB", "transport_chars: must match ^[A-Z]{3}$"),
        ("camerus1", ("skill_value",), 0, "skill_value: must be >= 1"),
        ("camerus2", ("transport", "transport_region"), "7", "transport.transport_region: must"),
        ("camerus2", ("datetime", "utf_offset"), "UTC", "datetime.utf_offset: must match"),
        ("camerus2", ("datetime", "month"), 13, "datetime.month: must be <= 12, got 13"),
        ("camerus3", ("transport",), "1ABC23", "transport: must match"),
        ("camerus3", ("datetime",), "1704067200", "datetime: must be an integer"),
    ],
)
def test_builtin_constraints(name: str, path: tuple[str, ...], value: object, message: str) -> None:
    compiled = compile_schema(name, 1, load_schema_file(builtin_schema_files()[name]))
    raw = json.loads(json.dumps(EXAMPLES[name]))
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(ShotInvalid) as caught:
        compiled.to_case(raw)
    assert caught.value.reason == "invalid"
    assert caught.value.errors[0].startswith(message), caught.value.errors

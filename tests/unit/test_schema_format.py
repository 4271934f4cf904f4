"""The schema file format: every problem is reported, each with the key path to edit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.errors import UsageError
from lizardctl.core.schema import (
    SchemaFileError,
    builtin_schema_files,
    content_digest,
    load_schema_file,
    parse_schema,
)
from lizardctl.core.schema.format import Concat, Epoch, Parts, Ref

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"

MAPPING = {
    "plate": "plate",
    "camera_id": "camera",
    "violation_id": "violation",
    "violation_value": "value",
    "skill": "skill",
    "occurred_at": "at",
}
LAYOUT = {
    "plate": "string",
    "camera": "uuid",
    "violation": "uuid",
    "value": "string",
    "skill": "int",
    "at": "datetime",
}


def problems(doc: object) -> list[str]:
    with pytest.raises(SchemaFileError) as caught:
        parse_schema(json.dumps(doc))
    return caught.value.problems


def with_layout(**fields: object) -> dict[str, object]:
    return {"layout": {**LAYOUT, **fields}, "mapping": MAPPING}


def with_mapping(**sources: object) -> dict[str, object]:
    return {"layout": LAYOUT, "mapping": {**MAPPING, **sources}}


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "broken_unknown_type.json",
            "layout.transport.fields.chars.type: unknown type 'strng' (expected one of string,",
        ),
        (
            "broken_missing_path.json",
            "mapping.camera_id: path 'camera.serial' is not in the layout"
            " (no 'serial' in 'camera')",
        ),
        ("broken_missing_canonical.json", "mapping: missing canonical field 'skill'"),
        (
            "broken_invalid_regex.json",
            "layout.plate.pattern: invalid regex '^([0-9][A-Z]{3}$': unclosed group",
        ),
        ("broken_layout_not_object.json", "layout: must be a non-empty object"),
        ("broken_malformed.json", "malformed JSON: Expecting property name"),
    ],
)
def test_broken_fixture_is_rejected_naming_the_problem(fixture: str, expected: str) -> None:
    with pytest.raises(SchemaFileError) as caught:
        load_schema_file(FIXTURES / fixture)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
    assert fixture in str(caught.value)
    assert expected in "\n".join(caught.value.details)


def test_schema_file_error_is_a_usage_error() -> None:
    assert issubclass(SchemaFileError, UsageError)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            with_layout(skill={"type": "int", "pattern": "^1$"}),
            "layout.skill.pattern: not valid for type int (valid: optional, description, ge, le,",
        ),
        (
            with_layout(skill={"type": "int", "ge": 10, "le": 1}),
            "layout.skill: ge (10) is greater than le (1)",
        ),
        (
            with_layout(value={"type": "string", "min_length": 5, "max_length": 2}),
            "layout.value: min_length (5) is greater than max_length (2)",
        ),
        (
            with_layout(value={"type": "string", "colour": "red"}),
            "layout.value.colour: unknown key",
        ),
        (with_layout(value={"type": "string", "min_length": -1}), "must be a non-negative integer"),
        (with_layout(skill={"type": "int", "ge": 1.5}), "layout.skill.ge: must be an integer"),
        (
            with_layout(skill={"type": "int", "enum": ["a"]}),
            "layout.skill.enum: must be a non-empty",
        ),
        (
            with_layout(value={"type": "string", "optional": "yes"}),
            "layout.value.optional: must be",
        ),
        (with_layout(camera={"type": "object"}), "layout.camera.fields: missing"),
        (with_layout(camera=7), "layout.camera: must be a type name or an object"),
        (with_layout(camera={"optional": True}), "layout.camera.type: missing"),
        (with_layout(**{"a.b": "string"}), "layout.a.b: field names must be"),
        (
            with_layout(camera={"type": "object", "fields": {"id": "uuid"}, "extra": "allow"}),
            "layout.camera.extra: must be one of forbid, ignore",
        ),
        (
            with_layout(skill={"type": "int", "optional": True}),
            "mapping.skill: path 'skill': 'skill' is optional; mapped fields must be required",
        ),
        (with_mapping(plate="plate[0:"), "mapping.plate: must be a path string"),
        (with_mapping(colour="plate"), "mapping.colour: unknown canonical field"),
        (
            with_mapping(plate={"concat": ["plate", "skill[1:]"]}),
            "mapping.plate.concat[1]: slice needs a string field; 'skill' is int",
        ),
        (
            with_mapping(occurred_at={"epoch_seconds": "value"}),
            "mapping.occurred_at.epoch_seconds: epoch_seconds needs an int or float field;"
            " 'value' is string",
        ),
        (
            {
                "layout": {**LAYOUT, "plate": {"type": "object", "fields": {"a": "string"}}},
                "mapping": {**MAPPING, "plate": {"concat": ["plate"]}},
            },
            "mapping.plate.concat[0]: concat needs a string field; 'plate' is object",
        ),
        (with_mapping(skill="value"), "mapping.skill: skill needs an int field; 'value' is string"),
        (with_mapping(skill={"concat": ["plate"]}), "mapping.skill.concat: skill cannot be a"),
        (with_mapping(plate={"epoch_millis": "skill"}), "only occurred_at can be built from"),
        (with_mapping(plate={"join": ["plate"]}), "mapping.plate: must be a path string or an"),
        (with_mapping(camera_id="camera.id"), "'camera' is uuid, not an object"),
        (with_mapping(occurred_at={"parts": {"year": "skill"}}), "missing part 'month'"),
        ({"layout": LAYOUT, "mapping": MAPPING, "version": 2}, "version: unknown key"),
        ({"layout": LAYOUT, "mapping": MAPPING, "extra": "sometimes"}, "extra: must be one of"),
        ({"layout": LAYOUT}, "mapping: must be an object"),
        ([LAYOUT, MAPPING], "the schema must be an object"),
    ],
)
def test_problem_names_the_key_path(doc: object, expected: str) -> None:
    found = problems(doc)
    assert any(expected in p for p in found), found


def test_every_problem_is_listed_at_once() -> None:
    doc: dict[str, Any] = {
        "layout": {
            **LAYOUT,
            "plate": {"type": "strng"},
            "skill": {"type": "int", "pattern": "x"},
            "value": {"type": "string", "pattern": "(("},
        },
        "mapping": {**MAPPING, "camera_id": "nowhere", "skill": None, "colour": "x"},
    }
    doc["mapping"].pop("violation_id")
    found = problems(doc)
    assert len(found) == 7, found
    for where in (
        "layout.plate.type:",
        "layout.skill.pattern:",
        "layout.value.pattern:",
        "mapping.camera_id:",
        "mapping.skill:",
        "mapping.colour:",
        "mapping: missing canonical field 'violation_id'",
    ):
        assert any(p.startswith(where) for p in found), (where, found)


def test_broken_layout_field_is_not_reported_again_by_the_mapping() -> None:
    assert problems(with_layout(plate={"type": "strng"})) == [
        "layout.plate.type: unknown type 'strng' (expected one of string, int, float, bool, uuid,"
        " datetime, object)"
    ]


def test_lookaround_is_rejected_because_the_regex_engine_cannot_run_it() -> None:
    found = problems(with_layout(value={"type": "string", "pattern": "^(?!x).*$"}))
    assert found[0].startswith("layout.value.pattern: invalid regex")
    assert "look-around" in found[0]


def only_problem(call: Callable[[], object]) -> str:
    with pytest.raises(SchemaFileError) as caught:
        call()
    (problem,) = caught.value.problems
    return problem


def test_duplicate_keys_are_an_error() -> None:
    doc = '{"layout": {"plate": "string", "plate": "int"}, "mapping": {}}'
    assert "duplicate key 'plate'" in only_problem(lambda: parse_schema(doc))


def test_unsupported_suffix_and_bad_encoding() -> None:
    assert "unsupported file suffix '.yaml'" in only_problem(
        lambda: parse_schema("{}", suffix=".yaml")
    )
    assert "not UTF-8 (byte 0)" in only_problem(lambda: parse_schema(b"\xff{}"))
    assert "malformed TOML" in only_problem(lambda: parse_schema("layout = [", suffix=".toml"))


def test_missing_file_is_a_schema_file_error(tmp_path: Path) -> None:
    assert "cannot read" in only_problem(lambda: load_schema_file(tmp_path / "nope.json"))


def test_document_structure_of_camerus2() -> None:
    doc = load_schema_file(builtin_schema_files()["camerus2"])
    assert doc.extra == "forbid"
    assert doc.layout["datetime"].fields is not None
    assert doc.layout["datetime"].fields["month"].le == 12
    plate = doc.mapping["plate"]
    assert isinstance(plate, Concat)
    assert plate.parts[0] == Ref(("transport", "numbers"), "string", (None, 1))
    assert plate.parts[2].slice == (1, None)
    occurred = doc.mapping["occurred_at"]
    assert isinstance(occurred, Parts)
    assert occurred.refs[-1].path == ("datetime", "utf_offset")


def test_epoch_source() -> None:
    doc = load_schema_file(builtin_schema_files()["camerus3"])
    assert doc.mapping["occurred_at"] == Epoch(Ref(("datetime",), "int"), "seconds")


def test_digest_ignores_formatting_key_order_and_syntax() -> None:
    text = (FIXTURES / "camerus4.json").read_text()
    data = json.loads(text)
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=7)
    digest = content_digest(parse_schema(text))
    assert content_digest(parse_schema(reordered)) == digest
    assert content_digest(parse_schema(text.encode())) == digest
    assert content_digest(load_schema_file(FIXTURES / "camerus4.toml")) == digest


def test_digest_changes_with_content() -> None:
    data = json.loads((FIXTURES / "camerus4.json").read_text())
    before = content_digest(parse_schema(json.dumps(data)))
    data["layout"]["offence"]["fields"]["measured"]["pattern"] = "^[0-9]{1,5}$"
    assert content_digest(parse_schema(json.dumps(data))) != before


def test_canonical_text_reparses_to_the_same_document() -> None:
    doc = load_schema_file(FIXTURES / "camerus4.toml")
    assert parse_schema(doc.canonical) == doc

"""Hostile schema files: absurd nesting and numbers are problems with a place, not crashes.

Before these limits a file nested 100k deep raised RecursionError and ``min_length:
10**30`` an OverflowError inside pydantic-core: exit 70 for a bad file.
"""

from __future__ import annotations

import dataclasses
import json
from importlib.resources import files

import pytest

from lizardctl.core.schema.compiler import compile_schema
from lizardctl.core.schema.errors import SchemaFileError
from lizardctl.core.schema.format import MAX_LENGTH, MAX_NESTING, FieldSpec, parse_schema

CAMERUS1 = json.loads(files("lizardctl.schemas").joinpath("camerus1.json").read_text())


def _problems(text: str, suffix: str = ".json") -> list[str]:
    with pytest.raises(SchemaFileError) as caught:
        parse_schema(text, suffix=suffix)
    return caught.value.problems


def _with_field(name: str, spec: object) -> str:
    doc = json.loads(json.dumps(CAMERUS1))
    doc["layout"][name] = spec
    return json.dumps(doc)


def _nested_layout(levels: int) -> str:
    nested = '{"a": {"type": "object", "fields": ' * levels + '{"b": "string"}' + "}}" * levels
    return '{"layout": ' + nested + ', "mapping": {}}'


def test_json_nested_past_the_parser_names_line_and_column() -> None:
    text = "\n" + _nested_layout(100_000)
    opening = [i for i, char in enumerate(text) if char in "[{"][MAX_NESTING]
    assert _problems(text) == [f"line 2, column {opening}: nested deeper than {MAX_NESTING} levels"]


def test_json_list_nested_100k_deep() -> None:
    problems = _problems("[" * 100_000 + "]" * 100_000)
    assert problems == [
        f"line 1, column {MAX_NESTING + 1}: nested deeper than {MAX_NESTING} levels"
    ]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"description": "' + "[{" * 500 + '\\"", "x": ' + "[" * 2000 + "]" * 2000 + "}"
    column = text.index('"x": ') + len('"x": ') + MAX_NESTING  # the object is level 1
    assert _problems(text) == [f"line 1, column {column}: nested deeper than {MAX_NESTING} levels"]


def test_deep_layout_the_parser_reads_names_the_field_path() -> None:
    (problem,) = _problems(_nested_layout(40))
    assert problem.startswith("layout.a.fields.a.fields.a.fields")
    assert problem.endswith(f"nested deeper than {MAX_NESTING} levels")


def test_layout_just_inside_the_limit_still_checks() -> None:
    problems = _problems(_nested_layout(MAX_NESTING // 2 - 2))
    assert not any("nested deeper" in p for p in problems)
    assert "mapping: missing canonical field 'plate'" in problems


@pytest.mark.parametrize(
    "text",
    ["a = " + "[" * 5000 + "]" * 5000, "a = " + "{b = " * 5000 + "1" + "}" * 5000],
    ids=["arrays", "inline-tables"],
)
def test_toml_nested_too_deep(text: str) -> None:
    assert _problems(text, ".toml") == [f"the file: nested deeper than {MAX_NESTING} levels"]


@pytest.mark.parametrize("value", [1e30, 10**30, 2**64, MAX_LENGTH + 1, -1])
@pytest.mark.parametrize("key", ["min_length", "max_length"])
def test_absurd_string_length_names_the_key(key: str, value: float) -> None:
    problems = _problems(_with_field("transport_chars", {"type": "string", key: value}))
    assert problems == [
        f"layout.transport_chars.{key}: must be a non-negative integer up to {MAX_LENGTH}"
    ]


def test_largest_length_compiles() -> None:
    doc = parse_schema(_with_field("transport_chars", {"type": "string", "max_length": MAX_LENGTH}))
    compiled = compile_schema("camerus1", 99, doc)
    assert compiled.document.layout["transport_chars"].max_length == MAX_LENGTH


@pytest.mark.parametrize("key", ["ge", "le"])
def test_float_bound_no_float_can_hold(key: str) -> None:
    text = _with_field("speed", {"type": "float", key: 0}).replace(
        f'"{key}": 0', f'"{key}": 1{"0" * 400}'
    )
    assert _problems(text) == [f"layout.speed.{key}: must be a number"]


def test_lone_surrogate_escape_is_a_problem_not_an_encode_error() -> None:
    doc = json.loads(json.dumps(CAMERUS1))
    doc["description"] = "PLACEHOLDER"
    text = json.dumps(doc).replace("PLACEHOLDER", "\\ud800")
    assert _problems(text) == ["description: not valid Unicode (a lone surrogate)"]


def test_compiler_turns_an_unforeseen_pydantic_refusal_into_a_schema_error() -> None:
    """A document built past ``parse_schema`` still fails as a bad schema (exit 2)."""
    doc = parse_schema(json.dumps(CAMERUS1))
    layout = dict(doc.layout)
    layout["transport_chars"] = FieldSpec(type="string", max_length=10**30)
    hostile = dataclasses.replace(doc, layout=layout, canonical=doc.canonical + " ")
    with pytest.raises(SchemaFileError) as caught:
        compile_schema("camerus1", 98, hostile)
    assert caught.value.exit_code == 2
    assert caught.value.problems[0].startswith("cannot be compiled: ")

"""Compiled schemas: strict validation with path-named errors, mapping, canonical checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from lizardctl.core.errors import UsageError
from lizardctl.core.schema import (
    CanonicalCase,
    CompiledSchema,
    ShotInvalid,
    compile_schema,
    load_schema_file,
    parse_schema,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"
CAMERA = "104fc08a-efb6-427f-9193-2d54e4ed3e12"
VIOLATION = "de163a57-fd92-47a6-9b78-82bb0d41be71"
NEW_YEAR = datetime(2024, 1, 1, tzinfo=UTC)

CAMERUS4_SAMPLE: dict[str, Any] = {
    "reg": {"region": "177", "digits": "123", "letters": "ABC"},
    "meta": {"ts_ms": 1_704_067_200_250, "device": {"serial": CAMERA}},
    "offence": {"kind": VIOLATION, "measured": "62", "unit": "km/h", "confidence": 1},
    "review": {"level": 5},
    "vendor_debug": {"anything": ["goes", "here"]},
}


def schema(layout: dict[str, Any], mapping: dict[str, Any], **top: Any) -> CompiledSchema:
    doc = parse_schema(json.dumps({"layout": layout, "mapping": mapping, **top}))
    return compile_schema("test", 1, doc)


FLAT_LAYOUT: dict[str, Any] = {
    "plate": "string",
    "camera": "uuid",
    "violation": "uuid",
    "value": "string",
    "skill": "int",
    "at": "datetime",
}
FLAT_MAPPING = {
    "plate": "plate",
    "camera_id": "camera",
    "violation_id": "violation",
    "violation_value": "value",
    "skill": "skill",
    "occurred_at": "at",
}
FLAT_SHOT: dict[str, Any] = {
    "plate": "1ABC2377",
    "camera": CAMERA,
    "violation": VIOLATION,
    "value": "62km/h",
    "skill": 1,
    "at": "2024-01-01T03:00:00+03:00",
}


def errors_of(compiled: CompiledSchema, raw: dict[str, Any], **kwargs: Any) -> ShotInvalid:
    with pytest.raises(ShotInvalid) as caught:
        compiled.to_case(raw, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def camerus4() -> CompiledSchema:
    return compile_schema("camerus4", 1, load_schema_file(FIXTURES / "camerus4.json"))


def test_made_up_camerus4_maps_with_no_code_change(camerus4: CompiledSchema) -> None:
    case = camerus4.to_case(CAMERUS4_SAMPLE)
    assert case == CanonicalCase(
        plate="1ABC23177",
        camera_id=UUID(CAMERA),
        violation_id=UUID(VIOLATION),
        violation_value="62km/h",
        skill=5,
        occurred_at=NEW_YEAR + timedelta(milliseconds=250),
        schema_name="camerus4",
        schema_version=1,
    )


def test_camerus4_checks_its_enum_and_nested_extra(camerus4: CompiledSchema) -> None:
    raw = json.loads(json.dumps(CAMERUS4_SAMPLE))
    raw["review"]["level"] = 7
    raw["offence"]["unit"] = "knots"
    raw["reg"]["colour"] = "white"
    raw["meta"]["device"]["firmware"] = 3
    assert errors_of(camerus4, raw).errors == [
        "reg.colour: unexpected key, got 'white'",
        "meta.device.firmware: must be a string, got 3",
        "offence.unit: must be one of 'km/h' or 'mph', got 'knots'",
        "review.level: must be one of 1, 5, 10, 50 or 100, got 7",
    ]


def test_compile_is_cached_per_name_version_and_content() -> None:
    doc = load_schema_file(FIXTURES / "camerus4.json")
    same = load_schema_file(FIXTURES / "camerus4.toml")
    assert compile_schema("camerus4", 1, doc) is compile_schema("camerus4", 1, same)
    assert compile_schema("camerus4", 2, doc) is not compile_schema("camerus4", 1, doc)


def test_validate_returns_the_validated_dict() -> None:
    compiled = schema(FLAT_LAYOUT, FLAT_MAPPING)
    assert compiled.validate(FLAT_SHOT) == {
        **FLAT_SHOT,
        "camera": UUID(CAMERA),
        "violation": UUID(VIOLATION),
        "at": NEW_YEAR,
    }


def test_occurred_at_is_normalised_to_utc() -> None:
    case = schema(FLAT_LAYOUT, FLAT_MAPPING).to_case(FLAT_SHOT)
    assert case.occurred_at == NEW_YEAR
    assert case.occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("skill", "1", "skill: must be an integer, got '1'"),
        ("skill", 1.0, "skill: must be an integer, got 1.0"),
        ("skill", True, "skill: must be an integer, got True"),
        ("value", 62, "value: must be a string, got 62"),
        ("camera", "not-a-uuid", "camera: must be a UUID, got 'not-a-uuid'"),
        ("camera", 12, "camera: must be a string, got 12"),
        ("at", "2024-01-01", "at: must be an ISO-8601 datetime string, got '2024-01-01'"),
        ("at", 1704067200, "at: must be an ISO-8601 datetime string, got 1704067200"),
        ("at", "2024-02-30T00:00:00Z", "at: not a valid datetime (day value is outside expected"),
        ("plate", {"a": 1}, "plate: must be a string"),
    ],
)
def test_types_are_strict(field: str, value: object, message: str) -> None:
    error = errors_of(schema(FLAT_LAYOUT, FLAT_MAPPING), {**FLAT_SHOT, field: value})
    assert error.reason == "invalid"
    assert error.errors[0].startswith(message), error.errors


def test_float_accepts_int_and_float_but_not_bool_or_nan() -> None:
    compiled = schema({**FLAT_LAYOUT, "speed": {"type": "float", "le": 300}}, FLAT_MAPPING)
    assert compiled.validate({**FLAT_SHOT, "speed": 62})["speed"] == 62
    assert compiled.validate({**FLAT_SHOT, "speed": 62.5})["speed"] == 62.5
    assert errors_of(compiled, {**FLAT_SHOT, "speed": True}).errors == [
        "speed: must be a number, got True"
    ]
    assert errors_of(compiled, {**FLAT_SHOT, "speed": float("nan")}).errors == [
        "speed: must be a finite number, got nan"
    ]
    assert errors_of(compiled, {**FLAT_SHOT, "speed": 301}).errors == [
        "speed: must be <= 300.0, got 301"
    ]


def test_bool_accepts_only_true_and_false() -> None:
    compiled = schema({**FLAT_LAYOUT, "flash": "bool"}, FLAT_MAPPING)
    assert compiled.validate({**FLAT_SHOT, "flash": False})["flash"] is False
    assert errors_of(compiled, {**FLAT_SHOT, "flash": 1}).errors == [
        "flash: must be true or false, got 1"
    ]


def test_missing_and_unexpected_keys() -> None:
    compiled = schema(FLAT_LAYOUT, FLAT_MAPPING)
    raw = {**FLAT_SHOT, "debug": "x"}
    del raw["skill"]
    assert errors_of(compiled, raw).errors == ["skill: required", "debug: unexpected key, got 'x'"]


def test_extra_ignore_drops_unknown_keys() -> None:
    compiled = schema(FLAT_LAYOUT, FLAT_MAPPING, extra="ignore")
    assert "debug" not in compiled.validate({**FLAT_SHOT, "debug": [1, 2]})


def test_optional_field_may_be_absent_but_not_null() -> None:
    compiled = schema({**FLAT_LAYOUT, "note": {"type": "string", "optional": True}}, FLAT_MAPPING)
    assert "note" not in compiled.validate(FLAT_SHOT)
    assert compiled.validate({**FLAT_SHOT, "note": "hi"})["note"] == "hi"
    assert errors_of(compiled, {**FLAT_SHOT, "note": None}).errors == ["note: must be a string"]


def test_keys_that_clash_with_python_or_pydantic_names() -> None:
    layout = {
        "_id": "uuid",
        "class": "uuid",
        "model_config": "string",
        "model_dump": "string",
        "at": "datetime",
        "skill level": "int",
        "plate": "string",
    }
    mapping = {
        **FLAT_MAPPING,
        "camera_id": "_id",
        "violation_id": "class",
        "violation_value": {"concat": ["model_config", "model_dump"]},
        "skill": "skill level",
    }
    raw = {
        "_id": CAMERA,
        "class": VIOLATION,
        "model_config": "62",
        "model_dump": "km/h",
        "at": "2024-01-01T00:00:00Z",
        "skill level": 3,
        "plate": "1ABC2377",
    }
    case = schema(layout, mapping).to_case(raw)
    assert (case.camera_id, case.violation_value, case.skill) == (UUID(CAMERA), "62km/h", 3)


def test_violation_value_from_a_number_is_its_text() -> None:
    layout = {**FLAT_LAYOUT, "value": "int"}
    assert schema(layout, FLAT_MAPPING).to_case({**FLAT_SHOT, "value": 62}).violation_value == "62"


def test_future_timestamp_has_its_own_reason() -> None:
    compiled = schema(FLAT_LAYOUT, FLAT_MAPPING)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    at = now + timedelta(minutes=4, seconds=59)
    assert compiled.to_case({**FLAT_SHOT, "at": at.isoformat()}, now=now).occurred_at == at
    error = errors_of(
        compiled, {**FLAT_SHOT, "at": (at + timedelta(seconds=2)).isoformat()}, now=now
    )
    assert error.reason == "future-timestamp"
    assert error.errors[0].startswith("occurred_at: 2024-01-01T00:05:01+00:00 is in the future")


def test_timestamps_of_today_are_not_future_by_default() -> None:
    shot = {**FLAT_SHOT, "at": datetime.now(UTC).isoformat()}
    assert schema(FLAT_LAYOUT, FLAT_MAPPING).to_case(shot).occurred_at <= datetime.now(UTC)


def test_naive_timestamp_is_rejected() -> None:
    error = errors_of(schema(FLAT_LAYOUT, FLAT_MAPPING), {**FLAT_SHOT, "at": "2024-01-01T00:00:00"})
    assert error.reason == "invalid"
    assert error.errors[0].startswith("occurred_at: must include a UTC offset")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("plate", "ABC1234", "plate: must match ^[0-9][A-Z]{3}[0-9]{2}[0-9]{2,3}$, got 'ABC1234'"),
        ("plate", "1abc2377", "plate: must match"),
        ("value", "", "violation_value: must be at least 1 characters"),
        ("value", "x" * 65, "violation_value: must be at most 64 characters"),
        ("skill", 0, "skill: must be >= 1, got 0"),
        ("skill", 101, "skill: must be <= 100, got 101"),
    ],
)
def test_canonical_checks(field: str, value: object, message: str) -> None:
    error = errors_of(schema(FLAT_LAYOUT, FLAT_MAPPING), {**FLAT_SHOT, field: value})
    assert error.reason == "invalid"
    assert error.errors[0].startswith(message), error.errors


def test_camera_id_may_come_from_a_plain_string_field() -> None:
    compiled = schema({**FLAT_LAYOUT, "camera": "string"}, FLAT_MAPPING)
    assert compiled.to_case(FLAT_SHOT).camera_id == UUID(CAMERA)
    assert (
        errors_of(compiled, {**FLAT_SHOT, "camera": "cam-7"})
        .errors[0]
        .startswith("camera_id: must be a UUID")
    )


PARTS_LAYOUT: dict[str, Any] = {
    **FLAT_LAYOUT,
    "at": {
        "type": "object",
        "fields": {
            "y": "int",
            "mo": "int",
            "d": "int",
            "h": "int",
            "mi": "int",
            "s": "int",
            "tz": "string",
        },
    },
}
PARTS_MAPPING = {
    **FLAT_MAPPING,
    "occurred_at": {
        "parts": {
            "year": "at.y",
            "month": "at.mo",
            "day": "at.d",
            "hour": "at.h",
            "minute": "at.mi",
            "second": "at.s",
            "offset": "at.tz",
        }
    },
}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"tz": "+03:00", "h": 3}, NEW_YEAR),
        ({"tz": "-0130"}, NEW_YEAR + timedelta(hours=1, minutes=30)),
        ({"tz": "Z"}, NEW_YEAR),
    ],
)
def test_timestamp_from_parts(parts: dict[str, Any], expected: datetime) -> None:
    raw = {**FLAT_SHOT, "at": {"y": 2024, "mo": 1, "d": 1, "h": 0, "mi": 0, "s": 0, **parts}}
    assert schema(PARTS_LAYOUT, PARTS_MAPPING).to_case(raw).occurred_at == expected


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"d": 30, "mo": 2}, "occurred_at: day is out of range for month"),
        ({"mo": 13}, "occurred_at: month must be in 1..12"),
        ({"tz": "+3"}, "occurred_at: at.tz '+3' is not a UTC offset such as +03:00"),
        ({"tz": "+24:00"}, "occurred_at: offset must be a timedelta strictly between"),
        ({"y": 10**30}, "occurred_at: "),
        ({"y": 1, "h": 0, "tz": "+05:00"}, "occurred_at: out of range once converted to UTC"),
    ],
)
def test_bad_parts_are_invalid_not_a_crash(parts: dict[str, Any], message: str) -> None:
    raw = {**FLAT_SHOT, "at": {"y": 2024, "mo": 1, "d": 1, "h": 0, "mi": 0, "s": 0, "tz": "Z"}}
    raw["at"].update(parts)
    error = errors_of(schema(PARTS_LAYOUT, PARTS_MAPPING), raw)
    assert error.reason == "invalid"
    assert error.errors[0].startswith(message), error.errors


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [
        ("epoch_seconds", 1704067200, NEW_YEAR),
        ("epoch_seconds", 1704067200.5, NEW_YEAR + timedelta(milliseconds=500)),
        ("epoch_millis", 1704067200001, NEW_YEAR + timedelta(milliseconds=1)),
    ],
)
def test_timestamp_from_epoch(unit: str, value: float, expected: datetime) -> None:
    compiled = schema({**FLAT_LAYOUT, "at": "float"}, {**FLAT_MAPPING, "occurred_at": {unit: "at"}})
    assert compiled.to_case({**FLAT_SHOT, "at": value}).occurred_at == expected


def test_epoch_out_of_range_is_invalid() -> None:
    compiled = schema(
        {**FLAT_LAYOUT, "at": "int"}, {**FLAT_MAPPING, "occurred_at": {"epoch_seconds": "at"}}
    )
    error = errors_of(compiled, {**FLAT_SHOT, "at": 10**20})
    assert error.reason == "invalid"
    assert error.errors[0].startswith("occurred_at: ")


def test_shot_invalid_is_a_usage_error_with_a_readable_message() -> None:
    error = errors_of(schema(FLAT_LAYOUT, FLAT_MAPPING), {**FLAT_SHOT, "skill": "1", "value": 3})
    assert isinstance(error, UsageError)
    assert str(error) == "value: must be a string, got 3; skill: must be an integer, got '1'"


def test_model_is_a_pydantic_model_with_the_metadata_keys_as_aliases() -> None:
    compiled = schema(FLAT_LAYOUT, FLAT_MAPPING)
    assert set(compiled.model.model_json_schema()["properties"]) == set(FLAT_LAYOUT)

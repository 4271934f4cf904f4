"""Camera-type detection: found by shape, confirmed by validation, never a guess."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.schema import (
    AmbiguousType,
    CompiledSchema,
    SchemaFileError,
    ShotInvalid,
    TypeDetector,
    UnknownType,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
    parse_schema,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"
EXAMPLES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "design_examples.json").read_text())
FLAT = {
    "layout": {
        "plate": "string",
        "camera": "uuid",
        "violation": "uuid",
        "value": "string",
        "skill": "int",
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
FLAT_SHOT = {
    "plate": "1ABC2377",
    "camera": "104fc08a-efb6-427f-9193-2d54e4ed3e12",
    "violation": "de163a57-fd92-47a6-9b78-82bb0d41be71",
    "value": "62km/h",
    "skill": 1,
    "at": "2024-01-01T00:00:00Z",
}


def builtins() -> list[CompiledSchema]:
    return [
        compile_schema(name, 1, load_schema_file(path))
        for name, path in builtin_schema_files().items()
    ]


def compiled(name: str, doc: dict[str, Any]) -> CompiledSchema:
    return compile_schema(name, 1, parse_schema(json.dumps(doc)))


@pytest.fixture(scope="module")
def detector() -> TypeDetector:
    camerus4 = compile_schema("camerus4", 1, load_schema_file(FIXTURES / "camerus4.json"))
    return TypeDetector([*builtins(), camerus4])


@pytest.mark.parametrize("name", ["camerus1", "camerus2", "camerus3"])
def test_each_builtin_is_detected(detector: TypeDetector, name: str) -> None:
    assert detector.detect(EXAMPLES[name]).name == name
    case = detector.case(EXAMPLES[name])
    assert (case.schema_name, case.plate) == (name, "1ABC2377")


def test_camerus4_is_detected_with_extra_keys(detector: TypeDetector) -> None:
    raw = {
        "reg": {"region": "177", "digits": "123", "letters": "ABC"},
        "meta": {"ts_ms": 1_704_067_200_000, "device": {"serial": FLAT_SHOT["camera"]}},
        "offence": {
            "kind": FLAT_SHOT["violation"],
            "measured": "62",
            "unit": "mph",
            "confidence": 0.9,
        },
        "review": {"level": 10},
        "debug": 1,
    }
    assert detector.case(raw).plate == "1ABC23177"


def test_bad_month_in_camerus2_shape_reports_the_field(detector: TypeDetector) -> None:
    raw = copy.deepcopy(EXAMPLES["camerus2"])
    raw["datetime"]["month"] = 13
    with pytest.raises(ShotInvalid) as caught:
        detector.case(raw)
    assert caught.value.reason == "invalid"
    assert "datetime.month" in str(caught.value)
    assert caught.value.errors == ["datetime.month: must be <= 12, got 13"]


def test_value_of_the_wrong_kind_still_gets_field_errors(detector: TypeDetector) -> None:
    raw = {**EXAMPLES["camerus1"], "skill_value": "1"}
    with pytest.raises(ShotInvalid) as caught:
        detector.detect(raw)
    assert caught.value.errors == ["skill_value: must be an integer, got '1'"]


def test_same_key_names_with_wrong_kinds_everywhere_lists_both_types(
    detector: TypeDetector,
) -> None:
    raw = {**EXAMPLES["camerus3"], "transport": 7, "skill": "1"}
    with pytest.raises(ShotInvalid) as caught:
        detector.detect(raw)
    assert caught.value.reason == "invalid"
    assert any(
        e.startswith("camerus2 v1: transport: must be an object") for e in caught.value.errors
    )
    assert any(
        e.startswith("camerus3 v1: transport: must be a string") for e in caught.value.errors
    )


def test_unknown_shape(detector: TypeDetector) -> None:
    with pytest.raises(UnknownType) as caught:
        detector.detect({"plate": "1ABC2377", "when": 0})
    assert caught.value.reason == "unknown-type"
    assert str(caught.value) == "no camera type has top-level keys plate, when"


def test_extra_top_level_key_on_a_forbid_schema_is_unknown(detector: TypeDetector) -> None:
    with pytest.raises(UnknownType):
        detector.detect({**EXAMPLES["camerus1"], "debug": 1})


def test_non_object_metadata_is_unknown(detector: TypeDetector) -> None:
    with pytest.raises(UnknownType, match="metadata must be an object"):
        detector.detect([1, 2])  # type: ignore[arg-type]


def test_two_schemas_that_both_validate_are_ambiguous() -> None:
    loose = {**FLAT, "extra": "ignore"}
    other = compiled("flat-loose", loose)
    detector = TypeDetector([compiled("flat", FLAT), other])
    with pytest.raises(AmbiguousType) as caught:
        detector.case(FLAT_SHOT)
    assert caught.value.reason == "ambiguous-type"
    assert caught.value.candidates == ["flat v1", "flat-loose v1"]
    assert "flat v1, flat-loose v1" in str(caught.value)
    assert detector.detect({**FLAT_SHOT, "debug": 1}) is other


def test_shared_keys_with_different_constraints_pick_the_one_that_validates() -> None:
    strict = json.loads(json.dumps(FLAT))
    strict["layout"]["value"] = {"type": "string", "enum": ["fast"]}
    detector = TypeDetector([compiled("a", strict), compiled("b", FLAT)])
    assert detector.detect(FLAT_SHOT).name == "b"
    with pytest.raises(AmbiguousType):
        detector.detect({**FLAT_SHOT, "value": "fast"})


def test_detector_and_errors_cross_process_boundaries(detector: TypeDetector) -> None:
    """Validation may run in a process pool: the detector and its errors must pickle."""
    clone = pickle.loads(pickle.dumps(detector))
    assert clone.case(EXAMPLES["camerus2"]) == detector.case(EXAMPLES["camerus2"])
    errors: list[ShotInvalid] = [
        ShotInvalid("invalid", ["a: b"]),
        UnknownType("no camera type"),
        AmbiguousType(["a v1", "b v1"]),
    ]
    for error in errors:
        copy_ = pickle.loads(pickle.dumps(error))
        assert (type(copy_), copy_.reason, copy_.errors) == (
            type(error),
            error.reason,
            error.errors,
        )
    problem = pickle.loads(pickle.dumps(SchemaFileError(["x: y"], "f.json")))
    assert (problem.problems, str(problem), problem.details) == (
        ["x: y"],
        "f.json: 1 problem",
        ["x: y"],
    )

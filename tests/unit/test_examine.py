"""examine(): one shot's bytes in, a case or a rejection with a known reason code out.

The first half pins one rejection per reason code and the accepted path of every
built-in type in both encodings; the second half fuzzes the whole per-shot path.
The fuzz properties run ``LIZARD_FUZZ_EXAMPLES`` examples each (default 250, for CI);
a long campaign is ``LIZARD_FUZZ_EXAMPLES=20000 pytest tests/unit/test_examine.py -k fuzz``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from lizardctl.core.codecs import encode_binary
from lizardctl.core.ingest.examine import Accepted, Context, Rejected, examine
from lizardctl.core.photos import DEFAULT_MAX_PIXELS
from lizardctl.core.schema import (
    FUTURE_TOLERANCE,
    CompiledSchema,
    TypeDetector,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
    parse_schema,
)
from lizardctl.core.vocabulary import Reason

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"
EXAMPLES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "design_examples.json").read_text())
SCHEMAS: dict[str, CompiledSchema] = {
    name: compile_schema(name, 1, load_schema_file(path))
    for name, path in builtin_schema_files().items()
}
CAMERUS4 = compile_schema("camerus4", 1, load_schema_file(FIXTURES / "camerus4.json"))
CAMERUS4_EXAMPLE: dict[str, Any] = {
    "reg": {"region": "77", "digits": "123", "letters": "ABC"},
    "meta": {"ts_ms": 1_704_067_200_000, "device": {"serial": str(uuid.UUID(int=4))}},
    "offence": {"kind": str(uuid.UUID(int=5)), "measured": "62", "unit": "km/h", "confidence": 0.5},
    "review": {"level": 5, "urgent": True},
}
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OCCURRED = datetime(2024, 1, 1, tzinfo=UTC)


def camera_of(raw: dict[str, Any]) -> uuid.UUID:
    if "camera_id" in raw:
        return uuid.UUID(raw["camera_id"])
    if "meta" in raw:
        return uuid.UUID(raw["meta"]["device"]["serial"])
    return uuid.UUID(raw["camera"]["id"])


CAMERAS: dict[uuid.UUID, str] = {camera_of(raw): name for name, raw in EXAMPLES.items()}
CAMERAS[camera_of(CAMERUS4_EXAMPLE)] = "camerus4"
CONTEXT = Context(TypeDetector([*SCHEMAS.values(), CAMERUS4]), CAMERAS, NOW, DEFAULT_MAX_PIXELS)


def image_bytes(image_format: str, size: tuple[int, int] = (64, 48), **options: Any) -> bytes:
    width, height = size
    pixels = random.Random(f"{image_format}{size}").randbytes(width * height * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(buffer, image_format, **options)
    return buffer.getvalue()


JPEG = image_bytes("JPEG", quality=85)
PHOTOS = {
    "JPEG": JPEG,
    "PNG": image_bytes("PNG"),
    "WEBP": image_bytes("WEBP"),
    "TIFF": image_bytes("TIFF"),
}
# Truncation targets: baseline, progressive, with EXIF and restart markers, greyscale.
JPEGS = [
    JPEG,
    image_bytes("JPEG", (40, 30), progressive=True, quality=70),
    image_bytes("JPEG", (33, 17), exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"),
    image_bytes("JPEG", (48, 48), restart_marker_blocks=1),
]


def encode(raw: dict[str, Any], suffix: str) -> bytes:
    return encode_binary(raw) if suffix.lower() == ".bin" else json.dumps(raw).encode()


def shot(name: str, **changes: Any) -> dict[str, Any]:
    """A copy of a design example with dotted paths changed (``None`` drops the key)."""
    raw = copy.deepcopy(EXAMPLES[name])
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return raw


def rejected(result: Accepted | Rejected, reason: Reason) -> str:
    assert isinstance(result, Rejected), result
    assert result.reason is reason, result
    return result.message


# --- accepted -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".bin", ".JSON", ".Bin"])
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_builtin_type_is_accepted_in_both_encodings(name: str, suffix: str) -> None:
    result = examine(JPEG, encode(EXAMPLES[name], suffix), suffix, CONTEXT)
    assert isinstance(result, Accepted), result
    case = result.case
    assert (case.schema_name, case.schema_version) == (name, 1)
    assert case.plate == "1ABC2377"
    assert case.camera_id == camera_of(EXAMPLES[name])
    assert case.occurred_at == OCCURRED
    assert case.occurred_at.utcoffset() == timedelta(0)
    assert (case.skill, case.violation_value) == (1, "62km/h")
    assert result.raw == EXAMPLES[name]
    assert result.photo.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert (result.photo.format, result.photo.width, result.photo.height) == ("JPEG", 64, 48)
    assert result.photo.size == len(JPEG)


def test_a_user_schema_with_floats_and_bools_is_accepted() -> None:
    result = examine(JPEG, encode(CAMERUS4_EXAMPLE, ".json"), ".json", CONTEXT)
    assert isinstance(result, Accepted), result
    assert (result.case.schema_name, result.case.violation_value) == ("camerus4", "62km/h")


@pytest.mark.parametrize("image_format", sorted(PHOTOS))
def test_every_photo_format_is_probed(image_format: str) -> None:
    photo = PHOTOS[image_format]
    result = examine(photo, encode(EXAMPLES["camerus1"], ".json"), ".json", CONTEXT)
    assert isinstance(result, Accepted), result
    assert (result.photo.format, result.photo.width, result.photo.height) == (image_format, 64, 48)
    assert result.photo.sha256 == hashlib.sha256(photo).hexdigest()


def test_a_given_photo_hash_is_used_as_is() -> None:
    """The batch hashes every photo already; examine must not hash again, only pass it on."""
    given_hash = "0" * 64
    result = examine(
        JPEG, encode(EXAMPLES["camerus3"], ".json"), ".json", CONTEXT, photo_sha256=given_hash
    )
    assert isinstance(result, Accepted)
    assert result.photo.sha256 == given_hash


def test_a_shot_just_inside_the_clock_skew_tolerance_is_accepted() -> None:
    at = NOW + FUTURE_TOLERANCE - timedelta(seconds=1)
    raw = shot("camerus3", datetime=int(at.timestamp()))
    assert isinstance(examine(JPEG, encode(raw, ".bin"), ".bin", CONTEXT), Accepted)


# --- one test per reason code -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "Expecting value"),
        (b'{"transport": "1ABC2377",', "at byte"),
        (b"[1, 2]", "top level is not an object"),
        (b'{"a": NaN}', "non-finite"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": "\xff"}', "invalid UTF-8"),
    ],
)
def test_bad_json_metadata(data: bytes, detail: str) -> None:
    message = rejected(examine(JPEG, data, ".json", CONTEXT), Reason.BAD_METADATA)
    assert message.startswith("JSON metadata:")
    assert detail in message


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "shorter than the 2-byte header at byte 0"),
        (encode_binary(EXAMPLES["camerus1"])[:-1], "root length exceeds the data at byte 0"),
        (encode_binary(EXAMPLES["camerus1"]) + b"\x00", "trailing bytes"),
        (b"\x00\x06\x00\x01\x00\x00\x07a", "unknown type byte at byte 6"),
        (b"\x00\x07\x00\x01\x00\x01\x01a\x80", "truncated LEB128"),
    ],
)
def test_bad_binary_metadata(data: bytes, detail: str) -> None:
    message = rejected(examine(JPEG, data, ".bin", CONTEXT), Reason.BAD_METADATA)
    assert message.startswith("binary metadata:")
    assert detail in message


def test_json_bytes_given_as_binary_are_bad_metadata() -> None:
    message = rejected(
        examine(JPEG, encode(EXAMPLES["camerus1"], ".json"), ".bin", CONTEXT),
        Reason.BAD_METADATA,
    )
    assert "binary metadata" in message


def test_an_unknown_metadata_suffix_is_bad_metadata() -> None:
    message = rejected(examine(JPEG, b"{}", ".xml", CONTEXT), Reason.BAD_METADATA)
    assert ".xml" in message


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("camerus1", {"violation_value": "62\x00km/h"}),
        ("camerus2", {"transport__chars": "A\x00C"}),
        ("camerus3", {"camera__a\x00b": "x"}),
        ("camerus1", {"\x00": 1}),
    ],
)
def test_nul_characters_are_bad_metadata(name: str, changes: dict[str, Any]) -> None:
    """PostgreSQL can store NUL neither in text nor in jsonb: reject it on every engine."""
    for suffix in (".json", ".bin"):
        raw = shot(name, **changes)
        message = rejected(examine(JPEG, encode(raw, suffix), suffix, CONTEXT), Reason.BAD_METADATA)
        assert "NUL character in a key or string at byte" in message


def test_nul_inside_a_json_list_is_found() -> None:
    raw = shot("camerus1", extra=[1, {"deep": ["ok", "n\x00"]}])
    message = rejected(examine(JPEG, encode(raw, ".json"), ".json", CONTEXT), Reason.BAD_METADATA)
    assert "NUL character" in message


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    raw = shot("camerus1", violation_value="62\\u0000km/h")
    assert isinstance(examine(JPEG, encode(raw, ".json"), ".json", CONTEXT), Accepted)


def test_unknown_type() -> None:
    raw = {"plate": "1ABC2377", "camera": str(uuid.uuid4())}
    message = rejected(examine(JPEG, encode(raw, ".bin"), ".bin", CONTEXT), Reason.UNKNOWN_TYPE)
    assert "camera, plate" in message


def test_ambiguous_type_when_two_schemas_accept() -> None:
    twin_doc = parse_schema(
        json.dumps(
            {**json.loads(builtin_schema_files()["camerus1"].read_text()), "description": "a copy"}
        )
    )
    twin = compile_schema("camerus1-copy", 1, twin_doc)
    context = Context(TypeDetector([*SCHEMAS.values(), twin]), CAMERAS, NOW, DEFAULT_MAX_PIXELS)
    message = rejected(
        examine(JPEG, encode(EXAMPLES["camerus1"], ".json"), ".json", context),
        Reason.AMBIGUOUS_TYPE,
    )
    assert "camerus1 v1" in message and "camerus1-copy v1" in message


@pytest.mark.parametrize(
    ("name", "changes", "expected"),
    [
        ("camerus2", {"datetime__month": 13}, "datetime.month: must be <= 12, got 13"),
        ("camerus2", {"transport__chars": "abc"}, "transport.chars: must match"),
        ("camerus2", {"skill__value": "1"}, "skill.value: must be an integer, got '1'"),
        ("camerus1", {"camera_id": "not-a-uuid"}, "camera_id: must be a UUID"),
        ("camerus1", {"skill_value": 101}, "skill_value: must be <= 100, got 101"),
        ("camerus3", {"transport": "ABC123"}, "transport: must match"),
        ("camerus3", {"violation__value": ""}, "violation.value: must be at least 1 characters"),
    ],
)
def test_invalid_names_the_field_path(name: str, changes: dict[str, Any], expected: str) -> None:
    for suffix in (".json", ".bin"):
        raw = shot(name, **changes)
        message = rejected(examine(JPEG, encode(raw, suffix), suffix, CONTEXT), Reason.INVALID)
        assert expected in message


def test_invalid_when_the_mapping_fails() -> None:
    """Valid parts that make no calendar date fail in the mapping, still as ``invalid``."""
    raw = shot("camerus2", datetime__month=2, datetime__day=30)
    message = rejected(examine(JPEG, encode(raw, ".bin"), ".bin", CONTEXT), Reason.INVALID)
    assert "occurred_at" in message


def test_future_timestamp() -> None:
    raw = shot("camerus3", datetime=int((NOW + timedelta(days=1)).timestamp()))
    message = rejected(
        examine(JPEG, encode(raw, ".json"), ".json", CONTEXT), Reason.FUTURE_TIMESTAMP
    )
    assert message.startswith("occurred_at: 2025-06-02T12:00:00+00:00 is in the future")


def test_unknown_camera() -> None:
    stranger = uuid.uuid4()
    raw = shot("camerus2", camera__id=str(stranger))
    message = rejected(examine(JPEG, encode(raw, ".bin"), ".bin", CONTEXT), Reason.UNKNOWN_CAMERA)
    assert message == f"camera {stranger} is not registered"


def test_type_mismatch() -> None:
    camera = camera_of(EXAMPLES["camerus1"])
    context = Context(CONTEXT.detector, {**CAMERAS, camera: "camerus2"}, NOW, DEFAULT_MAX_PIXELS)
    message = rejected(
        examine(JPEG, encode(EXAMPLES["camerus1"], ".json"), ".json", context),
        Reason.TYPE_MISMATCH,
    )
    assert "camerus1 layout" in message and "registered as camerus2" in message


@pytest.mark.parametrize(
    ("photo", "detail"),
    [
        (JPEG[: len(JPEG) // 2], "JPEG"),
        (JPEG[:-2], "JPEG"),
        (JPEG[:2], "JPEG"),
        (b"this is not an image\n", "not a supported image"),
        (b"", "empty photo file"),
        (PHOTOS["PNG"][:-6], "PNG"),
        (PHOTOS["WEBP"][: len(PHOTOS["WEBP"]) // 2], "WEBP"),
        (PHOTOS["TIFF"][:-100], "TIFF"),
        (b"GIF89a" + PHOTOS["PNG"][6:], "not a supported image"),
    ],
)
def test_bad_photo(photo: bytes, detail: str) -> None:
    message = rejected(
        examine(photo, encode(EXAMPLES["camerus1"], ".json"), ".json", CONTEXT),
        Reason.BAD_PHOTO,
    )
    assert detail in message


def test_bad_photo_over_the_pixel_limit() -> None:
    context = Context(CONTEXT.detector, CAMERAS, NOW, max_pixels=64 * 48 - 1)
    for image_format, photo in PHOTOS.items():
        message = rejected(
            examine(photo, encode(EXAMPLES["camerus3"], ".bin"), ".bin", context),
            Reason.BAD_PHOTO,
        )
        assert "too large" in message, image_format


def test_metadata_is_judged_before_the_photo() -> None:
    bad_photo = b"not an image"
    assert rejected(examine(bad_photo, b"{", ".json", CONTEXT), Reason.BAD_METADATA)
    invalid = encode(shot("camerus2", datetime__month=13), ".json")
    assert rejected(examine(bad_photo, invalid, ".json", CONTEXT), Reason.INVALID)
    stranger = encode(shot("camerus3", camera__id=str(uuid.uuid4())), ".json")
    assert rejected(examine(bad_photo, stranger, ".json", CONTEXT), Reason.UNKNOWN_CAMERA)


# --- fuzz ---------------------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("LIZARD_FUZZ_EXAMPLES", "250"))
fuzz = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(result: object, photo: bytes) -> None:
    """The contract: a case that honours the registry, or a rejection with a known code."""
    if isinstance(result, Rejected):
        assert type(result.reason) is Reason
        assert isinstance(result.message, str) and result.message.strip()
        assert "\x00" not in result.message  # PostgreSQL text cannot store it
        return
    assert isinstance(result, Accepted), result
    case = result.case
    assert CAMERAS[case.camera_id] == case.schema_name
    assert case.occurred_at <= NOW + FUTURE_TOLERANCE
    assert case.occurred_at.utcoffset() == timedelta(0)
    assert isinstance(result.raw, dict)
    assert "\\u0000" not in json.dumps(result.raw).replace("\\\\", "")  # nor can jsonb
    assert result.photo.size == len(photo)
    assert result.photo.sha256 == hashlib.sha256(photo).hexdigest()
    assert result.photo.width * result.photo.height <= DEFAULT_MAX_PIXELS


def run(photo: bytes, metadata: bytes, suffix: str) -> Accepted | Rejected:
    result = examine(photo, metadata, suffix, CONTEXT)
    check(result, photo)
    event(result.reason.value if isinstance(result, Rejected) else "accepted")
    return result


suffixes = st.sampled_from([".json", ".bin"])
valid_shots = st.sampled_from(sorted(EXAMPLES))
SIGNATURES = [
    b"",
    b"\xff\xd8",
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
]
signatures = st.sampled_from(SIGNATURES)
random_photos = st.builds(lambda head, tail: head + tail, signatures, st.binary(max_size=512))


@fuzz
@given(metadata=st.binary(max_size=600), suffix=suffixes)
def test_fuzz_random_metadata(metadata: bytes, suffix: str) -> None:
    run(JPEG, metadata, suffix)


@fuzz
@given(photo=random_photos, name=valid_shots, suffix=suffixes)
def test_fuzz_random_photo(photo: bytes, name: str, suffix: str) -> None:
    result = run(photo, encode(EXAMPLES[name], suffix), suffix)
    assert isinstance(result, Rejected) and result.reason is Reason.BAD_PHOTO


@fuzz
@given(photo=random_photos, metadata=st.binary(max_size=300), suffix=suffixes)
def test_fuzz_random_photo_and_metadata(photo: bytes, metadata: bytes, suffix: str) -> None:
    run(photo, metadata, suffix)


byte_edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete"]),
        st.integers(min_value=0, max_value=1 << 16),
        st.integers(min_value=0, max_value=255),
    ),
    min_size=1,
    max_size=6,
)


def edit_bytes(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in edits:
        at = where % (len(out) + 1)
        if op == "insert":
            out.insert(at, value)
        elif out:
            at %= len(out)
            if op == "flip":
                out[at] ^= 1 << (value % 8)
            elif op == "set":
                out[at] = value
            else:
                del out[at]
    return bytes(out)


@fuzz
@given(name=valid_shots, suffix=suffixes, edits=byte_edits)
def test_fuzz_byte_mutations_of_valid_metadata(
    name: str, suffix: str, edits: list[tuple[str, int, int]]
) -> None:
    run(JPEG, edit_bytes(encode(EXAMPLES[name], suffix), edits), suffix)


# Values the binary encoding carries (str, int64, object) and, for JSON, everything else too.
BINARY_SAFE_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
TRICKY_TEXT = [
    "",
    "1ABC2377",
    "ABC",
    "123",
    "77",
    "+03:00",
    "-24:00",
    "+99:99",
    "Z",
    "62km/h",
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-23:59",
    str(uuid.UUID(int=0)),
    *(str(c) for c in CAMERAS),
]
TRICKY = st.sampled_from(TRICKY_TEXT)
BOUNDARY_INTS = st.sampled_from([0, 1, -1, 12, 13, 31, 59, 60, 100, 101, 1970, 9999, 10000])
BOUNDARY_INTS |= st.sampled_from([1 << 31, 1 << 62, (1 << 63) - 1, -(1 << 63), 253402300800])
binary_leaves = BINARY_SAFE_TEXT | INT64 | TRICKY | BOUNDARY_INTS
json_leaves = (
    binary_leaves
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)


def values(leaves: st.SearchStrategy[Any], *, json_only: bool) -> st.SearchStrategy[Any]:
    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        objects = st.dictionaries(BINARY_SAFE_TEXT.filter(bool), inner, max_size=4)
        return objects | st.lists(inner, max_size=3) if json_only else objects

    return st.recursive(leaves, extend, max_leaves=8)


def objects_in(tree: dict[str, Any]) -> list[dict[str, Any]]:
    found = [tree]
    for value in tree.values():
        if isinstance(value, dict):
            found += objects_in(value)
    return found


@st.composite
def tree_mutations(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid example with leaves retyped, keys dropped and keys added, then encoded."""
    suffix = draw(suffixes)
    json_only = suffix == ".json"
    new_values = values(json_leaves if json_only else binary_leaves, json_only=json_only)
    examples = sorted(EXAMPLES) + (["camerus4"] if json_only else [])
    name = draw(st.sampled_from(examples))
    raw = copy.deepcopy(CAMERUS4_EXAMPLE if name == "camerus4" else EXAMPLES[name])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node = draw(st.sampled_from(objects_in(raw)))
        op = draw(st.sampled_from(["retype", "drop", "add"]))
        if op == "add" or not node:
            key = draw(BINARY_SAFE_TEXT.filter(bool) | st.sampled_from(sorted(node) or ["x"]))
            node[key] = draw(new_values)
        elif op == "drop":
            del node[draw(st.sampled_from(sorted(node)))]
        else:
            node[draw(st.sampled_from(sorted(node)))] = draw(new_values)
    return encode(raw, suffix), suffix


@fuzz
@given(mutated=tree_mutations())
def test_fuzz_tree_mutations_of_valid_metadata(mutated: tuple[bytes, str]) -> None:
    metadata, suffix = mutated
    run(JPEG, metadata, suffix)


@st.composite
def truncated_jpegs(draw: st.DrawFn) -> bytes:
    jpeg = draw(st.sampled_from(JPEGS))
    return jpeg[: draw(st.integers(min_value=0, max_value=len(jpeg) - 1))]


@fuzz
@given(photo=truncated_jpegs(), name=valid_shots, suffix=suffixes)
def test_fuzz_every_truncated_jpeg_is_a_bad_photo(photo: bytes, name: str, suffix: str) -> None:
    result = run(photo, encode(EXAMPLES[name], suffix), suffix)
    assert isinstance(result, Rejected) and result.reason is Reason.BAD_PHOTO, len(photo)


@fuzz
@given(jpeg=st.sampled_from(JPEGS), edits=byte_edits, name=valid_shots)
def test_fuzz_corrupted_jpeg(jpeg: bytes, edits: list[tuple[str, int, int]], name: str) -> None:
    result = run(edit_bytes(jpeg, edits), encode(EXAMPLES[name], ".json"), ".json")
    assert isinstance(result, Accepted) or result.reason is Reason.BAD_PHOTO

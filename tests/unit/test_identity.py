"""A shot's identity for exactly-once: the canonical case, not the metadata's bytes.

Re-encodings of one shot (JSON layout and key order, binary instead of JSON, an
upper-case camera id, non-minimal LEB128 integers, another UTC offset for the same
instant) must give the same identity; any change of plate, camera, violation or time
must not, and a photo conflict must say which case and which fields.
"""

from __future__ import annotations

import json
import random
import struct
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lizardctl.core.codecs import decode_binary, decode_metadata, encode_binary
from lizardctl.core.ingest.identity import CaseIdentity, StoredCase, photo_conflict
from lizardctl.core.schema import (
    TypeDetector,
    builtin_schema_files,
    compile_schema,
    load_schema_file,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "schemas"
EXAMPLES: dict[str, dict[str, Any]] = json.loads((FIXTURES / "design_examples.json").read_text())
DETECTOR = TypeDetector(
    compile_schema(name, 1, load_schema_file(path)) for name, path in builtin_schema_files().items()
)
NOW = datetime(2025, 6, 1, tzinfo=UTC)
ONE = CaseIdentity("1ABC2377", uuid.UUID(int=1), uuid.UUID(int=2), datetime(2024, 1, 1, tzinfo=UTC))


def padded_sleb128(value: int, pad: int) -> bytes:
    """Signed LEB128 with ``pad`` redundant sign bytes: the same integer, other bytes."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value == (-1 if byte & 0x40 else 0):
            break
        out.append(byte | 0x80)
    sign = 0x7F if byte & 0x40 else 0x00
    if pad:
        out.append(byte | 0x80)
        out.extend([sign | 0x80] * (pad - 1))
        out.append(sign)
    else:
        out.append(byte)
    return bytes(out)


def encode_binary_padded(raw: Mapping[str, Any], pad: int = 1) -> bytes:
    """The binary encoding of ``raw`` with every integer ``pad`` bytes longer than needed,
    as a camera with a lazy encoder sends it."""

    def entries(obj: Mapping[str, Any]) -> bytes:
        out = b""
        for key, value in obj.items():
            if isinstance(value, Mapping):
                kind, data = 2, entries(value)
            elif isinstance(value, int):
                kind, data = 1, padded_sleb128(value, pad)
            else:
                kind, data = 0, value.encode()
            out += struct.pack(">HHB", len(key.encode()), len(data), kind) + key.encode() + data
        return out

    body = entries(raw)
    return struct.pack(">H", len(body)) + body


def identity_of(data: bytes, suffix: str) -> CaseIdentity:
    return CaseIdentity.of(DETECTOR.case(decode_metadata(data, suffix), now=NOW))


def shuffled(obj: Any, rng: random.Random) -> Any:
    if not isinstance(obj, dict):
        return obj
    items = list(obj.items())
    rng.shuffle(items)
    return {key: shuffled(value, rng) for key, value in items}


def upper_camera(raw: dict[str, Any]) -> dict[str, Any]:
    raw = json.loads(json.dumps(raw))
    if "camera_id" in raw:
        raw["camera_id"] = raw["camera_id"].upper()
    else:
        raw["camera"]["id"] = raw["camera"]["id"].upper()
    return raw


def test_padded_leb128_is_longer_and_decodes_to_the_same_integer() -> None:
    for value in (0, 1, 63, 64, -1, -64, -65, 1704067200, -(1 << 63), (1 << 63) - 1):
        for pad in (1, 2):
            data = padded_sleb128(value, pad)
            assert len(data) == len(padded_sleb128(value, 0)) + pad
            raw = {"n": value}
            assert padded_sleb128(value, 0) in encode_binary(raw)
            if len(data) <= 10:
                assert decode_binary(encode_binary_padded(raw, pad)) == raw


@given(
    name=st.sampled_from(sorted(EXAMPLES)),
    seed=st.integers(0, 2**32 - 1),
    indent=st.sampled_from([None, 0, 2, 4, "\t"]),
    compact=st.booleans(),
    binary=st.booleans(),
    pad=st.integers(0, 2),
    upper=st.booleans(),
)
def test_re_encodings_of_one_case_have_one_identity(
    name: str,
    seed: int,
    indent: int | str | None,
    compact: bool,
    binary: bool,
    pad: int,
    upper: bool,
) -> None:
    original = identity_of(json.dumps(EXAMPLES[name]).encode(), ".json")
    raw = shuffled(upper_camera(EXAMPLES[name]) if upper else EXAMPLES[name], random.Random(seed))
    if binary:
        data, suffix = encode_binary_padded(raw, pad), ".bin"
    else:
        separators = (",", ":") if compact else None
        data, suffix = json.dumps(raw, indent=indent, separators=separators).encode(), ".json"
    assert identity_of(data, suffix) == original


@given(hours=st.integers(-12, 14))
def test_the_same_instant_in_another_offset_has_the_same_identity(hours: int) -> None:
    raw = dict(EXAMPLES["camerus1"])
    when = datetime(2024, 1, 1, tzinfo=UTC).astimezone(timezone(timedelta(hours=hours)))
    raw["datetime"] = when.isoformat()
    assert identity_of(json.dumps(raw).encode(), ".json") == identity_of(
        json.dumps(EXAMPLES["camerus1"]).encode(), ".json"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"transport_numbers": "223"}, "plate"),
        ({"camera_id": str(uuid.UUID(int=9))}, "camera_id"),
        ({"violation_id": str(uuid.UUID(int=9))}, "violation_id"),
        ({"datetime": "2024-01-01T00:00:01+00:00"}, "occurred_at"),
    ],
)
def test_each_canonical_field_changes_the_identity(change: dict[str, str], field: str) -> None:
    base = identity_of(json.dumps(EXAMPLES["camerus1"]).encode(), ".json")
    other = identity_of(json.dumps({**EXAMPLES["camerus1"], **change}).encode(), ".json")
    assert other != base
    assert [d.split(" ")[0] for d in other.differences(base)] == [field]


def test_value_and_skill_are_not_part_of_the_identity() -> None:
    base = identity_of(json.dumps(EXAMPLES["camerus1"]).encode(), ".json")
    changed = {**EXAMPLES["camerus1"], "violation_value": "99km/h", "skill_value": 7}
    assert identity_of(json.dumps(changed).encode(), ".json") == base


def test_a_stored_case_with_the_same_identity_makes_a_duplicate() -> None:
    keyed = StoredCase(uuid.UUID(int=10), ONE, evidence=True)
    assert photo_conflict(ONE, [keyed]) is None


def test_any_of_several_stored_cases_of_a_photo_makes_a_duplicate() -> None:
    """Databases from before 0006 may hold several cases for one photo: matching any is
    a duplicate, not a conflict with the keyed one."""
    other = CaseIdentity(ONE.plate, ONE.camera_id, ONE.violation_id, ONE.occurred_at + timedelta(1))
    stored = [StoredCase(uuid.UUID(int=10), other, True), StoredCase(uuid.UUID(int=11), ONE, False)]
    assert photo_conflict(ONE, stored) is None


def test_a_conflict_names_the_keyed_case_and_every_differing_field() -> None:
    later = ONE.occurred_at + timedelta(seconds=5)
    other = CaseIdentity("2XYZ9977", ONE.camera_id, ONE.violation_id, later)
    stored = [
        StoredCase(uuid.UUID(int=11), other, False),
        StoredCase(uuid.UUID(int=10), other, True),
    ]
    message = photo_conflict(ONE, stored)
    assert message == (
        f"the photo is already the evidence of case {uuid.UUID(int=10)}; this shot differs in "
        "plate (2XYZ9977 there, 1ABC2377 here), occurred_at (2024-01-01T00:00:05+00:00 there, "
        "2024-01-01T00:00:00+00:00 here)"
    )


def test_a_photo_without_a_stored_case_is_a_bug_not_a_verdict() -> None:
    with pytest.raises(ValueError, match="no stored case"):
        photo_conflict(ONE, [])

"""Metadata codecs: spec-derived golden bytes, one test per rejection, and totality properties.

Expected bytes are built from the DESIGN.md layout with ``struct.pack`` and hand-computed
LEB128 literals, never from ``encode_binary``, so encoder and decoder are both checked
against the spec rather than against each other.
"""

from __future__ import annotations

import json
import pickle
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lizardctl.core.codecs import (
    MAX_DEPTH,
    MetadataDecodeError,
    MetadataEncodeError,
    decode_binary,
    decode_json,
    decode_metadata,
    encode_binary,
)
from lizardctl.core.errors import UsageError

STRING, INT, OBJECT = 0, 1, 2
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def entry(key: str | bytes, kind: int, value: bytes) -> bytes:
    """One entry as DESIGN.md lays it out: u16 key len, u16 value len, u8 type, key, value."""
    key_bytes = key.encode() if isinstance(key, str) else key
    return struct.pack(">HHB", len(key_bytes), len(value), kind) + key_bytes + value


def text(key: str, value: str) -> bytes:
    return entry(key, STRING, value.encode())


def obj(key: str, *entries: bytes) -> bytes:
    return entry(key, OBJECT, b"".join(entries))


def root(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack(">H", len(body)) + body


# Signed LEB128, computed by hand: 7-bit groups from the least significant end, 0x80 on every
# byte but the last; stop once the rest is sign bits and bit 6 of the last byte matches the sign.
LEB_0 = b"\x00"
LEB_1 = b"\x01"
# 2024 = 0b1111_1101000 -> groups 1101000 (0x68), 0001111 (0x0f) -> 0xe8 0x0f
LEB_2024 = b"\xe8\x0f"
# 1704067200 = 0x65920080 -> groups 0000000, 0000001, 1001000, 0101100, 0000110
#            -> 0x80 0x81 0xc8 0xac 0x06
LEB_1704067200 = b"\x80\x81\xc8\xac\x06"

CAMERUS1 = {
    "transport_chars": "ABC",
    "transport_numbers": "123",
    "transport_region": "77",
    "camera_id": "104fc08a-efb6-427f-9193-2d54e4ed3e12",
    "violation_id": "de163a57-fd92-47a6-9b78-82bb0d41be71",
    "violation_value": "62km/h",
    "skill_value": 1,
    "datetime": "2024-01-01T00:00:00+00:00",
}
CAMERUS1_BIN = root(
    text("transport_chars", "ABC"),
    text("transport_numbers", "123"),
    text("transport_region", "77"),
    text("camera_id", "104fc08a-efb6-427f-9193-2d54e4ed3e12"),
    text("violation_id", "de163a57-fd92-47a6-9b78-82bb0d41be71"),
    text("violation_value", "62km/h"),
    entry("skill_value", INT, LEB_1),
    text("datetime", "2024-01-01T00:00:00+00:00"),
)

CAMERUS2 = {
    "transport": {"chars": "ABC", "numbers": "123", "transport_region": "77"},
    "camera": {"id": "d5cf359d-f9c3-48a1-8bb2-7a2f66f26670"},
    "violation": {"id": "de163a57-fd92-47a6-9b78-82bb0d41be71", "value": "62km/h"},
    "skill": {"value": 1},
    "datetime": {
        "year": 2024,
        "month": 1,
        "day": 1,
        "hour": 0,
        "minute": 0,
        "seconds": 0,
        "utf_offset": "+00:00",
    },
}
CAMERUS2_BIN = root(
    obj("transport", text("chars", "ABC"), text("numbers", "123"), text("transport_region", "77")),
    obj("camera", text("id", "d5cf359d-f9c3-48a1-8bb2-7a2f66f26670")),
    obj("violation", text("id", "de163a57-fd92-47a6-9b78-82bb0d41be71"), text("value", "62km/h")),
    obj("skill", entry("value", INT, LEB_1)),
    obj(
        "datetime",
        entry("year", INT, LEB_2024),
        entry("month", INT, LEB_1),
        entry("day", INT, LEB_1),
        entry("hour", INT, LEB_0),
        entry("minute", INT, LEB_0),
        entry("seconds", INT, LEB_0),
        text("utf_offset", "+00:00"),
    ),
)

CAMERUS3 = {
    "transport": "1ABC2377",
    "camera": {"id": "baa1b593-4635-45d4-9a29-181a7f5bb77a"},
    "violation": {"id": "b8c548ca-b143-4e88-9c2d-fc0599ad570b", "value": "62km/h"},
    "skill": 1,
    "datetime": 1704067200,
}
CAMERUS3_BIN = root(
    text("transport", "1ABC2377"),
    obj("camera", text("id", "baa1b593-4635-45d4-9a29-181a7f5bb77a")),
    obj("violation", text("id", "b8c548ca-b143-4e88-9c2d-fc0599ad570b"), text("value", "62km/h")),
    entry("skill", INT, LEB_1),
    entry("datetime", INT, LEB_1704067200),
)

GOLDEN = pytest.mark.parametrize(
    ("example", "golden"),
    [(CAMERUS1, CAMERUS1_BIN), (CAMERUS2, CAMERUS2_BIN), (CAMERUS3, CAMERUS3_BIN)],
    ids=["camerus1", "camerus2", "camerus3"],
)


def chain(depth: int) -> dict[str, Any]:
    """A dict nested ``depth`` deep, the root counting as 1."""
    nested: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        nested = {"a": nested}
    return nested


def chain_bin(depth: int) -> bytes:
    entries = entry("leaf", INT, LEB_1)
    for _ in range(depth - 1):
        entries = obj("a", entries)
    return root(entries)


def assert_rejected(data: bytes, reason: str, offset: int | None) -> None:
    with pytest.raises(MetadataDecodeError) as info:
        decode_binary(data)
    assert (info.value.reason, info.value.offset) == (reason, offset)


# --- golden bytes ---------------------------------------------------------------------------


@GOLDEN
def test_encode_matches_spec_bytes(example: dict[str, Any], golden: bytes) -> None:
    assert encode_binary(example) == golden


@GOLDEN
def test_decode_spec_bytes(example: dict[str, Any], golden: bytes) -> None:
    assert decode_binary(golden) == example


@GOLDEN
def test_json_and_binary_decode_to_the_same_dict(example: dict[str, Any], golden: bytes) -> None:
    assert decode_json(json.dumps(example).encode()) == decode_binary(golden)


@pytest.mark.parametrize(
    ("value", "leb"),
    [
        (0, b"\x00"),
        (63, b"\x3f"),  # bit 6 clear: still positive in one byte
        (64, b"\xc0\x00"),  # bit 6 would read as sign: needs a second byte
        (-1, b"\x7f"),
        (-64, b"\x40"),
        (-65, b"\xbf\x7f"),
        (INT64_MAX, b"\xff" * 8 + b"\xff\x00"),
        (INT64_MIN, b"\x80" * 9 + b"\x7f"),
    ],
)
def test_leb128_is_minimal_at_the_edges(value: int, leb: bytes) -> None:
    data = root(entry("n", INT, leb))
    assert encode_binary({"n": value}) == data
    assert decode_binary(data) == {"n": value}


def test_empty_root_and_empty_nested_object() -> None:
    assert decode_binary(b"\x00\x00") == {}
    assert encode_binary({"a": {}, "b": ""}) == root(obj("a"), text("b", ""))
    assert decode_binary(root(obj("a"), text("b", ""))) == {"a": {}, "b": ""}


def test_large_string_value_decodes() -> None:
    value = "ж" * 30_000  # 60 000 UTF-8 bytes, near the u16 ceiling
    data = root(text("photo_note", value))
    assert decode_binary(data) == {"photo_note": value}
    assert encode_binary({"photo_note": value}) == data


@pytest.mark.parametrize("suffix", [".bin", ".BIN", ".Bin"])
def test_decode_metadata_binary_suffix(suffix: str) -> None:
    assert decode_metadata(CAMERUS3_BIN, suffix) == CAMERUS3


@pytest.mark.parametrize("suffix", [".json", ".JSON"])
def test_decode_metadata_json_suffix(suffix: str) -> None:
    assert decode_metadata(json.dumps(CAMERUS3).encode(), suffix) == CAMERUS3


def test_decode_metadata_unknown_suffix() -> None:
    with pytest.raises(
        MetadataDecodeError, match=r"^metadata: unsupported metadata suffix '\.xml'$"
    ):
        decode_metadata(b"{}", ".xml")


# --- binary rejections: one per reason, exact offset ----------------------------------------


def test_error_is_a_usage_error_with_readable_message() -> None:
    with pytest.raises(UsageError) as info:
        decode_binary(root(entry("k", INT, b"\x80")))
    assert str(info.value) == "binary metadata: truncated LEB128 integer at byte 8"


def test_error_survives_pickling_for_process_pools() -> None:
    err = MetadataDecodeError("empty key", 2, "binary")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.reason, copy.offset, copy.encoding, str(copy)) == (
        "empty key",
        2,
        "binary",
        str(err),
    )


@pytest.mark.parametrize("data", [b"", b"\x00"])
def test_input_shorter_than_header(data: bytes) -> None:
    assert_rejected(data, "input shorter than the 2-byte header", 0)


def test_root_length_exceeds_data() -> None:
    assert_rejected(CAMERUS3_BIN[:-1], "root length exceeds the data", 0)


def test_trailing_bytes_after_root() -> None:
    assert_rejected(
        CAMERUS3_BIN + b"\x00", "trailing bytes after the root object", len(CAMERUS3_BIN)
    )


def test_truncated_entry_header() -> None:
    data = root(text("a", "b"), b"\x00\x01\x00\x00")  # 4 of 5 header bytes
    assert_rejected(data, "truncated entry header", 2 + 7)


def test_key_length_runs_past_object() -> None:
    assert_rejected(
        root(struct.pack(">HHB", 9, 0, STRING) + b"abc"), "key length runs past its object", 2
    )


def test_value_length_runs_past_object() -> None:
    assert_rejected(
        root(struct.pack(">HHB", 1, 9, STRING) + b"k" + b"v"),
        "value length runs past its object",
        4,
    )


def test_nested_value_length_is_bounded_by_its_object_not_the_root() -> None:
    inner = struct.pack(">HHB", 1, 3, STRING) + b"k" + b"v"  # claims 3 value bytes, object has 1
    data = root(obj("o", inner), text("z", "zz"))  # bytes after the object must not count
    assert_rejected(data, "value length runs past its object", 2 + 6 + 2)


def test_unknown_type_byte() -> None:
    assert_rejected(root(text("a", "b"), entry("k", 3, b"")), "unknown type byte", 2 + 7 + 4)


def test_empty_key_is_rejected() -> None:
    assert_rejected(root(text("a", "b"), entry("", STRING, b"v")), "empty key", 2 + 7)


def test_invalid_utf8_in_key() -> None:
    assert_rejected(root(entry(b"ok\xff", STRING, b"v")), "invalid UTF-8 in key", 2 + 5 + 2)


def test_invalid_utf8_in_string_value() -> None:
    bad = "ж".encode()[:1]  # lone lead byte
    assert_rejected(root(entry("k", STRING, b"ab" + bad)), "invalid UTF-8 in string", 2 + 6 + 2)


def test_utf8_encoded_surrogate_is_invalid() -> None:
    assert_rejected(root(entry("k", STRING, b"\xed\xa0\x80")), "invalid UTF-8 in string", 2 + 6)


def test_duplicate_key() -> None:
    assert_rejected(root(text("k", "a"), text("k", "b")), "duplicate key", 2 + 7 + 5)


def test_same_key_in_different_objects_is_fine() -> None:
    assert decode_binary(root(text("k", "a"), obj("o", text("k", "b")))) == {
        "k": "a",
        "o": {"k": "b"},
    }


def test_empty_leb128() -> None:
    assert_rejected(root(entry("k", INT, b"")), "empty LEB128 integer", 2 + 6)


def test_truncated_leb128() -> None:
    assert_rejected(root(entry("k", INT, b"\xe8\x8f")), "truncated LEB128 integer", 2 + 6 + 1)


def test_leb128_longer_than_ten_bytes() -> None:
    assert_rejected(
        root(entry("k", INT, b"\x80" * 10 + b"\x00")), "LEB128 integer longer than 10 bytes", 2 + 6
    )


def test_leb128_shorter_than_value_length() -> None:
    data = root(entry("k", INT, LEB_2024 + b"\x00"))
    assert_rejected(data, "LEB128 integer shorter than its value length", 2 + 6 + 2)


def test_padded_leb128_within_ten_bytes_is_accepted() -> None:
    assert decode_binary(root(entry("k", INT, b"\x81\x80\x00"))) == {"k": 1}


@pytest.mark.parametrize(
    "leb", [b"\x80" * 9 + b"\x01", b"\x80" * 9 + b"\x7e"], ids=["2**63", "-(2**64)"]
)
def test_leb128_outside_int64(leb: bytes) -> None:
    assert_rejected(root(entry("k", INT, leb)), "integer out of 64-bit range", 2 + 6)


def test_nesting_up_to_max_depth_is_accepted() -> None:
    assert decode_binary(chain_bin(MAX_DEPTH)) == chain(MAX_DEPTH)


def test_nesting_past_max_depth() -> None:
    # The object that would be depth MAX_DEPTH + 1 starts after MAX_DEPTH entry headers
    # (5 bytes) with key "a" (1 byte), behind the 2-byte root header.
    assert_rejected(chain_bin(MAX_DEPTH + 1), f"nesting deeper than {MAX_DEPTH}", 2 + 6 * MAX_DEPTH)


def test_64_deep_nesting_is_rejected() -> None:
    with pytest.raises(MetadataDecodeError, match="nesting deeper than"):
        decode_binary(chain_bin(64))
    with pytest.raises(MetadataEncodeError, match="nesting deeper than"):
        encode_binary(chain(64))


# --- encoder refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [1.5, True, False, None, [1], (1,), b"bytes", 2**63, -(2**63) - 1, "\ud800"],
    ids=repr,
)
def test_encoder_refuses_unsupported_values(value: Any) -> None:
    with pytest.raises(MetadataEncodeError):
        encode_binary({"k": value})
    with pytest.raises(MetadataEncodeError):
        encode_binary({"o": {"k": value}})


@pytest.mark.parametrize("key", ["", 1, None], ids=repr)
def test_encoder_refuses_bad_keys(key: Any) -> None:
    with pytest.raises(MetadataEncodeError):
        encode_binary({key: "v"})


def test_encoder_refuses_too_long_key_and_value() -> None:
    with pytest.raises(MetadataEncodeError, match="key longer"):
        encode_binary({"k" * 65_536: "v"})
    with pytest.raises(MetadataEncodeError, match="value longer"):
        encode_binary({"k": "v" * 65_536})


def test_encoder_refuses_too_large_objects() -> None:
    halves = {"a": "v" * 40_000, "b": "v" * 40_000}
    with pytest.raises(MetadataEncodeError, match="root object"):
        encode_binary(halves)
    with pytest.raises(MetadataEncodeError, match="object at key 'o'"):
        encode_binary({"o": halves})


# --- JSON -----------------------------------------------------------------------------------


def assert_json_rejected(data: bytes, reason: str, offset: int | None) -> None:
    with pytest.raises(MetadataDecodeError) as info:
        decode_json(data)
    assert (info.value.reason, info.value.offset, info.value.encoding) == (reason, offset, "JSON")


def test_json_keeps_json_types() -> None:
    data = b'{"f": 1.5, "b": true, "n": null, "l": [1, "x"], "e": "\\ud83d\\ude00"}'
    assert decode_json(data) == {"f": 1.5, "b": True, "n": None, "l": [1, "x"], "e": "😀"}


@pytest.mark.parametrize(
    "data", [b'{"a": 1, "a": 2}', b'{"o": {"a": 1, "a": 1}}', b'[{"a": 1, "a": 2}]']
)
def test_json_duplicate_keys(data: bytes) -> None:
    assert_json_rejected(data, "duplicate key", None)


def test_json_empty_key() -> None:
    assert_json_rejected(b'{"": 1}', "empty key", None)


@pytest.mark.parametrize(
    "data", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e999}']
)
def test_json_non_finite_numbers(data: bytes) -> None:
    assert_json_rejected(data, "non-finite number", None)


@pytest.mark.parametrize("literal", [str(INT64_MAX + 1), str(INT64_MIN - 1), "9" * 5000])
def test_json_integer_outside_int64(literal: str) -> None:
    assert_json_rejected(b'{"a": ' + literal.encode() + b"}", "integer out of 64-bit range", None)


def test_json_int64_edges_are_accepted() -> None:
    assert decode_json(f'{{"a": {INT64_MAX}, "b": {INT64_MIN}}}'.encode()) == {
        "a": INT64_MAX,
        "b": INT64_MIN,
    }


@pytest.mark.parametrize(("data", "offset"), [(b"[1]", 0), (b' \n"x"', 2), (b"  7", 2)])
def test_json_top_level_must_be_object(data: bytes, offset: int) -> None:
    assert_json_rejected(data, "top level is not an object", offset)


STRING_OF_BRACKETS = b'{"a": "' + b"[" * 1000 + b'", "b": '


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"[" * 100_000, MAX_DEPTH),
        (b'{"a":' * 100_000, 5 * MAX_DEPTH),
        # The root "{" is depth 1, so the MAX_DEPTH-th real "[" is one level too deep.
        (
            STRING_OF_BRACKETS + b"[" * 40 + b"]" * 40 + b"}",
            len(STRING_OF_BRACKETS) + MAX_DEPTH - 1,
        ),
    ],
    ids=["arrays", "objects", "brackets-in-strings"],
)
def test_json_depth_bomb(data: bytes, offset: int) -> None:
    assert_json_rejected(data, f"nesting deeper than {MAX_DEPTH}", offset)


def test_json_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = "[{" * 1000
    assert decode_json(json.dumps({"a": value, "b": [[1]]}).encode()) == {"a": value, "b": [[1]]}


def test_json_nesting_up_to_max_depth_is_accepted() -> None:
    assert decode_json(json.dumps(chain(MAX_DEPTH)).encode()) == chain(MAX_DEPTH)
    with pytest.raises(MetadataDecodeError, match="nesting deeper"):
        decode_json(json.dumps(chain(MAX_DEPTH + 1)).encode())


def test_json_invalid_utf8() -> None:
    assert_json_rejected(b'{"a": "\xc3\x28"}', "invalid UTF-8", 7)


def test_json_syntax_error_offset_is_in_bytes() -> None:
    # "ж" is 2 bytes but 1 character: the offset of "}" must count bytes.
    assert_json_rejected('{"ж": }'.encode(), "Expecting value", 7)


def test_json_unpaired_surrogate_escape() -> None:
    assert_json_rejected(b'{"a": ["\\ud800"]}', "unpaired surrogate escape", None)


def test_json_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    assert decode_json(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}


# --- properties -----------------------------------------------------------------------------

# NUL is refused by both decoders (PostgreSQL cannot store it); see test_nul_is_rejected.
NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")
KEYS = st.text(NO_NUL, min_size=1, max_size=8)
LEAVES = st.one_of(st.text(NO_NUL, max_size=12), st.integers(INT64_MIN, INT64_MAX))


def objects(max_depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts of str/int/dict nested at most ``max_depth`` deep."""
    if max_depth == 1:
        return st.dictionaries(KEYS, LEAVES, max_size=4)
    return st.dictionaries(KEYS, st.one_of(LEAVES, objects(max_depth - 1)), max_size=4)


@st.composite
def deep_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Random chains reach depths a branching strategy practically never does."""
    nested = draw(objects(1))
    for key in draw(st.lists(KEYS, max_size=MAX_DEPTH - 1)):
        nested = {key: nested, **draw(objects(1))}
    return nested


@st.composite
def mutated_encodings(draw: st.DrawFn) -> bytes:
    """A valid encoding with bytes flipped, inserted, deleted or cut off."""
    data = bytearray(encode_binary(draw(st.one_of(objects(4), deep_objects()))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
    if len(data) >= 2 and draw(st.booleans()):
        # Keep the root length honest so the damage is found deeper inside.
        struct.pack_into(">H", data, 0, min(len(data) - 2, 0xFFFF))
    return bytes(data)


def assert_total(decode: Any, data: bytes) -> None:
    try:
        result = decode(data)
    except MetadataDecodeError as err:
        assert err.offset is None or 0 <= err.offset <= len(data)
    else:
        assert isinstance(result, dict)


@given(st.one_of(objects(MAX_DEPTH), deep_objects()))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_round_trip(value: dict[str, Any]) -> None:
    data = encode_binary(value)
    assert decode_binary(data) == value
    assert decode_json(json.dumps(value).encode()) == value


@given(st.binary() | st.binary().map(lambda body: struct.pack(">H", len(body)) + body))
def test_decode_binary_is_total_on_arbitrary_bytes(data: bytes) -> None:
    assert_total(decode_binary, data)


@given(mutated_encodings())
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=500)
def test_decode_binary_is_total_on_mutated_encodings(data: bytes) -> None:
    assert_total(decode_binary, data)


JSONISH = st.text(alphabet='{}[]":,. -+0123456789eEtrufalsnNIiy\\ud8x\u00e9', max_size=60)


@given(st.binary() | st.text().map(str.encode) | JSONISH.map(str.encode))
def test_decode_json_is_total_on_arbitrary_input(data: bytes) -> None:
    assert_total(decode_json, data)


@given(st.one_of(objects(4), deep_objects()), st.data())
def test_decode_json_is_total_on_mutated_documents(
    value: dict[str, Any], data: st.DataObject
) -> None:
    document = json.dumps(value)
    at = data.draw(st.integers(0, len(document)))
    junk = data.draw(JSONISH)
    assert_total(decode_json, (document[:at] + junk + document[at + len(junk) // 2 :]).encode())


@pytest.mark.parametrize("where", ["key", "value"])
def test_nul_is_rejected_with_its_offset(where: str) -> None:
    obj = {"a\x00b": "x"} if where == "key" else {"k": "x\x00y"}
    data = encode_binary(obj)
    nul = data.index(b"\x00", 2 + 5)  # past the root length and the entry header
    with pytest.raises(MetadataDecodeError) as caught:
        decode_binary(data)
    assert caught.value.reason == "NUL character in a key or string"
    assert caught.value.offset == nul
    text = json.dumps(obj).encode()
    with pytest.raises(MetadataDecodeError) as caught:
        decode_json(text)
    assert caught.value.offset == text.index(b"\\u0000")


def test_escaped_backslash_before_u0000_is_not_nul() -> None:
    assert decode_json(rb'{"k": "\\u0000"}') == {"k": "\\u0000"}

"""Metadata codecs: the cameras' compact binary encoding and JSON, both decoded to one dict.

Every byte string given to a decoder either decodes or raises ``MetadataDecodeError`` with
the byte offset of the problem: metadata files come from cameras and dumps, not from us.

Rules shared by both codecs, so that either encoding of a shot yields the same dict:

- objects (and JSON arrays) nest at most ``MAX_DEPTH`` deep, the root counting as depth 1;
- keys are unique within an object and never empty (no schema path could name "");
- integers are signed 64-bit.

Binary layout (big-endian): root = ``u16`` byte length of the entries, then the entries;
entry = ``u16`` key length, ``u16`` value length, ``u8`` type, key (UTF-8), value. Types:
``0`` UTF-8 string, ``1`` signed LEB128 integer filling exactly the value bytes,
``2`` object whose value bytes are again a sequence of entries.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping
from typing import Any, NoReturn

from lizardctl.core.errors import UsageError

__all__ = [
    "MAX_DEPTH",
    "MetadataDecodeError",
    "MetadataEncodeError",
    "decode_binary",
    "decode_json",
    "decode_metadata",
    "encode_binary",
]

MAX_DEPTH: int = 32

_STRING, _INT, _OBJECT = 0, 1, 2
_U16 = struct.Struct(">H")
_ENTRY = struct.Struct(">HHB")
_U16_MAX = 0xFFFF
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
# Ten LEB128 bytes carry 70 bits: every int64 fits, and the cap bounds the per-integer work.
_LEB128_MAX_BYTES = 10
# Longest decimal int64 literal: "-9223372036854775808".
_INT_MAX_DIGITS = 20
_TOO_DEEP = f"nesting deeper than {MAX_DEPTH}"
# PostgreSQL stores NUL in neither text nor jsonb: such metadata could never be kept.
_NUL = "NUL character in a key or string"


class MetadataDecodeError(UsageError):
    """Metadata bytes are malformed; says where, so an operator can look at the file.

    ``offset`` is the byte offset of the problem (``None`` when the JSON parser cannot tell),
    ``reason`` a short fixed phrase fit for grouping rejections, ``encoding`` "binary" or
    "JSON" (``None`` when the file is neither).
    """

    def __init__(self, reason: str, offset: int | None = None, encoding: str | None = None):
        prefix = f"{encoding} metadata" if encoding else "metadata"
        where = "" if offset is None else f" at byte {offset}"
        super().__init__(f"{prefix}: {reason}{where}")
        self.reason = reason
        self.offset = offset
        self.encoding = encoding

    def __reduce__(self) -> tuple[type[MetadataDecodeError], tuple[str, int | None, str | None]]:
        """Rebuild from the fields, so the error survives a process pool's pickling."""
        return type(self), (self.reason, self.offset, self.encoding)


class MetadataEncodeError(ValueError):
    """The value has no binary encoding; a programming error, not bad input."""


def decode_metadata(data: bytes, suffix: str) -> dict[str, Any]:
    """Decode a metadata file by its suffix (".json" or ".bin", any case)."""
    match suffix.lower():
        case ".bin":
            return decode_binary(data)
        case ".json":
            return decode_json(data)
    raise MetadataDecodeError(f"unsupported metadata suffix {suffix!r}")


# --- binary ---------------------------------------------------------------------------------


def _binary_error(reason: str, offset: int) -> NoReturn:
    raise MetadataDecodeError(reason, offset, "binary")


def decode_binary(data: bytes) -> dict[str, Any]:
    """Decode the binary encoding; total: a dict or ``MetadataDecodeError``, nothing else.

    The root length must account for the input exactly, so at most 64 KiB is ever parsed and
    the result stays proportionate to the input however large it is.
    """
    if len(data) < _U16.size:
        _binary_error("input shorter than the 2-byte header", 0)
    end = _U16.size + _U16.unpack_from(data, 0)[0]
    if end > len(data):
        _binary_error("root length exceeds the data", 0)
    if end < len(data):
        _binary_error("trailing bytes after the root object", end)
    return _decode_entries(data, _U16.size, end, 1)


def _decode_entries(data: bytes, pos: int, end: int, depth: int) -> dict[str, Any]:
    """Decode the entries in ``data[pos:end]``; recursion is bounded by ``MAX_DEPTH``."""
    obj: dict[str, Any] = {}
    while pos < end:
        if end - pos < _ENTRY.size:
            _binary_error("truncated entry header", pos)
        key_len, value_len, kind = _ENTRY.unpack_from(data, pos)
        if kind > _OBJECT:
            _binary_error("unknown type byte", pos + 4)
        key_start = pos + _ENTRY.size
        value_start = key_start + key_len
        if value_start > end:
            _binary_error("key length runs past its object", pos)
        value_end = value_start + value_len
        if value_end > end:
            _binary_error("value length runs past its object", pos + 2)
        if not key_len:
            _binary_error("empty key", pos)
        # Decoding inline, not in a helper: this loop runs for every entry of millions of shots.
        try:
            key = data[key_start:value_start].decode()
        except UnicodeDecodeError as exc:
            _binary_error("invalid UTF-8 in key", key_start + exc.start)
        if key in obj:
            _binary_error("duplicate key", key_start)
        if "\x00" in key:
            _binary_error(_NUL, key_start + key.index("\x00"))
        if kind == _STRING:
            try:
                text = data[value_start:value_end].decode()
            except UnicodeDecodeError as exc:
                _binary_error("invalid UTF-8 in string", value_start + exc.start)
            if "\x00" in text:
                _binary_error(_NUL, value_start + text.index("\x00"))
            obj[key] = text
        elif kind == _INT:
            obj[key] = _decode_sleb128(data, value_start, value_end)
        elif depth == MAX_DEPTH:
            _binary_error(_TOO_DEEP, value_start)
        else:
            obj[key] = _decode_entries(data, value_start, value_end, depth + 1)
        pos = value_end
    return obj


def _decode_sleb128(data: bytes, start: int, end: int) -> int:
    """Decode a signed LEB128 integer that must fill ``data[start:end]`` exactly."""
    if start == end:
        _binary_error("empty LEB128 integer", start)
    if end - start > _LEB128_MAX_BYTES:
        _binary_error("LEB128 integer longer than 10 bytes", start)
    value = shift = 0
    for pos in range(start, end):
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if pos + 1 != end:
                _binary_error("LEB128 integer shorter than its value length", pos + 1)
            if byte & 0x40:
                value -= 1 << shift
            if not _INT_MIN <= value <= _INT_MAX:
                _binary_error("integer out of 64-bit range", start)
            return value
    _binary_error("truncated LEB128 integer", end - 1)


def encode_binary(obj: Mapping[str, Any]) -> bytes:
    """Encode ``obj`` canonically (minimal LEB128, mapping order) in the binary layout."""
    out = bytearray(_U16.size)
    _encode_entries(out, obj, 1)
    _patch_length(out, 0, len(out) - _U16.size, "root object")
    return bytes(out)


def _encode_entries(out: bytearray, obj: Mapping[str, Any], depth: int) -> None:
    """Append ``obj``'s entries, back-patching nested lengths so the encoder stays linear."""
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise MetadataEncodeError(f"keys must be non-empty strings, got {key!r}")
        key_bytes = _encode_utf8(key)
        if len(key_bytes) > _U16_MAX:
            raise MetadataEncodeError(f"key longer than {_U16_MAX} bytes: {key[:40]!r}...")
        header = len(out)
        if isinstance(value, str):
            kind, value_bytes = _STRING, _encode_utf8(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            kind, value_bytes = _INT, _encode_sleb128(value)
        elif isinstance(value, Mapping):
            if depth == MAX_DEPTH:
                raise MetadataEncodeError(f"{_TOO_DEEP} at key {key!r}")
            out += _ENTRY.pack(len(key_bytes), 0, _OBJECT) + key_bytes
            _encode_entries(out, value, depth + 1)
            length = len(out) - header - _ENTRY.size - len(key_bytes)
            _patch_length(out, header + 2, length, f"object at key {key!r}")
            continue
        else:
            raise MetadataEncodeError(f"unsupported value type {type(value).__name__} at {key!r}")
        if len(value_bytes) > _U16_MAX:
            raise MetadataEncodeError(f"value longer than {_U16_MAX} bytes at key {key!r}")
        out += _ENTRY.pack(len(key_bytes), len(value_bytes), kind) + key_bytes + value_bytes


def _patch_length(out: bytearray, at: int, length: int, what: str) -> None:
    if length > _U16_MAX:
        raise MetadataEncodeError(f"{what} encodes to more than {_U16_MAX} bytes")
    _U16.pack_into(out, at, length)


def _encode_utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise MetadataEncodeError(f"unencodable string {text[:40]!r}: {exc.reason}") from exc


def _encode_sleb128(value: int) -> bytes:
    """Minimal signed LEB128: stop once the remaining bits are all sign bits."""
    if not _INT_MIN <= value <= _INT_MAX:
        raise MetadataEncodeError(f"integer out of 64-bit range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value == (-1 if byte & 0x40 else 0):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


# --- JSON -----------------------------------------------------------------------------------

# A string (unterminated ones run to the end, keeping the scan linear) or a bracket.
_JSON_NESTING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)
# Only escapes can smuggle a lone surrogate past strict UTF-8 decoding.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_WHITESPACE = b" \t\n\r"


def _json_error(reason: str, offset: int | None) -> NoReturn:
    raise MetadataDecodeError(reason, offset, "JSON")


def decode_json(data: bytes) -> dict[str, Any]:
    """Decode UTF-8 JSON metadata under the shared rules; total like ``decode_binary``.

    Beyond syntax this rejects NaN and infinities (also ``1e999``), which no schema or
    database round-trips faithfully, and lone surrogate escapes, which cannot be stored.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        _json_error("invalid UTF-8", exc.start)
    _check_json_depth(text)
    try:
        if text.startswith("\ufeff"):  # what json.loads says, which the decoder does not check
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        obj = _JSON_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        _json_error(exc.msg.removesuffix(" at"), _byte_offset(text, exc.pos))
    except RecursionError:
        # Unreachable while _check_json_depth is exact; kept so totality never rests on it.
        _json_error(_TOO_DEEP, None)
    if not isinstance(obj, dict):
        _json_error("top level is not an object", len(data) - len(data.lstrip(_JSON_WHITESPACE)))
    if "\\u0000" in text and _has_nul(obj):
        _json_error(_NUL, _byte_offset(text, text.index("\\u0000")))
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            _json_error("unpaired surrogate escape", None)
    return obj


def _has_nul(value: Any) -> bool:
    """Whether any key or string holds NUL; only called when the text has a ``\\u0000``."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _check_json_depth(text: str) -> None:
    """Reject nesting past ``MAX_DEPTH`` before ``json`` recurses into it.

    Counting brackets is C-speed and settles almost every file; only files with more
    brackets than the limit pay for the exact scan, which skips brackets inside strings.
    """
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return
    depth = 0
    for match in _JSON_NESTING_TOKEN.finditer(text):
        token = match.group()
        if token in ("{", "["):
            depth += 1
            if depth > MAX_DEPTH:
                _json_error(_TOO_DEEP, _byte_offset(text, match.start()))
        elif token in ("}", "]"):
            depth -= 1


def _byte_offset(text: str, pos: int) -> int:
    return len(text[:pos].encode())


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        _json_error("duplicate key", None)
    if "" in obj:
        _json_error("empty key", None)
    return obj


def _json_int(literal: str) -> int:
    # The length check first: int() refuses literals over 4300 digits with a bare ValueError.
    if len(literal) > _INT_MAX_DIGITS or not _INT_MIN <= (value := int(literal)) <= _INT_MAX:
        _json_error("integer out of 64-bit range", None)
    return value


def _json_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        _json_error("non-finite number", None)
    return value


def _json_constant(literal: str) -> NoReturn:
    _json_error("non-finite number", None)


# Built once: ``json.loads`` with hooks builds a decoder and its scanner on every call, which
# was a third of the cost of decoding a camera's metadata.
_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_json_object,
    parse_int=_json_int,
    parse_float=_json_float,
    parse_constant=_json_constant,
)

"""The schema file format: parsing, checking, and the checked document it yields.

A hand-written checker rather than a pydantic model of the file: registration must report
*every* problem with the key path the integration engineer has to edit, and must check
things no per-key validator sees (mapping paths against the layout, types across both).
See docs/schema-format.md for the format itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, TypeGuard, get_args

from pydantic_core import SchemaError, SchemaValidator
from pydantic_core import core_schema as cs

from lizardctl.core.schema.errors import SchemaFileError

FieldType = Literal["string", "int", "float", "bool", "uuid", "datetime", "object"]
Extra = Literal["forbid", "ignore"]
CanonicalField = Literal[
    "plate", "camera_id", "violation_id", "violation_value", "skill", "occurred_at"
]

FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)
CANONICAL_FIELDS: tuple[CanonicalField, ...] = get_args(CanonicalField)
DATETIME_PARTS = ("year", "month", "day", "hour", "minute", "second", "offset")

_CONSTRAINTS: dict[str, tuple[str, ...]] = {
    "string": ("pattern", "min_length", "max_length", "enum"),
    "int": ("ge", "le", "enum"),
    "float": ("ge", "le"),
    "bool": (),
    "uuid": (),
    "datetime": (),
    "object": ("fields", "extra"),
}
_COMMON_KEYS = ("type", "optional", "description")
_ALL_CONSTRAINTS = {key for keys in _CONSTRAINTS.values() for key in keys}
_TOP_KEYS = ("description", "extra", "layout", "mapping")
_EXTRAS: tuple[Extra, ...] = get_args(Extra)

# Which layout types a plain path may point at, per canonical field.
_PATH_TYPES: dict[str, tuple[FieldType, ...]] = {
    "plate": ("string",),
    "camera_id": ("uuid", "string"),
    "violation_id": ("uuid", "string"),
    "violation_value": ("string", "int", "float"),
    "skill": ("int",),
    "occurred_at": ("datetime",),
}
_CONCAT_FIELDS = ("plate", "camera_id", "violation_id", "violation_value")
_SOURCE_KINDS = ("concat", "epoch_seconds", "epoch_millis", "parts")
MAX_NESTING = 64
"""Objects and lists nest at most this deep in a schema file (a layout object costs two):
deeper, parsing and checking would recurse past Python's limit (RecursionError)."""
MAX_LENGTH = 2**31 - 1
"""The largest ``min_length``/``max_length``: the validator stores lengths as machine
integers and overflows on absurd ones such as 10**30."""
_KEY = re.compile(r"^[^.\[\]]+$")
_REF = re.compile(r"^(?P<path>[^\[\]]+)(?:\[(?P<start>-?\d+)?:(?P<stop>-?\d+)?\])?$")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One key of the metadata layout; ``fields`` and ``extra`` only for objects."""

    type: FieldType
    optional: bool = False
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    ge: int | float | None = None
    le: int | float | None = None
    enum: tuple[str | int, ...] | None = None
    fields: Mapping[str, FieldSpec] | None = None
    extra: Extra | None = None


@dataclass(frozen=True, slots=True)
class Ref:
    """A value at a dotted path, optionally sliced; ``type`` is the layout type it points at."""

    path: tuple[str, ...]
    type: FieldType
    slice: tuple[int | None, int | None] | None = None


@dataclass(frozen=True, slots=True)
class Concat:
    parts: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class Epoch:
    ref: Ref
    unit: Literal["seconds", "millis"]


@dataclass(frozen=True, slots=True)
class Parts:
    """Calendar parts plus an offset string such as ``+03:00``, in DATETIME_PARTS order."""

    refs: tuple[Ref, ...]


Source: TypeAlias = Ref | Concat | Epoch | Parts


@dataclass(frozen=True, slots=True)
class SchemaDocument:
    """A checked schema file. ``canonical`` is its content as sorted, compact JSON."""

    layout: Mapping[str, FieldSpec]
    mapping: Mapping[CanonicalField, Source]
    extra: Extra
    description: str
    canonical: str


def content_digest(doc: SchemaDocument) -> str:
    """sha256 of the canonical JSON: whitespace, key order and JSON-vs-TOML make no new version."""
    return hashlib.sha256(doc.canonical.encode()).hexdigest()


def parse_schema(
    text: str | bytes, *, suffix: str = ".json", source: str = "schema file"
) -> SchemaDocument:
    """Parse and check a schema file, raising SchemaFileError listing every problem."""
    data = _load(text, suffix, source)
    checker = _Checker()
    doc = checker.document(data)
    if checker.problems or doc is None:
        raise SchemaFileError(checker.problems, source=source)
    return doc


def load_schema_file(path: Path) -> SchemaDocument:
    """Read and check a schema file; the suffix (.json or .toml) picks the syntax."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SchemaFileError([f"cannot read: {exc.strerror}"], source=str(path)) from exc
    return parse_schema(text, suffix=path.suffix, source=str(path))


def _load(text: str | bytes, suffix: str, source: str) -> Any:
    """The parsed file, nested at most ``MAX_NESTING`` deep and holding only valid Unicode."""
    data = _parse(text, suffix, source)
    problems = _hostile_parts(data)
    if problems:
        raise SchemaFileError(problems, source=source)
    return data


def _parse(text: str | bytes, suffix: str, source: str) -> Any:
    if suffix not in (".json", ".toml"):
        raise SchemaFileError(
            [f"unsupported file suffix {suffix!r} (expected .json or .toml)"], source=source
        )
    try:
        if isinstance(text, bytes):
            text = text.decode()
        if suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 (byte {exc.start})"
    except json.JSONDecodeError as exc:
        problem = f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except tomllib.TOMLDecodeError as exc:
        problem = f"malformed TOML: {exc}"
    except ValueError as exc:
        problem = f"malformed JSON: {exc}"
    except RecursionError:
        where = _too_deep_at(text) if isinstance(text, str) and suffix == ".json" else None
        problem = f"{where or 'the file'}: nested deeper than {MAX_NESTING} levels"
    raise SchemaFileError([problem], source=source)


def _too_deep_at(text: str) -> str | None:
    """``line L, column C`` where JSON ``text`` first nests deeper than ``MAX_NESTING``."""
    depth, line, start, in_string, escaped = 0, 1, 0, False, False
    for index, char in enumerate(text):
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return f"line {line}, column {index - start + 1}"
        elif char in "]}":
            depth -= 1
        if char == "\n":
            line, start = line + 1, index + 1
    return None


def _hostile_parts(data: Any) -> list[str]:
    """Where ``data`` nests too deep or holds text that is not Unicode (a lone surrogate
    escape such as ``\\ud800`` would fail to encode when the schema is stored).

    Walked with a stack, not recursion: this is what keeps the recursive checks after it safe.
    """
    problems: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                problems.append(f"{path or 'the file'}: not valid Unicode (a lone surrogate)")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_NESTING:
            problems.append(f"{_short(path)}: nested deeper than {MAX_NESTING} levels")
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and not _is_unicode(key):
                problems.append(f"{path or 'the file'}: a key is not valid Unicode")
                continue
            child = f"{path}[{key}]" if isinstance(value, list) else f"{path}.{key}".lstrip(".")
            stack.append((child, item, depth + 1))
    return sorted(problems)


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _short(path: str) -> str:
    """A path cut in the middle when long: a too-deep path has over a hundred keys."""
    return path if len(path) <= 120 else f"{path[:60]}…{path[-59:]}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON silently keeps the last of duplicate keys; in a schema that hides a mistake."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _is_float(value: object) -> bool:
    """A number that is a finite float: 10**400 is a JSON integer no float can hold."""
    try:
        return _is_number(value) and math.isfinite(float(value))
    except OverflowError:
        return False


def _choices(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


def _regex_problem(pattern: str) -> str | None:
    """Ask pydantic-core itself: its regex engine is the one that will run the pattern."""
    try:
        SchemaValidator(cs.str_schema(pattern=pattern))
    except SchemaError as exc:
        return str(exc).strip().splitlines()[-1].removeprefix("error: ")
    return None


class _Checker:
    """Walks the parsed file once, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._broken: set[tuple[str, ...]] = set()

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def document(self, data: Any) -> SchemaDocument | None:
        if not isinstance(data, dict):
            self.problems.append("the schema must be an object with 'layout' and 'mapping'")
            return None
        for key in data:
            if key not in _TOP_KEYS:
                self.problem(key, f"unknown key (expected one of {_choices(_TOP_KEYS)})")
        description = data.get("description", "")
        if not isinstance(description, str):
            self.problem("description", "must be a string")
        extra = data.get("extra", "forbid")
        if extra not in _EXTRAS:
            self.problem("extra", f"must be one of {_choices(_EXTRAS)}, got {extra!r}")
        layout = self.fields("layout", data.get("layout", {}), ())
        mapping = self.mapping(data.get("mapping"), layout)
        if layout is None or mapping is None:
            return None
        return SchemaDocument(
            layout=layout,
            mapping=mapping,
            extra=extra,
            description=description,
            canonical=json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        )

    def fields(self, where: str, raw: Any, path: tuple[str, ...]) -> dict[str, FieldSpec] | None:
        if not isinstance(raw, dict) or not raw:
            self.problem(where, "must be a non-empty object mapping field names to field specs")
            return None
        result: dict[str, FieldSpec] = {}
        for key, value in raw.items():
            if not _KEY.match(key):
                self.problem(
                    f"{where}.{key}", "field names must be non-empty, without '.', '[', ']'"
                )
            spec = self.field(f"{where}.{key}", value, (*path, key))
            if spec is None:
                self._broken.add((*path, key))
            else:
                result[key] = spec
        return result

    def field(self, where: str, raw: Any, path: tuple[str, ...]) -> FieldSpec | None:
        if isinstance(raw, str):
            raw = {"type": raw}
            type_where = where
        else:
            type_where = f"{where}.type"
        if not isinstance(raw, dict):
            self.problem(where, "must be a type name or an object with a 'type' key")
            return None
        type_ = raw.get("type")
        if type_ not in FIELD_TYPES:
            found = "missing" if type_ is None else f"unknown type {type_!r}"
            self.problem(type_where, f"{found} (expected one of {_choices(FIELD_TYPES)})")
            return None
        allowed = (*_COMMON_KEYS, *_CONSTRAINTS[type_])
        for key in raw:
            if key not in allowed:
                what = "not valid for type" if key in _ALL_CONSTRAINTS else "unknown key for type"
                valid = _choices(allowed[1:])
                self.problem(f"{where}.{key}", f"{what} {type_} (valid: {valid})")
        if not isinstance(raw.get("optional", False), bool):
            self.problem(f"{where}.optional", "must be true or false")
        if not isinstance(raw.get("description", ""), str):
            self.problem(f"{where}.description", "must be a string")
        if type_ == "object":
            return self.object_field(where, raw, path)
        constraints = {k: raw[k] for k in _CONSTRAINTS[type_] if k in raw}
        self.check_constraints(where, type_, constraints)
        enum = constraints.pop("enum", None)
        return FieldSpec(
            type=type_,
            optional=raw.get("optional") is True,
            enum=tuple(enum) if isinstance(enum, list) else None,
            **constraints,
        )

    def object_field(self, where: str, raw: dict[str, Any], path: tuple[str, ...]) -> FieldSpec:
        extra = raw.get("extra")
        if extra is not None and extra not in _EXTRAS:
            self.problem(f"{where}.extra", f"must be one of {_choices(_EXTRAS)}, got {extra!r}")
        fields = None
        if "fields" not in raw:
            self.problem(f"{where}.fields", "missing (an object needs its fields)")
        else:
            fields = self.fields(f"{where}.fields", raw["fields"], path)
        if fields is None:
            self._broken.add(path)
        return FieldSpec(
            type="object",
            optional=raw.get("optional") is True,
            fields=fields or {},
            extra=extra if extra in _EXTRAS else None,
        )

    def check_constraints(self, where: str, type_: str, raw: dict[str, Any]) -> None:
        if "pattern" in raw:
            pattern = raw["pattern"]
            if not isinstance(pattern, str):
                self.problem(f"{where}.pattern", "must be a string")
            elif (error := _regex_problem(pattern)) is not None:
                self.problem(f"{where}.pattern", f"invalid regex {pattern!r}: {error}")
        for key in ("min_length", "max_length"):
            if key in raw and not (_is_int(raw[key]) and 0 <= raw[key] <= MAX_LENGTH):
                self.problem(f"{where}.{key}", f"must be a non-negative integer up to {MAX_LENGTH}")
        is_value = _is_int if type_ == "int" else _is_float
        for key in ("ge", "le"):
            if key in raw and not is_value(raw[key]):
                self.problem(
                    f"{where}.{key}", f"must be a{'n integer' if type_ == 'int' else ' number'}"
                )
        for low, high in (("min_length", "max_length"), ("ge", "le")):
            lower, upper = raw.get(low), raw.get(high)
            if _is_number(lower) and _is_number(upper) and lower > upper:
                self.problem(where, f"{low} ({lower}) is greater than {high} ({upper})")
        if "enum" in raw:
            enum = raw["enum"]
            is_member = _is_int if type_ == "int" else (lambda v: isinstance(v, str))
            if not isinstance(enum, list) or not enum or not all(is_member(v) for v in enum):
                kind = "integers" if type_ == "int" else "strings"
                self.problem(f"{where}.enum", f"must be a non-empty list of {kind}")

    def mapping(
        self, raw: Any, layout: dict[str, FieldSpec] | None
    ) -> dict[CanonicalField, Source] | None:
        if not isinstance(raw, dict):
            self.problem("mapping", "must be an object mapping canonical fields to sources")
            return None
        result: dict[CanonicalField, Source] = {}
        for key, value in raw.items():
            if key not in CANONICAL_FIELDS:
                self.problem(
                    f"mapping.{key}",
                    f"unknown canonical field (expected one of {_choices(CANONICAL_FIELDS)})",
                )
            elif layout is not None and (source := self.source(key, value, layout)) is not None:
                result[key] = source
        for key in CANONICAL_FIELDS:
            if key not in raw:
                self.problem("mapping", f"missing canonical field '{key}'")
        return result

    def source(
        self, field: CanonicalField, raw: Any, layout: dict[str, FieldSpec]
    ) -> Source | None:
        where = f"mapping.{field}"
        if isinstance(raw, str):
            return self.ref(where, raw, layout, _PATH_TYPES[field], f"{field} needs")
        kinds = [k for k in _SOURCE_KINDS if isinstance(raw, dict) and k in raw]
        if not isinstance(raw, dict) or len(raw) != 1 or len(kinds) != 1:
            self.problem(
                where, f"must be a path string or an object with one of {_choices(_SOURCE_KINDS)}"
            )
            return None
        kind = kinds[0]
        value = raw[kind]
        where = f"{where}.{kind}"
        if kind == "concat":
            return self.concat(where, field, value, layout)
        if field != "occurred_at":
            self.problem(where, f"only occurred_at can be built from {kind}")
            return None
        if kind == "parts":
            return self.parts(where, value, layout)
        ref = self.ref(where, value, layout, ("int", "float"), f"{kind} needs", sliceable=False)
        unit: Literal["seconds", "millis"] = "seconds" if kind == "epoch_seconds" else "millis"
        return Epoch(ref, unit) if ref is not None else None

    def concat(
        self, where: str, field: CanonicalField, raw: Any, layout: dict[str, FieldSpec]
    ) -> Concat | None:
        if field not in _CONCAT_FIELDS:
            self.problem(where, f"{field} cannot be a concatenation")
            return None
        if not isinstance(raw, list) or not raw:
            self.problem(where, "must be a non-empty list of path strings")
            return None
        parts = [
            self.ref(f"{where}[{i}]", item, layout, ("string",), "concat needs")
            for i, item in enumerate(raw)
        ]
        return Concat(tuple(p for p in parts if p is not None)) if None not in parts else None

    def parts(self, where: str, raw: Any, layout: dict[str, FieldSpec]) -> Parts | None:
        if not isinstance(raw, dict):
            self.problem(where, f"must be an object with keys {_choices(DATETIME_PARTS)}")
            return None
        for key in raw:
            if key not in DATETIME_PARTS:
                self.problem(
                    f"{where}.{key}", f"unknown part (expected {_choices(DATETIME_PARTS)})"
                )
        refs: list[Ref | None] = []
        for key in DATETIME_PARTS:
            if key not in raw:
                self.problem(where, f"missing part '{key}'")
                refs.append(None)
                continue
            types: tuple[FieldType, ...] = ("string",) if key == "offset" else ("int",)
            refs.append(self.ref(f"{where}.{key}", raw[key], layout, types, f"{key} needs", False))
        return Parts(tuple(r for r in refs if r is not None)) if None not in refs else None

    def ref(
        self,
        where: str,
        raw: Any,
        layout: dict[str, FieldSpec],
        types: tuple[FieldType, ...],
        needs: str,
        sliceable: bool = True,
    ) -> Ref | None:
        """Resolve ``a.b[1:]`` against the layout and check the type the mapping needs."""
        match = _REF.match(raw) if isinstance(raw, str) else None
        path = tuple(match["path"].split(".")) if match else ()
        if match is None or "" in path:
            self.problem(
                where, f"must be a path string such as 'camera.id' or 'a.b[1:]', got {raw!r}"
            )
            return None
        sliced = "[" in raw
        if sliced and not sliceable:
            self.problem(where, "a slice makes no sense here")
            return None
        spec = self.resolve(where, raw, path, layout)
        if spec is None:
            return None
        if sliced and spec.type != "string":
            self.problem(where, f"slice needs a string field; '{match['path']}' is {spec.type}")
            return None
        if spec.type not in types:
            wanted = " or ".join(types)
            article = "an" if wanted[0] in "aeio" else "a"  # "a uuid", "an int"
            found = f"'{match['path']}' is {spec.type}"
            self.problem(where, f"{needs} {article} {wanted} field; {found}")
            return None
        start, stop = (int(bound) if bound else None for bound in (match["start"], match["stop"]))
        return Ref(path, spec.type, (start, stop) if sliced else None)

    def resolve(
        self, where: str, raw: str, path: tuple[str, ...], layout: dict[str, FieldSpec]
    ) -> FieldSpec | None:
        spec: FieldSpec | None = None
        for depth, key in enumerate(path):
            here = path[: depth + 1]
            if here in self._broken:
                return None
            fields = layout if spec is None else spec.fields
            if spec is not None and fields is None:
                parent = ".".join(path[:depth])
                self.problem(where, f"path '{raw}': '{parent}' is {spec.type}, not an object")
                return None
            spec = (fields or {}).get(key)
            if spec is None:
                parent = f"'{'.'.join(path[:depth])}'" if depth else "the top level of the layout"
                self.problem(where, f"path '{raw}' is not in the layout (no '{key}' in {parent})")
                return None
            if spec.optional:
                self.problem(
                    where,
                    f"path '{raw}': '{'.'.join(here)}' is optional; mapped fields must be required",
                )
                return None
        return spec

"""Which camera type sent a shot: found by shape lookup, confirmed by validation, never guessed.

Trying every registered validator would make each shot cost grow with the number of types.
Instead each schema is filed in an index under one of its required top-level keys (the least
crowded one), so a shot only meets the schemas anchored at one of its own keys. Those are
filtered by key set, then by the kind of each value (object / str / int / float / bool):
that is what separates camerus2 from camerus3, whose top-level key names are the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from lizardctl.core.schema.canonical import CanonicalCase
from lizardctl.core.schema.compiler import CompiledSchema
from lizardctl.core.schema.errors import AmbiguousType, ShotInvalid, UnknownType
from lizardctl.core.schema.format import FieldType
from lizardctl.core.vocabulary import Reason

_KIND_OF: dict[type, str] = {dict: "object", str: "str", int: "int", float: "float", bool: "bool"}
_KINDS_FOR: dict[FieldType, frozenset[str]] = {
    "object": frozenset({"object"}),
    "string": frozenset({"str"}),
    "uuid": frozenset({"str"}),
    "datetime": frozenset({"str"}),
    "int": frozenset({"int"}),
    "float": frozenset({"int", "float"}),
    "bool": frozenset({"bool"}),
}


class _Shape:
    """The top level of one schema's layout, as cheap checks on a raw dict."""

    __slots__ = ("allowed", "kinds", "required", "schema")

    def __init__(self, schema: CompiledSchema) -> None:
        self.schema = schema
        layout = schema.document.layout
        self.kinds = tuple(
            (key, _KINDS_FOR[spec.type]) for key, spec in layout.items() if not spec.optional
        )
        self.required = frozenset(key for key, _ in self.kinds)
        self.allowed = frozenset(layout) if schema.document.extra == "forbid" else None

    def has_keys(self, raw: dict[str, Any]) -> bool:
        return raw.keys() >= self.required and (self.allowed is None or self.allowed >= raw.keys())

    def has_kinds(self, raw: dict[str, Any]) -> bool:
        return all(_KIND_OF.get(type(raw[key])) in kinds for key, kinds in self.kinds)


def _label(schema: CompiledSchema) -> str:
    return f"{schema.name} v{schema.version}"


class TypeDetector:
    """Finds the one registered camera type a shot's metadata belongs to."""

    def __init__(self, schemas: Iterable[CompiledSchema]) -> None:
        self._index: dict[str, list[_Shape]] = {}
        for schema in schemas:
            shape = _Shape(schema)
            # Every schema maps canonical fields from required paths, so it has a required key.
            anchor = min(sorted(shape.required), key=lambda k: len(self._index.get(k, ())))
            self._index.setdefault(anchor, []).append(shape)

    def detect(self, raw: dict[str, Any]) -> CompiledSchema:
        """The schema that validates ``raw``; raises UnknownType, AmbiguousType or ShotInvalid."""
        return self._find(raw)[0]

    def case(self, raw: dict[str, Any], *, now: datetime | None = None) -> CanonicalCase:
        """Detect the camera type, then map the shot it validated to a canonical case."""
        schema, instance = self._find(raw)
        return schema.case_from_model(instance, now=now)

    def _find(self, raw: dict[str, Any]) -> tuple[CompiledSchema, BaseModel]:
        if not isinstance(raw, dict):
            raise UnknownType("metadata must be an object")
        index = self._index
        by_keys = [
            shape for key in raw if key in index for shape in index[key] if shape.has_keys(raw)
        ]
        if not by_keys:
            keys = ", ".join(sorted(raw)) or "(none)"
            raise UnknownType(f"no camera type has top-level keys {keys}")
        if len(by_keys) == 1:
            schema = by_keys[0].schema
            return schema, schema.validate_model(raw)
        candidates = [shape.schema for shape in by_keys if shape.has_kinds(raw)] or [
            shape.schema for shape in by_keys
        ]
        return self._confirm(raw, candidates)

    @staticmethod
    def _confirm(
        raw: dict[str, Any], candidates: list[CompiledSchema]
    ) -> tuple[CompiledSchema, BaseModel]:
        """Validate against every candidate: exactly one may accept, or we report why not."""
        valid: list[tuple[CompiledSchema, BaseModel]] = []
        failures: list[tuple[CompiledSchema, ShotInvalid]] = []
        for schema in candidates:
            try:
                valid.append((schema, schema.validate_model(raw)))
            except ShotInvalid as exc:
                failures.append((schema, exc))
        if len(valid) > 1:
            raise AmbiguousType(sorted(_label(schema) for schema, _ in valid))
        if valid:
            return valid[0]
        if len(failures) == 1:
            raise failures[0][1]
        raise ShotInvalid(
            Reason.INVALID, [f"{_label(s)}: {error}" for s, exc in failures for error in exc.errors]
        )

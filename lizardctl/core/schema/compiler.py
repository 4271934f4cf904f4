"""Turn a checked SchemaDocument into a fast validator plus a mapping onto the canonical case.

This runs on millions of shots, so every layout check is a pydantic-core schema (Rust),
and the mapping reads the validated model with C-level ``attrgetter``s: measured at about
a quarter of the cost of dumping the model to a dict and walking that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from operator import attrgetter
from typing import Annotated, Any, assert_never
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetPydanticSchema, ValidationError, create_model
from pydantic_core import CoreSchema, SchemaError
from pydantic_core import core_schema as cs

from lizardctl.core.schema.canonical import CanonicalCase, build_case
from lizardctl.core.schema.errors import SchemaFileError, ShotInvalid, describe_error
from lizardctl.core.schema.format import (
    CanonicalField,
    Concat,
    Epoch,
    Extra,
    FieldSpec,
    Parts,
    Ref,
    SchemaDocument,
    Source,
    content_digest,
)
from lizardctl.core.vocabulary import Reason

Getter = Callable[[BaseModel], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_PREFIX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}"
_OFFSET = re.compile(r"^(?:[Zz]|(?P<sign>[+-])(?P<hours>[0-9]{2}):?(?P<minutes>[0-9]{2}))$")
_PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "int": int,
    "float": float,
    "bool": bool,
    "uuid": UUID,
    "datetime": datetime,
}


class CompiledSchema:
    """One camera type at one version, ready to validate shots and map them to cases."""

    def __init__(self, name: str, version: int, doc: SchemaDocument) -> None:
        self.name = name
        self.version = version
        self.document = doc
        self.digest = content_digest(doc)
        try:
            self.model: type[BaseModel] = _model(f"{name}_v{version}", doc.layout, doc.extra)
        except SchemaError as exc:
            # parse_schema bounds every value pydantic-core refuses; a document built past
            # it, or a bound it does not know yet, is still a bad schema (exit 2), not a bug.
            problem = str(exc).strip().splitlines()[-1].strip()
            raise SchemaFileError([f"cannot be compiled: {problem}"], source=name) from exc
        self._validate: Callable[[Any], BaseModel] = (
            self.model.__pydantic_validator__.validate_python
        )
        self._validate_json: Callable[[str | bytes], BaseModel] = (
            self.model.__pydantic_validator__.validate_json
        )
        self._getters = [(f, _getter(doc.layout, f, source)) for f, source in doc.mapping.items()]

    def __repr__(self) -> str:
        return f"<CompiledSchema {self.name} v{self.version}>"

    def __reduce__(self) -> tuple[Any, ...]:
        """Generated models do not pickle; a process-pool worker recompiles from the document."""
        return compile_schema, (self.name, self.version, self.document)

    def validate(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Validated metadata as a plain dict (ids as UUID, datetimes parsed)."""
        return self.validate_model(raw).model_dump(by_alias=True, exclude_unset=True)

    def to_case(self, raw: dict[str, Any], *, now: datetime | None = None) -> CanonicalCase:
        """Validate, map and check one shot's metadata; raises ShotInvalid."""
        return self.case_from_model(self.validate_model(raw), now=now)

    def json_to_case(self, raw: str | bytes, *, now: datetime | None = None) -> CanonicalCase:
        """``to_case`` for metadata still encoded as JSON, as the database keeps it.

        pydantic-core parses and validates in one pass, at half the cost of ``json.loads``
        and then validating; the layout is the same strict one in both modes.
        """
        try:
            instance = self._validate_json(raw)
        except ValidationError as exc:
            raise ShotInvalid.from_validation_error(exc) from None
        return self.case_from_model(instance, now=now)

    def json_problems(
        self, raw: str | bytes, *, now: datetime | None = None
    ) -> list[tuple[str, str]]:
        """Every way stored JSON metadata fails this schema, as (field path, message)
        pairs; empty when it would be accepted. Layout paths are the metadata's keys
        (``transport.chars``), mapping paths the canonical field (``case.plate``).

        ``json_to_case`` for replaying stored shots: the path comes from pydantic's error
        location, not from parsing a message a hostile key name could fake.
        """
        try:
            instance = self._validate_json(raw)
        except ValidationError as exc:
            return [
                (".".join(str(part) for part in error["loc"]) or "metadata", describe_error(error))
                for error in exc.errors(include_url=False)
            ]
        try:
            self.case_from_model(instance, now=now)
        except ShotInvalid as exc:
            return [(f"case.{message.split(':', 1)[0]}", message) for message in exc.errors]
        return []

    def validate_model(self, raw: dict[str, Any]) -> BaseModel:
        """Validated metadata as an instance of ``model``: the cheapest form to map from."""
        try:
            return self._validate(raw)
        except ValidationError as exc:
            raise ShotInvalid.from_validation_error(exc) from None

    def case_from_model(self, instance: BaseModel, *, now: datetime | None = None) -> CanonicalCase:
        """Map an instance from ``validate_model`` onto the canonical case and check it."""
        values: dict[str, Any] = {"schema_name": self.name, "schema_version": self.version}
        errors: list[str] = []
        for field, getter in self._getters:
            try:
                values[field] = getter(instance)
            except (ValueError, OverflowError) as exc:
                errors.append(f"{field}: {exc}")
        if errors:
            raise ShotInvalid(Reason.INVALID, errors)
        return build_case(values, now=now)


_compiled: dict[tuple[str, int, str], CompiledSchema] = {}


def compile_schema(name: str, version: int, doc: SchemaDocument) -> CompiledSchema:
    """Compile once per (name, version, content): building pydantic models is milliseconds."""
    key = (name, version, content_digest(doc))
    if (compiled := _compiled.get(key)) is None:
        compiled = _compiled[key] = CompiledSchema(name, version, doc)
    return compiled


def _model(name: str, fields: Mapping[str, FieldSpec], extra: Extra) -> type[BaseModel]:
    """A strict pydantic model for one object of the layout.

    Attributes are named ``f0, f1, ...`` with the metadata key as alias: keys such as
    ``_id``, ``model_config`` or ``class`` would otherwise clash with Python or pydantic.
    """
    definitions: dict[str, Any] = {}
    for i, (key, spec) in enumerate(fields.items()):
        if spec.type == "object":
            annotation: Any = _model(f"{name}.{key}", spec.fields or {}, spec.extra or extra)
        else:
            annotation = Annotated[_PYTHON_TYPES[spec.type], _core(_leaf_schema(spec))]
        default = Field(None, alias=key) if spec.optional else Field(alias=key)
        definitions[f"f{i}"] = (annotation, default)
    config = ConfigDict(strict=True, extra=extra, validate_by_alias=True, validate_by_name=False)
    model: type[BaseModel] = create_model(name, __config__=config, **definitions)
    return model


def _core(schema: CoreSchema) -> GetPydanticSchema:
    return GetPydanticSchema(lambda _source, _handler: schema)


def _leaf_schema(spec: FieldSpec) -> CoreSchema:
    """pydantic-core schema of a scalar field; str, int, no coercion (binary metadata is exact)."""
    schema: CoreSchema
    match spec.type:
        case "string":
            schema = cs.str_schema(
                strict=True,
                pattern=spec.pattern,
                min_length=spec.min_length,
                max_length=spec.max_length,
            )
        case "int":
            ge, le = (None if bound is None else int(bound) for bound in (spec.ge, spec.le))
            schema = cs.int_schema(strict=True, ge=ge, le=le)
        case "float":
            schema = cs.float_schema(strict=True, allow_inf_nan=False, ge=spec.ge, le=spec.le)
        case "bool":
            schema = cs.bool_schema(strict=True)
        case "uuid":
            schema = cs.chain_schema([cs.str_schema(strict=True), cs.uuid_schema(strict=False)])
        case _:  # datetime: an ISO-8601 string, parsed by pydantic-core
            iso = cs.custom_error_schema(
                cs.str_schema(strict=True, pattern=_ISO_PREFIX),
                custom_error_type="iso_datetime",
                custom_error_message="must be an ISO-8601 datetime string",
            )
            schema = cs.chain_schema([iso, cs.datetime_schema(strict=False)])
    if spec.enum is not None:
        schema = cs.chain_schema([schema, cs.literal_schema(list(spec.enum))])
    return schema


def _attribute_path(layout: Mapping[str, FieldSpec], path: tuple[str, ...]) -> str:
    """``camera.id`` -> ``f1.f0``: the generated attribute names along a layout path."""
    names: list[str] = []
    fields = layout
    for key in path:
        names.append(f"f{list(fields).index(key)}")
        fields = fields[key].fields or {}
    return ".".join(names)


def _ref_getter(layout: Mapping[str, FieldSpec], ref: Ref) -> Getter:
    get = attrgetter(_attribute_path(layout, ref.path))
    if ref.slice is not None:
        part = slice(*ref.slice)
        return lambda instance: get(instance)[part]
    return get


def _getter(layout: Mapping[str, FieldSpec], field: CanonicalField, source: Source) -> Getter:
    match source:
        case Ref() if field == "violation_value" and source.type != "string":
            get = attrgetter(_attribute_path(layout, source.path))
            return lambda instance: str(get(instance))
        case Ref():
            return _ref_getter(layout, source)
        case Concat(parts):
            getters = [_ref_getter(layout, part) for part in parts]
            return lambda instance: "".join([get(instance) for get in getters])
        case Epoch(ref, "seconds"):
            get = attrgetter(_attribute_path(layout, ref.path))
            return lambda instance: _EPOCH + timedelta(seconds=get(instance))
        case Epoch(ref, _):
            get = attrgetter(_attribute_path(layout, ref.path))
            return lambda instance: _EPOCH + timedelta(milliseconds=get(instance))
        case Parts(refs):
            get_all = attrgetter(*(_attribute_path(layout, ref.path) for ref in refs))
            offset_path = ".".join(refs[-1].path)

            def from_parts(instance: BaseModel) -> datetime:
                year, month, day, hour, minute, second, offset = get_all(instance)
                tz = _offset(offset, offset_path)
                return datetime(year, month, day, hour, minute, second, tzinfo=tz)

            return from_parts
    assert_never(source)


@lru_cache(maxsize=256)
def _offset(text: str, path: str) -> timezone:
    """``+03:00`` -> tzinfo; cached because a camera sends the same few offsets all day."""
    match = _OFFSET.match(text)
    if match is None:
        raise ValueError(f"{path} {text!r} is not a UTC offset such as +03:00")
    if match["sign"] is None:
        return UTC
    minutes = int(match["hours"]) * 60 + int(match["minutes"])
    return timezone(timedelta(minutes=-minutes if match["sign"] == "-" else minutes))

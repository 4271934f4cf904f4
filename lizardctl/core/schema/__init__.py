"""Camera-type schemas: the file format, its compiler, the canonical case and type detection."""

from lizardctl.core.schema.builtin import builtin_schema_files
from lizardctl.core.schema.canonical import FUTURE_TOLERANCE, PLATE_PATTERN, CanonicalCase
from lizardctl.core.schema.compiler import CompiledSchema, compile_schema
from lizardctl.core.schema.detect import TypeDetector
from lizardctl.core.schema.errors import (
    AmbiguousType,
    SchemaFileError,
    ShotInvalid,
    UnknownType,
)
from lizardctl.core.schema.format import (
    CANONICAL_FIELDS,
    FIELD_TYPES,
    SchemaDocument,
    content_digest,
    load_schema_file,
    parse_schema,
)

__all__ = [
    "CANONICAL_FIELDS",
    "FIELD_TYPES",
    "FUTURE_TOLERANCE",
    "PLATE_PATTERN",
    "AmbiguousType",
    "CanonicalCase",
    "CompiledSchema",
    "SchemaDocument",
    "SchemaFileError",
    "ShotInvalid",
    "TypeDetector",
    "UnknownType",
    "builtin_schema_files",
    "compile_schema",
    "content_digest",
    "load_schema_file",
    "parse_schema",
]

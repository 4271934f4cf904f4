"""A schema version as the database keeps it (its file's text), compiled back for use.

A protocol rather than the mapped class: this package stays free of the database, and
both the ingest workers and the services compile stored versions the same way.
"""

from __future__ import annotations

from typing import Protocol

from lizardctl.core.schema.compiler import CompiledSchema, compile_schema
from lizardctl.core.schema.format import parse_schema


class StoredSchema(Protocol):
    """What a stored schema version carries: a ``SchemaVersion`` row, for one."""

    @property
    def camera_type(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def content(self) -> str: ...
    @property
    def file_format(self) -> str: ...


def compile_row(row: StoredSchema) -> CompiledSchema:
    doc = parse_schema(
        row.content, suffix=f".{row.file_format}", source=f"{row.camera_type} v{row.version}"
    )
    return compile_schema(row.camera_type, row.version, doc)

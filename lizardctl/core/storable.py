"""Text that both database engines accept, whatever bytes it came from.

Linux file names are bytes: Python decodes the ones that are not UTF-8 with lone
surrogates (PEP 383), which no UTF-8 column takes (PostgreSQL's JSONB and text refuse
them, and asyncpg cannot even encode them), and PostgreSQL cannot hold NUL at all. Every
path or message an ingest writes into the database goes through ``storable``, so a name
like ``root\\xff`` is stored, and shown by ``report`` and ``rejects``, as the
backslash escape ``root\\xff`` on both engines instead of failing the run. The files
themselves are still opened and deleted by their real names.
"""

from __future__ import annotations

from typing import Any, overload


@overload
def storable(text: str) -> str: ...
@overload
def storable(text: None) -> None: ...
def storable(text: str | None) -> str | None:
    """``text`` with undecodable bytes as ``\\xff``, stray surrogates as ``\\udcff``
    and NUL as ``\\x00``; UTF-8 text without NUL comes back unchanged."""
    if text is None:
        return None
    try:
        text.encode()
    except UnicodeEncodeError:
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate no file name decodes to
            text = text.encode("utf-8", "backslashreplace").decode()
    return text.replace("\x00", "\\x00")


def storable_json(value: Any) -> Any:
    """A JSON document (run paths, run counts) with every string in it, keys too, storable."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable_json(key): storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value

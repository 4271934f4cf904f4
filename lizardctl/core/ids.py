"""Ids typed by people: a full UUID or a unique prefix of one, as git and docker allow.

A prefix is turned into the range of UUIDs that start with it, so the repository finds
its matches with an index range scan on both engines (PostgreSQL's uuid and SQLite's
32-character hex text sort alike), never by fetching every id.
"""

from __future__ import annotations

import re
import string
import uuid
from collections.abc import Awaitable, Callable, Sequence

from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.output import quoted

MIN_PREFIX = 4
"""Hex digits a prefix needs: fewer would match most of a large table."""
CANDIDATES_SHOWN = 5
_HEX = frozenset(string.hexdigits)
_UUID_SHAPE = re.compile(r"[0-9a-fA-F-]+")

IdText = str | uuid.UUID
"""An id as a command line gives it: text (a prefix, maybe) or already a UUID."""
IdLookup = Callable[[uuid.UUID, uuid.UUID, int], Awaitable[Sequence[uuid.UUID]]]
"""``(lowest, highest, limit)``: the ids in that range, in order, at most ``limit``."""


def id_range(text: str, noun: str) -> uuid.UUID | tuple[uuid.UUID, uuid.UUID]:
    """A full id, or the lowest and highest UUIDs that start with the prefix ``text``.

    Dashes may be typed where a UUID has them or left out; anything but hex digits and
    dashes, or fewer than ``MIN_PREFIX`` digits, is a usage error (exit 2).
    """
    digits = text.strip().replace("-", "").lower()
    if not _UUID_SHAPE.fullmatch(text.strip()) or not set(digits) <= _HEX or len(digits) > 32:
        raise UsageError(f"not a {noun} id or id prefix: {quoted(text)}")
    if len(digits) < MIN_PREFIX:
        raise UsageError(
            f"{noun} id prefix {quoted(text)} is too short: give at least {MIN_PREFIX} hex digits"
        )
    if len(digits) == 32:
        return uuid.UUID(hex=digits)
    return uuid.UUID(hex=digits.ljust(32, "0")), uuid.UUID(hex=digits.ljust(32, "f"))


async def resolve_id(text: str | uuid.UUID, noun: str, lookup: IdLookup) -> uuid.UUID:
    """The one id that ``text`` is or starts; exit 2 when none or several match."""
    if isinstance(text, uuid.UUID):
        return text
    wanted = id_range(text, noun)
    if isinstance(wanted, uuid.UUID):
        return wanted
    found = await lookup(*wanted, CANDIDATES_SHOWN + 1)
    if not found:
        raise NotFoundError(f"no {noun} id starts with {quoted(text)}")
    if len(found) > 1:
        shown = ", ".join(str(i) for i in found[:CANDIDATES_SHOWN])
        more = ", …" if len(found) > CANDIDATES_SHOWN else ""
        raise UsageError(
            f"{noun} id prefix {quoted(text)} is ambiguous: it starts {shown}{more}; "
            "type more of it"
        )
    return found[0]

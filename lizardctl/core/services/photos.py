"""A stored photo found by what people type: a case id or a sha256, whole or a unique prefix.

A photo packed with others has no file of its own, so ``photo get`` is how people and
scripts get one out. The reference is resolved by range scans of two primary keys (cases,
photos), the photo read with one ``pread`` (``PhotoStore.read``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lizardctl.core.db.uow import UowFactory
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.ids import MIN_PREFIX
from lizardctl.core.output import quoted
from lizardctl.core.store import PhotoLocation, PhotoStore

T = TypeVar("T")
SHA256_DIGITS = 64
MATCHES_COUNTED = 1000
"""An ambiguous prefix's matches are counted up to this many, then said to be more."""
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class FoundPhoto:
    """A photo a reference names, where it is, and the case it was named by (if one)."""

    location: PhotoLocation
    case_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Photo:
    found: FoundPhoto
    data: bytes


class PhotoService:
    def __init__(self, uow_factory: UowFactory, store: PhotoStore) -> None:
        self.uow_factory = uow_factory
        self.store = store

    async def get(self, ref: str) -> Photo:
        """The bytes of the photo ``ref`` names (see ``find``)."""
        found = await self.find(ref)
        return Photo(found, self.store.read(found.location))

    async def find(self, ref: str) -> FoundPhoto:
        """The one photo ``ref`` names: a case's (its id or a unique prefix of one) or the
        photo whose sha256 is or starts with ``ref``. Matching nothing, or several photos,
        is a usage error (exit 2)."""
        text = ref.strip().lower()
        digits = text.replace("-", "")
        hex_only = _HEX.fullmatch(digits) is not None
        as_case = hex_only and len(digits) <= 32  # dashes anywhere, as ``core.ids`` takes
        as_digest = hex_only and digits == text and len(digits) <= SHA256_DIGITS
        if not (as_case or as_digest):
            raise UsageError(f"not a case id nor a sha256, nor a prefix of one: {quoted(ref)}")
        if len(digits) < MIN_PREFIX:
            raise UsageError(f"{quoted(ref)} is too short: give at least {MIN_PREFIX} hex digits")
        case_ids = _range(digits, 32, lambda text: uuid.UUID(hex=text)) if as_case else None
        digests = _range(digits, SHA256_DIGITS, str) if as_digest else None
        async with self.uow_factory() as uow:
            cases = await uow.photos.of_cases_between(*case_ids, 2) if case_ids else []
            photos = await uow.photos.between(*digests, 2) if digests else []
            named = {location.sha256 for _, location in cases} | {p.sha256 for p in photos}
            if not named:
                raise NotFoundError(f"no case id and no photo sha256 starts with {quoted(ref)}")
            if len(cases) > 1 or len(photos) > 1 or len(named) > 1:
                counts = (
                    len(await uow.cases.ids_between(*case_ids, MATCHES_COUNTED + 1))
                    if case_ids
                    else 0,
                    len(await uow.photos.between(*digests, MATCHES_COUNTED + 1)) if digests else 0,
                )
                raise UsageError(_ambiguous(ref, *counts))
        if cases and not photos:
            return FoundPhoto(cases[0][1], cases[0][0])
        return FoundPhoto(photos[0] if photos else cases[0][1])


def _range(digits: str, width: int, make: Callable[[str], T]) -> tuple[T, T]:
    """The lowest and highest values of ``width`` hex digits that start with ``digits``."""
    return make(digits.ljust(width, "0")), make(digits.ljust(width, "f"))


def _ambiguous(ref: str, cases: int, digests: int) -> str:
    def count(n: int, noun: str) -> str:
        return f"{'over ' + str(MATCHES_COUNTED) if n > MATCHES_COUNTED else n} {noun}"

    matches = [
        count(n, noun) for n, noun in ((cases, "case id(s)"), (digests, "photo sha256(s)")) if n
    ]
    return f"{quoted(ref)} is ambiguous: it starts {' and '.join(matches)}; type more of it"

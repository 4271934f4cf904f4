"""A stored photo found by what people type: a case id or a sha256, whole or a unique prefix.

A photo packed with others has no file of its own, so ``photo get`` is how people and
scripts get one out. The reference is resolved by range scans of two primary keys (cases,
photos), the photo read with one ``pread`` (``PhotoStore.read``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.ids import MIN_PREFIX
from lizardctl.core.output import quoted
from lizardctl.core.store import PhotoLocation, PhotoStore

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
        async with self.uow_factory() as uow:
            case_ids = await _case_ids(uow, digits) if as_case else []
            digests = await _digests(uow, digits) if as_digest else []
            if not case_ids and not digests:
                raise NotFoundError(f"no case id and no photo sha256 starts with {quoted(ref)}")
            photos = set(digests)
            for case_id in case_ids[:2]:  # a third case id makes it ambiguous in any case
                case = await uow.cases.get(case_id)
                assert case is not None
                photos.add(case.photo_sha256)
            if len(photos) > 1 or len(case_ids) > 2:
                raise UsageError(_ambiguous(ref, len(case_ids), len(digests)))
            (sha256,) = photos
            location = await uow.photos.locate(sha256)
        if location is None:
            raise NotFoundError(f"photo {sha256} is not in the database")
        return FoundPhoto(location, case_ids[0] if len(case_ids) == 1 and not digests else None)


async def _case_ids(uow: UnitOfWork, digits: str) -> list[uuid.UUID]:
    """The cases whose id starts with ``digits`` (range scan of the primary key)."""
    if len(digits) == 32:
        return [case_id] if await uow.cases.get(case_id := uuid.UUID(hex=digits)) else []
    low, high = (uuid.UUID(hex=digits.ljust(32, fill)) for fill in "0f")
    return await uow.cases.ids_between(low, high, MATCHES_COUNTED + 1)


async def _digests(uow: UnitOfWork, digits: str) -> list[str]:
    """The photos whose sha256 starts with ``digits`` (range scan of the primary key)."""
    low, high = (digits.ljust(SHA256_DIGITS, fill) for fill in "0f")
    return await uow.photos.sha256_between(low, high, MATCHES_COUNTED + 1)


def _ambiguous(ref: str, cases: int, digests: int) -> str:
    def count(n: int, noun: str) -> str:
        return f"{'over ' + str(MATCHES_COUNTED) if n > MATCHES_COUNTED else n} {noun}"

    matches = [
        count(n, noun) for n, noun in ((cases, "case id(s)"), (digests, "photo sha256(s)")) if n
    ]
    return f"{quoted(ref)} is ambiguous: it starts {' and '.join(matches)}; type more of it"

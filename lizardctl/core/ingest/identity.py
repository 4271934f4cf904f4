"""A shot's identity for exactly-once: its photo and the case it shows, not its bytes.

The same photo re-sent with re-indented JSON, an upper-case camera id or a non-minimal
LEB128 integer decodes to the same canonical case; identifying shots by their metadata
bytes made one case per re-encoding, and so several fines for one offence.

One photo is evidence of one case. A shot whose photo already backs a case is a
``duplicate`` when it shows the same canonical case (plate, camera, violation,
occurred_at), whatever its bytes, its measured value or its skill; otherwise it is
rejected as ``photo-conflict``, naming that case and the fields that differ, so that a
human decides rather than a second fine being made silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class CaseIdentity:
    """The canonical fields that make two shots of one photo the same case."""

    plate: str
    camera_id: uuid.UUID
    violation_id: uuid.UUID
    occurred_at: datetime

    @classmethod
    def of(cls, case: Any) -> CaseIdentity:
        """From anything carrying the four fields: a ``CanonicalCase`` or a stored case row."""
        return cls(case.plate, case.camera_id, case.violation_id, case.occurred_at.astimezone(UTC))

    def differences(self, other: CaseIdentity) -> list[str]:
        """``field (other's value, then ours)`` for every field that differs."""
        pairs = ((f.name, getattr(other, f.name), getattr(self, f.name)) for f in fields(self))
        return [
            f"{name} ({_shown(theirs)} there, {_shown(ours)} here)"
            for name, theirs, ours in pairs
            if theirs != ours
        ]


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case already in the database (or about to be), as far as exactly-once needs it."""

    id: uuid.UUID
    identity: CaseIdentity
    evidence: bool
    """Whether this case holds the photo's unique key (every case but those that databases
    from before migration 0006 made for a photo that already had one)."""


def photo_conflict(identity: CaseIdentity, stored: Sequence[StoredCase]) -> str | None:
    """None when a stored case of the photo is this very case (a duplicate); otherwise the
    message of the ``photo-conflict`` rejection, naming the case the photo is evidence of."""
    if not stored:
        raise ValueError("a photo whose insert was skipped has no stored case")
    if any(case.identity == identity for case in stored):
        return None
    case = next((case for case in stored if case.evidence), stored[0])
    return (
        f"the photo is already the evidence of case {case.id}; this shot differs in "
        + ", ".join(identity.differences(case.identity))
    )


def _shown(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)

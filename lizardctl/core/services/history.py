"""A case's review history as plain values: its votes and its status transitions.

Kept apart from the services so that ``cases show`` and the review workflow can both
render it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lizardctl.core.db.models import CaseTransition


@dataclass(frozen=True, slots=True)
class VoteView:
    reviewer: str
    level: int
    verdict: str
    voted_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "level": self.level,
            "verdict": self.verdict,
            "voted_at": self.voted_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class TransitionView:
    at: datetime
    from_status: str
    to_status: str
    from_level: int
    to_level: int
    cause: str
    actor: str | None = None
    """Who made the change by hand (a supervisor); None for the workflow's own."""
    note: str | None = None

    @classmethod
    def of(cls, row: CaseTransition) -> TransitionView:
        return cls(
            row.at,
            row.from_status,
            row.to_status,
            row.from_level,
            row.to_level,
            row.cause,
            row.actor,
            row.note,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "from_status": self.from_status,
            "to_status": self.to_status,
            "from_level": self.from_level,
            "to_level": self.to_level,
            "cause": self.cause,
            "actor": self.actor,
            "note": self.note,
        }

"""The words lizardctl stores and counts by, each defined once.

A case's status, a vote's verdict, an ingest run's status and a rejection's reason are
written to the database, counted in summaries and typed on the command line. Each is one
enum here, and the database refuses any other value (CHECK constraints, migration 0009),
so a typo anywhere is an error, not a row no query finds. Free of heavy imports: options
are declared from these enums when ``--help`` is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class CaseStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


REVIEWABLE = (CaseStatus.OPEN, CaseStatus.ESCALATED)
"""Cases reviewers still vote on."""
DECIDED = (CaseStatus.CONFIRMED, CaseStatus.DISMISSED)
"""Cases whose outcome is final: exported, fined, counted in decision statistics."""


class DecidedStatus(StrEnum):
    """The statuses an export can ask for: the ``DECIDED`` case statuses, as an option's
    choices."""

    CONFIRMED = CaseStatus.CONFIRMED.value
    DISMISSED = CaseStatus.DISMISSED.value


class Verdict(StrEnum):
    """What a reviewer's vote, or a supervisor's decision, says the photo shows."""

    VIOLATION = "violation"
    NO_VIOLATION = "no-violation"


OUTCOME_OF = {Verdict.VIOLATION: CaseStatus.CONFIRMED, Verdict.NO_VIOLATION: CaseStatus.DISMISSED}
"""The status a case decided by unanimous votes, or by a supervisor, takes."""


class RunStatus(StrEnum):
    """An ingest run's status. ``ABANDONED`` is never stored: it is how a run still
    recorded as ``RUNNING`` reads once its process is gone."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    ABANDONED = "abandoned"


RECORDED_RUN_STATUSES = tuple(s for s in RunStatus if s is not RunStatus.ABANDONED)


class Reason(StrEnum):
    """Why a shot did not become a case: what run summaries count by and operators filter
    on (``rejects --reason``)."""

    ORPHAN = "orphan"
    AMBIGUOUS_PAIR = "ambiguous-pair"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too-large"
    BAD_METADATA = "bad-metadata"
    UNKNOWN_TYPE = "unknown-type"
    AMBIGUOUS_TYPE = "ambiguous-type"
    INVALID = "invalid"
    FUTURE_TIMESTAMP = "future-timestamp"
    UNKNOWN_CAMERA = "unknown-camera"
    TYPE_MISMATCH = "type-mismatch"
    UNKNOWN_VIOLATION = "unknown-violation"
    BAD_PHOTO = "bad-photo"
    PHOTO_CONFLICT = "photo-conflict"


def one_of(column: str, words: Iterable[StrEnum]) -> str:
    """The SQL of a CHECK constraint keeping ``column`` to ``words`` (their values are
    plain lower-case words and dashes, so quoting them needs no escaping)."""
    return f"{column} IN ({', '.join(repr(w.value) for w in words)})"

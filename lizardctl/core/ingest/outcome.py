"""What a run reports: counts per batch, summed into the run's summary.

Light on purpose (no database, no store): the command's progress bar and renderer use
these types without importing the pipeline.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lizardctl.core.vocabulary import RunStatus


@dataclass(slots=True)
class Pending:
    """Shots whose files may still be being written: held back for the next run."""

    count: int = 0
    future: int = 0
    """Of ``count``, shots held back by a file modified in the future: they wait until
    the clock passes that time, however small ``--settle`` is."""
    example: str | None = None
    """One file held back for --settle, for the note that says why."""
    future_example: str | None = None
    """One file modified in the future, to name in the warning."""

    def add(self, other: Pending) -> None:
        self.count += other.count
        self.future += other.future
        self.example = self.example or other.example
        self.future_example = self.future_example or other.future_example


@dataclass(slots=True)
class BatchResult:
    """Counts of one batch (or, summed, of a run)."""

    shots: int = 0
    bytes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    pending: Pending = field(default_factory=Pending)
    """Shots of the batch's parts held back, not among ``shots``."""

    def add(self, other: BatchResult) -> None:
        self.shots += other.shots
        self.bytes += other.bytes
        self.outcomes.update(other.outcomes)
        self.reasons.update(other.reasons)
        self.by_type.update(other.by_type)
        self.problems.extend(other.problems)
        self.pending.add(other.pending)


@dataclass(frozen=True, slots=True)
class IngestSummary:
    run_id: uuid.UUID
    dry_run: bool
    database: str
    store: str
    elapsed_s: float
    pending: int
    ignored_files: int
    result: BatchResult
    problems: list[str]
    job_id: uuid.UUID | None = None
    warnings: tuple[str, ...] = ()
    pending_future: int = 0
    """Of ``pending``, shots with a file modified in the future; the rest wait for --settle."""
    pending_example: str | None = None
    future_example: str | None = None

    @property
    def rejected(self) -> int:
        return self.result.outcomes["rejected"]

    def to_dict(self) -> dict[str, Any]:
        elapsed = max(self.elapsed_s, 1e-9)
        outcomes = self.result.outcomes
        return {
            "run_id": None if self.dry_run else str(self.run_id),  # a dry run is not recorded
            "dry_run": self.dry_run,
            "ingested": outcomes["ingested"],
            "duplicate": outcomes["duplicate"],
            "pending": self.pending,
            "pending_settle": self.pending - self.pending_future,
            "pending_future": self.pending_future,
            "pending_example": self.pending_example,
            "future_example": self.future_example,
            "rejected": outcomes["rejected"],
            "vanished": outcomes["vanished"],
            "kept_changed": outcomes["kept_changed"],
            "claimed_elsewhere": outcomes["elsewhere"],
            "rejected_by_reason": dict(sorted(self.result.reasons.items())),
            "ingested_by_type": dict(sorted(self.result.by_type.items())),
            "shots": self.result.shots,
            "ignored_files": self.ignored_files,
            "elapsed_s": round(self.elapsed_s, 3),
            "shots_per_s": round(self.result.shots / elapsed, 1),
            "bytes": self.result.bytes,
            "mb_per_s": round(self.result.bytes / elapsed / 1e6, 2),
            "database": self.database,
            "store": self.store,
            "job_id": str(self.job_id) if self.job_id else None,
            "problems": self.problems,
            "warnings": list(self.warnings),
        }


Progress = Callable[[BatchResult], None]
Outcome = Callable[[IngestSummary, RunStatus], None]
"""Told the summary and status (finished, interrupted or failed) of a run once it
ends, however it ends: what ``--metrics-file`` reports when the run fails or is stopped."""

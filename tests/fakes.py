"""An in-memory Unit of Work for the services' business-rule tests (cosmicpython, chapter 6).

``FakeUnitOfWork`` hands services fake repositories holding plain model objects, and
records whether the service committed. Only what the reviewer, camera and catalog rules
use is faked; the queries themselves (locking, SQL) are tested on the real engines in
tests/integration. Shared by every unit of work a ``FakeUnitOfWork.factory`` makes, the
state survives between service calls as a database's would, and a unit of work left
without ``commit()`` rolls back: nothing it staged is kept.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from lizardctl.core.db.models import (
    Assignment,
    Camera,
    CarOwner,
    Case,
    CaseTransition,
    Reviewer,
    ReviewSettings,
    ViolationType,
    utcnow,
)
from lizardctl.core.db.uow import UnitOfWork
from lizardctl.core.vocabulary import CaseStatus


@dataclass
class FakeState:
    """What a database would hold."""

    camera_types: list[str] = field(default_factory=lambda: ["camerus1", "camerus2", "camerus3"])
    cameras: dict[uuid.UUID, Camera] = field(default_factory=dict)
    violations: dict[uuid.UUID, ViolationType] = field(default_factory=dict)
    owners: dict[str, CarOwner] = field(default_factory=dict)
    reviewers: dict[str, Reviewer] = field(default_factory=dict)
    settings: ReviewSettings = field(
        default_factory=lambda: ReviewSettings(id=1, votes_per_level=3, lease_minutes=30)
    )
    cases: dict[uuid.UUID, Case] = field(default_factory=dict)
    assignments: list[Assignment] = field(default_factory=list)
    transitions: list[CaseTransition] = field(default_factory=list)


class FakeSchemaRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def type_names(self) -> list[str]:
        return sorted(self.state.camera_types)


class _Keyed:
    """Rows kept by key, upserted as ``INSERT ... ON CONFLICT DO UPDATE`` would."""

    model: type[Any]
    key: str

    def __init__(self, rows: dict[Any, Any]) -> None:
        self.rows = rows

    async def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            stored = self.rows.get(row[self.key])
            if stored is None:
                self.rows[row[self.key]] = self.model(**row)
                continue
            for name, value in row.items():
                if name != "created_at":
                    setattr(stored, name, value)

    async def _by_keys(self, keys: Iterable[Any]) -> dict[Any, Any]:
        return {key: self.rows[key] for key in keys if key in self.rows}


class FakeCameraRepository(_Keyed):
    model, key = Camera, "id"

    async def get(self, camera_id: uuid.UUID) -> Camera | None:
        return self.rows.get(camera_id)

    async def list(self, camera_type: str | None = None) -> list[Camera]:
        found = [c for c in self.rows.values() if camera_type in (None, c.camera_type)]
        return sorted(found, key=lambda c: (c.camera_type, c.id))

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Camera]:
        return await self._by_keys(ids)

    async def ids_between(self, low: uuid.UUID, high: uuid.UUID, limit: int) -> list[uuid.UUID]:
        return sorted(i for i in self.rows if low <= i <= high)[:limit]

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self.rows[row["id"]] = Camera(**{"created_at": utcnow(), **row})


class FakeViolationRepository(_Keyed):
    model, key = ViolationType, "id"

    async def get(self, violation_id: uuid.UUID) -> ViolationType | None:
        return self.rows.get(violation_id)

    async def list(self) -> list[ViolationType]:
        return sorted(self.rows.values(), key=lambda v: (v.name, v.id))

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ViolationType]:
        return await self._by_keys(ids)

    async def price_unpriced(self) -> int:
        """No cases are faked here: the pricing query is tested on the real engines."""
        return 0


class FakeOwnerRepository(_Keyed):
    model, key = CarOwner, "plate"

    async def get(self, plate: str) -> CarOwner | None:
        return self.rows.get(plate)

    async def by_plates(self, plates: Iterable[str]) -> dict[str, CarOwner]:
        return await self._by_keys(plates)


class FakeReviewerRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def get(self, name: str, *, lock: bool = False) -> Reviewer | None:
        return self.state.reviewers.get(name)

    async def add(self, reviewer: Reviewer) -> None:
        reviewer.id = len(self.state.reviewers) + 1
        reviewer.created_at = reviewer.created_at or utcnow()
        self.state.reviewers[reviewer.name] = reviewer

    async def save(self, reviewer: Reviewer) -> None:
        self.state.reviewers[reviewer.name] = reviewer

    async def list(self) -> list[Reviewer]:
        return sorted(self.state.reviewers.values(), key=lambda r: (r.skill, r.name))

    async def next_level_above(self, level: int) -> int | None:
        above = [r.skill for r in self.state.reviewers.values() if r.active and r.skill > level]
        return min(above, default=None)


class FakeAssignmentRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def _votes(self, case_id: uuid.UUID, level: int) -> list[str]:
        return [
            a.verdict
            for a in self.state.assignments
            if a.case_id == case_id and a.level == level and a.verdict is not None
        ]

    async def release(self, reviewer_id: int, now: datetime) -> int:
        live = [
            a
            for a in self.state.assignments
            if a.reviewer_id == reviewer_id and a.verdict is None and a.expires_at > now
        ]
        for lease in live:
            lease.expires_at = now
        return len(live)

    async def verdicts(self, case_id: uuid.UUID, level: int) -> list[str]:
        return self._votes(case_id, level)

    async def lock_waiting(self, votes_per_level: int, below: int) -> list[Case]:
        return [
            case
            for case in self.state.cases.values()
            if case.status == CaseStatus.ESCALATED
            and case.required_skill < below
            and len(self._votes(case.id, case.required_skill)) >= votes_per_level
        ]

    async def move_up(self, case: Case, level: int) -> None:
        case.status = CaseStatus.ESCALATED
        case.required_skill = level


class FakeTransitionRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def add(self, transition: CaseTransition) -> None:
        self.state.transitions.append(transition)


class FakeReviewSettingsRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def current(self, *, lock: bool = False) -> ReviewSettings:
        return self.state.settings


class FakeUnitOfWork(UnitOfWork):
    """Commits by keeping the state its repositories changed; rolls back by restoring the
    copy taken when it began."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()
        self.committed = False
        self._begun: FakeState | None = None

    def factory(self) -> FakeUnitOfWork:
        """The ``uow_factory`` a service is built with: each call a unit of work on the
        same state."""
        return FakeUnitOfWork(self.state)

    async def __aenter__(self) -> Self:
        self._begun = copy.deepcopy(self.state)
        self.cameras = FakeCameraRepository(self.state.cameras)  # type: ignore[assignment]
        self.schemas = FakeSchemaRepository(self.state)  # type: ignore[assignment]
        self.violations = FakeViolationRepository(self.state.violations)  # type: ignore[assignment]
        self.owners = FakeOwnerRepository(self.state.owners)  # type: ignore[assignment]
        self.reviewers = FakeReviewerRepository(self.state)  # type: ignore[assignment]
        self.assignments = FakeAssignmentRepository(self.state)  # type: ignore[assignment]
        self.transitions = FakeTransitionRepository(self.state)  # type: ignore[assignment]
        self.review_settings = FakeReviewSettingsRepository(self.state)  # type: ignore[assignment]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        self.committed = True
        self._begun = copy.deepcopy(self.state)

    async def rollback(self) -> None:
        if self._begun is not None:
            for name in vars(self.state):
                setattr(self.state, name, getattr(self._begun, name))
            self._begun = None

"""The Unit of Work: the one place a transaction is committed or rolled back.

Leaving the ``async with`` block without ``commit()`` rolls back, so a service that
forgets to commit, or fails half way, persists nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lizardctl.core.repositories.base import SessionView
from lizardctl.core.repositories.cameras import CameraRepository
from lizardctl.core.repositories.catalog import (
    FinesRepository,
    OwnerRepository,
    ViolationRepository,
)
from lizardctl.core.repositories.claims import ClaimRepository
from lizardctl.core.repositories.ingest import (
    CaseRepository,
    RejectionRepository,
    RunRepository,
    ShotRepository,
)
from lizardctl.core.repositories.photos import PhotoRepository
from lizardctl.core.repositories.prunes import PruneRepository
from lizardctl.core.repositories.review_stats import ReviewStatsRepository
from lizardctl.core.repositories.reviews import (
    AssignmentRepository,
    ReviewerRepository,
    ReviewSettingsRepository,
    TransitionRepository,
)
from lizardctl.core.repositories.schemas import SchemaRepository
from lizardctl.core.repositories.verify import VerifyRepository


class UnitOfWork:
    cameras: CameraRepository
    schemas: SchemaRepository
    runs: RunRepository
    shots: ShotRepository
    claims: ClaimRepository
    prunes: PruneRepository
    photos: PhotoRepository
    rejections: RejectionRepository
    cases: CaseRepository
    reviewers: ReviewerRepository
    assignments: AssignmentRepository
    transitions: TransitionRepository
    review_settings: ReviewSettingsRepository
    review_stats: ReviewStatsRepository
    verify: VerifyRepository
    violations: ViolationRepository
    owners: OwnerRepository
    fines: FinesRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        view = SessionView(self._session)
        self.cameras = CameraRepository(view)
        self.schemas = SchemaRepository(view)
        self.runs = RunRepository(view)
        self.shots = ShotRepository(view)
        self.claims = ClaimRepository(view)
        self.prunes = PruneRepository(view)
        self.photos = PhotoRepository(view)
        self.rejections = RejectionRepository(view)
        self.cases = CaseRepository(view)
        self.reviewers = ReviewerRepository(view)
        self.assignments = AssignmentRepository(view)
        self.transitions = TransitionRepository(view)
        self.review_settings = ReviewSettingsRepository(view)
        self.review_stats = ReviewStatsRepository(view)
        self.verify = VerifyRepository(view)
        self.violations = ViolationRepository(view)
        self.owners = OwnerRepository(view)
        self.fines = FinesRepository(view)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._require_session()
        try:
            await session.rollback()
        finally:
            await session.close()
            self._session = None

    def _require_session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    async def commit(self) -> None:
        await self._require_session().commit()

    async def rollback(self) -> None:
        await self._require_session().rollback()


UowFactory = Callable[[], UnitOfWork]

"""The managers' tables (violation catalog, car owners) and the fines queries that join
them to confirmed cases.

Neither table is referenced by ``cases``: a case may name a violation or plate nobody has
listed, and the joins here are outer joins that keep such cases, with NULLs, so nothing
confirmed is silently left out of what is owed.

What a confirmed case owes is its own ``fine_minor``, frozen when it was confirmed, never
the catalog's current fine. One confirmed while its violation was not catalogued has no
fine until an import catalogues the violation (``price_unpriced``), and keeps that one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Table, case, distinct, func, literal, select, update

from lizardctl.core.db.models import CarOwner, Case, ViolationType
from lizardctl.core.repositories.base import Repository, UpsertRepository
from lizardctl.core.vocabulary import CaseStatus

_VIOLATIONS: Table = ViolationType.__table__  # type: ignore[assignment]
_OWNERS: Table = CarOwner.__table__  # type: ignore[assignment]
STREAM_BATCH = 1000
"""Rows fetched per round trip while streaming fines: memory stays flat whatever the total."""

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])


class ViolationRepository(UpsertRepository):
    table = _VIOLATIONS
    key = "id"

    async def ids(self) -> set[uuid.UUID]:
        """Every catalogued violation id; empty while the catalog is. The ingest check for
        ``unknown-violation`` is on exactly when this is non-empty."""
        return set((await self.session.scalars(select(ViolationType.id))).all())

    async def get(self, violation_id: uuid.UUID) -> ViolationType | None:
        return await self.session.get(ViolationType, violation_id)

    async def list(self) -> Sequence[ViolationType]:
        query = select(ViolationType).order_by(ViolationType.name, ViolationType.id)
        return (await self.session.scalars(query)).all()

    async def by_ids(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ViolationType]:
        return await self._by_keys(ViolationType, ids)

    async def case_counts(self, violation_id: uuid.UUID) -> dict[str, int]:
        """Cases of this violation type by status."""
        query = (
            select(Case.status, func.count())
            .where(Case.violation_id == violation_id)
            .group_by(Case.status)
        )
        rows: Sequence[Any] = (await self.session.execute(query)).all()
        return {str(status): int(n) for status, n in rows}

    async def price_unpriced(self) -> int:
        """Freeze today's fine on confirmed cases that have none and whose violation is
        catalogued now; returns how many. Finds them by the partial index on unpriced
        confirmed cases, so it costs next to nothing when there are none."""
        listed = (
            select(ViolationType.fine_minor)
            .where(ViolationType.id == Case.violation_id)
            .scalar_subquery()
        )
        result = await self.session.execute(
            update(Case)
            .where(
                Case.status == CaseStatus.CONFIRMED, Case.fine_minor.is_(None), listed.is_not(None)
            )
            .values(fine_minor=listed)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def fines_due(self, violation_id: uuid.UUID) -> tuple[int, int]:
        """(confirmed cases of this type with a frozen fine, the sum of those fines)."""
        query = select(
            func.count(Case.fine_minor), func.coalesce(func.sum(Case.fine_minor), 0)
        ).where(Case.violation_id == violation_id, Case.status == CaseStatus.CONFIRMED)
        priced, total = (await self.session.execute(query)).one()
        return int(priced), int(total)


class OwnerRepository(UpsertRepository):
    table = _OWNERS
    key = "plate"

    async def get(self, plate: str) -> CarOwner | None:
        return await self.session.get(CarOwner, plate)

    async def list(self, limit: int, offset: int = 0) -> Sequence[CarOwner]:
        query = select(CarOwner).order_by(CarOwner.plate).limit(limit).offset(offset)
        return (await self.session.scalars(query)).all()

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(CarOwner)) or 0)

    async def by_plates(self, plates: Iterable[str]) -> dict[str, CarOwner]:
        return await self._by_keys(CarOwner, plates)

    async def cases_of(self, plate: str, limit: int, offset: int = 0) -> Sequence[dict[str, Any]]:
        """The plate's newest cases with their status, the violation's name where
        catalogued and, for confirmed ones, the fine frozen at decision."""
        query = (
            select(
                Case.id,
                Case.occurred_at,
                Case.status,
                Case.violation_id,
                Case.violation_value,
                ViolationType.name.label("violation"),
                Case.fine_minor,
                Case.decided_at,
            )
            .select_from(Case)
            .outerjoin(ViolationType, ViolationType.id == Case.violation_id)
            .where(Case.plate == plate)
            .order_by(Case.occurred_at.desc(), Case.id)
            .limit(limit)
            .offset(offset)
        )
        return [dict(row._mapping) for row in await self.session.execute(query)]

    async def status_counts(self, plate: str) -> dict[str, int]:
        query = select(Case.status, func.count()).where(Case.plate == plate).group_by(Case.status)
        rows: Sequence[Any] = (await self.session.execute(query)).all()
        return {str(status): int(n) for status, n in rows}


class FinesRepository(Repository):
    """Read-only: confirmed cases joined with the catalog and the owners."""

    def _day(self) -> ColumnElement[str]:
        """``2026-11-25``: the UTC day a case was decided on (SQLite keeps UTC text)."""
        if self.session.dialect == "postgresql":
            return func.to_char(func.timezone("UTC", Case.decided_at), "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", Case.decided_at)

    def _plates(self) -> ColumnElement[str]:
        """The distinct plates of a group, comma-joined (order is fixed by the caller)."""
        if self.session.dialect == "postgresql":
            return func.string_agg(distinct(Case.plate), literal(","))
        return func.group_concat(distinct(Case.plate))

    @staticmethod
    def _confirmed(query: _Query, since: datetime | None, plate: str | None) -> _Query:
        query = query.where(Case.status == CaseStatus.CONFIRMED)
        if since is not None:
            query = query.where(Case.decided_at >= since)
        if plate is not None:
            query = query.where(Case.plate == plate)
        return query

    @staticmethod
    def _joined(query: _Query) -> _Query:
        return (
            query.select_from(Case)
            .outerjoin(ViolationType, ViolationType.id == Case.violation_id)
            .outerjoin(CarOwner, CarOwner.plate == Case.plate)
        )

    async def rows(self, since: datetime | None, plate: str | None) -> AsyncIterator[Sequence[Any]]:
        """One row per confirmed case, oldest decision first, in batches of ``STREAM_BATCH``
        (server-side cursor on PostgreSQL, stepped cursor on SQLite)."""
        query = self._joined(
            select(
                Case.id,
                Case.plate,
                Case.violation_id,
                Case.violation_value,
                Case.occurred_at,
                Case.decided_at,
                CarOwner.name.label("owner"),
                CarOwner.phone,
                CarOwner.email,
                CarOwner.telegram,
                ViolationType.name.label("violation"),
                Case.fine_minor,
            )
        )
        query = self._confirmed(query, since, plate).order_by(Case.decided_at, Case.id)
        result = await self.session.stream(query.execution_options(yield_per=STREAM_BATCH))
        async for batch in result.partitions(STREAM_BATCH):
            yield batch

    async def totals_by_owner(
        self, since: datetime | None, plate: str | None
    ) -> AsyncIterator[Sequence[Any]]:
        """Per owner (same name and contacts, whatever the plate) or, for a plate without
        an owner, per plate: plates, cases, cases with a frozen fine, and their sum;
        biggest debt first, streamed like ``rows``."""
        unknown_plate = case((CarOwner.plate.is_(None), Case.plate), else_=None)
        total = func.coalesce(func.sum(Case.fine_minor), 0).label("fine_minor")
        query = self._joined(
            select(
                CarOwner.name.label("owner"),
                CarOwner.phone,
                CarOwner.email,
                CarOwner.telegram,
                self._plates().label("plates"),
                func.count().label("cases"),
                func.count(Case.fine_minor).label("priced"),
                total,
            )
        )
        query = (
            self._confirmed(query, since, plate)
            .group_by(
                CarOwner.name, CarOwner.phone, CarOwner.email, CarOwner.telegram, unknown_plate
            )
            .order_by(
                total.desc(),
                CarOwner.name.is_(None),  # known owners first on both engines
                CarOwner.name,
                CarOwner.phone,
                CarOwner.email,
                CarOwner.telegram,
                unknown_plate,
            )
        )
        result = await self.session.stream(query.execution_options(yield_per=STREAM_BATCH))
        async for batch in result.partitions(STREAM_BATCH):
            yield batch

    async def by_violation(self, since: datetime | None) -> Sequence[dict[str, Any]]:
        """Per violation id, catalogued or not: its name and fine in the catalog now,
        confirmed cases, those with a frozen fine, and the sum of the frozen fines."""
        query = self._joined(
            select(
                Case.violation_id,
                ViolationType.name.label("violation"),
                ViolationType.fine_minor.label("fine_minor"),
                func.count().label("cases"),
                func.count(Case.fine_minor).label("priced"),
                func.coalesce(func.sum(Case.fine_minor), 0).label("total_minor"),
            )
        )
        query = self._confirmed(query, since, None).group_by(
            Case.violation_id, ViolationType.name, ViolationType.fine_minor
        )
        return [dict(row._mapping) for row in await self.session.execute(query)]

    async def by_day(self, since: datetime | None) -> Sequence[dict[str, Any]]:
        """Per UTC day of decision: confirmed cases, those with a frozen fine, and the sum."""
        day = self._day().label("day")
        query = self._joined(
            select(
                day,
                func.count().label("cases"),
                func.count(Case.fine_minor).label("priced"),
                func.coalesce(func.sum(Case.fine_minor), 0).label("fine_minor"),
            )
        )
        query = self._confirmed(query, since, None).group_by(day).order_by(day)
        return [dict(row._mapping) for row in await self.session.execute(query)]

"""Cases as operators see them: one case in full, or a filtered page of them, each with
who must act on it next (reviewers, or a supervisor)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lizardctl.core.db.models import Case
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import NoSuchRun, NotFoundError
from lizardctl.core.ids import IdText, resolve_id
from lizardctl.core.paging import Page
from lizardctl.core.repositories.ingest import CaseFilters
from lizardctl.core.services.history import TransitionView, VoteView
from lizardctl.core.store import PhotoLocation, PhotoStore
from lizardctl.core.vocabulary import REVIEWABLE


@dataclass(frozen=True, slots=True)
class PhotoPlace:
    """Where a case's photo is. A packed photo (``pack`` set) has no file of its own:
    ``path`` is then None, or, for ``review next``, the copy extracted to the review cache;
    a photo stored before packs is a file in the store, and ``path`` is that file."""

    store: str
    location: PhotoLocation
    where: str
    path: str | None

    @classmethod
    def of(cls, store: PhotoStore, location: PhotoLocation) -> PhotoPlace:
        path = None if location.pack is not None else store.where(location)
        return cls(store.location, location, store.where(location), path)


@dataclass(frozen=True, slots=True)
class CaseView:
    id: uuid.UUID
    plate: str
    camera_id: uuid.UUID
    violation_id: uuid.UUID
    violation_value: str
    skill: int
    occurred_at: datetime
    status: str
    photo_sha256: str
    source_photo: str
    source_metadata: str
    raw: dict[str, Any]
    level: int
    decided_at: datetime | None
    photo: PhotoPlace | None = None
    awaiting: str | None = None
    """``review`` or ``supervisor`` for an undecided case: who must act on it next."""
    votes: tuple[VoteView, ...] = ()
    transitions: tuple[TransitionView, ...] = ()

    @classmethod
    def of(
        cls,
        case: Case,
        *,
        photo: PhotoPlace | None = None,
        awaiting: str | None = None,
        votes: tuple[VoteView, ...] = (),
        transitions: tuple[TransitionView, ...] = (),
    ) -> CaseView:
        return cls(
            case.id,
            case.plate,
            case.camera_id,
            case.violation_id,
            case.violation_value,
            case.skill,
            case.occurred_at,
            case.status,
            case.photo_sha256,
            case.source_photo,
            case.source_metadata,
            case.raw,
            case.required_skill,
            case.decided_at,
            photo,
            awaiting,
            votes,
            transitions,
        )

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "plate": self.plate,
            "camera_id": str(self.camera_id),
            "violation_id": str(self.violation_id),
            "violation_value": self.violation_value,
            "skill": self.skill,
            "occurred_at": self.occurred_at.isoformat(),
            "status": self.status,
            "level": self.level,
            "awaiting": self.awaiting,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }
        if detail:
            data |= {
                "photo_sha256": self.photo_sha256,
                **self._photo_fields(),
                "source_photo": self.source_photo,
                "source_metadata": self.source_metadata,
                "raw": self.raw,
                "votes": [v.to_dict() for v in self.votes],
                "transitions": [t.to_dict() for t in self.transitions],
            }
        return data

    @property
    def photo_path(self) -> str | None:
        return self.photo.path if self.photo is not None else None

    def _photo_fields(self) -> dict[str, Any]:
        """``photo_path`` (a file people can open, or null for a packed photo) and where
        the photo is stored: ``photo_store``, ``photo_pack`` and ``photo_offset`` (both
        null for a photo stored as a file), ``photo_size``."""
        place = self.photo
        location = place.location if place is not None else None
        return {
            "photo_path": self.photo_path,
            "photo_store": place.store if place is not None else None,
            "photo_pack": location.pack if location is not None else None,
            "photo_offset": location.offset if location is not None else None,
            "photo_size": location.size if location is not None else None,
        }


class CaseService:
    """``store`` is the database's own photo store (``StoreService.open``), needed only to
    say where a shown case's photo is."""

    def __init__(self, uow_factory: UowFactory, store: PhotoStore | None = None) -> None:
        self.uow_factory = uow_factory
        self.store = store

    async def list(
        self, filters: CaseFilters | None = None, *, limit: int = 100, offset: int = 0
    ) -> Page[CaseView]:
        """A page of cases and how many match in all; an unknown ``run_id`` is exit 2."""
        filters = filters or CaseFilters()
        async with self.uow_factory() as uow:
            if filters.run_id is not None:
                run_id = await resolve_id(filters.run_id, "ingest run", uow.runs.ids_between)
                if await uow.runs.get(run_id) is None:
                    raise NoSuchRun(run_id)
                filters = replace(filters, run_id=run_id)
            if filters.camera_id is not None:
                camera_id = await resolve_id(filters.camera_id, "camera", uow.cameras.ids_between)
                filters = replace(filters, camera_id=camera_id)
            rows = await uow.cases.list(filters, limit=limit, offset=offset)
            awaiting = await self._awaiting(uow, rows)
            return Page(
                [CaseView.of(row, awaiting=awaiting.get(row.id)) for row in rows],
                await uow.cases.count(filters),
                offset,
            )

    async def show(self, case_id: IdText) -> CaseView:
        """The case (by id or a unique prefix of one) with its votes and every status
        transition it went through."""
        async with self.uow_factory() as uow:
            case_id = await resolve_id(case_id, "case", uow.cases.ids_between)
            case = await uow.cases.get(case_id)
            if case is None:
                raise NotFoundError(f"no case {case_id}")
            votes = tuple(VoteView(*row) for row in await uow.assignments.votes(case_id))
            transitions = await uow.transitions.of_case(case_id)
            location = await uow.photos.locate(case.photo_sha256)
            return CaseView.of(
                case,
                photo=PhotoPlace.of(self.store, location)
                if self.store is not None and location is not None
                else None,
                awaiting=(await self._awaiting(uow, [case])).get(case.id),
                votes=votes,
                transitions=tuple(TransitionView.of(t) for t in transitions),
            )

    @staticmethod
    async def _awaiting(uow: UnitOfWork, cases: Sequence[Case]) -> dict[uuid.UUID, str]:
        """Undecided cases with K votes at a level no active reviewer is above wait for a
        supervisor (split at the highest staffed level); the others wait for reviewers,
        including split ones that the next ``review next`` above them moves up."""
        undecided = [c for c in cases if c.status in REVIEWABLE]
        if not undecided:
            return {}
        votes = await uow.assignments.votes_at_level([c.id for c in undecided])
        needed = (await uow.review_settings.current()).votes_per_level
        top = await uow.reviewers.highest_level()
        return {
            c.id: "supervisor"
            if votes.get(c.id, 0) >= needed and (top is None or top <= c.required_skill)
            else "review"
            for c in undecided
        }

"""The business rules of cameras, the catalogs and reviewers, on a ``FakeUnitOfWork``: no
database, so they run in milliseconds. The same services on real engines, with their
queries and locks, are tests/integration's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lizardctl.core.db.models import Assignment, Case
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.services.cameras import CameraService
from lizardctl.core.services.catalog import OwnerService, ViolationService
from lizardctl.core.services.reviews import ReviewerService
from lizardctl.core.vocabulary import CaseStatus, Verdict
from tests.fakes import FakeUnitOfWork

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
C1, C2 = uuid.UUID(int=0xC1), uuid.UUID(int=0xC2)
V1 = uuid.UUID(int=0xF1)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


class Recorder:
    """A ``uow_factory`` that keeps every unit of work it made, to ask which committed."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow
        self.made: list[FakeUnitOfWork] = []

    def __call__(self) -> FakeUnitOfWork:
        self.made.append(self.uow.factory())
        return self.made[-1]

    @property
    def committed(self) -> bool:
        return self.made[-1].committed


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- cameras -----------------------------------------------------------------------------------


async def test_adding_a_camera_commits_it(uow: FakeUnitOfWork) -> None:
    factory = Recorder(uow)
    view = await CameraService(factory).add("camerus2", 55.75, 37.62, "Tverskaya", C1)
    assert factory.committed
    assert (view.id, view.camera_type) == (C1, "camerus2")
    assert uow.state.cameras[C1].description == "Tverskaya"


@pytest.mark.parametrize(
    ("camera_type", "latitude", "message"),
    [
        ("nosuch", 1.0, "unknown camera type 'nosuch'"),
        ("camerus1", 91.0, "latitude"),
        ("camerus1", float("nan"), "latitude"),
    ],
)
async def test_a_bad_camera_is_refused_and_nothing_committed(
    uow: FakeUnitOfWork, camera_type: str, latitude: float, message: str
) -> None:
    factory = Recorder(uow)
    with pytest.raises(UsageError, match=message):
        await CameraService(factory).add(camera_type, latitude, 1.0)
    assert not any(made.committed for made in factory.made)
    assert uow.state.cameras == {}


async def test_a_camera_id_is_added_once(uow: FakeUnitOfWork) -> None:
    service = CameraService(uow.factory)
    await service.add("camerus1", 1.0, 1.0, camera_id=C1)
    with pytest.raises(UsageError, match="already exists"):
        await service.add("camerus1", 2.0, 2.0, camera_id=C1)
    assert uow.state.cameras[C1].latitude == 1.0


async def test_camera_import_updates_moves_and_keeps_types(
    uow: FakeUnitOfWork, tmp_path: Path
) -> None:
    service = CameraService(uow.factory)
    header = "id,type,latitude,longitude,description\n"
    first = await service.import_file(_write(tmp_path, "a.csv", f"{header}{C1},camerus1,1,2,\n"))
    assert (first.added, first.updated, first.unchanged) == (1, 0, 0)

    again = await service.import_file(_write(tmp_path, "b.csv", f"{header}{C1},camerus1,1,2,\n"))
    assert (again.added, again.updated, again.unchanged, again.changed) == (0, 0, 1, False)

    moved = f"{header}{C1},camerus1,1.5,2,Ring road\n{C2},camerus3,0,0,\n"
    report = await service.import_file(_write(tmp_path, "c.csv", moved))
    assert (report.added, report.updated) == (1, 1)
    assert report.updates == [f"{C1}: latitude 1.0 -> 1.5, description '' -> 'Ring road'"]

    factory = Recorder(uow)
    retyped = f"{header}{C2},camerus3,0,0,\n{C1},camerus2,1.5,2,\n"
    with pytest.raises(UsageError) as info:
        await CameraService(factory).import_file(_write(tmp_path, "d.csv", retyped))
    assert info.value.details == [
        f"line 3: type: camera {C1} is registered as 'camerus1'; a camera cannot change type"
    ]
    assert not factory.committed
    assert uow.state.cameras[C1].camera_type == "camerus1"


# --- the catalogs -------------------------------------------------------------------------------


async def test_a_bad_row_anywhere_imports_nothing(uow: FakeUnitOfWork, tmp_path: Path) -> None:
    factory = Recorder(uow)
    text = f"id,name,fine\n{V1},Speeding,500\n{uuid.UUID(int=2)},Red light,-1\n"
    with pytest.raises(UsageError, match="1 bad row"):
        await ViolationService(factory).import_file(_write(tmp_path, "v.csv", text))
    assert not factory.committed
    assert uow.state.violations == {}


async def test_a_changed_fine_is_listed_and_committed(uow: FakeUnitOfWork, tmp_path: Path) -> None:
    service = ViolationService(uow.factory)
    await service.import_file(_write(tmp_path, "v.csv", f"id,name,fine\n{V1},Speeding,500\n"))
    report = await service.import_file(
        _write(tmp_path, "w.csv", f"id,name,fine\n{V1},Speeding,750.50\n")
    )
    assert report.updates == [f"{V1} (Speeding): fine 500.00 -> 750.50"]
    assert uow.state.violations[V1].fine_minor == 75050


async def test_an_owner_needs_a_contact_and_a_canonical_plate(
    uow: FakeUnitOfWork, tmp_path: Path
) -> None:
    text = "plate,name,phone,email,telegram\n1abc2377,Ann,,,\nABC,Bob,,bob@example.com,\n"
    with pytest.raises(UsageError) as info:
        await OwnerService(uow.factory).import_file(_write(tmp_path, "o.csv", text))
    assert info.value.details == [
        "line 2: phone, email, telegram: at least one contact is required",
        "line 3: plate: not a canonical plate (digit, 3 letters A-Z, 2 digits, 2-3 digit "
        "region: 1ABC2377), got 'ABC'",
    ]
    fixed = "plate,name,phone,email,telegram\n1abc2377,Ann,,,@ann_smith\n"
    await OwnerService(uow.factory).import_file(_write(tmp_path, "p.csv", fixed))
    assert uow.state.owners["1ABC2377"].telegram == "@ann_smith"


# --- reviewers ----------------------------------------------------------------------------------


async def test_a_reviewer_name_is_taken_once(uow: FakeUnitOfWork) -> None:
    service = ReviewerService(uow.factory, now=lambda: T0)
    await service.add("ann", 1)
    with pytest.raises(UsageError, match="reviewer 'ann' already exists"):
        await service.add("ann", 2)
    assert [r.skill for r in await service.list()] == [1]


async def test_an_update_must_change_something_within_range(uow: FakeUnitOfWork) -> None:
    service = ReviewerService(uow.factory, now=lambda: T0)
    await service.add("ann", 1)
    with pytest.raises(UsageError, match="nothing to change"):
        await service.update("ann")
    with pytest.raises(UsageError, match="skill must be 1-100"):
        await service.update("ann", skill=101)
    with pytest.raises(NotFoundError, match="no reviewer 'bob'"):
        await service.update("bob", active=False)
    assert (await service.update("ann", skill=5)).skill == 5


async def test_a_case_awaiting_a_supervisor_moves_up_to_a_new_reviewers_level(
    uow: FakeUnitOfWork,
) -> None:
    case = Case(id=uuid.UUID(int=9), status=CaseStatus.ESCALATED, required_skill=1)
    uow.state.cases[case.id] = case
    uow.state.assignments = [
        Assignment(case_id=case.id, reviewer_id=n, level=1, verdict=verdict)
        for n, verdict in enumerate([Verdict.VIOLATION, Verdict.NO_VIOLATION, Verdict.VIOLATION])
    ]
    factory = Recorder(uow)
    view = await ReviewerService(factory, now=lambda: T0).add("zoe", 3)
    assert factory.committed
    assert view.moved_up == 1
    moved = uow.state.cases[case.id]
    assert (moved.status, moved.required_skill) == (CaseStatus.ESCALATED, 3)
    [transition] = uow.state.transitions
    assert (transition.from_level, transition.to_level) == (1, 3)

"""Importing cameras, the violation catalog and the car owners, CSV and XLSX, on both engines."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lizardctl.core.db.database import Database
from lizardctl.core.errors import NotFoundError, UsageError
from lizardctl.core.services import imports
from lizardctl.core.services.cameras import CameraService
from lizardctl.core.services.catalog import OwnerService, ViolationService
from lizardctl.core.spreadsheets import xlsx_available

V1 = uuid.UUID("de163a57-fd92-47a6-9b78-82bb0d41be71")
V2 = uuid.UUID("b8c548ca-b143-4e88-9c2d-fc0599ad570b")
V3 = uuid.UUID("0101e497-32cb-47d7-85b4-175e215d160a")
VIOLATIONS_CSV = (
    f'id,name,fine\n{V1},Speeding by 20-40 km/h,500\n{V2},"Red light, first time",1000.50\n'
)
OWNERS_CSV = (
    "plate,name,phone,email,telegram\n"
    "1ABC2377,Ann Smith,+7 916 123-45-67,,ann_smith\n"
    "2XYZ34199,Bob Jones,,bob@example.com,\n"
)
needs_xlsx = pytest.mark.skipif(
    not xlsx_available(), reason="openpyxl not installed (pip install 'lizardctl[xlsx]')"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def _fines(db: Database) -> dict[uuid.UUID, tuple[str, int]]:
    return {v.id: (v.name, v.fine_minor) for v in await ViolationService(db.uow).list()}


async def test_violation_import_then_reimport_is_a_no_op(db: Database, tmp_path: Path) -> None:
    service = ViolationService(db.uow)
    async with db.uow() as uow:
        assert await uow.violations.ids() == set()
    path = _write(tmp_path, "violations.csv", VIOLATIONS_CSV)

    first = await service.import_file(path)
    assert (first.added, first.updated, first.unchanged, first.changed) == (2, 0, 0, True)
    assert await _fines(db) == {
        V1: ("Speeding by 20-40 km/h", 50000),
        V2: ("Red light, first time", 100050),
    }
    async with db.uow() as uow:
        assert await uow.violations.ids() == {V1, V2}

    again = await service.import_file(path)
    assert (again.added, again.updated, again.unchanged, again.changed) == (0, 0, 2, False)


async def test_changed_fines_are_reported_as_updates(db: Database, tmp_path: Path) -> None:
    service = ViolationService(db.uow)
    await service.import_file(_write(tmp_path, "v1.csv", VIOLATIONS_CSV))
    before = {v.id: v for v in await service.list()}
    changed = _write(
        tmp_path,
        "v2.csv",
        f"id,name,fine\n{V1},Speeding by 20-40 km/h,750\n{V3},Wrong lane,300\n",
    )
    report = await service.import_file(changed)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 0)
    assert report.updates == [f"{V1} (Speeding by 20-40 km/h): fine 500.00 -> 750.00"]
    after = {v.id: v for v in await service.list()}
    assert after[V1].fine_minor == 75000
    assert after[V1].created_at == before[V1].created_at
    assert after[V1].updated_at > before[V1].updated_at
    assert V2 in after, "rows missing from the file are kept"


async def test_bad_rows_import_nothing(db: Database, tmp_path: Path) -> None:
    service = ViolationService(db.uow)
    await service.import_file(_write(tmp_path, "v1.csv", VIOLATIONS_CSV))
    bad = _write(
        tmp_path,
        "bad.csv",
        "id,name,fine\n"
        f"{V1},Speeding,999\n"  # a good update: must not land either
        f"{V3},Wrong lane,-5\n"
        "not-a-uuid,Parking,100\n"
        f"{V1},Speeding again,100\n",
    )
    with pytest.raises(UsageError) as info:
        await service.import_file(bad)
    assert str(info.value) == f"{bad}: 3 bad row(s), nothing imported"
    assert info.value.details == [
        "line 3: fine: must be an amount like 500 or 1500.50 (at most 2 decimals), got '-5'",
        "line 4: id: must be a UUID, got 'not-a-uuid'",
        f"line 5: id: {V1} repeats line 2",
    ]
    assert (await _fines(db))[V1] == ("Speeding by 20-40 km/h", 50000)


async def test_a_bad_row_late_in_a_big_file_rolls_back_earlier_chunks(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "IMPORT_CHUNK", 2)
    monkeypatch.setattr(imports, "MAX_LISTED", 2)
    lines = [f"{uuid.UUID(int=n)},Type {n},{n}" for n in range(1, 8)]
    lines += ["x,y,z", "x,y,z", "x,y,z"]
    path = _write(tmp_path, "big.csv", "id,name,fine\n" + "\n".join(lines) + "\n")
    with pytest.raises(UsageError) as info:
        await ViolationService(db.uow).import_file(path)
    assert len(info.value.details) == 3
    assert info.value.details[-1] == "... and 1 more bad row(s)"
    assert await _fines(db) == {}


async def test_owner_import_show_and_updates(db: Database, tmp_path: Path) -> None:
    service = OwnerService(db.uow)
    report = await service.import_file(_write(tmp_path, "owners.csv", OWNERS_CSV))
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    page = await service.list(limit=1)
    assert (page.total, page.next_offset) == (2, 1)
    assert [(o.plate, o.telegram) for o in page.items] == [("1ABC2377", "@ann_smith")]
    second = await service.list(limit=1, offset=1)
    assert (second.total, second.next_offset, len(second.items)) == (2, None, 1)
    assert second.items[0].plate != "1ABC2377"

    moved = OWNERS_CSV.replace("+7 916 123-45-67,,ann_smith", ",ann@example.com,ann_smith")
    again = await service.import_file(_write(tmp_path, "owners2.csv", moved))
    assert (again.added, again.updated, again.unchanged) == (0, 1, 1)
    assert again.updates == ["1ABC2377: phone, email changed"], "fields named, not values"

    shown = await service.show("1abc2377")
    assert (shown.owner.phone, shown.owner.email) == (None, "ann@example.com")
    assert (shown.cases.items, shown.cases.total) == ([], 0)
    with pytest.raises(NotFoundError):
        await service.show("9ABC2377")
    with pytest.raises(UsageError, match="not a canonical plate"):
        await service.show("ABC")


async def test_owner_bad_rows(db: Database, tmp_path: Path) -> None:
    bad = _write(
        tmp_path,
        "owners.csv",
        "plate,name,phone,email,telegram\n"
        "1ABC2377,Ann,,,\n"
        "A123BC77,Bob,+79161234567,,\n"
        "2XYZ34199,Cid,+79161234567,,\n"
        "2xyz34199,Cid,+79161234567,,\n",
    )
    with pytest.raises(UsageError) as info:
        await OwnerService(db.uow).import_file(bad)
    assert info.value.details == [
        "line 2: phone, email, telegram: at least one contact is required",
        "line 3: plate: not a canonical plate (digit, 3 letters A-Z, 2 digits, 2-3 digit "
        "region: 1ABC2377), got 'A123BC77'",
        "line 5: plate: 2XYZ34199 repeats line 4",
    ]
    nobody = await OwnerService(db.uow).list(10)
    assert (nobody.items, nobody.total) == ([], 0)


async def test_header_only_file_is_nothing_to_do(db: Database, tmp_path: Path) -> None:
    report = await OwnerService(db.uow).import_file(_write(tmp_path, "o.csv", "plate,name\n"))
    assert (report.added, report.updated, report.unchanged, report.changed) == (0, 0, 0, False)


@needs_xlsx
async def test_xlsx_imports_like_csv(db: Database, tmp_path: Path) -> None:
    from tests.unit.test_catalog_parsing import write_xlsx

    violations = write_xlsx(
        tmp_path / "violations.xlsx",
        [["ID", "Name", "Fine"], [str(V1), "Speeding", 500], [str(V2), "Red light", 1000.5]],
    )
    service = ViolationService(db.uow)
    assert (await service.import_file(violations)).added == 2
    assert await _fines(db) == {V1: ("Speeding", 50000), V2: ("Red light", 100050)}
    assert not (await service.import_file(violations)).changed

    owners = write_xlsx(
        tmp_path / "owners.xlsx",
        [
            ["plate", "name", "phone", "email", "telegram"],
            ["1ABC2377", "Ann", 79161234567, None, None],
            ["bad", "Bob", None, None, None],
        ],
    )
    with pytest.raises(UsageError) as info:
        await OwnerService(db.uow).import_file(owners)
    assert [line.split(":")[0] for line in info.value.details] == ["row 3"]
    fixed = write_xlsx(
        tmp_path / "owners.xlsx",
        [["plate", "name", "phone"], ["1ABC2377", "Ann", 79161234567]],
    )
    assert (await OwnerService(db.uow).import_file(fixed)).added == 1
    assert (await OwnerService(db.uow).show("1ABC2377")).owner.phone == "79161234567"


# --- cameras go through the same importer ------------------------------------------------------

C1, C2 = uuid.UUID(int=0xC1), uuid.UUID(int=0xC2)
CAMERAS_CSV = f"id,type,latitude,longitude,description\n{C1},camerus1,55.75,37.62,Tverskaya\n"


async def test_camera_import_moves_a_camera_but_never_changes_its_type(
    db: Database, tmp_path: Path
) -> None:
    service = CameraService(db.uow)
    first = await service.import_file(_write(tmp_path, "cameras.csv", CAMERAS_CSV))
    assert (first.table, first.added, first.updated) == ("camera", 1, 0)

    moved = CAMERAS_CSV.replace("55.75", "55.76") + f"{C2},camerus2,1,2,\n"
    second = await service.import_file(_write(tmp_path, "moved.csv", moved))
    assert (second.added, second.updated, second.unchanged) == (1, 1, 0)
    assert second.updates == [f"{C1}: latitude 55.75 -> 55.76"]

    retyped = moved.replace("camerus2", "camerus3").replace("camerus1", "nosuch")
    with pytest.raises(UsageError) as info:
        await service.import_file(_write(tmp_path, "retyped.csv", retyped))
    assert info.value.details == [
        "line 2: type: unknown camera type 'nosuch'",
        f"line 3: type: camera {C2} is registered as 'camerus2'; a camera cannot change type",
    ]
    assert (await service.show(str(C2))).camera_type == "camerus2"


@needs_xlsx
async def test_camera_import_reads_xlsx_with_row_numbers(db: Database, tmp_path: Path) -> None:
    from tests.unit.test_catalog_parsing import write_xlsx

    header = ["id", "type", "latitude", "longitude", "description"]
    good = write_xlsx(tmp_path / "cameras.xlsx", [header, [str(C1), "camerus1", 55.75, 37.62, ""]])
    report = await CameraService(db.uow).import_file(good)
    assert (report.added, report.updated) == (1, 0)
    assert (await CameraService(db.uow).show(str(C1))).latitude == 55.75

    bad = write_xlsx(tmp_path / "bad.xlsx", [header, [str(C2), "camerus1", 95, 1, ""]])
    with pytest.raises(UsageError) as info:
        await CameraService(db.uow).import_file(bad)
    assert [line.split(":")[0] for line in info.value.details] == ["row 2"]

"""Fines due: confirmed cases joined with the catalog and the owners, on SQLite and
PostgreSQL. Cases are inserted directly, already decided, so each test states exactly
the outcome it needs."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Case
from lizardctl.core.errors import BadPlate, UsageError
from lizardctl.core.repositories import catalog as catalog_repository
from lizardctl.core.services.catalog import OwnerService, ViolationService
from lizardctl.core.services.fines import (
    CSV_COLUMNS,
    FineRow,
    FinesFormat,
    FinesService,
    OwnerTotal,
)
from tests.integration.test_reviews_service import CAMERA, PHOTO, open_db

SPEEDING = uuid.UUID("de163a57-fd92-47a6-9b78-82bb0d41be71")
RED_LIGHT = uuid.UUID("b8c548ca-b143-4e88-9c2d-fc0599ad570b")
UNLISTED = uuid.UUID("0101e497-32cb-47d7-85b4-175e215d160a")
DAY1 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def add_case(
    db: Database,
    plate: str,
    violation: uuid.UUID,
    *,
    status: str = "confirmed",
    decided_at: datetime | None = DAY1,
) -> uuid.UUID:
    """One case, decided (or not) as given, a confirmed one with the catalog's fine of now
    frozen as a decision would; returns its id."""
    case_id = uuid.uuid4()
    async with db.uow() as uow:
        schema_id = (await uow.schemas.versions("camerus1"))[0].id
        listed = await uow.violations.get(violation) if status == "confirmed" else None
        await uow.shots.session.execute(
            insert(Case),
            [
                {
                    "id": case_id,
                    "photo_sha256": PHOTO,
                    "metadata_sha256": hashlib.sha256(case_id.bytes).hexdigest(),
                    "camera_id": CAMERA,
                    "schema_version_id": schema_id,
                    "plate": plate,
                    "violation_id": violation,
                    "violation_value": "62km/h",
                    "skill": 1,
                    "occurred_at": (decided_at or DAY1) - timedelta(days=3),
                    "raw": {},
                    "source_photo": "/dump/x.jpg",
                    "source_metadata": "/dump/x.json",
                    "status": status,
                    "required_skill": 1,
                    "created_at": (decided_at or DAY1) - timedelta(days=2),
                    "decided_at": decided_at if status in ("confirmed", "dismissed") else None,
                    "fine_minor": listed.fine_minor if listed is not None else None,
                }
            ],
        )
        await uow.commit()
    return case_id


@pytest.fixture
async def db(migrated_db_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """The catalog (speeding 500, red light 1000.50), three owners of whom Ann owns two
    plates, and cases: Ann 2 confirmed on 1ABC2377 + 1 on 2ABC2377, Bob 1, a plate with
    no owner 1, a confirmed case of an uncatalogued violation, plus a dismissed and an
    open case that owe nothing."""
    database = await open_db(migrated_db_url)
    (tmp_path / "v.csv").write_text(
        f"id,name,fine\n{SPEEDING},Speeding,500\n{RED_LIGHT},Red light,1000.50\n"
    )
    (tmp_path / "o.csv").write_text(
        "plate,name,phone,email,telegram\n"
        "1ABC2377,Ann Smith,+79161234567,,ann_smith\n"
        "2ABC2377,Ann Smith,+79161234567,,ann_smith\n"
        "3BOB2377,Bob Jones,,bob@example.com,\n"
    )
    await ViolationService(database.uow).import_file(tmp_path / "v.csv")
    await OwnerService(database.uow).import_file(tmp_path / "o.csv")
    await add_case(database, "1ABC2377", SPEEDING, decided_at=DAY1)
    await add_case(database, "1ABC2377", RED_LIGHT, decided_at=DAY2)
    await add_case(database, "2ABC2377", SPEEDING, decided_at=DAY2 + timedelta(minutes=1))
    await add_case(database, "3BOB2377", RED_LIGHT, decided_at=DAY1 + timedelta(hours=1))
    await add_case(database, "9NOO2377", SPEEDING, decided_at=DAY2 + timedelta(minutes=2))
    await add_case(database, "3BOB2377", UNLISTED, decided_at=DAY2 + timedelta(minutes=3))
    await add_case(database, "3BOB2377", SPEEDING, status="dismissed", decided_at=DAY2)
    await add_case(database, "3BOB2377", SPEEDING, status="open", decided_at=None)
    try:
        yield database
    finally:
        await database.dispose()


async def _collect(
    db: Database, **filters: Any
) -> tuple[list[FineRow], list[OwnerTotal], dict[str, Any]]:
    rows: list[FineRow] = []
    totals: list[OwnerTotal] = []
    summary = await FinesService(db.uow).stream(rows.extend, totals.extend, **filters)
    return rows, totals, summary.to_dict()


async def test_rows_join_owners_known_and_unknown(db: Database) -> None:
    rows, _, summary = await _collect(db)
    assert [(r.plate, r.owner_label, r.violation_label, r.fine) for r in rows] == [
        ("1ABC2377", "Ann Smith", "Speeding", "500.00"),
        ("3BOB2377", "Bob Jones", "Red light", "1000.50"),
        ("1ABC2377", "Ann Smith", "Red light", "1000.50"),
        ("2ABC2377", "Ann Smith", "Speeding", "500.00"),
        ("9NOO2377", "unknown owner", "Speeding", "500.00"),
        ("3BOB2377", "Bob Jones", "unknown violation", None),
    ]
    assert rows[0].contacts == "+79161234567, @ann_smith"
    assert rows[4].contacts == ""
    assert summary == {
        "cases": 6,
        "priced": 5,
        "unpriced": 1,
        "unknown_owner": 1,
        "total": "3501.00",
        "total_minor": 350100,
    }


async def test_totals_per_owner_biggest_first(db: Database) -> None:
    _, totals, _ = await _collect(db)
    assert [(t.owner_label, t.plates, t.cases, t.priced, t.fine) for t in totals] == [
        ("Ann Smith", ("1ABC2377", "2ABC2377"), 3, 3, "2000.50"),
        ("Bob Jones", ("3BOB2377",), 2, 1, "1000.50"),
        ("unknown owner", ("9NOO2377",), 1, 1, "500.00"),
    ]


async def test_since_and_plate_filters(db: Database) -> None:
    rows, totals, _ = await _collect(db, since=DAY2)
    assert [r.plate for r in rows] == ["1ABC2377", "2ABC2377", "9NOO2377", "3BOB2377"]
    rows, totals, _ = await _collect(db, plate="1abc2377")
    assert [(r.plate, r.violation) for r in rows] == [
        ("1ABC2377", "Speeding"),
        ("1ABC2377", "Red light"),
    ]
    assert [(t.plates, t.fine) for t in totals] == [(("1ABC2377",), "1500.50")]
    with pytest.raises(BadPlate, match="not a canonical plate") as info:
        await _collect(db, plate="nonsense")
    assert info.value.plate == "nonsense"


async def test_streams_in_batches(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_repository, "STREAM_BATCH", 2)
    batches: list[int] = []
    summary = await FinesService(db.uow).stream(lambda rows: batches.append(len(rows)))
    assert batches == [2, 2, 2]
    assert summary.cases == 6


async def test_csv_and_jsonl(db: Database) -> None:
    out = io.StringIO()
    await FinesService(db.uow).export(out, fmt=FinesFormat.CSV)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(CSV_COLUMNS)
    unknown = rows[4]
    assert (unknown["owner"], unknown["phone"], unknown["fine"]) == ("unknown owner", "", "500.00")
    assert rows[5]["violation"] == "unknown violation"
    assert rows[5]["fine"] == ""
    assert rows[0]["decided_at"] == DAY1.isoformat()

    out = io.StringIO()
    await FinesService(db.uow).export(out, fmt=FinesFormat.JSONL)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 6
    assert (records[4]["owner"], records[4]["fine"], records[4]["fine_minor"]) == (
        None,
        "500.00",
        50000,
    )
    assert records[1]["fine"] == "1000.50", "money is a decimal string, never a float"
    with pytest.raises(UsageError, match="table"):
        await FinesService(db.uow).export(io.StringIO(), fmt=FinesFormat.TABLE)


async def test_export_file_appears_complete_or_not_at_all(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    summary = await FinesService(db.uow).export_file(folder / "fines.csv", fmt=FinesFormat.CSV)
    assert summary.cases == 6
    assert len((folder / "fines.csv").read_text().splitlines()) == 7
    assert [p.name for p in folder.iterdir()] == ["fines.csv"]
    with pytest.raises(UsageError, match="cannot write"):
        await FinesService(db.uow).export_file(folder / "no" / "x.csv", fmt=FinesFormat.CSV)
    assert [p.name for p in folder.iterdir()] == ["fines.csv"]


async def test_catalog_view_per_violation_and_day(db: Database) -> None:
    report = await FinesService(db.uow, now=lambda: NOW).report()
    data = report.to_dict()
    assert (data["cases"], data["unpriced"], data["total"]) == (6, 1, "3501.00")
    assert [(v["violation"], v["fine"], v["cases"], v["total"]) for v in data["by_violation"]] == [
        ("Red light", "1000.50", 2, "2001.00"),
        ("Speeding", "500.00", 3, "1500.00"),
        (None, None, 1, "0.00"),
    ]
    assert data["by_violation"][2]["violation_id"] == str(UNLISTED)
    assert [(d["day"], d["cases"], d["priced"], d["total"]) for d in data["by_day"]] == [
        ("2026-11-24", 2, 2, "1500.50"),
        ("2026-11-25", 4, 3, "2000.50"),
    ]
    recent = (await FinesService(db.uow).report(DAY2)).to_dict()
    assert [d["day"] for d in recent["by_day"]] == ["2026-11-25"]
    old = (await FinesService(db.uow, now=lambda: NOW + timedelta(days=60)).report()).to_dict()
    assert old["cases"] == 0, "the default window is the last 30 days"


async def test_owner_and_violation_show_the_cases(db: Database) -> None:
    bob = await OwnerService(db.uow).show("3BOB2377")
    assert bob.cases_by_status == {"confirmed": 2, "dismissed": 1, "open": 1}
    assert (len(bob.cases.items), bob.cases.total) == (4, 4)
    assert {c.violation for c in bob.cases.items} == {"Speeding", "Red light", None}
    limited = await OwnerService(db.uow).show("3BOB2377", limit=1)
    assert (len(limited.cases.items), limited.cases.total, limited.cases.next_offset) == (1, 4, 1)
    assert sum(limited.cases_by_status.values()) == 4
    paged = await OwnerService(db.uow).show("3BOB2377", limit=2, offset=3)
    assert [c.id for c in paged.cases.items] == [bob.cases.items[3].id]
    assert (paged.cases.total, paged.cases.next_offset) == (4, None)

    speeding = (await ViolationService(db.uow).show(SPEEDING)).to_dict()
    assert speeding["cases_by_status"] == {"confirmed": 3, "dismissed": 1, "open": 1}
    assert (speeding["confirmed"], speeding["fines_due"]) == (3, "1500.00")

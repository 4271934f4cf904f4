"""Export and ``report reviews`` over a decided backlog, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from lizardctl.core.db.database import Database
from lizardctl.core.errors import UsageError
from lizardctl.core.services.export import DecidedStatus, ExportFormat, ExportService
from lizardctl.core.services.review_report import ReviewReportService
from lizardctl.core.services.reviews import ReviewService, Verdict
from tests.integration.test_reviews_service import (
    START,
    Clock,
    add_cases,
    add_reviewers,
    cast,
)

V, NV = Verdict.VIOLATION, Verdict.NO_VIOLATION


@pytest.fixture
async def decided(db: Database) -> tuple[Clock, list[str]]:
    """Cases 0-4 at level 1: 0 confirmed at 12:00, 1 dismissed at 13:30, 2 escalated to
    level 2 at 13:40, 3 and 4 open; reviewers a, b, c at 1 and d at 2."""
    ids = [str(i) for i in await add_cases(db, 1, 1, 1, 1, 1)]
    await add_reviewers(db, 1, "a", "b", "c")
    await add_reviewers(db, 2, "d")
    clock = Clock()
    service = ReviewService(db.uow, now=clock)
    await cast(service, {"a": V, "b": V, "c": V})
    clock.advance(minutes=90)
    await cast(service, {"c": NV, "a": NV, "b": NV})
    clock.advance(minutes=10)
    await cast(service, {"a": V, "b": NV, "c": NV})
    return clock, ids


async def _export(db: Database, fmt: ExportFormat, **options: object) -> str:
    out = io.StringIO()
    count = await ExportService(db.uow).export(out, fmt=fmt, **options)  # type: ignore[arg-type]
    text = out.getvalue()
    assert count == max(text.count("\n") - (fmt is ExportFormat.CSV), 0)
    return text


async def test_csv_has_one_row_per_decided_case(
    db: Database, decided: tuple[Clock, list[str]]
) -> None:
    clock, ids = decided
    rows = list(csv.DictReader(io.StringIO(await _export(db, ExportFormat.CSV))))
    assert [(r["case_id"], r["status"]) for r in rows] == [
        (ids[0], "confirmed"),
        (ids[1], "dismissed"),
    ]
    first = rows[0]
    assert first["votes"] == "a@1=violation;b@1=violation;c@1=violation"
    assert first["plate"] == "1ABC0077"
    assert first["violation_value"] == "60km/h"
    assert first["occurred_at"] == START.isoformat()
    assert first["decided_at"] == (clock.now - timedelta(minutes=100)).isoformat()
    assert rows[1]["votes"] == "c@1=no-violation;a@1=no-violation;b@1=no-violation"


async def test_status_and_since_filters(db: Database, decided: tuple[Clock, list[str]]) -> None:
    clock, ids = decided
    confirmed = await _export(db, ExportFormat.CSV, statuses=[DecidedStatus.CONFIRMED])
    assert [r["case_id"] for r in csv.DictReader(io.StringIO(confirmed))] == [ids[0]]
    recent = await _export(db, ExportFormat.JSONL, since=clock.now - timedelta(minutes=30))
    (line,) = recent.splitlines()
    data = json.loads(line)
    assert (data["case_id"], data["status"], data["level"]) == (ids[1], "dismissed", 1)
    assert [v["reviewer"] for v in data["votes"]] == ["c", "a", "b"]
    assert await _export(db, ExportFormat.JSONL, since=clock.now + timedelta(seconds=1)) == ""


async def test_export_file_appears_complete_or_not_at_all(
    db: Database, decided: tuple[Clock, list[str]], tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "out.jsonl"
    assert await ExportService(db.uow).export_file(target, fmt=ExportFormat.JSONL) == 2
    assert len(target.read_text().splitlines()) == 2
    assert _names(folder) == ["out.jsonl"], "no partial file left behind"
    with pytest.raises(UsageError, match="cannot write"):
        await ExportService(db.uow).export_file(folder / "no" / "x.csv", fmt=ExportFormat.CSV)
    assert _names(folder) == ["out.jsonl"]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_review_report(db: Database, decided: tuple[Clock, list[str]]) -> None:
    clock, _ = decided
    report = await ReviewReportService(db.uow, now=clock).report(START)
    data = report.to_dict()
    assert data["backlog"] == [
        {"status": "confirmed", "level": 1, "cases": 1},
        {"status": "dismissed", "level": 1, "cases": 1},
        {"status": "escalated", "level": 2, "cases": 1},
        {"status": "open", "level": 1, "cases": 2},
    ]
    assert data["by_hour"] == [
        {"hour": "2026-11-26T12:00", "confirmed": 1, "dismissed": 0, "total": 1},
        {"hour": "2026-11-26T13:00", "confirmed": 0, "dismissed": 1, "total": 1},
    ]
    assert data["decisions"] == 2
    # ingested at START + 0 and + 1 minute, decided at 12:00 and 13:30 on Nov 26
    first = (clock.now - timedelta(minutes=100) - START).total_seconds()
    second = (clock.now - timedelta(minutes=10) - START - timedelta(minutes=1)).total_seconds()
    assert data["median_seconds_to_decision"] == (first + second) / 2
    by_name = {r["name"]: r for r in data["reviewers"]}
    assert (by_name["a"]["votes"], by_name["a"]["on_decided"], by_name["a"]["agreed"]) == (3, 2, 2)
    assert by_name["b"]["agreement"] == 1.0
    assert (by_name["d"]["votes"], by_name["d"]["agreement"]) == (0, None)
    assert data["leased"] == 0
    later = await ReviewReportService(db.uow, now=clock).report(clock.now - timedelta(minutes=5))
    assert later.decisions == 0
    assert {r["name"]: r["votes"] for r in later.reviewers} == {"a": 1, "b": 1, "c": 1, "d": 0}


async def test_agreement_counts_votes_overruled_after_escalation(
    db: Database, decided: tuple[Clock, list[str]]
) -> None:
    clock, ids = decided
    service = ReviewService(db.uow, now=clock)
    assert (await service.configure(votes_per_level=1)).settled == 0
    lease = await service.next_case("d")
    assert lease is not None and str(lease.case.id) == ids[2]
    await service.vote("d", V)
    report = await ReviewReportService(db.uow, now=clock).report(START)
    agreement = {
        r["name"]: (r["on_decided"], r["agreed"], r["agreement"]) for r in report.reviewers
    }
    assert agreement == {
        "a": (3, 3, 1.0),
        "b": (3, 2, 0.667),
        "c": (3, 2, 0.667),
        "d": (1, 1, 1.0),
    }

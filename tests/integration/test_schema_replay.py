"""``schema add --replay`` at the service level, on SQLite and PostgreSQL: new schema files
tried on the raw metadata of stored shots, before (or instead of) being registered."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Case
from lizardctl.core.repositories import schemas as schema_repository
from lizardctl.core.schema import builtin_schema_files
from lizardctl.core.services import schemas as schema_service
from lizardctl.core.services.schemas import SchemaService
from tests.integration.test_reviews_service import CAMERA, PHOTO, START

SHOTS = 10
"""Shot n: skill n % 5 + 1, region '77' when n is even and '123' when odd, n minutes after
START."""


def camerus1(n: int) -> dict[str, Any]:
    return {
        "transport_chars": "ABC",
        "transport_numbers": f"{100 + n}",
        "transport_region": "77" if n % 2 == 0 else "123",
        "camera_id": str(CAMERA),
        "violation_id": str(uuid.UUID(int=7)),
        "violation_value": "62km/h",
        "skill_value": n % 5 + 1,
        "datetime": (START + timedelta(minutes=n)).isoformat(),
    }


async def store_shots(
    db: Database, camera_type: str, raws: list[dict[str, Any]]
) -> list[uuid.UUID]:
    async with db.uow() as uow:
        schema_id = (await uow.schemas.versions(camera_type))[-1].id
        rows = [
            {
                "id": uuid.uuid4(),
                "photo_sha256": PHOTO,
                "metadata_sha256": uuid.uuid4().hex * 2,
                "camera_id": CAMERA,
                "schema_version_id": schema_id,
                "plate": "1ABC2377",
                "violation_id": uuid.UUID(int=7),
                "violation_value": "62km/h",
                "skill": 1,
                "occurred_at": START + timedelta(minutes=n),
                "raw": raw,
                "source_photo": f"/dump/{n}.jpg",
                "source_metadata": f"/dump/{n}.json",
                "status": "open",
                "required_skill": 1,
            }
            for n, raw in enumerate(raws)
        ]
        await uow.shots.session.execute(insert(Case), rows)
        await uow.commit()
    return [row["id"] for row in rows]


def schema_file(folder: Path, change: dict[str, Any], name: str = "new.json") -> Path:
    """camerus1 as shipped, with ``change`` merged into its layout fields."""
    doc = json.loads(builtin_schema_files()["camerus1"].read_text())
    for key, value in change.items():
        if key == "mapping":
            doc["mapping"].update(value)
        else:
            doc["layout"][key] = value
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


STRICTER = {
    "skill_value": {"type": "int", "ge": 1, "le": 4},
    "transport_region": {"type": "string", "pattern": "^[0-9]{3}$"},
}


@pytest.fixture
async def shots(db: Database) -> list[uuid.UUID]:
    """Ten camerus1 shots, and one camerus2 shot that a camerus1 replay must not read."""
    ids = await store_shots(db, "camerus1", [camerus1(n) for n in range(SHOTS)])
    await store_shots(db, "camerus2", [{"anything": "else"}])
    return ids


async def test_failures_are_counted_and_grouped_by_path(
    db: Database, shots: list[uuid.UUID], tmp_path: Path
) -> None:
    report = await SchemaService(db.uow).replay_file(
        "camerus1", schema_file(tmp_path, STRICTER), dry_run=True
    )
    assert (report.replayed, report.passed, report.failed) == (10, 4, 6)
    region, skill = report.failures
    assert (region.path, region.shots) == ("transport_region", 5)
    assert region.example_case_id in {shots[n] for n in (0, 2, 4, 6, 8)}
    assert region.example.startswith("transport_region: must match ^[0-9]{3}$, got '77'")
    assert (skill.path, skill.shots) == ("skill_value", 2)
    assert skill.example_case_id in {shots[4], shots[9]}
    assert report.added is not None and report.added.status == "would-register"
    assert [v.version for v in await SchemaService(db.uow).versions("camerus1")] == [1]
    data = report.to_dict()
    assert (data["registered"], data["other_paths"], data["failures"][0]["shots"]) == (False, 0, 5)


async def test_since_and_limit_choose_the_newest_shots(
    db: Database, shots: list[uuid.UUID], tmp_path: Path
) -> None:
    service = SchemaService(db.uow)
    stricter = schema_file(tmp_path, STRICTER)
    since = await service.replay_file(
        "camerus1", stricter, dry_run=True, since=START + timedelta(minutes=5)
    )
    assert (since.replayed, since.failed) == (5, 3)  # 6 and 8 by region, 9 by skill
    newest = await service.replay_file("camerus1", stricter, dry_run=True, limit=3)
    assert (newest.replayed, newest.failed) == (3, 2)  # 7, 8, 9
    assert {(g.path, g.example_case_id) for g in newest.failures} == {
        ("transport_region", shots[8]),
        ("skill_value", shots[9]),
    }


async def test_registers_only_when_nothing_fails(
    db: Database, shots: list[uuid.UUID], tmp_path: Path
) -> None:
    service = SchemaService(db.uow)
    refused = await service.replay_file("camerus1", schema_file(tmp_path, STRICTER), dry_run=False)
    assert (refused.failed, refused.added) == (6, None)
    assert refused.message == "camerus1: 6 stored shot(s) fail the new file; nothing registered"
    assert [v.version for v in await service.versions("camerus1")] == [1]

    looser = schema_file(tmp_path, {"violation_value": {"type": "string"}}, "looser.json")
    accepted = await service.replay_file("camerus1", looser, dry_run=False)
    assert (accepted.replayed, accepted.failed) == (10, 0)
    assert accepted.added is not None and accepted.added.status == "registered"
    assert [v.version for v in await service.versions("camerus1")] == [1, 2]


async def test_a_mapping_failure_is_reported_at_the_canonical_field(
    db: Database, shots: list[uuid.UUID], tmp_path: Path
) -> None:
    """Valid layout, but the plate the new mapping builds is not a plate."""
    bad_plate = schema_file(tmp_path, {"mapping": {"plate": "transport_chars"}})
    report = await SchemaService(db.uow).replay_file("camerus1", bad_plate, dry_run=True)
    assert report.failed == 10
    ((path, shots_failing),) = [(g.path, g.shots) for g in report.failures]
    assert (path, shots_failing) == ("case.plate", 10)


async def test_a_type_without_stored_shots_replays_nothing(db: Database, tmp_path: Path) -> None:
    camerus4 = Path(__file__).parents[1] / "fixtures" / "schemas" / "camerus4.json"
    report = await SchemaService(db.uow).replay_file("camerus4", camerus4, dry_run=False)
    assert (report.replayed, report.failed) == (0, 0)
    assert report.added is not None and report.added.status == "registered"


async def test_stored_shots_stream_in_batches(
    db: Database, shots: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema_repository, "REPLAY_BATCH", 3)
    async with db.uow() as uow:
        sizes = [len(batch) async for batch in uow.schemas.stored_raw("camerus1", None, None)]
    assert sizes == [3, 3, 3, 1]


async def test_worker_processes_give_the_same_report(
    db: Database, shots: list[uuid.UUID], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``POOL_AFTER`` shots, batches go to worker processes: same counts, groups and
    examples (the first failures in stream order) as in-process."""
    stricter = schema_file(tmp_path, STRICTER)
    monkeypatch.setattr(schema_repository, "REPLAY_BATCH", 2)
    alone = await SchemaService(db.uow).replay_file("camerus1", stricter, dry_run=True, limit=10)
    pools: list[object] = []

    class CountedPool(schema_service.ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(schema_service, "ProcessPoolExecutor", CountedPool)
    monkeypatch.setattr(schema_service, "POOL_AFTER", 3)
    monkeypatch.setattr(schema_service.os, "cpu_count", lambda: 2)
    pooled = await SchemaService(db.uow).replay_file("camerus1", stricter, dry_run=True, limit=10)
    assert len(pools) == 1
    assert (pooled.replayed, pooled.failed, pooled.failures) == (
        alone.replayed,
        alone.failed,
        alone.failures,
    )

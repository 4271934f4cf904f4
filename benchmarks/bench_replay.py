"""Throughput of ``lizardctl schema add --dry-run --replay`` on stored shots.

Fills a database with ``--shots`` cases (default 100,000) of the built-in camerus1 by bulk
inserts (one shared photo row: replay reads no photo), then runs the real command line in
a child process, twice, with a new camerus1 file that accepts skill 1-4 only, so a fifth of
the shots fail at ``skill_value``. Reports shots per second as the command measured itself
(``shots_per_s``: streaming, validating, mapping and grouping), from spawning the command
to its exit, and per CPU-second the command and its worker processes used from spawn to
exit (on a machine shared with other work, the one figure others' load does not move
much); checks the counts. The database is a temporary
SQLite file, or ``--db URL`` (an empty PostgreSQL database or ``?search_path=`` schema: it
is migrated).

    python benchmarks/bench_replay.py --shots 100000
    python benchmarks/bench_replay.py --db 'postgresql+asyncpg://postgres@127.0.0.1:5432/test?search_path=bench'
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_verify import LAYOUTS
from sqlalchemy import insert

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Camera, Case, Photo
from lizardctl.core.schema import builtin_schema_files
from lizardctl.core.services.schemas import register_builtins

TARGET_SHOTS_PER_S = 20_000
CHUNK = 5_000
START = datetime(2026, 1, 1, tzinfo=UTC)
PHOTO = "0" * 64
SKILL_LIMIT = 4
"""The new file accepts skills up to this; the stored shots have skills 1-5."""


async def fill(url: str, shots: int) -> float:
    """Insert ``shots`` camerus1 cases; returns seconds taken."""
    began = time.perf_counter()
    db = Database(parse_db_url(url))
    violation = str(uuid.uuid4())
    camera = uuid.uuid4()
    try:
        await migrate.upgrade(db.engine)
        await register_builtins(db)
        async with db.uow() as uow:
            versions = {row.camera_type: row.id for row in await uow.schemas.latest_versions()}
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(Camera),
                [{"id": camera, "camera_type": "camerus1", "latitude": 0.0, "longitude": 0.0}],
            )
            await conn.execute(
                insert(Photo),
                [{"sha256": PHOTO, "size": 1, "format": "jpeg", "width": 1, "height": 1}],
            )
        for first in range(0, shots, CHUNK):
            rows = []
            for n in range(first, min(first + CHUNK, shots)):
                when = START + timedelta(seconds=n)
                raw = LAYOUTS["camerus1"](n, str(camera), violation, when)
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "photo_sha256": PHOTO,
                        "metadata_sha256": hashlib.sha256(json.dumps(raw).encode()).hexdigest(),
                        "camera_id": camera,
                        "schema_version_id": versions["camerus1"],
                        "plate": f"{n % 10}ABC{n % 100:02d}77",
                        "violation_id": uuid.UUID(violation),
                        "violation_value": raw["violation_value"],
                        "skill": raw["skill_value"],
                        "occurred_at": when,
                        "raw": raw,
                        "source_photo": f"/dumps/{n}.jpg",
                        "source_metadata": f"/dumps/{n}.json",
                        "required_skill": raw["skill_value"],
                    }
                )
            async with db.engine.begin() as conn:
                await conn.execute(insert(Case), rows)
    finally:
        await db.dispose()
    return time.perf_counter() - began


def new_schema(folder: Path) -> Path:
    """camerus1 as shipped, but with skills 1-``SKILL_LIMIT`` only."""
    doc = json.loads(builtin_schema_files()["camerus1"].read_text())
    doc["layout"]["skill_value"]["le"] = SKILL_LIMIT
    path = folder / "camerus1-v2.json"
    path.write_text(json.dumps(doc))
    return path


def replay(url: str, schema: Path) -> tuple[dict[str, Any], float, float]:
    """Run the replay in a child process: its JSON report, wall seconds and CPU seconds
    (the child's and its workers')."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    command = [sys.executable, "-m", "lizardctl", "--db", url, "schema", "add", "camerus1"]
    done = subprocess.run(
        [*command, "--file", str(schema), "--dry-run", "--replay", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    if done.returncode not in (0, 1):
        raise SystemExit(f"replay exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shots", type=int, default=100_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        work = Path(tmp)
        url = options.db or f"sqlite+aiosqlite:///{work / 'lizard.db'}"
        seconds = asyncio.run(fill(url, options.shots))
        print(f"filled {options.shots:,} stored camerus1 shots in {seconds:.1f} s")
        schema = new_schema(work)
        worst = float("inf")
        for label in ("replay", "replay (again)"):
            report, wall, cpu = replay(url, schema)
            failing = sum(1 for n in range(options.shots) if n % 5 + 1 > SKILL_LIMIT)
            assert (report["replayed"], report["failed"]) == (options.shots, failing), report
            assert [g["path"] for g in report["failures"]] == ["skill_value"], report
            print(
                f"{label:15}: {report['elapsed_s']:6.2f} s, {report['shots_per_s']:9,.0f} "
                f"shots/s in the command; {wall:6.2f} s, {options.shots / wall:9,.0f} shots/s "
                f"from spawn to exit, {options.shots / cpu:9,.0f} per CPU-second"
            )
            worst = min(worst, report["shots_per_s"])
    verdict = "OK" if worst >= TARGET_SHOTS_PER_S else "SLOW"
    print(f"{verdict}: replay at {worst:,.0f} shots/s (target {TARGET_SHOTS_PER_S:,})")
    if worst < TARGET_SHOTS_PER_S:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

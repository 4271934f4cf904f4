"""Peak memory of ``lizardctl export`` over many decided cases: it must stay flat.

Fills a database with ``--cases`` decided cases (default 100,000), three votes each, by
bulk inserts, then runs the real command line (``lizardctl export``) in a child process,
for CSV and for JSON Lines, and reports the child's peak RSS beside
that of a command that streams nothing (``review config``): the difference is what
exporting costs. Checks every case came out. The database is a temporary SQLite file, or
``--db URL`` (an empty PostgreSQL database or ``?search_path=`` schema: it is migrated).

    python benchmarks/bench_export.py --cases 100000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Assignment, Camera, Case, Photo, Reviewer, SchemaVersion
from lizardctl.core.services.schemas import register_builtins

LIMIT_MB = 200
CHUNK = 5_000
REVIEWERS = ("ann", "bob", "cid")
START = datetime(2026, 1, 1, tzinfo=UTC)


async def fill(url: str, cases: int) -> float:
    """Insert ``cases`` decided cases with their votes; returns seconds taken."""
    began = time.perf_counter()
    db = Database(parse_db_url(url))
    try:
        await migrate.upgrade(db.engine)
        await register_builtins(db)
        camera = uuid.uuid4()
        async with db.engine.begin() as conn:
            schema_id = await conn.scalar(select(SchemaVersion.id).limit(1))
            assert schema_id is not None, "no built-in schema registered"
            await conn.execute(
                insert(Camera),
                [{"id": camera, "camera_type": "camerus1", "latitude": 0.0, "longitude": 0.0}],
            )
            await conn.execute(
                insert(Photo),
                [{"sha256": "0" * 64, "size": 40_000, "format": "jpeg", "width": 1, "height": 1}],
            )
            reviewer_ids = [
                (
                    await conn.execute(insert(Reviewer).values(name=name, skill=1, active=True))
                ).inserted_primary_key[0]  # type: ignore[index]
                for name in REVIEWERS
            ]
        for first in range(0, cases, CHUNK):
            rows, votes = _chunk(first, min(first + CHUNK, cases), camera, schema_id, reviewer_ids)
            async with db.engine.begin() as conn:
                await conn.execute(insert(Case), rows)
                await conn.execute(insert(Assignment), votes)
    finally:
        await db.dispose()
    return time.perf_counter() - began


def _chunk(
    first: int, last: int, camera: uuid.UUID, schema_id: int, reviewer_ids: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    votes: list[dict[str, Any]] = []
    for n in range(first, last):
        case_id = uuid.uuid4()
        occurred = START + timedelta(seconds=n)
        decided = occurred + timedelta(hours=1)
        verdict = "violation" if n % 4 else "no-violation"
        rows.append(
            {
                "id": case_id,
                "photo_sha256": "0" * 64,
                "metadata_sha256": hashlib.sha256(n.to_bytes(8, "big")).hexdigest(),
                "camera_id": camera,
                "schema_version_id": schema_id,
                "plate": f"{n % 10}ABC{n % 100:02d}77",
                "violation_id": camera,
                "violation_value": f"{60 + n % 80}km/h",
                "skill": 1,
                "occurred_at": occurred,
                "raw": {"n": n},
                "source_photo": f"/dumps/{n}.jpg",
                "source_metadata": f"/dumps/{n}.json",
                "status": "confirmed" if verdict == "violation" else "dismissed",
                "required_skill": 1,
                "created_at": occurred,
                "decided_at": decided,
            }
        )
        votes.extend(
            {
                "case_id": case_id,
                "reviewer_id": reviewer,
                "level": 1,
                "assigned_at": occurred,
                "expires_at": occurred + timedelta(minutes=15),
                "verdict": verdict,
                "voted_at": decided - timedelta(minutes=3 - i),
            }
            for i, reviewer in enumerate(reviewer_ids)
        )
    return rows, votes


PROBE = """
import sys
from lizardctl.__main__ import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line for line in status if line.startswith("VmHWM:")).split()[1], file=sys.stderr)
sys.exit(code)
"""
"""``python -m lizardctl`` that reports its own peak RSS on its last stderr line. Read from
``VmHWM`` because ``ru_maxrss`` of a child also counts the parent's pages at fork."""


def peak_rss(args: list[str]) -> tuple[float, float]:
    """Run lizardctl ARGS in a child process; its peak RSS in MB and wall time in seconds."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"lizardctl {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return int(done.stderr.splitlines()[-1]) / 1024, time.perf_counter() - began


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        url = options.db or f"sqlite+aiosqlite:///{work / 'lizard.db'}"
        seconds = asyncio.run(fill(url, options.cases))
        print(f"filled {options.cases:,} decided cases, 3 votes each, in {seconds:.1f} s")
        baseline, _ = peak_rss(["--db", url, "review", "config", "--json"])
        print(f"baseline (review config): peak RSS {baseline:6.1f} MB")
        worst = baseline
        for fmt in ("csv", "jsonl"):
            out = work / f"export.{fmt}"
            rss, wall = peak_rss(["--db", url, "-q", "export", "--format", fmt, "-o", str(out)])
            rows = count_lines(out) - (fmt == "csv")
            assert rows == options.cases, f"{fmt}: {rows} rows, expected {options.cases}"
            size = out.stat().st_size / 1e6
            print(
                f"export --format {fmt:5}: peak RSS {rss:6.1f} MB, {rows:,} rows, "
                f"{size:.0f} MB written in {wall:.1f} s ({rows / wall:,.0f} rows/s)"
            )
            worst = max(worst, rss)
    verdict = "OK" if worst < LIMIT_MB else "OVER"
    print(f"{verdict}: worst peak RSS {worst:.1f} MB (limit {LIMIT_MB} MB)")
    if worst >= LIMIT_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

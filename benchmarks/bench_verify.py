"""Throughput of ``lizardctl verify``, with and without ``--read-data``.

Fills a database with ``--cases`` cases (default 100,000) of all three built-in camera
types by bulk inserts, each with a photo of its own of ``--photo-bytes`` (default 40,000)
written straight into a photo store (``--layout packs``, the default: appended to packs of
256 MB, as ingest writes them; ``--layout files``: a file each, the first layout), then
runs the real command line (``lizardctl verify --json``) in a child process, twice without
and once with ``--read-data``, and reports cases per second, as the command measured
itself (``cases_per_s``) and from spawning it to its exit, and ``--read-data``'s MB/s of
photo data hashed (target 150). Checks each run found the store clean. The database is a
temporary SQLite file, or ``--db URL`` (an empty PostgreSQL database or ``?search_path=``
schema: it is migrated).

    python benchmarks/bench_verify.py --cases 100000 [--layout files]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Camera, Case, Photo, PhotoStoreRow
from lizardctl.core.services.schemas import register_builtins
from lizardctl.core.store import PhotoStore
from lizardctl.core.store.packs import PackWriter

TARGET_CASES_PER_S = 10_000
TARGET_READ_MB_S = 150.0
CHUNK = 5_000
START = datetime(2026, 1, 1, tzinfo=UTC)


def _camerus1(n: int, camera: str, violation: str, when: datetime) -> dict[str, Any]:
    return {
        "transport_chars": "ABC",
        "transport_numbers": f"{n % 900 + 100}",
        "transport_region": "77",
        "camera_id": camera,
        "violation_id": violation,
        "violation_value": f"{60 + n % 80}km/h",
        "skill_value": n % 5 + 1,
        "datetime": when.isoformat(),
    }


def _camerus2(n: int, camera: str, violation: str, when: datetime) -> dict[str, Any]:
    return {
        "transport": {"chars": "ABC", "numbers": f"{n % 900 + 100}", "transport_region": "77"},
        "camera": {"id": camera},
        "violation": {"id": violation, "value": f"{60 + n % 80}km/h"},
        "skill": {"value": n % 5 + 1},
        "datetime": {
            "year": when.year,
            "month": when.month,
            "day": when.day,
            "hour": when.hour,
            "minute": when.minute,
            "seconds": when.second,
            "utf_offset": "+00:00",
        },
    }


def _camerus3(n: int, camera: str, violation: str, when: datetime) -> dict[str, Any]:
    return {
        "transport": f"1ABC{n % 100:02d}77",
        "camera": {"id": camera},
        "violation": {"id": violation, "value": f"{60 + n % 80}km/h"},
        "skill": n % 5 + 1,
        "datetime": int(when.timestamp()),
    }


LAYOUTS: dict[str, Callable[[int, str, str, datetime], dict[str, Any]]] = {
    "camerus1": _camerus1,
    "camerus2": _camerus2,
    "camerus3": _camerus3,
}


def write_photos(
    store: PhotoStore, writer: PackWriter | None, first: int, last: int, base: bytes
) -> list[dict[str, Any]]:
    """Photos ``first..last-1`` (``base`` plus the number): appended to ``writer``'s packs
    (synced once), or without one written a file each (no fsync); their rows."""
    rows = []
    items = []
    for n in range(first, last):
        data = base + n.to_bytes(8, "big")
        digest = hashlib.sha256(data).hexdigest()
        items.append((digest, data))
        rows.append(
            {"sha256": digest, "size": len(data), "format": "jpeg", "width": 1, "height": 1}
        )
    if writer is None:
        for digest, data in items:
            path = store.files.path_for(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return rows
    for row, (pack, offset) in zip(rows, writer.append(items), strict=True):
        row |= {"pack": pack, "pack_offset": offset}
    writer.sync()
    return rows


async def fill(url: str, store: PhotoStore, cases: int, photo_bytes: int, packs: bool) -> float:
    """Insert ``cases`` cases with a stored photo each; returns seconds taken."""
    began = time.perf_counter()
    store_id = store.create_identity()
    writer = store.writer(store_id) if packs else None
    db = Database(parse_db_url(url))
    base = random.Random(0).randbytes(photo_bytes - 8)
    violation = str(uuid.uuid4())
    try:
        await migrate.upgrade(db.engine)
        await register_builtins(db)
        async with db.uow() as uow:
            versions = {row.camera_type: row.id for row in await uow.schemas.latest_versions()}
        cameras = {name: uuid.uuid4() for name in LAYOUTS}
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(PhotoStoreRow).values(
                    id=store_id, location=str(store.root.resolve()), created_at=START
                )
            )
            await conn.execute(
                insert(Camera),
                [
                    {"id": camera, "camera_type": name, "latitude": 0.0, "longitude": 0.0}
                    for name, camera in cameras.items()
                ],
            )
        names = list(LAYOUTS)
        for first in range(0, cases, CHUNK):
            last = min(first + CHUNK, cases)
            photos = await asyncio.to_thread(write_photos, store, writer, first, last, base)
            rows = []
            for n, photo in zip(range(first, last), photos, strict=True):
                name = names[n % len(names)]
                when = START + timedelta(seconds=n)
                raw = LAYOUTS[name](n, str(cameras[name]), violation, when)
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "photo_sha256": photo["sha256"],
                        "metadata_sha256": hashlib.sha256(json.dumps(raw).encode()).hexdigest(),
                        "camera_id": cameras[name],
                        "schema_version_id": versions[name],
                        "plate": f"{n % 10}ABC{n % 100:02d}77",
                        "violation_id": uuid.UUID(violation),
                        "violation_value": f"{60 + n % 80}km/h",
                        "skill": n % 5 + 1,
                        "occurred_at": when,
                        "raw": raw,
                        "source_photo": f"/dumps/{n}.jpg",
                        "source_metadata": f"/dumps/{n}.json",
                        "required_skill": n % 5 + 1,
                    }
                )
            async with db.engine.begin() as conn:
                await conn.execute(insert(Photo), photos)
                await conn.execute(insert(Case), rows)
    finally:
        if writer is not None:
            writer.close()
        await db.dispose()
    return time.perf_counter() - began


def verify(url: str, store: Path, *extra: str) -> tuple[dict[str, Any], float]:
    """Run ``lizardctl verify --json`` in a child process: its summary and wall seconds."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "lizardctl", "--db", url, "verify", "--store", str(store)]
    done = subprocess.run(
        [*command, "--json", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"verify {' '.join(extra)} exited {done.returncode}: {done.stderr}")
    return json.loads(done.stdout), wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--photo-bytes", type=int, default=40_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--layout", choices=["packs", "files"], default="packs")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        work = Path(tmp)
        url = options.db or f"sqlite+aiosqlite:///{work / 'lizard.db'}"
        store = work / "photos"
        packs = options.layout == "packs"
        seconds = asyncio.run(
            fill(url, PhotoStore.at(store), options.cases, options.photo_bytes, packs)
        )
        os.sync()  # no writeback of the fill competing with the timed runs
        mb = options.cases * options.photo_bytes / 1e6
        print(
            f"filled {options.cases:,} cases, {mb:,.0f} MB of photos ({options.layout}), "
            f"in {seconds:.1f} s"
        )
        print(f"{os.cpu_count()} CPUs; page cache warm: the photos were just written")
        worst = float("inf")
        read_mb_s = 0.0
        for label, extra in (
            ("verify", ()),
            ("verify (again)", ()),
            ("verify --read-data", ("--read-data",)),
        ):
            summary, wall = verify(url, store, *extra)
            assert summary["ok"] and summary["counts"]["cases"] == options.cases, summary
            rate = options.cases / wall
            print(
                f"{label:20}: {summary['elapsed_s']:6.2f} s, {summary['cases_per_s']:9,.0f} cases/s"
                f" in the command; {wall:6.2f} s, {rate:9,.0f} cases/s from spawn to exit"
            )
            if not extra:
                worst = min(worst, summary["cases_per_s"])
            else:
                hashed = summary["counts"]["bytes_hashed"]
                assert hashed == options.cases * options.photo_bytes, summary
                read_mb_s = hashed / 1e6 / summary["elapsed_s"]
                print(f"{'':20}  {read_mb_s:6,.0f} MB/s of photo data hashed in the command")
    verdict = "OK" if worst >= TARGET_CASES_PER_S else "SLOW"
    print(f"{verdict}: verify without --read-data at {worst:,.0f} cases/s (target 10,000)")
    read_verdict = "OK" if read_mb_s >= TARGET_READ_MB_S else "SLOW"
    print(f"{read_verdict}: verify --read-data at {read_mb_s:,.0f} MB/s (target 150)")
    if worst < TARGET_CASES_PER_S or read_mb_s < TARGET_READ_MB_S:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

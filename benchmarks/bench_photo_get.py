"""How long ``lizardctl photo get`` takes for a random stored photo, once started.

Fills a pack store with ``--photos`` random photos (30-50 KB, written by a ``PackWriter`` as
ingest does) and a database with one case per photo (bulk inserts), bound to each other as
``StoreService`` binds them. Then, in one process with the database open (what "after
start-up" means), times ``PhotoService.get`` of random photos named by a case id prefix
(8 hex digits) and by a sha256 prefix (12): resolving the reference (range scans of two
primary keys), locating the photo, one ``pread``. Target: < 5 ms. Wall time (median, p95,
max) and the process's CPU time per get (all its threads: aiosqlite's included), which
others' load on a shared machine moves less; and ``PhotoStore.read`` alone, the ``pread``
without the database's part. For contrast, it also
times the whole command (``python -m lizardctl photo get REF -o FILE``, a fresh process:
interpreter, imports, database open and schema check included).

The packs were just written, so the reads mostly hit the page cache; the figures are of
the code path, not of a cold disk. The database is a temporary SQLite file, or ``--db URL``
(an empty PostgreSQL database or ``?search_path=`` schema: it is migrated).

    python benchmarks/bench_photo_get.py --photos 10000
    python benchmarks/bench_photo_get.py --db 'postgresql+asyncpg://postgres@127.0.0.1:5432/test?search_path=bench'
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from lizardctl.core.config import parse_db_url
from lizardctl.core.db import migrate
from lizardctl.core.db.database import Database
from lizardctl.core.db.models import Camera, Case, Photo
from lizardctl.core.services.photos import PhotoService
from lizardctl.core.services.schemas import register_builtins
from lizardctl.core.services.stores import StoreService

TARGET_MS = 5.0
CHUNK = 2_000
START = datetime(2026, 1, 1, tzinfo=UTC)


async def fill(db: Database, root: Path, photos: int, seed: int) -> list[tuple[str, str]]:
    """Store ``photos`` photos and a case for each; returns (case id, sha256) pairs."""
    rng = random.Random(seed)
    opened = await StoreService(db.uow, db.url).open(root, create=True)
    assert opened.id is not None
    writer = opened.store.writer(opened.id)
    await register_builtins(db)
    async with db.uow() as uow:
        version = {r.camera_type: r.id for r in await uow.schemas.latest_versions()}["camerus1"]
    camera, violation = uuid.uuid4(), uuid.uuid4()
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(Camera),
            [{"id": camera, "camera_type": "camerus1", "latitude": 0.0, "longitude": 0.0}],
        )
    pairs = []
    for first in range(0, photos, CHUNK):
        batch = [
            rng.randbytes(rng.randint(30_000, 50_000))
            for _ in range(first, min(first + CHUNK, photos))
        ]
        digests = [hashlib.sha256(b).hexdigest() for b in batch]
        places = writer.append(list(zip(digests, batch, strict=True)))
        writer.sync()
        photo_rows, case_rows = [], []
        for n, (digest, data, (pack, offset)) in enumerate(
            zip(digests, batch, places, strict=True)
        ):
            case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            photo_rows.append(
                {
                    "sha256": digest,
                    "size": len(data),
                    "format": "JPEG",
                    "width": 1,
                    "height": 1,
                    "pack": pack,
                    "pack_offset": offset,
                }
            )
            case_rows.append(
                {
                    "id": case_id,
                    "photo_sha256": digest,
                    "metadata_sha256": digest,
                    "camera_id": camera,
                    "schema_version_id": version,
                    "plate": f"{n % 10}ABC{n % 100:02d}77",
                    "violation_id": violation,
                    "violation_value": "1",
                    "skill": 1,
                    "occurred_at": START + timedelta(seconds=first + n),
                    "raw": {},
                    "source_photo": f"/dumps/{first + n}.jpg",
                    "source_metadata": f"/dumps/{first + n}.json",
                    "required_skill": 1,
                }
            )
            pairs.append((str(case_id), digest))
        async with db.engine.begin() as conn:
            await conn.execute(insert(Photo), photo_rows)
            await conn.execute(insert(Case), case_rows)
    writer.close()
    return pairs


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[math.ceil(len(ordered) * 0.95) - 1], 3),
        "max_ms": round(ordered[-1], 3),
        "n": len(ordered),
    }


async def in_process(db: Database, root: Path, refs: list[tuple[str, str, str]]) -> dict[str, Any]:
    """``PhotoService.get`` with the database already open, as the command calls it."""
    store = (await StoreService(db.uow, db.url).open(root)).store
    service = PhotoService(db.uow, store)
    await service.get(refs[0][1])  # the first query pays for the connection
    times: dict[str, list[float]] = {"case id prefix": [], "sha256 prefix": []}
    cpu: list[float] = []
    for kind, ref, digest in refs:
        began, began_cpu = time.perf_counter(), time.process_time()
        photo = await service.get(ref)
        times[kind].append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        assert photo.found.location.sha256 == digest
    report: dict[str, Any] = {kind: summary(samples) for kind, samples in times.items()}
    report["cpu_ms_per_get"] = round(statistics.mean(cpu), 3)
    located = [(await service.find(ref)).location for _, ref, _ in refs]
    reads = []
    for location in located:
        began = time.perf_counter()
        store.read(location)
        reads.append((time.perf_counter() - began) * 1000)
    report["pread_alone"] = summary(reads)
    return report


def whole_command(url: str, refs: list[tuple[str, str, str]], out: Path) -> dict[str, float]:
    """The command in a fresh process each time: start-up included."""
    samples = []
    for _, ref, digest in refs:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "lizardctl", "--db", url, "photo", "get", ref, "-o", str(out)],
            capture_output=True,
            check=False,
        )
        samples.append((time.perf_counter() - began) * 1000)
        assert done.returncode == 0, done.stderr
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    return summary(samples)


async def main_async(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    url = args.db or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    root = folder / "store"
    db = Database(parse_db_url(url))
    try:
        await migrate.upgrade(db.engine)
        began = time.perf_counter()
        pairs = await fill(db, root, args.photos, args.seed)
        filled = time.perf_counter() - began
        rng = random.Random(args.seed + 1)
        refs = []
        for n in range(args.gets):
            case_id, digest = rng.choice(pairs)
            if n % 2:
                refs.append(("sha256 prefix", digest[:12], digest))
            else:
                refs.append(("case id prefix", case_id[:8], digest))
        service = await in_process(db, root, refs)
    finally:
        await db.dispose()
    command = whole_command(url, refs[: args.cli_gets], folder / "out.jpg")
    return {
        "photos": args.photos,
        "store_bytes": sum(p.stat().st_size for p in (root / "packs").iterdir()),
        "fill_s": round(filled, 1),
        "database": "sqlite" if args.db is None else "given",
        "in_process": service,
        "whole_command": command,
        "target_ms": TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--gets", type=int, default=2_000, help="in-process gets timed")
    parser.add_argument("--cli-gets", type=int, default=10, help="whole commands timed")
    parser.add_argument("--db", help="an empty database URL (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-photo-get-") as folder:
        report = asyncio.run(main_async(args, Path(folder)))
    print(json.dumps(report, indent=2))
    worst = max(r["median_ms"] for r in report["in_process"].values() if isinstance(r, dict))
    print(f"in-process median {worst:.2f} ms (target < {TARGET_MS} ms)", file=sys.stderr)


if __name__ == "__main__":
    main()

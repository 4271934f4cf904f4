"""The least honest work an ingest can do: the yardstick ``lizardctl ingest`` is measured by.

Synchronous walk, pair photo and metadata by stem within a folder, read both, sha256 the
photo, decode the metadata with lizardctl's codecs, one flat row per shot, and sqlite3
``executemany`` in 1000-row transactions into a fresh file. No validation, no image probe,
no photo store, no idempotence: whatever ``lizardctl`` spends beyond this is its overhead.

Usage: python benchmarks/baseline_ingest.py DUMP_DIR --db baseline.db [--json]
"""

# Strings and os.path, not pathlib: per-file Path objects would bill the baseline for work a
# tuned ingest does not do.
# ruff: noqa: PTH118, PTH122, PTH123

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lizardctl.core.codecs import MetadataDecodeError, decode_metadata
from lizardctl.core.photos import PHOTO_SUFFIXES

METADATA_SUFFIXES = frozenset({".json", ".bin"})
BATCH = 1000


def pairs(root: Path) -> Iterator[tuple[str, str]]:
    """(photo, metadata) paths of each complete shot; files without a partner are skipped."""
    for folder, _, names in os.walk(root):
        photos: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for name in names:
            stem, suffix = os.path.splitext(name)
            suffix = suffix.lower()
            if suffix in PHOTO_SUFFIXES:
                photos[stem] = name
            elif suffix in METADATA_SUFFIXES:
                metadata[stem] = name
        for stem in photos.keys() & metadata.keys():
            yield os.path.join(folder, photos[stem]), os.path.join(folder, metadata[stem])


def ingest(root: Path, db: Path) -> dict[str, float]:
    """Ingest ``root`` into a new SQLite file at ``db``; returns counts, bytes and seconds."""
    started = time.perf_counter()
    connection = sqlite3.connect(db)
    connection.execute(
        "CREATE TABLE shots (photo TEXT, metadata_path TEXT, sha256 TEXT, size INTEGER, raw TEXT)"
    )
    shots = rejected = read = 0
    rows: list[tuple[str, str, str, int, str]] = []
    for photo_path, metadata_path in pairs(root):
        with open(photo_path, "rb") as f:
            photo = f.read()
        with open(metadata_path, "rb") as f:
            raw = f.read()
        read += len(photo) + len(raw)
        try:
            metadata = decode_metadata(raw, os.path.splitext(metadata_path)[1])
        except MetadataDecodeError:
            rejected += 1
            continue
        digest = hashlib.sha256(photo).hexdigest()
        rows.append((photo_path, metadata_path, digest, len(photo), json.dumps(metadata)))
        if len(rows) == BATCH:
            _insert(connection, rows)
            shots += len(rows)
            rows = []
    _insert(connection, rows)
    shots += len(rows)
    connection.close()
    seconds = time.perf_counter() - started
    return {
        "shots": shots,
        "rejected": rejected,
        "bytes": read,
        "seconds": seconds,
        "shots_per_s": shots / seconds if seconds else 0.0,
    }


def _insert(connection: sqlite3.Connection, rows: list[tuple[str, str, str, int, str]]) -> None:
    with connection:  # one transaction per batch
        connection.executemany("INSERT INTO shots VALUES (?, ?, ?, ?, ?)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Minimal baseline ingest of a camera dump.")
    parser.add_argument("dump", type=Path, help="dump folder to walk")
    parser.add_argument("--db", type=Path, required=True, help="new SQLite file to create")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.db.exists():
        sys.exit(f"error: {args.db} exists; the baseline writes a fresh database")
    result = ingest(args.dump, args.db)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['shots']:.0f} shots in {result['seconds']:.2f} s: "
            f"{result['shots_per_s']:.0f} shots/s ({result['rejected']:.0f} undecodable)"
        )


if __name__ == "__main__":
    main()

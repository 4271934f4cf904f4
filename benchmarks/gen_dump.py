"""Generate a benchmark dump: N shots over C cameras, a few percent of them bad.

Writes ``OUT/cameras.csv``, ``OUT/dump/...`` and ``OUT/expected.json`` (the manifest's
expected outcome counts, outside ``dump/`` so an ingest never sees it), which ``run.py``
checks every ingest's summary against.

Usage: python benchmarks/gen_dump.py --shots 20000 --cameras 100 --out /tmp/bench-dump
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lizardctl.testing.dumpgen import BAD_SHOT_KINDS, DumpManifest, generate_dump

EXPECTED_FILE = "expected.json"


def generate(
    out: Path, *, shots: int, cameras: int, bad_percent: float = 2.0, seed: int = 0
) -> tuple[DumpManifest, float]:
    """About ``shots`` shots in all, ``bad_percent`` of them bad; returns the seconds taken."""
    bad_sets = round(shots * bad_percent / 100 / len(BAD_SHOT_KINDS))
    good = shots - bad_sets * len(BAD_SHOT_KINDS)
    started = time.perf_counter()
    manifest = generate_dump(
        out,
        cameras=cameras,
        shots_per_camera=max(1, round(good / cameras)),
        bad=bad_sets > 0,
        bad_sets=max(1, bad_sets),
        seed=seed,
    )
    seconds = time.perf_counter() - started
    summary = {"shots": len(manifest.shots), "expected": manifest.expected_counts()}
    (out / EXPECTED_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return manifest, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate a benchmark camera dump.")
    parser.add_argument("--shots", type=int, default=20_000, help="shots in all (default 20000)")
    parser.add_argument("--cameras", type=int, default=100, help="cameras (default 100)")
    parser.add_argument("--bad-percent", type=float, default=2.0, help="bad shots, %% (2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="new folder to write")
    args = parser.parse_args()
    manifest, seconds = generate(
        args.out,
        shots=args.shots,
        cameras=args.cameras,
        bad_percent=args.bad_percent,
        seed=args.seed,
    )
    print(f"{len(manifest.shots)} shots in {manifest.root} in {seconds:.1f} s")
    for outcome, count in sorted(manifest.expected_counts().items()):
        print(f"  {outcome:<17} {count}")


if __name__ == "__main__":
    main()

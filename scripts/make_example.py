"""Regenerate ``examples/``: the small dump the README's quick start ingests.

Six cameras (two of each type) with four shots each, a third of the metadata binary, and
one bad shot of every kind. Photos are kept at 2-5 KB so the repository stays small, and
``now`` is fixed so that regenerating changes nothing unless the generator changed.

Usage: python scripts/make_example.py [ROOT]   (default: the repository's examples/)
"""

from __future__ import annotations

import argparse
import shutil
from datetime import UTC, datetime
from pathlib import Path

from lizardctl.testing.dumpgen import DumpManifest, generate_dump

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def make_example(root: Path) -> DumpManifest:
    """Write the example dump under ``root``, replacing a previous one."""
    shutil.rmtree(root / "dump", ignore_errors=True)
    return generate_dump(
        root, cameras=6, shots_per_camera=4, photo_bytes=(2_000, 5_000), seed=2026, now=NOW
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the example dump.")
    parser.add_argument("root", nargs="?", type=Path, default=EXAMPLES)
    manifest = make_example(parser.parse_args().root)
    print(f"{manifest.root}: {len(manifest.shots)} shots")
    for outcome, count in sorted(manifest.expected_counts().items()):
        print(f"  {outcome:<17} {count}")
    for shot in manifest.shots:
        if shot.detail:
            paths = ", ".join(str(p.relative_to(manifest.root)) for p in shot.paths)
            print(f"  {shot.expected:<17} {paths}")


if __name__ == "__main__":
    main()

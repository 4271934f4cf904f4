"""Generated dumps shared by the tests of one pytest process, for tests that only read them.

The concurrency tests ingest a 3,000-shot dump each; generating it took ~5 s of the
~10 s those tests spent, on each engine, for every test. Each pytest process (each
xdist worker) now generates each dump once and lends it to every test that asks. A
borrowed dump must come back as it was lent: after the test, every file's path, size,
mode and mtime are compared with what was generated (as root, file modes cannot make the
dump read-only), so a test that moves, deletes, rewrites or adds a file fails instead of
changing the next test's input. Tests that change their dump generate their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lizardctl.testing.dumpgen import DumpManifest, generate_dump

Fingerprint = dict[str, tuple[int, int, int]]
"""Relative path -> (mode, size, mtime in ns) of everything under a generated root."""


def fingerprint(root: Path) -> Fingerprint:
    """What the files and folders under ``root`` look like, without reading them."""
    found: Fingerprint = {}
    for path in root.rglob("*"):
        stat = path.lstat()
        found[str(path.relative_to(root))] = (stat.st_mode, stat.st_size, stat.st_mtime_ns)
    return found


class SharedDumps:
    """``generate_dump`` once per set of options, in one directory for the session."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._made: dict[tuple[tuple[str, Any], ...], tuple[DumpManifest, Fingerprint]] = {}

    def lend(self, **options: Any) -> DumpManifest:
        """The dump ``generate_dump(root, **options)`` writes, generated on first use."""
        key = tuple(sorted(options.items()))
        if key not in self._made:
            manifest = generate_dump(self._directory / f"dump-{len(self._made)}", **options)
            self._made[key] = (manifest, fingerprint(manifest.root))
        return self._made[key][0]

    def check_returned(self, manifest: DumpManifest) -> None:
        """Fail if a test changed a lent dump (and forget it, so no later test gets it)."""
        key, (_, before) = next(
            (key, made) for key, made in self._made.items() if made[0] is manifest
        )
        after = fingerprint(manifest.root)
        if after != before:
            del self._made[key]
            changed = sorted(set(before.items()) ^ set(after.items()))[:5]
            raise AssertionError(f"a test changed the shared dump {manifest.root}: {changed}")

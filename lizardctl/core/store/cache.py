"""The review cache: photos copied out of packs as files a reviewer's image viewer can open.

A packed photo has no file of its own, and the reviewer's machine may not be allowed to
write the store, so ``review next`` copies the leased case's photo to
``$XDG_CACHE_HOME/lizardctl/review/STORE-ID/CASE-ID.EXT`` (``~/.cache`` without
``XDG_CACHE_HOME``) and prints that path. The copy appears whole or not at all (written
beside it, then renamed). It is not needed once the case is voted on (``drop``) or its lease
has lapsed, and the cache never holds more than ``MAX_FILES`` photos nor ``MAX_BYTES``:
every extraction trims it, oldest first.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path

from lizardctl.core.files import write_atomically
from lizardctl.core.store import PhotoLocation, PhotoStore

MAX_FILES = 64
MAX_BYTES = 256 << 20
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp"}


def default_cache_root() -> Path:
    """``$XDG_CACHE_HOME/lizardctl/review``, the XDG base directory rule's place for it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lizardctl" / "review"


class ReviewCache:
    def __init__(
        self, root: Path | None = None, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES
    ) -> None:
        self.root = root if root is not None else default_cache_root()
        self.max_files = max_files
        self.max_bytes = max_bytes

    def extract(
        self,
        store: PhotoStore,
        case_id: uuid.UUID,
        location: PhotoLocation,
        image_format: str | None,
        *,
        lease_seconds: float,
    ) -> Path:
        """The case's photo as a file of the cache (copied once, re-used while it lasts);
        then the cache is trimmed: copies older than a lease are dropped, and the oldest
        beyond the bounds."""
        folder = self.root / str(store.identity() or "unbound")
        suffix = _SUFFIXES.get((image_format or "").upper(), ".img")
        path = folder / f"{case_id}{suffix}"
        try:
            if path.stat().st_size == location.size:
                os.utime(path)
            else:
                raise FileNotFoundError(path)
        except FileNotFoundError:
            data = store.read(location)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(path, data, durable=False)
        self.trim(keep=path, older_than=lease_seconds)
        return path

    def drop(self, case_id: uuid.UUID) -> None:
        """Forget the case's copy, in every store's folder: its vote is in."""
        for path in self.root.glob(f"*/{case_id}.*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def trim(self, *, keep: Path, older_than: float) -> None:
        """Drop copies not touched for ``older_than`` seconds (their lease has lapsed),
        then the oldest until the bounds hold; ``keep`` (the one just handed out) stays."""
        deadline = time.time() - older_than
        entries = []
        for path in self.root.glob("*/*"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        entries.sort(reverse=True)
        files, size = 1, sum(length for _, length, path in entries if path == keep)
        for mtime, length, path in entries:
            if path == keep:
                continue
            files, size = files + 1, size + length
            if mtime < deadline or files > self.max_files or size > self.max_bytes:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        for folder in self.root.iterdir():
            if folder != keep.parent:
                with contextlib.suppress(OSError):  # only an empty one goes
                    folder.rmdir()

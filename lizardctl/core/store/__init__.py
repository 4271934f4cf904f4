"""The photo store: a folder of pack files (and, for stores older than packs, a file per photo).

``PhotoStore`` is the one way in: it writes through a ``PackWriter``, reads a photo from
wherever its row says it is, and knows the store's identity. See ``packs.py`` for the
format and the durability rules, ``files.py`` for the first layout.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from lizardctl.core.errors import EnvironmentFailure
from lizardctl.core.store.files import FileStore, StoreEntry, StoreError
from lizardctl.core.store.identity import create_identity, make_folder, read_identity
from lizardctl.core.store.packs import (
    DEFAULT_PACK_BYTES,
    DamagedRecord,
    PackError,
    PackWriter,
    pack_path,
    read_record,
)

__all__ = [
    "FileStore",
    "PackError",
    "PhotoLocation",
    "PhotoStore",
    "PhotoUnreadable",
    "StoreEntry",
    "StoreError",
]


@dataclass(frozen=True, slots=True)
class PhotoLocation:
    """Where a stored photo is, as its row records it: a pack and a record offset, or, with
    no pack, a file of the first layout."""

    sha256: str
    size: int
    pack: str | None = None
    offset: int | None = None


class PhotoUnreadable(EnvironmentFailure):
    """A photo's row points at bytes that are gone or are not that photo."""


class PhotoStore:
    """The store folder ``root``: new photos go to packs, old ones are read where they are."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files = FileStore(self.root)

    def identity(self) -> uuid.UUID | None:
        """The id the store's identity file holds; None for a store that has none yet."""
        return read_identity(self.root)

    def create_identity(self, store_id: uuid.UUID | None = None) -> uuid.UUID:
        """Give the store an id (or return the one it already has)."""
        return create_identity(self.root, store_id)

    def make_folder(self) -> None:
        """Create the store's folder (and missing parents), durably."""
        make_folder(self.root)

    def check_writable(self) -> None:
        """Fail before a run starts, not at its first batch, when photos cannot be written."""
        self.files.check_writable()

    def writer(self, store_id: uuid.UUID, *, limit: int = DEFAULT_PACK_BYTES) -> PackWriter:
        """A pack writer of this process's own."""
        return PackWriter(self.root, store_id, limit=limit)

    def read(self, location: PhotoLocation) -> bytes:
        """The photo's bytes: one ``pread`` from its pack, or its file in the first layout."""
        try:
            if location.pack is None:
                return self.files.path_for(location.sha256).read_bytes()
            assert location.offset is not None
            return read_record(
                self.root, location.pack, location.offset, location.sha256, location.size
            )
        except DamagedRecord as exc:
            raise PhotoUnreadable(f"photo {location.sha256} is damaged: {exc}") from exc
        except FileNotFoundError as exc:
            raise PhotoUnreadable(
                f"photo {location.sha256} is missing from the store: {exc.filename}"
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"photo store {self.root}: cannot read {exc.filename}: {exc.strerror or exc}"
            ) from exc

    def where(self, location: PhotoLocation) -> str:
        """Where the photo is, for people: its pack and offset, or its file."""
        if location.pack is None:
            return str(self.files.path_for(location.sha256))
        return f"{pack_path(self.root, location.pack)} at offset {location.offset}"

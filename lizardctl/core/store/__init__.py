"""The photo store: packs in a folder or an S3 bucket (and, for folder stores older than
packs, a file per photo).

``PhotoStore`` is the one way in: it writes through its backend's pack writer, reads a
photo from wherever its row says it is, and knows the store's identity. See ``packs.py``
for the format and the durability rules, ``backend.py`` for what a backend does,
``folder.py`` for the folder one, ``files.py`` for the first layout.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from lizardctl.core.errors import EnvironmentFailure
from lizardctl.core.store.backend import Backend, PackSink
from lizardctl.core.store.files import FileStore, StoreEntry, StoreError
from lizardctl.core.store.folder import FolderBackend
from lizardctl.core.store.packs import DEFAULT_PACK_BYTES, DamagedRecord, PackError, PackWriter
from lizardctl.core.store.s3config import is_s3_url

__all__ = [
    "FileStore",
    "PackError",
    "PackWriter",
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
    """A store: new photos go to packs, old ones are read where they are. ``files`` is the
    first layout, which only a folder store can have (None for any other)."""

    def __init__(self, backend: Backend, files: FileStore | None = None) -> None:
        self.backend = backend
        self.files = files

    @classmethod
    def at(cls, location: str | Path) -> PhotoStore:
        """The store at ``location``: ``s3://BUCKET[/PREFIX]`` (packs only), else a folder."""
        if is_s3_url(location):
            from lizardctl.core.store.s3 import S3Backend  # the S3 client only when used

            return cls(S3Backend.at(str(location)))
        root = Path(location)
        return cls(FolderBackend(root), FileStore(root))

    @property
    def location(self) -> str:
        """The store as the database remembers it and people read it."""
        return self.backend.location

    def identity(self) -> uuid.UUID | None:
        """The id the store's identity file holds; None for a store that has none yet."""
        return self.backend.identity()

    def create_identity(self, store_id: uuid.UUID | None = None) -> uuid.UUID:
        """Give the store an id (or return the one it already has)."""
        return self.backend.create_identity(store_id)

    def exists(self) -> bool:
        return self.backend.exists()

    def make(self) -> None:
        """Create the store (a folder and missing parents), durably; a bucket must exist."""
        self.backend.make()

    def check_writable(self) -> None:
        """Fail before a run starts, not at its first batch, when photos cannot be written."""
        self.backend.check_writable()

    def writer(self, store_id: uuid.UUID, *, limit: int = DEFAULT_PACK_BYTES) -> PackSink:
        """A pack writer of this process's own."""
        return self.backend.writer(store_id, limit)

    def read(self, location: PhotoLocation) -> bytes:
        """The photo's bytes: one read from its pack, or its file in the first layout."""
        try:
            if location.pack is None:
                if self.files is None:
                    raise PhotoUnreadable(
                        f"photo {location.sha256} has no pack, and {self.location} holds packs only"
                    )
                return self.files.path_for(location.sha256).read_bytes()
            assert location.offset is not None
            return self.backend.read(location.pack, location.offset, location.sha256, location.size)
        except DamagedRecord as exc:
            raise PhotoUnreadable(f"photo {location.sha256} is damaged: {exc}") from exc
        except FileNotFoundError as exc:
            raise PhotoUnreadable(
                f"photo {location.sha256} is missing from the store: {exc.filename}"
            ) from exc
        except OSError as exc:
            raise StoreError(
                f"photo store {self.location}: cannot read {exc.filename}: {exc.strerror or exc}"
            ) from exc

    def where(self, location: PhotoLocation) -> str:
        """Where the photo is, for people: its pack and offset, or its file."""
        if location.pack is None:
            return str(self.files.path_for(location.sha256)) if self.files else self.location
        assert location.offset is not None
        return self.backend.where(location.pack, location.offset)

"""What a place that keeps packs must do: a folder (``folder.py``) or an S3 bucket.

Services and the ingest pipeline talk to a store only through these operations, so the
pack format, the durability order (append, make durable, then commit) and the checks are
the same wherever the bytes live. A backend is picklable: ``verify --read-data`` sends it
to worker processes, which open their own handles.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

PackFinding = tuple[str, str, str, str, int]
"""``(photo, problem kind, message, pack, offset)`` for a record that is not what its row
says: the place checked, so that a row moved meanwhile (``store reclaim``) is not blamed."""


class PackSink(Protocol):
    """Appends photos to packs of one writer's own (see ``packs.PackWriter``)."""

    @property
    def name(self) -> str: ...

    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[str, int]]: ...

    def sync(self, places: Sequence[tuple[str, int]] = ()) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where a store's identity and packs live. Backends compare equal when they name the
    same store with the same settings: ingest's workers get the main process's backend
    with every batch and keep their writer while it is the same."""

    @property
    def location(self) -> str:
        """The store as the database remembers it and people read it (no secrets)."""
        ...

    def exists(self) -> bool:
        """Whether the store is there at all (a folder, a bucket)."""
        ...

    def make(self) -> None:
        """Create the store if need be, durably."""
        ...

    def check_writable(self) -> None:
        """Fail before a run starts, not at its first batch, when packs cannot be written."""
        ...

    def identity(self) -> uuid.UUID | None:
        """The id the store's identity file holds; None for a store that has none yet."""
        ...

    def create_identity(self, store_id: uuid.UUID | None = None) -> uuid.UUID:
        """Give the store an id (or return the one it already has)."""
        ...

    def writer(self, store_id: uuid.UUID, limit: int) -> PackSink:
        """A pack writer of this process's own."""
        ...

    def read(self, pack: str, offset: int, sha256: str, length: int) -> bytes:
        """The photo of the record at ``offset``, in one read; ``DamagedRecord`` when it is
        not that photo's, ``FileNotFoundError`` when the pack is gone."""
        ...

    def where(self, pack: str, offset: int) -> str:
        """Where a record is, for people."""
        ...

    def packs(self) -> list[str]:
        """Names of every pack in the store, oldest first."""
        ...

    def size(self, pack: str) -> int | None:
        """The pack's length in bytes; None when it is gone."""
        ...

    def being_written(self, pack: str) -> bool:
        """Whether a live writer may still append to the pack (never reclaim it then)."""
        ...

    def seal_bytes(self, pack: str, size: int) -> int:
        """The bytes of the seal ending the pack (the pack's own, not reclaimable), or 0."""
        ...

    def remove(self, pack: str) -> None:
        """Delete a pack no row points at any more, durably."""
        ...

    def check_records(
        self, pack: str, records: Sequence[tuple[int, str, int]], read_data: bool
    ) -> tuple[int, list[PackFinding]]:
        """Check records ``(offset, sha256, size)`` of one pack, in offset order: each lies
        inside the pack and its header names that photo; with ``read_data`` its bytes hash
        to it too. Returns the photo bytes hashed and what is wrong."""
        ...

"""Which photo store a database uses, and the check that a store given is that one.

A store's identity file and the database's ``photo_stores`` row name the same id; they are
written together at the store's first use. Every command that touches photos opens the
store here, so none of them reads, verifies or deletes photos of another database's store
(two SQLite files in one folder used to share ``photos/``, and pruning one deleted the
other's photos). The database also remembers where its store is, so ``--store`` is needed
only to name a store for the first time or after moving it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL

from lizardctl.core.config import STORE_ENV, default_store_dir, legacy_store_dir
from lizardctl.core.db.uow import UowFactory
from lizardctl.core.errors import StoreMismatch, StoreMissing
from lizardctl.core.repositories.photos import BoundStore
from lizardctl.core.store import PhotoStore


@dataclass(frozen=True, slots=True)
class OpenStore:
    """A store checked against the database; ``id`` is None only for a store that does
    not exist yet and was opened without creating it (nothing to read there)."""

    store: PhotoStore
    id: uuid.UUID | None


class StoreService:
    def __init__(self, uow_factory: UowFactory, url: URL) -> None:
        self.uow_factory = uow_factory
        self.url = url

    async def open(self, given: Path | str | None, *, create: bool = False) -> OpenStore:
        """The database's store (``given``, else the one it remembers, else the default).

        A store used for the first time is given an id, in the database and then in the
        store; so is a store written before ids. The database decides a race between two
        first uses (one row, the first insert wins), and the store's file is written only
        once that row is committed: a process that finds the file finds the row too. A
        store found elsewhere than remembered (moved) is remembered there only by a command
        that writes (``create``): a reviewer's machine that mounts it under another path
        must not move it for the ingest host. ``create`` creates a missing folder; without
        it a store that does not exist yet opens with no id, and a missing remembered store
        is ``StoreMissing``. A store that is not this database's is refused with
        ``StoreMismatch`` (exit 2).
        """
        async with self.uow_factory() as uow:
            bound = await uow.photos.store()
            has_photos = bound is None and await uow.photos.count() > 0
        if given is not None:
            root = given
        elif bound is not None:
            root = bound.location
        else:
            root = self._default(has_photos)
        store = PhotoStore.at(root)
        found = store.identity()
        if bound is None and found is not None:
            async with self.uow_factory() as uow:  # its binder committed before writing it
                bound = await uow.photos.store()
        if bound is None:
            if found is not None:
                raise StoreMismatch(
                    f"photo store {root} belongs to another database (store id {found}); "
                    "give this database a store of its own with --store or "
                    f"{STORE_ENV} (a folder that does not exist yet)"
                )
            if not store.exists() and not create:
                return OpenStore(store, None)
            bound = await self._bind(store)
        location = store.location
        if found is None:
            if location != bound.location and not store.exists() and not create:
                raise StoreMissing(root)
            if location != bound.location:
                raise StoreMismatch(
                    f"photo store {root} is not this database's: its store is "
                    f"{bound.location} (id {bound.id}); give that one with --store "
                    f"or {STORE_ENV}"
                )
            if not store.exists():
                raise StoreMissing(root)
            # Bound, but the file is not written yet: a first use under way, one that
            # crashed in between, or a store written before ids.
            found = store.create_identity(bound.id)
        if found != bound.id:
            raise StoreMismatch(
                f"photo store {root} belongs to another database (store id {found}); "
                f"this database's store is {bound.location} (id {bound.id})"
            )
        if create and location != bound.location:
            async with self.uow_factory() as uow:
                await uow.photos.move_store(bound.id, location)
                await uow.commit()
        return OpenStore(store, bound.id)

    async def _bind(self, store: PhotoStore) -> BoundStore:
        """Record ``store`` as the database's store, unless a concurrent first use recorded
        one first; returns the store recorded."""
        store.make()
        async with self.uow_factory() as uow:
            await uow.photos.bind_store(uuid.uuid4(), store.location, datetime.now(UTC))
            await uow.commit()
        async with self.uow_factory() as uow:
            bound = await uow.photos.store()
        assert bound is not None
        return bound

    def _default(self, has_photos: bool) -> Path | str:
        """The default store: named after the SQLite file; a database that has photos but
        no store recorded yet (written before stores had ids) keeps its old ``photos/``."""
        legacy = legacy_store_dir(self.url)
        if has_photos and legacy.is_dir():
            return legacy
        return default_store_dir(self.url)

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

    async def open(self, given: Path | None, *, create: bool = False) -> OpenStore:
        """The database's store (``given``, else the one it remembers, else the default).

        A store used for the first time is given an id, in the store and in the database;
        one without an id yet is given one too (a store written before ids). A store found
        elsewhere than remembered (moved) is remembered there only by a command that
        writes (``create``): a reviewer's machine that mounts it under another path must
        not move it for the ingest host. ``create``
        creates a missing folder; without it a missing store opens with no id, and a
        missing remembered store is ``StoreMissing``. A store that is not this database's
        is refused with ``StoreMismatch`` (exit 2).
        """
        async with self.uow_factory() as uow:
            bound = await uow.photos.store()
            has_photos = bound is None and await uow.photos.count() > 0
        if given is not None:
            root = given
        elif bound is not None:
            root = Path(bound.location)
        else:
            root = self._default(has_photos)
        store = PhotoStore(root)
        found = store.identity()
        if bound is not None:
            if found is None:
                if not root.exists() and given is None:
                    raise StoreMissing(root)
                if not root.exists() and not create:
                    return OpenStore(store, None)
                raise StoreMismatch(
                    f"photo store {root} is not this database's: its store is "
                    f"{bound.location} (id {bound.id}); give that one with --store "
                    f"or {STORE_ENV}"
                )
            if found != bound.id:
                raise StoreMismatch(
                    f"photo store {root} belongs to another database (store id {found}); "
                    f"this database's store is {bound.location} (id {bound.id})"
                )
            location = _location(root)
            if create and location != bound.location:
                async with self.uow_factory() as uow:
                    await uow.photos.move_store(bound.id, location)
                    await uow.commit()
            return OpenStore(store, bound.id)
        if found is not None:
            raise StoreMismatch(
                f"photo store {root} belongs to another database (store id {found}); "
                "give this database a store of its own with --store or "
                f"{STORE_ENV} (a folder that does not exist yet)"
            )
        if not root.exists() and not create:
            return OpenStore(store, None)
        store_id = store.create_identity()
        async with self.uow_factory() as uow:
            if await uow.photos.store() is None:
                await uow.photos.bind_store(store_id, _location(root), datetime.now(UTC))
                await uow.commit()
        return await self.open(root, create=create)

    def _default(self, has_photos: bool) -> Path:
        """The default store: named after the SQLite file; a database that has photos but
        no store recorded yet (written before stores had ids) keeps its old ``photos/``."""
        legacy = legacy_store_dir(self.url)
        if has_photos and legacy.is_dir():
            return legacy
        return default_store_dir(self.url)


def _location(root: Path) -> str:
    return str(root.resolve())

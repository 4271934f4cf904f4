"""A store's identity: a file in the store naming it, so it is never mistaken for another's.

``ROOT/lizardctl-store.json`` holds a random id, written once, durably, when the store is
first used; the database records the same id (table ``photo_stores``). Two databases whose
stores happen to share a folder then disagree about it, and every command refuses the
store instead of reading, verifying or deleting photos another database owns.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from lizardctl.core.errors import EnvironmentFailure
from lizardctl.core.store.packs import fsync_directory

IDENTITY_FILE = "lizardctl-store.json"
_FORMAT = "lizardctl photo store"


class StoreIdentityError(EnvironmentFailure):
    """The identity file exists but cannot be read or is not ours."""


def read_identity(root: Path) -> uuid.UUID | None:
    """The store's id, or None when it has none yet (a new store, or one older than ids)."""
    path = Path(root) / IDENTITY_FILE
    try:
        text = path.read_bytes()[:4096]
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreIdentityError(
            f"photo store {root}: cannot read {path}: {exc.strerror or exc}"
        ) from exc
    return parse_identity(text, root, path)


def parse_identity(text: bytes, root: object, where: object) -> uuid.UUID:
    """The id an identity file's bytes hold (any store kind); ``StoreIdentityError`` when
    they are not a lizardctl store's identity."""
    try:
        content = json.loads(text)
        if content.get("format") != _FORMAT:
            raise ValueError("not a lizardctl store")
        return uuid.UUID(content["id"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StoreIdentityError(
            f"photo store {root}: {where}: not a lizardctl store identity file"
        ) from exc


def identity_content(store_id: uuid.UUID) -> bytes:
    """What an identity file holds for ``store_id`` (any store kind)."""
    content = {
        "format": _FORMAT,
        "id": str(store_id),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return (json.dumps(content, indent=2) + "\n").encode()


def make_folder(root: Path) -> None:
    """Create the store's folder if need be, durably: the store must outlive a crash, not
    just the files in it."""
    try:
        if not root.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            fsync_directory(root.parent)
    except OSError as exc:
        raise StoreIdentityError(f"{root}: cannot write: {exc.strerror or exc}") from exc


def create_identity(root: Path, store_id: uuid.UUID | None = None) -> uuid.UUID:
    """Give the store an id (``store_id``, else a new one), durably, and return the id the
    store has: if another process got there first, theirs stands."""
    root = Path(root)
    store_id = store_id or uuid.uuid4()
    temporary = root / f".{IDENTITY_FILE}.{os.getpid()}.{store_id.hex[:8]}"
    make_folder(root)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            os.write(fd, identity_content(store_id))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # never replaces one that exists
            os.link(temporary, root / IDENTITY_FILE)
        fsync_directory(root)
    except OSError as exc:
        raise StoreIdentityError(
            f"photo store {root}: cannot write: {exc.strerror or exc}"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()
    found = read_identity(root)
    assert found is not None
    return found

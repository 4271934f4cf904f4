"""What a batch hands the repository to persist: new cases, their photos, rejections.

Typed objects, not rows: the repository owns the row shape and the defaults a new row
gets (``repositories/ingest.py``), the pipeline only says what it found.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lizardctl.core.photos import PhotoInfo
from lizardctl.core.schema.canonical import CanonicalCase


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a shot came from: the run, its two files (stored escaped) and their hashes."""

    run_id: uuid.UUID
    photo_path: str
    metadata_path: str
    photo_sha256: str
    metadata_sha256: str


@dataclass(frozen=True, slots=True)
class NewCase:
    """A canonical case a batch found new, as the schema version ``schema_id`` mapped it."""

    id: uuid.UUID
    case: CanonicalCase
    raw: dict[str, Any]
    schema_id: int
    source: Provenance
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewPhoto:
    info: PhotoInfo
    created_at: datetime
    pack: str
    offset: int
    """Where the photo's record starts in ``pack``."""


@dataclass(frozen=True, slots=True)
class RejectedShot:
    """A shot that is no case, with the reason code and message that say why."""

    run_id: uuid.UUID
    photo_path: str | None
    metadata_path: str | None
    reason: str
    message: str
    created_at: datetime


def new_ids(count: int) -> list[uuid.UUID]:
    """Random (version 4) case ids from one urandom call per batch: a call per id cost
    ~30 us each here, more than validating the shot."""
    entropy = os.urandom(16 * count)
    return [uuid.UUID(bytes=entropy[16 * i : 16 * i + 16], version=4) for i in range(count)]

"""One shot's bytes in, a case or a rejection out: the pure core of the pipeline.

No I/O and no database here, so the whole per-shot path can be fuzzed: whatever the
bytes, the result is an ``Accepted`` or a ``Rejected`` with a known reason code.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lizardctl.core.codecs import MetadataDecodeError, decode_metadata
from lizardctl.core.photos import BadPhotoError, PhotoInfo, probe_photo
from lizardctl.core.schema.canonical import CanonicalCase
from lizardctl.core.schema.detect import TypeDetector
from lizardctl.core.schema.errors import ShotInvalid
from lizardctl.core.shot import CameraMismatch, check_camera
from lizardctl.core.vocabulary import Reason


@dataclass(frozen=True, slots=True)
class Accepted:
    case: CanonicalCase
    photo: PhotoInfo
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class Context:
    """What judging a shot needs besides its bytes; built once per worker."""

    detector: TypeDetector
    camera_types: Mapping[uuid.UUID, str]
    now: datetime
    max_pixels: int
    violation_ids: frozenset[uuid.UUID] | None = None
    """The violation catalog; None while it is empty, which turns the check off."""


def examine(
    photo: bytes,
    metadata: bytes,
    metadata_suffix: str,
    context: Context,
    *,
    photo_sha256: str | None = None,
) -> Accepted | Rejected:
    """Decode, detect, validate, map, check the camera, then probe the photo.

    Metadata is judged first: it is the cheaper check and its message is the more useful.
    """
    try:
        raw = decode_metadata(metadata, metadata_suffix)
    except MetadataDecodeError as exc:
        return Rejected(Reason.BAD_METADATA, str(exc))
    try:
        case = context.detector.case(raw, now=context.now)
        check_camera(case, context.camera_types)
    except ShotInvalid as exc:
        return Rejected(Reason(exc.reason), "; ".join(exc.errors))
    except CameraMismatch as exc:
        return Rejected(Reason(exc.reason), str(exc))
    if context.violation_ids is not None and case.violation_id not in context.violation_ids:
        return Rejected(
            Reason.UNKNOWN_VIOLATION,
            f"violation {case.violation_id} is not in the violation catalog",
        )
    try:
        info = probe_photo(photo, max_pixels=context.max_pixels, sha256=photo_sha256)
    except BadPhotoError as exc:
        return Rejected(Reason.BAD_PHOTO, str(exc))
    return Accepted(case, info, raw)

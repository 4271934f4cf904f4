"""Reason codes of rejected shots: what run summaries count by and operators filter on."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    ORPHAN = "orphan"
    AMBIGUOUS_PAIR = "ambiguous-pair"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too-large"
    BAD_METADATA = "bad-metadata"
    UNKNOWN_TYPE = "unknown-type"
    AMBIGUOUS_TYPE = "ambiguous-type"
    INVALID = "invalid"
    FUTURE_TIMESTAMP = "future-timestamp"
    UNKNOWN_CAMERA = "unknown-camera"
    TYPE_MISMATCH = "type-mismatch"
    UNKNOWN_VIOLATION = "unknown-violation"
    BAD_PHOTO = "bad-photo"
    PHOTO_CONFLICT = "photo-conflict"


REASON_HELP: dict[Reason, str] = {
    Reason.ORPHAN: "a photo without metadata file, or metadata without photo",
    Reason.AMBIGUOUS_PAIR: "several photos or metadata files share one stem",
    Reason.UNREADABLE: "a file could not be read, or is not a regular file (link, FIFO, device)",
    Reason.TOO_LARGE: "a file is over --max-photo-bytes or --max-metadata-bytes",
    Reason.BAD_METADATA: "the metadata file does not decode (JSON or binary)",
    Reason.UNKNOWN_TYPE: "no registered camera type has this metadata's shape",
    Reason.AMBIGUOUS_TYPE: "several camera types accept this metadata",
    Reason.INVALID: "the metadata breaks its camera type's schema",
    Reason.FUTURE_TIMESTAMP: "the shot is dated more than 5 minutes in the future",
    Reason.UNKNOWN_CAMERA: "the camera id is not registered",
    Reason.TYPE_MISMATCH: "the camera is registered as another camera type",
    Reason.UNKNOWN_VIOLATION: "the violation id is not in the violation catalog",
    Reason.BAD_PHOTO: "the photo is not a complete, readable image of a sane size",
    Reason.PHOTO_CONFLICT: "the photo is already the evidence of a case with other plate, camera,"
    " violation or time",
}

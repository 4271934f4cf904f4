"""Checks of one shot against the camera registry, shared by ingest and ``schema check``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from lizardctl.core.errors import UsageError
from lizardctl.core.schema.canonical import CanonicalCase
from lizardctl.core.vocabulary import Reason


class CameraMismatch(UsageError):
    """The shot's camera is not registered, or is registered as another type."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_camera(case: CanonicalCase, camera_types: Mapping[uuid.UUID, str]) -> None:
    """A camerus2-shaped shot from a camera registered as camerus1 is not a camerus2 shot."""
    registered = camera_types.get(case.camera_id)
    if registered is None:
        raise CameraMismatch(Reason.UNKNOWN_CAMERA, f"camera {case.camera_id} is not registered")
    if registered != case.schema_name:
        raise CameraMismatch(
            Reason.TYPE_MISMATCH,
            f"metadata has the {case.schema_name} layout but camera {case.camera_id} "
            f"is registered as {registered}",
        )

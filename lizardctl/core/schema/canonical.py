"""The canonical case: the one shape every camera type's metadata is mapped onto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from lizardctl.core.schema.errors import ShotInvalid
from lizardctl.core.vocabulary import Reason

# Digit, three Latin capitals, two digits, 2-3 digit region. Cameras send Latin look-alikes
# of the Cyrillic plate letters, so A-Z is the alphabet we accept.
PLATE_PATTERN = r"^[0-9][A-Z]{3}[0-9]{2}[0-9]{2,3}$"
FUTURE_TOLERANCE = timedelta(minutes=5)


def _to_utc(value: datetime) -> datetime:
    """One time zone in storage; years at the edge of the calendar cannot be shifted."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


class CanonicalCase(BaseModel):
    """A validated shot in the vendor-neutral shape reviewers work on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plate: Annotated[str, Field(pattern=PLATE_PATTERN)]
    camera_id: UUID
    violation_id: UUID
    violation_value: Annotated[str, Field(min_length=1, max_length=64)]
    skill: Annotated[int, Field(ge=1, le=100)]
    occurred_at: Annotated[AwareDatetime, AfterValidator(_to_utc)]
    schema_name: str
    schema_version: int


def build_case(values: dict[str, Any], *, now: datetime | None = None) -> CanonicalCase:
    """Check mapped values as a CanonicalCase; reject timestamps beyond the clock-skew margin."""
    try:
        case = CanonicalCase.model_validate(values)
    except ValidationError as exc:
        raise ShotInvalid.from_validation_error(exc) from None
    limit = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    if case.occurred_at > limit:
        raise ShotInvalid(
            Reason.FUTURE_TIMESTAMP,
            [
                f"occurred_at: {case.occurred_at.isoformat()} is in the future"
                f" (later than now + {FUTURE_TOLERANCE})"
            ],
        )
    return case

"""Errors of the schema layer, and the translation of pydantic's errors into short lines.

Operators read these messages in run summaries, so each line names the full dotted path
of the offending key and says what was expected in a few words. Every error pickles
(``__reduce__``), because validation may run in a process pool and its errors must cross back.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from lizardctl.core.errors import UsageError
from lizardctl.core.vocabulary import Reason


class SchemaFileError(UsageError):
    """A schema file is unusable; ``problems`` holds every problem found, one line each."""

    def __init__(self, problems: list[str], source: str = "schema file") -> None:
        self.problems = problems
        self.source = source
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source}: {count}", details=problems)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.problems, self.source)


class ShotInvalid(UsageError):
    """One shot was rejected; ``reason`` is the code run summaries count by."""

    def __init__(self, reason: Reason, errors: list[str]) -> None:
        self.reason = reason
        self.errors = errors
        super().__init__("; ".join(errors))

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.reason, self.errors)

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> ShotInvalid:
        return cls(Reason.INVALID, [describe_error(e) for e in exc.errors(include_url=False)])


class UnknownType(ShotInvalid):
    """No registered camera type has this shot's shape."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.UNKNOWN_TYPE, [message])

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.errors[0],)


class AmbiguousType(ShotInvalid):
    """Several camera types accept this shot: we refuse to guess between them."""

    def __init__(self, candidates: list[str]) -> None:
        self.candidates = candidates
        super().__init__(
            Reason.AMBIGUOUS_TYPE,
            [f"shot is valid for several camera types: {', '.join(candidates)}"],
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.candidates,)


_MESSAGES: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unexpected key",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_short": "must be at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "literal_error": "must be one of {expected}",
    "datetime_parsing": "not a valid datetime ({error})",
    "datetime_from_date_parsing": "not a valid datetime ({error})",
    "timezone_aware": "must include a UTC offset",
    "value_error": "{error}",
}


def describe_error(error: ErrorDetails) -> str:
    """``datetime.month: must be <= 12, got 13`` from one pydantic error."""
    where = ".".join(str(part) for part in error["loc"]) or "metadata"
    template = _MESSAGES.get(error["type"])
    what = template.format(**error.get("ctx", {})) if template else error["msg"]
    given: Any = error.get("input")
    if error["type"] != "missing" and isinstance(given, str | int | float):
        shown = repr(given)
        what += f", got {shown if len(shown) <= 40 else shown[:37] + '...'}"
    return f"{where}: {what}"

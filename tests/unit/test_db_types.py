"""``UTCDateTime`` writes SQLite the same text SQLAlchemy's ``DATETIME`` would.

Its SQLite bind processor is a shortcut around SQLAlchemy's: a difference in one character
would make stored rows and ``>=`` comparisons against them disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from lizardctl.core.db.models import UTCDateTime

SQLITE = sqlite.dialect()
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
AWARE = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=OFFSETS
)


def _sqlite_processor() -> object:
    return UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)


@given(AWARE)
def test_sqlite_text_is_sqlalchemys_datetime_text_of_the_utc_time(value: datetime) -> None:
    reference = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert reference is not None
    utc = value.astimezone(UTC).replace(tzinfo=None)
    assert _sqlite_processor()(value) == reference(utc)  # type: ignore[operator]


def test_sqlite_keeps_none_and_refuses_naive_datetimes() -> None:
    process = _sqlite_processor()
    assert process(None) is None  # type: ignore[operator]
    with pytest.raises(ValueError, match="naive"):
        process(datetime(2026, 1, 1))  # type: ignore[operator]


def test_postgresql_gets_the_aware_datetime() -> None:
    dialect = postgresql.asyncpg.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    value = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=3)))
    bound = process(value) if process else value
    assert bound == value
    assert bound.utcoffset() == timedelta(0)

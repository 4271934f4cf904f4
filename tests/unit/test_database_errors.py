"""What a refused statement may say: its class and SQLSTATE, never the row (issue 11, item 9)."""

from __future__ import annotations

import traceback

from sqlalchemy.exc import DataError, StatementError

from lizardctl.core.db.database import statement_error

ROW = {"plate": "1ABC2377", "name": "Ivan Petrov", "phone": "+7 900 123 4567"}


class _DriverError(Exception):
    """A driver error quoting the row, as PostgreSQL's DETAIL and asyncpg's messages do."""

    sqlstate = "22P02"

    def __str__(self) -> str:
        return f"invalid input syntax: {ROW['name']!r}\nDETAIL: Failing row contains {ROW}"


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_a_dbapi_error_is_named_by_class_and_sqlstate_and_its_text_is_cut() -> None:
    driver = _DriverError()
    exc = _raised(DataError("INSERT INTO car_owners VALUES (?, ?, ?)", ROW, driver))
    exc.__cause__ = driver
    translated = statement_error(exc)
    assert translated is not None and translated.exit_code == 70
    assert str(translated).startswith(
        "internal error: the database refused a statement (DataError, SQLSTATE 22P02)"
    )
    shown = "".join(traceback.format_exception(translated.with_traceback(None)))
    shown += "".join(traceback.format_exception(exc))
    assert "INSERT INTO car_owners" in shown
    for value in ROW.values():
        assert value not in shown and value not in str(translated)


def test_a_statement_error_without_driver_names_the_original_class() -> None:
    encoding = UnicodeEncodeError("utf-8", "Ivan \udcff", 5, 6, "surrogates not allowed")
    exc = _raised(StatementError("(UnicodeEncodeError) Ivan", "INSERT ...", ROW, encoding))
    translated = statement_error(exc)
    assert translated is not None
    assert "(UnicodeEncodeError)" in str(translated)
    assert "Ivan" not in str(exc) and "Ivan" not in str(translated)


def test_other_errors_are_not_statement_errors() -> None:
    assert statement_error(ValueError("x")) is None

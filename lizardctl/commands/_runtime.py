"""What every command shares: global state, the async runner, the error seam and output.

Command modules are all imported to build the CLI, even for ``lizardctl --version``, so
they and this module import the database, the services and rich only inside the
functions that use them; ``tests/unit/test_startup.py`` keeps it so.
"""

from __future__ import annotations

import io
import os
import re
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, TypeVar, cast

import typer

from lizardctl.core.choices import MAX_COUNT
from lizardctl.core.config import (
    DB_URL_ENV,
    STORE_ENV,
    default_db_url,
    default_store_dir,
    parse_db_url,
    scrub_secrets,
)
from lizardctl.core.errors import LizardError
from lizardctl.core.output import json_text, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from lizardctl.core.database import Database
    from lizardctl.core.paging import Page

T = TypeVar("T")
INTERNAL_ERROR_EXIT = 70

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


@dataclass
class AppState:
    """Global options, set once by the root callback and read by every command."""

    db: str | None = None
    quiet: bool = False
    verbose: bool = False
    json: bool = False
    lock_timeout: float | None = None
    progress: bool = True


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def wants_json(ctx: typer.Context, json_flag: bool) -> bool:
    return json_flag or state(ctx).json


def echo(message: object = "", *, err: bool = False, lines: bool = False, nl: bool = True) -> None:
    """Text for people with control characters made visible: every message and summary
    line goes through here (or ``say``/``info``/``fail``), never ``typer.echo``, because
    any of them may quote a plate, a value or a file name from a dump. ``lines`` keeps
    the newlines of multi-line text such as a schema file."""
    typer.echo(printable(message, lines=lines), err=err, nl=nl)


def fail(message: str, code: int, details: Sequence[str] = ()) -> NoReturn:
    echo(f"Error: {message}", err=True)
    for line in details:
        echo(f"  {line}", err=True)
    raise typer.Exit(code)


def say(ctx: typer.Context, message: str) -> None:
    """A command's result for people on stdout, silenced by --quiet."""
    if not state(ctx).quiet:
        echo(message)


def info(ctx: typer.Context, message: str) -> None:
    """A note for people on stderr, silenced by --quiet."""
    if not state(ctx).quiet:
        echo(message, err=True)


def run(
    ctx: typer.Context,
    work: Callable[[Database], Awaitable[T]],
    *,
    check_schema: bool = True,
    read_only: bool = False,
) -> T:
    """Open the database inside one event loop, run ``work``, dispose, map errors to exits.

    ``read_only`` commands never create a SQLite file: run from the wrong folder, a report
    must say the database is not there, not print the emptiness of a new one.

    This is the seam where the tool's errors become one stderr line and an exit code;
    anything unexpected keeps its traceback only under ``--verbose``.
    """
    import asyncio

    from lizardctl.core.database import (
        Database,
        environment_error,
        require_existing_database,
        statement_error,
    )
    from lizardctl.core.services.schemas import register_builtins

    st = state(ctx)
    raw_url = st.db or default_db_url()

    async def main() -> T:
        url = parse_db_url(raw_url)
        if read_only:
            require_existing_database(url)
        db = Database(url, **lock_option(st))
        try:
            if check_schema:
                await db.ensure_current(on_upgrade=register_builtins)
                if db.created:
                    info(ctx, f"created database {db.display_url}")
            return await work(db)
        except Exception as exc:
            translated = environment_error(exc, url) or statement_error(exc)
            if translated is not None:
                raise translated from exc
            raise
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except LizardError as exc:
        if st.verbose:
            traceback.print_exc()
        details = [scrub_secrets(line, raw_url) for line in exc.details]
        fail(scrub_secrets(str(exc), raw_url), exc.exit_code, details)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        if st.verbose:
            raise
        fail(
            scrub_secrets(
                f"internal error: {type(exc).__name__}: {exc} "
                "(run with --verbose for the traceback)",
                raw_url,
            ),
            INTERNAL_ERROR_EXIT,
        )


def emit_json(data: Any) -> None:
    """``--json`` output: valid JSON whatever the data holds (see ``core.output``)."""
    typer.echo(json_text(data))


class _VisibleControls(io.TextIOBase):
    """stdout for data when it is a terminal: control characters in the data are shown,
    not obeyed (newlines and tabs kept). Pipes and files get the data unchanged."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._stream.write(printable(text, lines=True))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def data_stdout() -> TextIO:
    """Where a command streams CSV or JSON Lines data: stdout, escaped on a terminal."""
    if sys.stdout.isatty():
        return cast(TextIO, _VisibleControls(sys.stdout))
    return sys.stdout


def silence_stdout() -> None:
    """The reader of streamed data went away (``| head``): point stdout at /dev/null so the
    final flush at exit does not fail a second time, and end quietly as other Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def console() -> Console:
    """stdout console; wide when not a terminal so piped tables are not wrapped."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def cell(value: Any) -> Text:
    """A table cell shown as the literal text it is: controls escaped, and a ``Text`` so
    rich never reads ``[red]`` or ``[/]`` from a dump as markup."""
    from rich.text import Text

    return Text("" if value is None else printable(value))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=None if title is None else cell(title), show_lines=False)
    for column in columns:
        table.add_column(cell(column), overflow="fold")
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    console().print(table)


def print_fields(fields: Iterable[tuple[str, Any]]) -> None:
    """A two-column key/value view for ``show`` commands."""
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in fields:
        table.add_row(cell(key), cell(value))
    console().print(table)


_RELATIVE_SINCE = re.compile(r"(\d{1,6})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
SINCE_HELP = (
    "From this time on: DATE or ISO-8601 time (UTC unless an offset is given), "
    "'today' or 'yesterday' (from 00:00 UTC), or an age such as 7d, 12h, 30m."
)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-25``, any ISO-8601 timestamp, ``today``/``yesterday`` (midnight UTC) or an
    age (``7d``, ``12h``, ``30m``) before ``now``, as UTC; without an offset it is UTC.

    Converted here, at the edge: ``0001-01-01T00:00:00+14:00`` is a valid timestamp whose
    UTC time is before year 1, which would otherwise overflow when the query binds it.
    """
    now = now or datetime.now(UTC)
    word = text.strip().lower()
    if word in ("today", "yesterday"):
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=1 if word == "yesterday" else 0)
    relative = _RELATIVE_SINCE.fullmatch(word)
    if relative is not None:
        try:
            return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        except OverflowError as exc:
            raise typer.BadParameter(f"{text!r} reaches back before year 1") from exc
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not a date, ISO-8601 timestamp, today, yesterday or age like 7d/12h/30m: {text!r}"
        ) from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise typer.BadParameter(f"{text!r} is out of range once converted to UTC") from exc


def count_option(name: str, *, help: str, low: int = 1, high: int = MAX_COUNT) -> Any:
    """An integer option bounded on both sides: a huge value is a usage error (exit 2), not
    an overflow in the database driver or in C code (exit 70)."""
    return typer.Option(name, min=low, max=high, help=help)


def seconds_option(
    name: str, *, help: str, low: float, high: float, envvar: str | None = None
) -> Any:
    """A duration in seconds, bounded: the bounds also refuse nan, inf and 1e308, which
    would otherwise hang a run or overflow a timedelta deep inside it."""
    return typer.Option(name, min=low, max=high, metavar="SECONDS", envvar=envvar, help=help)


SinceOpt = Annotated[
    datetime | None,
    typer.Option(
        "--since",
        parser=parse_since,
        metavar="DATE",
        help=SINCE_HELP,
    ),
]
LimitOpt = Annotated[int, count_option("--limit", help="At most this many rows.")]
RunOpt = Annotated[
    str | None,
    typer.Option("--run", metavar="ID", help="Ingest run id, or a unique prefix of one."),
]
OffsetOpt = Annotated[
    int, count_option("--offset", low=0, help="Skip this many rows first, to page on.")
]


def page_title(page: Page[Any], noun: str, scope: str = "") -> str:
    """A limited listing's title never hides rows: ``3 of 11 rejected shot(s) in the latest
    run; more: --offset 3`` (the whole of it is just ``11 rejected shot(s) ...``)."""
    shown = len(page.items)
    where = f" {scope}" if scope else ""
    if page.offset == 0 and shown == page.total:
        return f"{page.total} {noun}{where}"
    start = f", from #{page.offset + 1}" if page.offset and shown else ""
    title = f"{shown} of {page.total} {noun}{where}{start}"
    nxt = page.next_offset
    return title + (f"; more: --offset {nxt}" if nxt is not None else "")


StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Photo store folder (default: photos/ beside the SQLite file).",
    ),
]


def store_root(db: Database, store: Path | None) -> Path:
    return store or default_store_dir(db.url)


def lock_option(st: AppState) -> dict[str, float]:
    """``--lock-timeout`` for ``Database``, when given (else the engine's default)."""
    return {} if st.lock_timeout is None else {"lock_timeout": st.lock_timeout}


def show_progress(ctx: typer.Context, as_json: bool) -> bool:
    """A progress bar only for a person watching: a terminal on stderr, no --quiet,
    --json or --no-progress."""
    st = state(ctx)
    return sys.stderr.isatty() and st.progress and not st.quiet and not as_json


def db_option_help() -> str:
    return (
        f"Database URL, or a SQLite file path such as ./night.db (env {DB_URL_ENV}); "
        "default: SQLite file ./lizard.db. May also follow the command."
    )

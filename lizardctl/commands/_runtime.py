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
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TextIO, TypeVar, cast

import typer

from lizardctl.core.choices import MAX_COUNT, TableFormat
from lizardctl.core.config import (
    DB_URL_ENV,
    STORE_ENV,
    default_db_url,
    parse_db_url,
    scrub_secrets,
)
from lizardctl.core.errors import (
    BadPlate,
    DatabaseMissing,
    EmptyDatabaseUrl,
    LizardError,
    MetricsFileUnusable,
    NoLease,
    NoSuchRun,
    NotASupervisor,
    PruneRunning,
    StatementRefused,
    StoreMissing,
    UpgradeNeeded,
)
from lizardctl.core.output import json_text, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from lizardctl.core.db.database import Database
    from lizardctl.core.paging import Page
    from lizardctl.core.store import PhotoStore

T = TypeVar("T")
INTERNAL_ERROR_EXIT = 70
UPGRADE_HINT = "run `lizardctl db upgrade`"

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


def in_cli_terms(exc: LizardError) -> str:
    """A core error as the command line words it: core names facts, not options, so the
    options and commands that fix it are named here."""
    match exc:
        case NoLease():
            return f"{exc.why}: run `lizardctl review next --reviewer {exc.reviewer}`"
        case NotASupervisor():
            return (
                f"{exc.name} is not a supervisor: `lizardctl reviewer set {exc.name} --supervisor`"
            )
        case BadPlate():
            return f"--plate {exc.plate!r}: {exc.problem}"
        case NoSuchRun():
            return f"no ingest run {exc.run_id} (a --dry-run records none)"
        case StoreMissing():
            return f"photo store {exc.root} does not exist: give --store or LIZARD_STORE"
        case DatabaseMissing():
            return (
                f"database file {exc.path} does not exist: create it with `lizardctl db "
                "upgrade` (or any command that writes, such as ingest), or point --db at an "
                "existing one"
            )
        case EmptyDatabaseUrl():
            return "--db is empty: give a database URL or a SQLite file path"
        case UpgradeNeeded():
            return f"{exc.what}: {UPGRADE_HINT}"
        case MetricsFileUnusable():
            return f"--metrics-file {exc.path}: {exc.problem}"
        case PruneRunning():
            return (
                "a prune (verify --prune, store reclaim or store repack) is deleting photos "
                f"({exc.prunes}): ingest could re-use a photo it deletes, so it does not start; "
                "run it again when the prune is done"
            )
        case StatementRefused():
            return (
                f"internal error: the database refused a statement ({exc.described}); run "
                "with --verbose for the traceback (statement parameters are never shown)"
            )
    return str(exc)


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
    wording: Callable[[LizardError], str | None] | None = None,
) -> T:
    """Open the database inside one event loop, run ``work``, dispose, map errors to exits.

    ``read_only`` commands never create a SQLite file: run from the wrong folder, a report
    must say the database is not there, not print the emptiness of a new one.

    This is the seam where the tool's errors become one stderr line and an exit code,
    worded by ``wording`` (the command's own) or ``in_cli_terms``; anything unexpected
    keeps its traceback only under ``--verbose``.
    """
    import asyncio

    from lizardctl.core.db.database import (
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
        message = (wording and wording(exc)) or in_cli_terms(exc)
        fail(scrub_secrets(message, raw_url), exc.exit_code, details)
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


def terminal_width() -> int | None:
    """The width tables must fit, or None off a terminal (a pipe, a cron log), where a
    table never wraps: one row per line. rich decides what a terminal is (``TTY_COMPATIBLE=1``
    forces one) and reads ``COLUMNS`` before asking the terminal."""
    from rich.console import Console

    probe = Console()
    return probe.width if probe.is_terminal else None


UNLIMITED = 1_000_000
"""Off a terminal rich still needs a width: one no row of text reaches."""


def console(width: int | None = None) -> Console:
    """stdout console: the terminal's width, or ``width``, or unlimited off a terminal so
    piped output is never wrapped."""
    from rich.console import Console

    if width is None:
        width = terminal_width() or UNLIMITED
    return Console(width=width, highlight=False)


def cell(value: Any) -> Text:
    """A table cell shown as the literal text it is: controls escaped, and a ``Text`` so
    rich never reads ``[red]`` or ``[/]`` from a dump as markup."""
    from rich.text import Text

    return Text("" if value is None else printable(value))


FormatOpt = Annotated[
    TableFormat | None,
    typer.Option(
        "--format",
        help="table (for people; fits the terminal), tsv (one row per line, for grep and "
        "awk) or json (as --json).",
        show_default=False,
    ),
]


def table_format(ctx: typer.Context, fmt: TableFormat | None, json_flag: bool) -> TableFormat:
    """The listing's ``--format``; ``--json`` (here or on the root) means ``--format json``."""
    if wants_json(ctx, json_flag):
        if fmt not in (None, TableFormat.JSON):
            assert fmt is not None
            raise typer.BadParameter(f"--json prints JSON, not {fmt.value}", param_hint="--format")
        return TableFormat.JSON
    return fmt or TableFormat.TABLE


ColumnKind = Literal["key", "id", "path", "number", "date", "text"]


@dataclass(frozen=True)
class Column:
    """A table column and how it may give way on a narrow terminal.

    ``key`` (a plate, a name), ``number`` and ``date`` are never split or cut; an ``id`` may
    be shortened to a unique prefix; a ``path`` is shortened from the left (``…/night/a.jpg``);
    only ``text`` wraps. ``keep`` marks a column that identifies the row, never hidden;
    the others are hidden in order of ``rank`` (highest first) when they cannot fit.
    """

    header: str
    kind: ColumnKind = "text"
    keep: bool = False
    rank: int = 0


COLUMN_GAP = 2
MIN_TEXT = 12
MIN_PATH = 24
MIN_ID_PREFIX = 8
ELLIPSIS = "…"


@dataclass(frozen=True)
class Layout:
    """Each column's width on screen (None: hidden) and whether ids were shortened."""

    widths: list[int | None]
    shortened_ids: bool


def _span(widths: Sequence[int | None]) -> int:
    shown = [w for w in widths if w is not None]
    return sum(shown) + COLUMN_GAP * max(len(shown) - 1, 0)


def fit_columns(
    columns: Sequence[Column],
    natural: Sequence[int],
    width: int | None,
    narrowest: Sequence[int] | None = None,
) -> Layout:
    """Widths that fit ``width`` (None: no limit, every column whole).

    ``narrowest`` is how far each column may give way (an id its unique prefix, a path
    its file name, text a dozen characters; default: not at all for ids, paths and text
    as said). In order: shorten ids; hide the least important columns that are not
    ``keep`` until the rest fit at their narrowest; give the room left to paths and text,
    most important first.
    """
    widths: list[int | None] = list(natural)
    if width is None or _span(widths) <= width:
        return Layout(widths, False)
    least = list(narrowest or default_narrowest(columns, natural))
    ids = [i for i, c in enumerate(columns) if c.kind == "id" and least[i] < natural[i]]
    for i in ids:
        widths[i] = least[i]
    if _span(widths) <= width:
        return Layout(widths, bool(ids))
    floor: list[int | None] = [
        least[i] if c.kind in ("text", "path") else widths[i] for i, c in enumerate(columns)
    ]
    optional = sorted(
        (i for i, c in enumerate(columns) if not c.keep), key=lambda i: (-columns[i].rank, -i)
    )
    for i in optional:
        if _span(floor) <= width:
            break
        floor[i] = None
    spare = width - _span(floor)
    for i in sorted(range(len(columns)), key=lambda i: (columns[i].rank, i)):
        current = floor[i]
        if current is None or spare <= 0:
            continue
        grow = min(spare, natural[i] - current) if columns[i].kind != "id" else 0
        floor[i], spare = current + grow, spare - grow
    return Layout(floor, any(floor[i] is not None for i in ids))


def default_narrowest(columns: Sequence[Column], natural: Sequence[int]) -> list[int]:
    """How far a column may give way when nothing is known of its values."""
    limits = {"text": MIN_TEXT, "path": MIN_PATH}
    return [min(n, limits.get(c.kind, n)) for c, n in zip(columns, natural, strict=True)]


def unique_prefix(values: Iterable[str], shortest: int = MIN_ID_PREFIX) -> int:
    """The shortest prefix length, at least ``shortest``, that tells the values apart."""
    distinct = set(values)
    longest = max((len(v) for v in distinct), default=0)
    length = min(shortest, longest)
    while length < longest and len({v[:length] for v in distinct}) < len(distinct):
        length += 1
    return length


def fit_text(text: str, column: Column, width: int) -> str:
    """A cell cut to ``width`` the way its kind allows: ids keep their start, paths their end."""
    if len(text) <= width:
        return text
    if column.kind == "id":
        return text[:width]
    if column.kind == "path":
        tail = text[len(text) - width + 1 :]
        cut = tail.find("/")
        return ELLIPSIS + (tail[cut:] if cut >= 0 else tail)
    return text


def as_column(column: str | Column) -> Column:
    return column if isinstance(column, Column) else Column(column)


_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?( %)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE = re.compile(r"\d{4}-\d\d-\d\d([ T][\d:.]+([+-][\d:]+|Z)?)?")


def infer_column(header: str, values: Sequence[str]) -> Column:
    """A column given by its header alone: numbers, ids and dates found in its values are
    kept whole like declared ones; anything else is text."""
    present = [v for v in values if v not in ("", "-")]
    for kind, pattern in (("number", _NUMBER), ("id", _UUID), ("date", _DATE)):
        if present and all(pattern.fullmatch(v) for v in present):
            return Column(header, cast(ColumnKind, kind))
    return Column(header)


def print_tsv(columns: Sequence[str | Column], rows: Iterable[Sequence[Any]]) -> None:
    """Header line, then one row per line, tab-separated; tabs, newlines and other
    controls inside values are escaped (``\\t``, ``\\n``) so a row stays one line."""
    typer.echo("\t".join(printable(as_column(c).header) for c in columns))
    for row in rows:
        typer.echo("\t".join("" if v is None else printable(v) for v in row))


def print_table(
    title: str | None,
    columns: Sequence[str | Column],
    rows: Iterable[Sequence[Any]],
    form: TableFormat = TableFormat.TABLE,
) -> None:
    """A listing in ``form``: a table fitted to the terminal (see ``fit_columns``), or TSV
    (the title, which may say more rows exist, then goes to stderr)."""
    specs = [as_column(c) for c in columns]
    if form is TableFormat.TSV:
        if title is not None:
            echo(title, err=True)
        print_tsv(specs, rows)
        return
    texts = [["" if v is None else printable(v) for v in row] for row in rows]
    specs = [
        infer_column(c, [row[i] for row in texts]) if isinstance(c, str) else c
        for i, c in enumerate(columns)
    ]
    natural = [max([len(c.header), *(len(row[i]) for row in texts)]) for i, c in enumerate(specs)]
    narrowest = default_narrowest(specs, natural)
    for i, column in enumerate(specs):
        if column.kind == "id":
            narrowest[i] = max(len(column.header), unique_prefix(row[i] for row in texts))
        elif column.kind == "path":
            names = (len(row[i]) - row[i].rfind("/") + 1 for row in texts)
            narrowest[i] = min(natural[i], max([narrowest[i], *names]))
    width = terminal_width()
    layout = fit_columns(specs, natural, width, narrowest)
    if title is not None:
        echo(title)
    render_rows(specs, layout.widths, texts, width)
    table_notes(specs, layout, width)


def table_notes(specs: Sequence[Column], layout: Layout, width: int | None) -> None:
    """Say what a narrow terminal left out, so nothing is hidden silently."""
    hidden = [c.header for c, w in zip(specs, layout.widths, strict=True) if w is None]
    notes = [f"not shown at {width} columns: {', '.join(hidden)}"] if hidden else []
    if layout.shortened_ids:
        notes.append("ids shortened")
    if notes:
        import textwrap

        note = f"({'; '.join(notes)}; --format tsv shows all)"
        echo(textwrap.fill(note, width or UNLIMITED, break_long_words=False), lines=True)


def render_rows(
    specs: Sequence[Column],
    widths: Sequence[int | None],
    texts: Iterable[Sequence[str]],
    width: int | None,
    *,
    header: bool = True,
) -> None:
    """Print rows at the given widths with rich: only text columns wrap, and never mid-word
    unless a word is wider than its column."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_header=header, header_style="bold")
    shown = [i for i, w in enumerate(widths) if w is not None]
    for i in shown:
        column, w = specs[i], widths[i]
        wraps = column.kind == "text" and width is not None
        table.add_column(
            Text(printable(column.header)),
            width=w,
            no_wrap=not wraps,
            overflow="fold" if wraps else "ignore",
            justify="right" if column.kind == "number" else "left",
        )
    for row in texts:
        table.add_row(*(Text(fit_text(row[i], specs[i], widths[i] or 0)) for i in shown))
    console(max(width or UNLIMITED, _span(widths))).print(table)


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
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        metavar="STORE",
        help="Photo store: a folder, or s3://BUCKET/PREFIX (the prefix optional; endpoint "
        "and credentials from the AWS variables or profile files). Default: the one this "
        "database uses; a new SQLite database's is NAME.photos/ beside its file.",
    ),
]


async def open_store(db: Database, store: str | None, *, create: bool = False) -> PhotoStore:
    """The database's own photo store: ``--store``, else the one it remembers; another
    database's store is refused (exit 2)."""
    from lizardctl.core.services.stores import StoreService  # start-up: imports the ORM

    return (await StoreService(db.uow, db.url).open(store, create=create)).store


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


_PLACEHOLDERS = {
    "int": "N",
    "int range": "N",
    "float": "NUMBER",
    "float range": "NUMBER",
    "UUID": "ID",
    "datetime": "DATE",
    "path": "PATH",
    "file": "FILE",
    "list[Path]": "PATH",
}


CHOICES_INLINE = 20
"""Longer lists of choices go into the help text, which wraps between words."""


def _placeholder(param: Any, ctx: typer.Context) -> str:
    """What a value is called in help: ``PATH``, ``N``, ``ID``, ``[a|b]``, the option's
    name in capitals for free text; never a Python type such as ``<list[Path]>``."""
    label = param.display_type(ctx).strip("<>")
    name = (param.name or "value").rstrip("_").upper()
    if "|" in label:
        choices = label.removeprefix("list[").removesuffix("]")
        if len(choices) <= CHOICES_INLINE:
            return f"[{choices}]"
        param.help = f"{param.help or ''} One of: {choices.replace('|', ', ')}.".strip()
        return name
    if label in _PLACEHOLDERS:
        return _PLACEHOLDERS[label]
    return name[:-1] if param.nargs != 1 and name.endswith("S") else name


def _first_sentence(text: str) -> str:
    words = " ".join(text.split("\n\n")[0].split())
    end = words.find(". ")
    return words if end < 0 else words[: end + 1]


def humane_help(command: Any) -> Any:
    """Help that reads like a person wrote it, for every command under ``command``: flags
    show no ``<bool>``, values a placeholder in capitals (``--workers N``, ``PATH...``),
    long lists of choices are words in the help text, and command lists show each
    command's first sentence. Typer shows Python types otherwise; this adjusts the built
    Click objects (metavars, usage pieces) once, before parsing."""
    ctx = typer.Context(command)
    for param in command.params:
        if not hasattr(param, "is_flag"):  # an argument: its name says what it is
            shown = param.metavar or _placeholder(param, ctx) + ("..." if param.nargs != 1 else "")
            param.metavar = shown
            param.display_type_rich = lambda ctx: None
            param.get_usage_pieces = lambda ctx, shown=shown: [shown]
        elif param.metavar is None:
            param.metavar = "" if param.is_flag else _placeholder(param, ctx)
    get_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        if sub.short_help is None and sub.help:
            sub.short_help = _first_sentence(sub.help)
        humane_help(sub)
    return command

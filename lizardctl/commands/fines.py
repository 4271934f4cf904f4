"""``lizardctl fines``: who owes which fine, one row per confirmed case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lizardctl.commands._runtime import (
    Column,
    JsonOpt,
    SinceOpt,
    data_stdout,
    echo,
    emit_json,
    fit_columns,
    info,
    render_rows,
    run,
    say,
    silence_stdout,
    table_notes,
    terminal_width,
    wants_json,
)
from lizardctl.core.choices import FinesFormat
from lizardctl.core.money import format_amount
from lizardctl.core.output import printable

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.fines import FineRow, FinesService, FinesSummary, OwnerTotal

# Fixed widths so pages printed one after another line up; fitted to the terminal once.
ROW_COLUMNS = (
    (Column("plate", "key", keep=True), 9),
    (Column("owner", rank=2), 20),
    (Column("contacts", rank=8), 28),
    (Column("violation", rank=4), 20),
    (Column("value", "key", rank=6), 8),
    (Column("fine", "number", rank=1), 11),
    (Column("occurred (UTC)", "date", rank=5), 16),
    (Column("decided (UTC)", "date", rank=3), 16),
    (Column("case", "id", keep=True), 36),
)
TOTAL_COLUMNS = (
    (Column("owner", keep=True), 20),
    (Column("contacts", rank=3), 28),
    (Column("plates", keep=True), 20),
    (Column("cases", "number", rank=2), 6),
    (Column("fines", "number", rank=1), 13),
)


class PagedTable:
    """A table printed a page (one database batch) at a time: the header once, column
    widths fixed for the terminal (ids whole, as later pages may need more of them), so
    the pages read as one table and memory stays flat. Off a terminal a column grows to
    its longest value on the page rather than wrap."""

    def __init__(
        self,
        title: str,
        columns: Sequence[tuple[Column, int]],
        *,
        follows: PagedTable | None = None,
    ) -> None:
        self.title = title
        self.specs = [column for column, _ in columns]
        self.width = terminal_width()
        self.layout = fit_columns(self.specs, [width for _, width in columns], self.width)
        self.follows = follows
        self.pages = 0
        self.ended = False

    def page(self, rows: Sequence[Sequence[Any]]) -> None:
        first = self.pages == 0
        if first:
            if self.follows is not None:
                self.follows.end()
                echo()
            echo(self.title)
        texts = [["" if value is None else printable(value) for value in row] for row in rows]
        widths = self.layout.widths
        if self.width is None:
            widths = [
                None if w is None else max([w, *(len(row[i]) for row in texts)])
                for i, w in enumerate(widths)
            ]
        render_rows(self.specs, widths, texts, self.width, header=first)
        self.pages += 1

    def end(self) -> None:
        """The note on hidden columns, once, after the last page (nothing if none were)."""
        if self.pages and not self.ended:
            table_notes(self.specs, self.layout, self.width)
        self.ended = True


def _minute(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _row_cells(row: FineRow) -> tuple[Any, ...]:
    return (
        row.plate,
        row.owner_label,
        row.contacts,
        row.violation_label,
        row.violation_value,
        row.fine or "-",
        _minute(row.occurred_at),
        _minute(row.decided_at),
        row.case_id,
    )


def _total_cells(total: OwnerTotal) -> tuple[Any, ...]:
    return (total.owner_label, total.contacts, ", ".join(total.plates), total.cases, total.fine)


def _summary_line(summary: FinesSummary) -> str:
    line = f"{summary.cases} confirmed case(s), fines {format_amount(summary.fine_minor)}"
    if summary.unknown_owner:
        line += f"; {summary.unknown_owner} with unknown owner"
    if summary.unpriced:
        line += f"; {summary.unpriced} without a fine (violation not in the catalog when confirmed)"
    return line


def fines(
    ctx: typer.Context,
    since: SinceOpt = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Only this plate.")] = None,
    fmt: Annotated[
        FinesFormat | None,
        typer.Option(
            "--format",
            help="table (default on stdout, with totals per owner), csv (default with -o), "
            "or jsonl.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to FILE, complete or not at all (csv or jsonl)."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Fines due: one row per confirmed case with plate, owner and contacts (or "unknown
    owner"), violation, fine, occurred_at and decided_at; the table form ends with totals
    per owner. Each fine is the catalog's when the case was confirmed, frozen since;
    --since filters on the decision time.
    Streamed: memory stays flat for millions of rows. --json on stdout means --format jsonl.
    CSV cells starting with = + - @ get a leading ' so spreadsheets never run them.
    Example: lizardctl fines --since 2026-11-01 --format csv -o fines.csv"""
    from lizardctl.core.services.fines import FinesService

    as_json = wants_json(ctx, json_)
    if fmt is None:
        fmt = (
            FinesFormat.CSV
            if output is not None
            else (FinesFormat.JSONL if as_json else FinesFormat.TABLE)
        )
    if as_json and output is None and fmt is not FinesFormat.JSONL:
        raise typer.BadParameter(
            f"--json prints JSON Lines, not {fmt.value}", param_hint="--format"
        )
    if output is not None and fmt is FinesFormat.TABLE:
        raise typer.BadParameter("-o writes csv or jsonl, not a table", param_hint="--format")

    async def work(db: Database) -> FinesSummary | None:
        service = FinesService(db.uow)
        if output is not None:
            return await service.export_file(output, fmt=fmt, since=since, plate=plate)
        try:
            if fmt is FinesFormat.TABLE:
                return await _print_table(service, since, plate)
            return await service.export(data_stdout(), fmt=fmt, since=since, plate=plate)
        except BrokenPipeError:
            silence_stdout()
            return None

    summary = run(ctx, work, read_only=True)
    if summary is None:
        return
    if output is not None:
        if as_json:
            emit_json({"file": str(output), "format": fmt.value, **summary.to_dict()})
        else:
            say(ctx, f"wrote {output}: {_summary_line(summary)}")
    elif fmt is not FinesFormat.TABLE:
        info(ctx, _summary_line(summary))


async def _print_table(
    service: FinesService, since: datetime | None, plate: str | None
) -> FinesSummary:
    rows = PagedTable("Fines due", ROW_COLUMNS)
    totals = PagedTable("Totals per owner", TOTAL_COLUMNS, follows=rows)
    summary = await service.stream(
        lambda batch: rows.page([_row_cells(row) for row in batch]),
        lambda batch: totals.page([_total_cells(total) for total in batch]),
        since=since,
        plate=plate,
    )
    rows.end()
    totals.end()
    if summary.cases == 0:
        echo("no confirmed cases")
    else:
        echo(_summary_line(summary))
    return summary

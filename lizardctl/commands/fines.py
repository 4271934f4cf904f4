"""``lizardctl fines``: who owes which fine, one row per confirmed case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lizardctl.commands._runtime import (
    JsonOpt,
    SinceOpt,
    cell,
    console,
    data_stdout,
    echo,
    emit_json,
    info,
    run,
    say,
    silence_stdout,
    wants_json,
)
from lizardctl.core.choices import FinesFormat
from lizardctl.core.money import format_amount

if TYPE_CHECKING:
    from lizardctl.core.database import Database
    from lizardctl.core.services.fines import FineRow, FinesService, FinesSummary, OwnerTotal

# (header, width, justify): fixed widths so pages printed one after another line up.
ROW_COLUMNS = (
    ("plate", 9, "left"),
    ("owner", 20, "left"),
    ("contacts", 28, "left"),
    ("violation", 20, "left"),
    ("value", 8, "left"),
    ("fine", 11, "right"),
    ("occurred (UTC)", 16, "left"),
    ("decided (UTC)", 16, "left"),
    ("case", 36, "left"),
)
TOTAL_COLUMNS = (
    ("owner", 20, "left"),
    ("contacts", 28, "left"),
    ("plates", 20, "left"),
    ("cases", 6, "right"),
    ("fines", 13, "right"),
)


class PagedTable:
    """A table printed a page (one database batch) at a time: the header once, fixed column
    widths, no borders, so the pages read as one table and memory stays flat."""

    def __init__(
        self, title: str, columns: Sequence[tuple[str, int, str]], *, gap: bool = False
    ) -> None:
        self.title = title
        self.columns = columns
        self.gap = gap
        self.pages = 0

    def page(self, rows: Sequence[Sequence[Any]]) -> None:
        from rich.table import Table

        first = self.pages == 0
        if first and self.gap:
            echo()
        table = Table(
            title=self.title if first else None,
            title_justify="left",
            show_header=first,
            header_style="bold",
            box=None,
            pad_edge=False,
        )
        for header, width, justify in self.columns:
            table.add_column(header, width=width, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*(cell(value) for value in row))
        console().print(table)
        self.pages += 1


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
    totals = PagedTable("Totals per owner", TOTAL_COLUMNS, gap=True)
    summary = await service.stream(
        lambda batch: rows.page([_row_cells(row) for row in batch]),
        lambda batch: totals.page([_total_cells(total) for total in batch]),
        since=since,
        plate=plate,
    )
    if summary.cases == 0:
        echo("no confirmed cases")
    else:
        echo(_summary_line(summary))
    return summary

"""``lizardctl export``: decided cases with their votes, for whoever acts on them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    JsonOpt,
    SinceOpt,
    data_stdout,
    emit_json,
    info,
    run,
    say,
    silence_stdout,
    wants_json,
)
from lizardctl.core.choices import ExportFormat
from lizardctl.core.vocabulary import DecidedStatus

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database


def export(
    ctx: typer.Context,
    status: Annotated[
        list[DecidedStatus] | None,
        typer.Option("--status", help="Only this outcome; repeat for both (default: both)."),
    ] = None,
    since: SinceOpt = None,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            help="csv (the default) or jsonl; --json on stdout means jsonl.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to FILE, complete or not at all (default: stdout)."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Export decided cases, oldest decision first, one row per case with plate, camera,
    violation, value, occurred_at, decided_at and votes. Streamed: memory stays flat for
    millions of rows. --since filters on the decision time. CSV cells starting with = + - @
    get a leading ' so spreadsheet programs never run them as formulas. --json on stdout
    streams JSON Lines (one case per line); with -o it prints what was written as JSON.
    Example: lizardctl export --status confirmed --since 2026-11-25 --format csv -o out.csv"""
    from lizardctl.core.services.export import ExportService

    statuses = tuple(status or DecidedStatus)
    as_json = wants_json(ctx, json_)
    if output is None and as_json and fmt is ExportFormat.CSV:
        raise typer.BadParameter("--json prints JSON Lines, not csv", param_hint="--format")
    chosen = fmt or (ExportFormat.JSONL if as_json and output is None else ExportFormat.CSV)

    async def work(db: Database) -> int | None:
        service = ExportService(db.uow)
        if output is not None:
            return await service.export_file(output, fmt=chosen, statuses=statuses, since=since)
        try:
            return await service.export(data_stdout(), fmt=chosen, statuses=statuses, since=since)
        except BrokenPipeError:
            silence_stdout()
            return None

    count = run(ctx, work, read_only=True)
    if output is None:
        if count is not None:
            info(ctx, f"exported {count} case(s)")
    elif as_json:
        emit_json({"file": str(output), "format": chosen.value, "cases": count})
    else:
        say(ctx, f"exported {count} case(s) to {output}")

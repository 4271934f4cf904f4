"""What the three spreadsheet imports (``camera``, ``violation``, ``owner import``) share:
the file argument and the summary they print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import emit_json, say

if TYPE_CHECKING:
    from lizardctl.core.services.imports import ImportReport


_SHEET_HELP = (
    "CSV or XLSX (with the xlsx extra) whose first row names the columns. Fields with "
    "control characters or over 1,000 characters are bad rows; an XLSX over the limits in "
    "the README (256 MiB unpacked, 1,000,000 rows, ...) is refused; so is anything but a "
    "regular file (FIFO, device, folder), and a CSV over {}."
)
SheetArg = Annotated[Path, typer.Argument(help=_SHEET_HELP.format("1 GB"))]
CameraSheetArg = Annotated[Path, typer.Argument(help=_SHEET_HELP.format("16 MB"))]


def say_import(ctx: typer.Context, report: ImportReport, as_json: bool) -> None:
    """The import summary: counts, then what changed, row by row."""
    if as_json:
        emit_json(report.to_dict())
        return
    if not report.changed:
        say(
            ctx,
            f"{report.file}: nothing to do, all {report.unchanged} {report.table}(s) "
            "already stored",
        )
    else:
        say(
            ctx,
            f"{report.file}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged",
        )
        for line in report.updates:
            say(ctx, f"  updated {line}")
        if report.updated > len(report.updates):
            say(ctx, f"  ... and {report.updated - len(report.updates)} more update(s)")
    if report.priced:
        say(ctx, f"  {report.priced} confirmed case(s) without a fine got this fine, frozen")

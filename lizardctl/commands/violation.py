"""``lizardctl violation``: the managers' catalog of violation types and their fines."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._imports import SheetArg, say_import
from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    emit_json,
    print_fields,
    print_table,
    run,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.catalog import ViolationDetail, ViolationView
    from lizardctl.core.services.imports import ImportReport

app = typer.Typer(help="Import, list and show the violation catalog.", no_args_is_help=True)


@app.command("import")
def import_(ctx: typer.Context, file: SheetArg, json_: JsonOpt = False) -> None:
    """Import the violation catalog (columns id,name,fine; fine like 1500 or 1500.50) in one
    transaction: new ids are added, changed names or fines updated and listed; bad rows are
    listed with their line numbers and nothing is imported. Re-importing changes nothing.
    A changed fine applies to cases confirmed from now on; confirmed cases keep theirs,
    except those confirmed before their violation was catalogued, which get this fine.
    Example: lizardctl violation import violations.xlsx"""
    from lizardctl.core.services.catalog import ViolationService

    async def work(db: Database) -> ImportReport:
        return await ViolationService(db.uow).import_file(file)

    say_import(ctx, run(ctx, work), wants_json(ctx, json_))


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, json_: JsonOpt = False) -> None:
    """List the catalog by name.  Example: lizardctl violation list --json"""
    from lizardctl.core.services.catalog import ViolationService

    async def work(db: Database) -> list[ViolationView]:
        return await ViolationService(db.uow).list()

    rows = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json([row.to_dict() for row in rows])
        return
    print_table(
        f"{len(rows)} violation type(s)",
        [
            Column("id", "key", keep=True),
            "name",
            Column("fine", "number"),
            Column("updated", "date"),
        ],
        [(r.id, r.name, r.fine, r.updated_at.isoformat(timespec="seconds")) for r in rows],
        form,
    )


@app.command()
def show(
    ctx: typer.Context,
    violation_id: Annotated[uuid.UUID, typer.Argument(help="Violation type id.")],
    json_: JsonOpt = False,
) -> None:
    """Show one violation type with its cases by status and the fines its confirmed cases
    are due (each the fine frozen when it was confirmed).
    Example: lizardctl violation show de163a57-fd92-47a6-9b78-82bb0d41be71"""
    from lizardctl.core.services.catalog import ViolationService

    async def work(db: Database) -> ViolationDetail:
        return await ViolationService(db.uow).show(violation_id)

    detail = run(ctx, work, read_only=True)
    data = detail.to_dict()
    if wants_json(ctx, json_):
        emit_json(data)
        return
    print_fields(
        [
            ("id", data["id"]),
            ("name", data["name"]),
            ("fine", data["fine"]),
            ("cases", data["cases"]),
            *((f"  {status}", n) for status, n in data["cases_by_status"].items()),
            ("fines due", f"{data['fines_due']} ({data['confirmed']} confirmed)"),
            ("without a fine", data["unpriced"]),
            ("created", data["created_at"]),
            ("updated", data["updated_at"]),
        ]
    )

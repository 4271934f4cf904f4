"""``lizardctl owner``: the managers' table of car owners and how to reach them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._imports import SheetArg, say_import
from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    count_option,
    emit_json,
    page_title,
    print_fields,
    print_table,
    run,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.paging import Page
    from lizardctl.core.services.catalog import OwnerDetail, OwnerView
    from lizardctl.core.services.imports import ImportReport

app = typer.Typer(help="Import, list and show car owners.", no_args_is_help=True)


@app.command("import")
def import_(ctx: typer.Context, file: SheetArg, json_: JsonOpt = False) -> None:
    """Import car owners (columns plate,name,phone,email,telegram; plate canonical, e.g.
    1ABC2377; at least one contact) in one transaction: new plates are added, changed ones
    updated; bad rows are listed with their line numbers and nothing is imported.
    Re-importing changes nothing.  Example: lizardctl owner import owners.csv"""
    from lizardctl.core.services.catalog import OwnerService

    async def work(db: Database) -> ImportReport:
        return await OwnerService(db.uow).import_file(file)

    say_import(ctx, run(ctx, work), wants_json(ctx, json_))


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: LimitOpt = 1000,
    offset: OffsetOpt = 0,
    fmt: FormatOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List car owners by plate; the title says how many there are in all, --offset pages on.
    Example: lizardctl owner list --limit 50 --offset 50"""
    from lizardctl.core.services.catalog import OwnerService

    async def work(db: Database) -> Page[OwnerView]:
        return await OwnerService(db.uow).list(limit, offset)

    page = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json(page.to_dict(lambda owner: owner.to_dict()))
        return
    print_table(
        page_title(page, "owner(s)"),
        [
            Column("plate", "key", keep=True),
            Column("name", rank=1),
            Column("phone", "key", rank=2),
            Column("email", "key", rank=3),
            Column("telegram", "key", rank=4),
        ],
        [(r.plate, r.name, r.phone, r.email, r.telegram) for r in page.items],
        form,
    )


@app.command()
def show(
    ctx: typer.Context,
    plate: Annotated[str, typer.Argument(help="Canonical plate, e.g. 1ABC2377.")],
    limit: Annotated[
        int, count_option("--limit", help="At most this many cases, newest first.")
    ] = 100,
    offset: OffsetOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Show a plate's owner, contacts, and the plate's cases (newest first, a page of them:
    --limit, --offset) with their statuses and, for catalogued violations, fines.
    Example: lizardctl owner show 1ABC2377"""
    from lizardctl.core.services.catalog import OwnerService

    async def work(db: Database) -> OwnerDetail:
        return await OwnerService(db.uow).show(plate, limit, offset)

    detail = run(ctx, work, read_only=True)
    data = detail.to_dict()
    if wants_json(ctx, json_):
        emit_json(data)
        return
    print_fields(
        [
            ("plate", data["plate"]),
            ("name", data["name"]),
            ("phone", data["phone"] or "-"),
            ("email", data["email"] or "-"),
            ("telegram", data["telegram"] or "-"),
            ("cases", data["cases_total"]),
            *((f"  {status}", n) for status, n in data["cases_by_status"].items()),
        ]
    )
    if detail.cases.items or detail.cases.offset:
        print_table(
            page_title(detail.cases, "case(s)", "of this plate, newest first"),
            [
                Column("case", "id", keep=True),
                Column("occurred at", "date", rank=1),
                Column("violation", rank=3),
                Column("value", rank=5),
                Column("fine", "number", rank=2),
                Column("status", "key", rank=1),
                Column("decided at", "date", rank=4),
            ],
            [
                (
                    c["id"],
                    c["occurred_at"],
                    c["violation"] or "unknown violation",
                    c["violation_value"],
                    c["fine"] or "-",
                    c["status"],
                    c["decided_at"] or "-",
                )
                for c in data["cases"]["items"]
            ],
        )

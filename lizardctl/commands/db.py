"""``lizardctl db``: schema migrations."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    UPGRADE_HINT,
    Column,
    FormatOpt,
    JsonOpt,
    echo,
    emit_json,
    info,
    print_table,
    run,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.migrations import DatabaseStatus, Upgrade

app = typer.Typer(help="Create and migrate the database schema.", no_args_is_help=True)


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    json_: JsonOpt = False,
) -> None:
    """Migrate the database up to REVISION (default: the newest) and register the built-in
    camera types.  Example: lizardctl --db postgresql+asyncpg://me@db/lizard db upgrade"""
    from lizardctl.core.services.migrations import MigrationService

    async def work(db: Database) -> Upgrade:
        return await MigrationService(db).upgrade(revision)

    done = run(ctx, work, check_schema=False)
    before, after = ", ".join(done.before) or "empty", ", ".join(done.after) or "empty"
    if wants_json(ctx, json_):
        emit_json(
            {
                "database": done.url,
                "upgraded_to": revision,
                "changed": done.changed,
                "from": list(done.before),
                "to": list(done.after),
            }
        )
    elif done.changed:
        info(ctx, f"database {done.url} upgraded from {before} to {after}")
    else:
        info(ctx, f"database {done.url} already at {after}: nothing to do")


@app.command()
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1.")],
    json_: JsonOpt = False,
) -> None:
    """Migrate the database down to REVISION.  Example: lizardctl db downgrade -1"""
    from lizardctl.core.services.migrations import MigrationService

    async def work(db: Database) -> str:
        await MigrationService(db).downgrade(revision)
        return db.display_url

    url = run(ctx, work, check_schema=False)
    if wants_json(ctx, json_):
        emit_json({"database": url, "downgraded_to": revision})
        return
    info(ctx, f"database {url} downgraded to {revision}")


@app.command()
def current(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Show the database (password and secret query parameters masked) and its revision.
    Example: lizardctl db current --json"""
    from lizardctl.core.services.migrations import UP_TO_DATE, MigrationService

    async def work(db: Database) -> DatabaseStatus:
        return await MigrationService(db).status()

    status = run(ctx, work, check_schema=False, read_only=True)
    state = status.state if status.state == UP_TO_DATE else f"{status.state}: {UPGRADE_HINT}"
    if wants_json(ctx, json_):
        emit_json({**asdict(status), "state": state})
        return
    echo(f"database: {status.url}")
    echo(f"revision: {', '.join(status.current) or 'none (not migrated)'}")
    echo(f"head:     {', '.join(status.head)}")
    echo(f"state:    {state}")


@app.command()
def history(ctx: typer.Context, fmt: FormatOpt = None, json_: JsonOpt = False) -> None:
    """List the migrations this lizardctl knows, newest first.  Example: lizardctl db history"""
    from lizardctl.core.db import migrate

    revisions = migrate.history()
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json([asdict(r) for r in revisions])
        return
    print_table(
        "Migrations",
        [
            Column("revision", "key", keep=True),
            Column("down revision", "key"),
            Column("head", "key"),
            "message",
        ],
        [
            (r.revision, r.down_revision or "-", "yes" if r.is_head else "", r.message)
            for r in revisions
        ],
        form,
    )

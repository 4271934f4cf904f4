"""The root command: global options, and the command groups joined onto it."""

from __future__ import annotations

from typing import Annotated

import typer

from lizardctl import __version__
from lizardctl.commands import (
    camera,
    cases,
    db,
    export,
    fines,
    ingest,
    owner,
    photo,
    report,
    review,
    reviewer,
    schema,
    store,
    verify,
    violation,
)
from lizardctl.commands._runtime import AppState, db_option_help, seconds_option
from lizardctl.core.config import DB_URL_ENV, LOCK_TIMEOUT_ENV

app = typer.Typer(
    name="lizardctl",
    help=(
        "Ingest traffic-camera dumps, validate every shot against its camera type's schema, "
        "and store canonical cases for review.\n\n"
        "Example: lizardctl ingest /mnt/dumps/2026-11-25"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db.app, name="db")
app.add_typer(camera.app, name="camera")
app.add_typer(schema.app, name="schema")
app.add_typer(cases.app, name="cases")
app.command()(ingest.ingest)
app.add_typer(report.app, name="report")
app.command()(report.rejects)
app.add_typer(reviewer.app, name="reviewer")
app.add_typer(review.app, name="review")
app.command()(export.export)
app.add_typer(violation.app, name="violation")
app.add_typer(owner.app, name="owner")
app.command()(fines.fines)
app.command()(verify.verify)
app.add_typer(photo.app, name="photo")
app.add_typer(store.app, name="store")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lizardctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db_url: Annotated[
        str | None,
        typer.Option("--db", envvar=DB_URL_ENV, help=db_option_help(), show_default=False),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors (for cron).")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and details on errors.")
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="JSON output for every command that prints data.")
    ] = False,
    lock_timeout: Annotated[
        float | None,
        seconds_option(
            "--lock-timeout",
            low=0,
            high=86_400,
            envvar=LOCK_TIMEOUT_ENV,
            help=(
                "How long to wait for another process's write lock on a SQLite database "
                "before exit 3; default 30."
            ),
        ),
    ] = None,
    no_progress: Annotated[
        bool,
        typer.Option("--no-progress", help="No progress bar on stderr, even on a terminal."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options apply to every command."""
    ctx.obj = AppState(
        db=db_url,
        quiet=quiet,
        verbose=verbose,
        json=json_,
        lock_timeout=lock_timeout,
        progress=not no_progress,
    )

"""``lizardctl schema``: the camera-type registry."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    SinceOpt,
    count_option,
    echo,
    emit_json,
    fail,
    print_table,
    run,
    say,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat
from lizardctl.core.errors import UsageError

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.schemas import (
        AddOutcome,
        CheckResult,
        ReplayReport,
        SchemaSummary,
        VersionView,
    )

app = typer.Typer(
    help="Register camera types by schema file and try them on samples.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Camera type name, e.g. camerus4.")]
VersionOpt = Annotated[
    int | None, count_option("--version", help="Schema version (default: the latest).")
]


@app.command()
def add(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[
        Path,
        typer.Option(
            "--file", "-f", help="Schema file (.json or .toml): a regular file of at most 1 MB."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file, register nothing.")
    ] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="First validate the stored shots of NAME against the file and report; "
            "without --dry-run, register only when none fails.",
        ),
    ] = False,
    since: SinceOpt = None,
    limit: Annotated[
        int | None,
        count_option("--limit", help="With --replay: only the newest N stored shots."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Check a schema file and register it as the next version of NAME; identical content
    registers nothing. --replay first validates and maps the raw metadata of the stored
    shots of NAME (--since DATE: shot then or later; --limit N: the newest N) with the new
    file and reports how many pass and fail, failures grouped by field path with an example
    case; exit 1 when any fails, and then, without --dry-run, nothing is registered.
    Example: lizardctl schema add camerus4 --file camerus4.json --dry-run --replay"""
    from lizardctl.core.services.schemas import SchemaService

    if not replay and (since is not None or limit is not None):
        raise typer.BadParameter("--since and --limit go with --replay")
    as_json = wants_json(ctx, json_)
    if replay:

        async def replayed(db: Database) -> ReplayReport:
            return await SchemaService(db.uow).replay_file(
                name, file, dry_run=dry_run, since=since, limit=limit
            )

        report = run(ctx, replayed)
        if as_json:
            emit_json(report.to_dict())
        else:
            _print_replay(ctx, report)
        if report.added is None:
            fail(report.message, 1)
        if report.failed:
            raise typer.Exit(1)
        outcome = report.added
    else:

        async def work(db: Database) -> AddOutcome:
            return await SchemaService(db.uow).add_file(name, file, dry_run=dry_run)

        outcome = run(ctx, work)
        if as_json:
            emit_json(outcome.to_dict())
    if outcome.status == "matches-older":
        # A refused request, so a usage error (exit 2, as README's table says): on stderr,
        # not silenced by --quiet, so a cron log says why.
        fail(outcome.message, UsageError.exit_code)
    if not as_json and not replay:
        say(ctx, outcome.message)


def _print_replay(ctx: typer.Context, report: ReplayReport) -> None:
    say(
        ctx,
        f"{report.name}: replayed {report.replayed} stored shot(s) in {report.elapsed_s:.1f} s "
        f"({report.shots_per_s:,.0f}/s): {report.passed} pass, {report.failed} fail",
    )
    if report.failures:
        print_table(
            "Failures by field path",
            ["path", "shots", "example case", "example error"],
            [(g.path, g.shots, g.example_case_id, g.example) for g in report.failures],
        )
    if report.other_paths:
        say(ctx, f"  ... and {report.other_paths} failure(s) at further paths")
    if report.added is not None and report.added.status != "matches-older":
        say(ctx, report.added.message)


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, json_: JsonOpt = False) -> None:
    """List camera types: latest version, number of versions, cameras using them.
    Example: lizardctl schema list --json"""
    from lizardctl.core.services.schemas import SchemaService

    async def work(db: Database) -> list[SchemaSummary]:
        return await SchemaService(db.uow).list()

    summaries = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json([asdict(s) for s in summaries])
        return
    print_table(
        "Camera types",
        [
            Column("name", "key", keep=True),
            Column("latest version", "number"),
            Column("versions", "number"),
            Column("cameras", "number"),
        ],
        [(s.name, s.latest_version, s.versions, s.cameras) for s in summaries],
        form,
    )


@app.command()
def show(
    ctx: typer.Context, name: NameArg, version: VersionOpt = None, json_: JsonOpt = False
) -> None:
    """Print a schema file exactly as it was registered.
    Example: lizardctl schema show camerus2 --version 1"""
    from lizardctl.core.services.schemas import SchemaService

    async def work(db: Database) -> VersionView:
        return await SchemaService(db.uow).show(name, version)

    view = run(ctx, work, read_only=True)
    if wants_json(ctx, json_):
        emit_json(view.to_dict())
    else:
        echo(view.content, lines=True, nl=not view.content.endswith("\n"))


@app.command()
def withdraw(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int, count_option("--version", help="The version to withdraw.")],
    json_: JsonOpt = False,
) -> None:
    """Withdraw a schema version that no case uses, such as one registered by mistake:
    the next ingest validates against the newest version left. Refused (exit 2) when a
    case was validated by it.
    Example: lizardctl schema withdraw camerus1 --version 3"""
    from lizardctl.core.services.schemas import SchemaService

    async def work(db: Database) -> VersionView:
        return await SchemaService(db.uow).withdraw(name, version)

    view = run(ctx, work)
    if wants_json(ctx, json_):
        emit_json({**view.to_dict(with_content=False), "withdrawn": True})
    else:
        say(ctx, f"{view.name}: withdrew version {view.version}")


@app.command()
def versions(
    ctx: typer.Context, name: NameArg, fmt: FormatOpt = None, json_: JsonOpt = False
) -> None:
    """List the registered versions of a camera type.
    Example: lizardctl schema versions camerus1"""
    from lizardctl.core.services.schemas import SchemaService

    async def work(db: Database) -> list[VersionView]:
        return await SchemaService(db.uow).versions(name)

    views = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json([v.to_dict(with_content=False) for v in views])
        return
    print_table(
        f"{name} versions",
        [
            Column("version", "number", keep=True),
            Column("registered", "date"),
            Column("format", "key"),
            Column("digest", "key"),
        ],
        [
            (v.version, v.created_at.isoformat(timespec="seconds"), v.file_format, v.digest[:16])
            for v in views
        ],
        form,
    )


@app.command()
def check(
    ctx: typer.Context,
    args: Annotated[
        list[str],
        typer.Argument(
            help="[NAME] FILE...: sample metadata files (.json/.bin); with NAME first, check "
            "against that type instead of detecting it.",
            metavar="[NAME] FILE...",
        ),
    ],
    version: VersionOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Decode, validate and map sample metadata files and print the canonical case or the
    errors; nothing is stored.  Exit 1 when any file fails. A sample that is not a regular
    file (FIFO, device, folder) fails as unreadable, one over 1 MB as too-large, unread.
    Example: lizardctl schema check camerus4 samples/*.json"""
    from lizardctl.core.services.schemas import TYPE_NAME, SchemaService

    name: str | None = None
    if TYPE_NAME.fullmatch(args[0]) and not Path(args[0]).exists():
        if len(args) == 1:
            raise typer.BadParameter(
                f"{args[0]!r} is no file; to check against a camera type, give FILEs after it"
            )
        name = args[0]
        args = args[1:]
    if version is not None and name is None:
        raise typer.BadParameter("--version needs a type NAME before the files")
    paths = [Path(a) for a in args]

    async def work(db: Database) -> list[CheckResult]:
        return await SchemaService(db.uow).check_files(paths, name=name, version=version)

    results = run(ctx, work, read_only=True)
    if wants_json(ctx, json_):
        emit_json([r.to_dict() for r in results])
    else:
        for result in results:
            _print_check(result)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _print_check(result: CheckResult) -> None:
    if result.ok:
        echo(f"{result.file}: ok ({result.camera_type} v{result.version})")
        for key, value in (result.case or {}).items():
            echo(f"  {key}: {value}")
    else:
        where = f" ({result.camera_type} v{result.version})" if result.camera_type else ""
        echo(f"{result.file}: {result.reason}{where}")
        for error in result.errors:
            echo(f"  {error}")
    for note in result.notes:
        echo(f"  note: {note}")

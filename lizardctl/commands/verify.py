"""``lizardctl verify``: are the database and the photo store still whole and consistent?"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    JsonOpt,
    OffsetOpt,
    StoreOpt,
    count_option,
    echo,
    emit_json,
    open_store,
    page_title,
    print_table,
    run,
    seconds_option,
    show_progress,
    state,
    wants_json,
)
from lizardctl.core.choices import DEFAULT_MIN_AGE_S, MAX_MIN_AGE_S

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.verify import VerifyReport


def render(report: VerifyReport) -> None:
    from lizardctl.core.paging import Page

    data = report.to_dict()
    counts = data["counts"]
    hashed = f", {counts['bytes_hashed'] / 1e6:,.1f} MB re-hashed" if report.read_data else ""
    echo(
        f"checked {counts['cases']:,} cases, {counts['photos']:,} photos and "
        f"{counts['store_files']:,} store files in {data['elapsed_s']:.1f}s "
        f"({data['cases_per_s']:,.0f} cases/s){hashed} · store {report.store}"
    )
    space = report.space
    if space.packs:
        unused = (
            f"{space.reclaimable_bytes / 1e6:,.1f} MB no photo uses "
            f"({space.unreferenced_packs:,} whole pack(s)); "
            "`lizardctl store reclaim --dry-run` says what it would free"
            if space.reclaimable_bytes
            else "nothing to reclaim"
        )
        writing = f"; {space.active_packs} pack(s) being written" if space.active_packs else ""
        echo(
            f"{counts['packed_photos']:,} photos in {space.packs:,} pack(s) of "
            f"{space.pack_bytes / 1e6:,.1f} MB; {unused}{writing}"
        )
    if report.problems == 0:
        echo("no problems found")
        return
    kinds = ", ".join(f"{kind} {count}" for kind, count in data["problems_by_kind"].items())
    echo(f"{report.problems} problem(s): {kinds}")
    if report.pruned or report.kept_recent:
        echo(
            f"pruned {report.pruned} file(s); kept {report.kept_recent} unused photo(s) "
            "younger than --min-age"
        )
    print_table(
        page_title(Page(report.listed, report.problems, report.offset), "problem(s)"),
        ["problem", "case", "photo", "what is wrong"],
        [
            (
                problem.kind + (" (pruned)" if problem.pruned else ""),
                problem.case_id,
                problem.photo or problem.path,
                problem.message,
            )
            for problem in report.listed
        ],
    )


def verify(
    ctx: typer.Context,
    read_data: Annotated[
        bool,
        typer.Option(
            "--read-data", help="Also read every photo back and check its content's sha256."
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Delete store files no case uses, files a pack also holds, and temporary "
            "files left by interrupted writes, once older than --min-age (packs: see "
            "`store reclaim`). Refuses (exit 3) while an ingest run is alive "
            "in this database; ingest refuses to start while a prune runs.",
        ),
    ] = False,
    min_age: Annotated[
        float,
        seconds_option(
            "--min-age",
            low=0,
            high=MAX_MIN_AGE_S,
            help="Temporary files younger than this may belong to a running ingest: they are "
            "neither reported nor pruned, and --prune keeps unused photos this young.",
        ),
    ] = DEFAULT_MIN_AGE_S,
    store: StoreOpt = None,
    limit: Annotated[
        int, count_option("--limit", help="List at most this many problems; all count.")
    ] = 1000,
    offset: OffsetOpt = 0,
    json_: JsonOpt = False,
) -> None:
    """Check that every case's photo is in the store with its recorded size (and, with
    --read-data, its sha256): a pack's record lies inside the pack and its header names the
    photo; a file of the older layout is there with its size. Also that every stored file is
    used by a case, and that every case's raw metadata still validates against its schema
    version. Bytes of packs no photo uses are reported as reclaimable, not as problems.
    Exit 0 when all is well, 1 when something is wrong (listed, one line each), 3 when
    --prune meets a live ingest run.
    Example: lizardctl verify --read-data"""
    from lizardctl.core.services.verify import VerifyOptions, VerifyService

    as_json = wants_json(ctx, json_)
    options = VerifyOptions(
        read_data=read_data,
        prune=prune,
        min_age_s=min_age,
        limit=limit,
        offset=offset,
        hash_workers=os.cpu_count() or 1,
    )
    bar = None
    if show_progress(ctx, as_json):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]verify"),
            BarColumn(bar_width=None, pulse_style="cyan"),
            TextColumn("{task.completed:,.0f} cases"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )

    async def work(db: Database) -> VerifyReport:
        service = VerifyService(db.uow, await open_store(db, store))
        if bar is None:
            return await service.verify(options)
        task = bar.add_task("verify", total=None)
        with bar:
            return await service.verify(options, lambda done: bar.update(task, completed=done))

    report = run(ctx, work, read_only=True)
    if as_json:
        emit_json(report.to_dict())
    elif not state(ctx).quiet or not report.ok:
        render(report)
    if not report.ok:
        raise typer.Exit(1)

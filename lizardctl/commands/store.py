"""``lizardctl store``: reclaiming the space of packs whose photos are mostly gone, and
moving photos of the first layout (a file each) into packs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    JsonOpt,
    StoreOpt,
    echo,
    emit_json,
    open_store,
    print_table,
    run,
    say,
    state,
    wants_json,
)
from lizardctl.core.choices import DEFAULT_LIVE_BELOW

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.store_space import ReclaimReport, RepackReport

app = typer.Typer(
    help="Look after the photo store: reclaim unused pack space, move old files into packs.",
    no_args_is_help=True,
)
_SHOWN = 20


def render_reclaim(report: ReclaimReport) -> None:
    data = report.to_dict()
    whole = f"{report.packs:,} pack(s), {report.pack_bytes / 1e6:,.1f} MB"
    writing = f"; {report.active} pack(s) being written left alone" if report.active else ""
    for line in report.skipped:
        echo(f"left alone: {line}", err=True)
    if not report.chosen:
        what = "nothing reclaimed" if report.skipped else "nothing to reclaim"
        echo(f"{whole}; {what} (packs less than {report.live_below:.0%} live){writing}")
        return
    would = "would " if report.dry_run else ""
    echo(
        f"{whole}; {would}{'rewrite' if would else 'rewrote'} {data['rewritten']:,} less "
        f"than {report.live_below:.0%} live (copying {report.copied / 1e6:,.1f} MB), "
        f"{would}{'delete' if would else 'deleted'} {data['deleted']:,} no photo uses: "
        f"{would}{'free' if would else 'freed'} {report.freed / 1e6:,.1f} MB{writing}"
    )
    print_table(
        f"{min(len(report.chosen), _SHOWN)} of {len(report.chosen)} pack(s)",
        ["pack", "photos", "MB", "live", "frees MB"],
        [
            (
                use.name,
                use.photos,
                f"{use.size / 1e6:,.1f}",
                f"{use.live_share:.0%}",
                f"{use.frees / 1e6:,.1f}",
            )
            for use in report.chosen[:_SHOWN]
        ],
    )


@app.command()
def reclaim(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Say which packs would go and what that frees; change nothing."
        ),
    ] = False,
    live_below: Annotated[
        float,
        typer.Option(
            "--live-below",
            min=0.0,
            max=1.0,
            metavar="SHARE",
            help="Rewrite packs whose live share (bytes photos still use) is below this.",
        ),
    ] = DEFAULT_LIVE_BELOW,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Rewrite packs most of whose bytes no photo uses, copying their live photos into a
    new pack, and delete packs no photo uses. Crash-safe: the copies are durable and the
    database points at them before an old pack is deleted. Refuses (exit 3) while an ingest
    run is alive in this database; ingest refuses to start while it runs. Packs being
    written are left alone.
    Example: lizardctl store reclaim --dry-run"""
    from lizardctl.core.services.store_space import StoreSpaceService

    as_json = wants_json(ctx, json_)

    async def work(db: Database) -> ReclaimReport:
        service = StoreSpaceService(db.uow, await open_store(db, store))
        return await service.reclaim(live_below, dry_run=dry_run)

    report = run(ctx, work, read_only=dry_run)
    if as_json:
        emit_json(report.to_dict())
    elif not state(ctx).quiet:
        render_reclaim(report)
    if report.skipped:
        raise typer.Exit(1)


@app.command()
def repack(ctx: typer.Context, store: StoreOpt = None, json_: JsonOpt = False) -> None:
    """Move photos stored a file each (stores written before packs) into packs, batch by
    batch: each batch is durable in its pack and committed before its files are deleted.
    Resumable: run it again after an interruption; files whose photos a pack already holds
    are deleted. A missing or damaged file is left with its row (exit 1; `verify` names its
    cases). Refuses (exit 3) while an ingest run is alive in this database.
    Example: lizardctl store repack"""
    from lizardctl.core.services.store_space import StoreSpaceService

    as_json = wants_json(ctx, json_)

    async def work(db: Database) -> RepackReport:
        return await StoreSpaceService(db.uow, await open_store(db, store)).repack()

    report = run(ctx, work)
    if as_json:
        emit_json(report.to_dict())
    elif report.packs_only:
        say(ctx, "nothing to move: this photo store holds packs only (no file per photo)")
    elif not state(ctx).quiet or report.skipped:
        echo(
            f"moved {report.moved:,} photo(s), {report.bytes / 1e6:,.1f} MB, into packs; "
            f"deleted {report.leftovers_deleted:,} file(s) left over by an earlier repack"
        )
        if report.skipped:
            echo(f"left {report.skipped:,} photo(s) as they are:", err=True)
            for line in report.named:
                echo(f"  {line}", err=True)
    if report.skipped:
        raise typer.Exit(1)

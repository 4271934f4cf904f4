"""``lizardctl cases``: the canonical cases ingest made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    RunOpt,
    SinceOpt,
    StoreOpt,
    echo,
    emit_json,
    open_store,
    page_title,
    print_fields,
    print_table,
    run,
    say,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat
from lizardctl.core.vocabulary import CaseStatus, Verdict

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.paging import Page
    from lizardctl.core.services.cases import CaseView
    from lizardctl.core.services.reviews import DecisionResult

app = typer.Typer(
    help="List and show cases, their votes and their history; supervisors decide split cases.",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    ctx: typer.Context,
    camera: Annotated[
        str | None,
        typer.Option("--camera", metavar="ID", help="Camera id, or a unique prefix of one."),
    ] = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Canonical plate.")] = None,
    status: Annotated[
        CaseStatus | None, typer.Option("--status", help="Only cases in this status.")
    ] = None,
    since: SinceOpt = None,
    run_id: RunOpt = None,
    limit: LimitOpt = 100,
    offset: OffsetOpt = 0,
    fmt: FormatOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List cases, oldest shot first: every run's unless --run ID names one. "awaiting" says
    who acts next on an undecided case: reviewers, or a supervisor for a split vote at the
    highest staffed level. The title says how many match in all; --offset pages on.
    Example: lizardctl cases list --status escalated --limit 50 --offset 50"""
    from lizardctl.core.repositories.ingest import CaseFilters
    from lizardctl.core.services.cases import CaseService

    filters = CaseFilters(
        camera_id=camera,
        plate=plate,
        since=since,
        status=status.value if status else None,
        run_id=run_id,
    )

    async def work(db: Database) -> Page[CaseView]:
        service = CaseService(db.uow)
        return await service.list(filters, limit=limit, offset=offset)

    page = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json(page.to_dict(lambda case: case.to_dict()))
        return
    print_table(
        page_title(page, "case(s)", f"of run {run_id}" if run_id else "of every run"),
        [
            Column("id", "id", keep=True),
            Column("plate", "key", keep=True),
            Column("occurred at", "date", rank=1),
            Column("camera", "id", rank=6),
            Column("violation", rank=4),
            Column("skill", "number", rank=7),
            Column("status", "key", rank=2),
            Column("level", "number", rank=5),
            Column("awaiting", "key", rank=3),
        ],
        [
            (
                c.id,
                c.plate,
                c.occurred_at.isoformat(),
                c.camera_id,
                c.violation_value,
                c.skill,
                c.status,
                c.level,
                c.awaiting or "-",
            )
            for c in page.items
        ],
        form,
    )


@app.command()
def show(
    ctx: typer.Context,
    case_id: Annotated[
        str, typer.Argument(metavar="ID", help="Case id, or a unique prefix of one (4+ hex).")
    ],
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show one case: canonical fields, where its photo is in the store (a pack and an
    offset; `lizardctl photo get ID` writes it out), its votes, its status transitions and
    its raw metadata.
    Example: lizardctl cases show 3f2a0c1e-8d5b-4c1e-9f7a-2b6d4e8c0a11"""
    from lizardctl.core.services.cases import CaseService

    async def work(db: Database) -> CaseView:
        return await CaseService(db.uow, await open_store(db, store)).show(case_id)

    case = run(ctx, work, read_only=True)
    data = case.to_dict(detail=True)
    if wants_json(ctx, json_):
        emit_json(data)
        return
    raw = data.pop("raw")
    votes, transitions = data.pop("votes"), data.pop("transitions")
    for key in ("photo_store", "photo_pack", "photo_offset", "photo_size"):
        del data[key]
    if data["photo_path"] is None:
        del data["photo_path"]
    if case.photo is not None:
        data["photo"] = f"{case.photo.where} (lizardctl photo get {case.id} -o FILE)"
    print_fields(data.items())
    if votes:
        print_table(
            "votes",
            ["reviewer", "level", "verdict", "at"],
            [(v["reviewer"], v["level"], v["verdict"], v["voted_at"]) for v in votes],
        )
    if transitions:
        print_table(
            "transitions",
            ["at", "from", "to", "cause", "by", "note"],
            [
                (
                    t["at"],
                    f"{t['from_status']} @{t['from_level']}",
                    f"{t['to_status']} @{t['to_level']}",
                    t["cause"],
                    t["actor"] or "-",
                    t["note"] or "",
                )
                for t in transitions
            ],
        )
    echo("raw metadata:")
    emit_json(raw)


@app.command()
def decide(
    ctx: typer.Context,
    case_id: Annotated[
        str, typer.Argument(metavar="ID", help="Case id, or a unique prefix of one (4+ hex).")
    ],
    verdict: Annotated[Verdict, typer.Option("--verdict", help="The decision.")],
    by: Annotated[str, typer.Option("--by", help="The deciding supervisor's name.")],
    note: Annotated[
        str | None, typer.Option("--note", help="Why, for the record (one line).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Decide a case split at the highest staffed level (awaiting "supervisor" in
    `cases list --status escalated`): violation confirms it, no-violation dismisses it.
    Only an active supervisor may; recorded as a transition with who, when and the note.
    Example: lizardctl cases decide 3f2a0c1e-8d5b-4c1e-9f7a-2b6d4e8c0a11 --verdict violation
    --by eve --note 'plate clearly visible'"""
    from lizardctl.core.services.reviews import ReviewService

    async def work(db: Database) -> DecisionResult:
        return await ReviewService(db.uow).decide(case_id, verdict, by, note)

    result = run(ctx, work)
    if wants_json(ctx, json_):
        emit_json(result.to_dict())
        return
    say(ctx, f"case {result.case_id} {result.status} by supervisor {by}")

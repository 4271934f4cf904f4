"""``lizardctl reviewer``: the crowd of human reviewers and their skill levels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    emit_json,
    print_table,
    run,
    say,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat
from lizardctl.core.errors import LizardError, NothingToChange

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.reviews import ReviewerView

app = typer.Typer(help="Add, list and change reviewers.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Reviewer name, unique.")]


def _say_reviewer(ctx: typer.Context, verb: str, reviewer: ReviewerView, as_json: bool) -> None:
    if as_json:
        emit_json(reviewer.to_dict())
    else:
        state = "active" if reviewer.active else "inactive"
        role = ", supervisor" if reviewer.supervisor else ""
        say(ctx, f"{verb} reviewer {reviewer.name}: skill {reviewer.skill}, {state}{role}")
        if reviewer.moved_up:
            say(ctx, f"{reviewer.moved_up} escalated case(s) moved up to a newly staffed level")


@app.command()
def add(
    ctx: typer.Context,
    name: NameArg,
    skill: Annotated[int, typer.Option("--skill", min=1, max=100, help="Skill level, 1-100.")],
    supervisor: Annotated[
        bool,
        typer.Option("--supervisor", help="May decide cases split at the highest staffed level."),
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Add an active reviewer at a skill level. Escalated cases waiting below that level for
    a supervisor move up to it.  Example: lizardctl reviewer add ann --skill 3"""
    from lizardctl.core.services.reviews import ReviewerService

    async def work(db: Database) -> ReviewerView:
        return await ReviewerService(db.uow).add(name, skill, supervisor=supervisor)

    _say_reviewer(ctx, "added", run(ctx, work), wants_json(ctx, json_))


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None, json_: JsonOpt = False) -> None:
    """List reviewers by skill level.  Example: lizardctl reviewer list --json"""
    from lizardctl.core.services.reviews import ReviewerService

    async def work(db: Database) -> list[ReviewerView]:
        return await ReviewerService(db.uow).list()

    reviewers = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json([r.to_dict() for r in reviewers])
        return
    print_table(
        f"{len(reviewers)} reviewer(s)",
        [
            Column("name", "key", keep=True),
            Column("skill", "number"),
            Column("active", "key"),
            Column("supervisor", "key"),
            Column("since", "date"),
        ],
        [
            (
                r.name,
                r.skill,
                "yes" if r.active else "no",
                "yes" if r.supervisor else "no",
                r.created_at.date(),
            )
            for r in reviewers
        ],
        form,
    )


@app.command("set")
def set_(
    ctx: typer.Context,
    name: NameArg,
    skill: Annotated[
        int | None, typer.Option("--skill", min=1, max=100, help="New skill level, 1-100.")
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive", help="Take part in reviews, or stop.", show_default=False
        ),
    ] = None,
    supervisor: Annotated[
        bool | None,
        typer.Option(
            "--supervisor/--no-supervisor",
            help="Make a supervisor (decides cases split at the top), or no longer.",
            show_default=False,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Change a reviewer's skill, active flag or supervisor role; a case they hold is
    released to others. Escalated cases waiting below an active reviewer's new level for a
    supervisor move up to it.
    Example: lizardctl reviewer set ann --skill 4 --supervisor"""
    from lizardctl.core.services.reviews import ReviewerService

    async def work(db: Database) -> ReviewerView:
        return await ReviewerService(db.uow).update(
            name, skill=skill, active=active, supervisor=supervisor
        )

    _say_reviewer(ctx, "updated", run(ctx, work, wording=_set_wording), wants_json(ctx, json_))


def _set_wording(exc: LizardError) -> str | None:
    if isinstance(exc, NothingToChange):
        return (
            "nothing to change: give --skill, --active, --inactive, --supervisor or --no-supervisor"
        )
    return None

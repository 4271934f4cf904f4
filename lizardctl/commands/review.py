"""``lizardctl review``: the reviewers' loop (next, vote) and its settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    JsonOpt,
    StoreOpt,
    emit_json,
    info,
    open_store,
    print_fields,
    run,
    say,
    wants_json,
)
from lizardctl.core.choices import MAX_LEASE_MINUTES, MAX_VOTES_PER_LEVEL
from lizardctl.core.vocabulary import Verdict

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.reviews import LeaseView, SettingsView, VoteResult

app = typer.Typer(
    help="Work through cases: take the next one, vote on it; tune votes per level and leases.",
    no_args_is_help=True,
)

ReviewerOpt = Annotated[str, typer.Option("--reviewer", "-r", help="Reviewer name.")]


@app.command("next")
def next_(
    ctx: typer.Context,
    reviewer: ReviewerOpt,
    store: StoreOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Lease the reviewer the oldest case at their skill level, or show the case they hold.
    Prints the case, its violation value and a photo file to open: a copy in the review
    cache ($XDG_CACHE_HOME/lizardctl/review/, dropped on the vote or when the lease lapses);
    exits 0 with nothing on stdout (JSON: "case": null) when no case fits.
    Example: lizardctl review next --reviewer ann"""
    from lizardctl.core.services.reviews import ReviewService
    from lizardctl.core.store.cache import ReviewCache

    async def work(db: Database) -> LeaseView | None:
        photos = await open_store(db, store)
        return await ReviewService(db.uow, photos, cache=ReviewCache()).next_case(reviewer)

    lease = run(ctx, work)
    as_json = wants_json(ctx, json_)
    if lease is None:
        if as_json:
            emit_json({"reviewer": reviewer, "case": None})
        else:
            info(ctx, f"nothing to review for {reviewer} right now")
        return
    if as_json:
        emit_json(lease.to_dict())
        return
    case = lease.case
    until = lease.expires_at.isoformat(timespec="seconds")
    print_fields(
        [
            ("case", case.id),
            ("plate", case.plate),
            ("violation", case.violation_id),
            ("value", case.violation_value),
            ("occurred at", case.occurred_at.isoformat()),
            ("camera", case.camera_id),
            ("level", lease.level),
            ("photo", case.photo_path),
            ("lease until", f"{until}{' (already held)' if lease.resumed else ''}"),
        ]
    )


@app.command()
def vote(
    ctx: typer.Context,
    reviewer: ReviewerOpt,
    verdict: Annotated[Verdict, typer.Option("--verdict", help="What the photo shows.")],
    case_id: Annotated[
        str | None,
        typer.Option(
            "--case",
            metavar="ID",
            help="The held case's id (or a unique prefix), to be sure the vote lands on it.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Vote on the case the reviewer holds; the last vote needed at a level decides or
    escalates the case.  Example: lizardctl review vote --reviewer ann --verdict violation"""
    from lizardctl.core.services.reviews import ReviewService
    from lizardctl.core.store.cache import ReviewCache

    async def work(db: Database) -> VoteResult:
        return await ReviewService(db.uow, cache=ReviewCache()).vote(reviewer, verdict, case_id)

    result = run(ctx, work)
    if wants_json(ctx, json_):
        emit_json(result.to_dict())
        return
    say(
        ctx,
        f"{result.reviewer}: {result.verdict} on case {result.case_id} "
        f"({result.votes}/{result.votes_needed} votes at level {result.level})",
    )
    if result.transition is not None:
        say(ctx, f"case {result.case_id} {result.transition.to_status}: {result.transition.cause}")


@app.command()
def config(
    ctx: typer.Context,
    votes: Annotated[
        int | None,
        typer.Option(
            "--votes", min=1, max=MAX_VOTES_PER_LEVEL, help="Votes needed at each level (K)."
        ),
    ] = None,
    lease_minutes: Annotated[
        int | None,
        typer.Option(
            "--lease-minutes", min=1, max=MAX_LEASE_MINUTES, help="How long a lease lasts."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Show or change the votes per level and the lease length, stored in the database.
    Lowering the votes settles at once the cases that already have that many.
    Example: lizardctl review config --votes 5 --lease-minutes 10"""
    from lizardctl.core.services.reviews import ReviewService

    async def work(db: Database) -> SettingsView:
        service = ReviewService(db.uow)
        if votes is None and lease_minutes is None:
            return await service.settings()
        return await service.configure(votes_per_level=votes, lease_minutes=lease_minutes)

    settings = run(ctx, work, read_only=votes is None and lease_minutes is None)
    if wants_json(ctx, json_):
        emit_json(settings.to_dict())
        return
    fields = [
        ("votes per level", settings.votes_per_level),
        ("lease minutes", settings.lease_minutes),
    ]
    if settings.settled:
        fields.append(("cases settled", settings.settled))
    print_fields(fields)

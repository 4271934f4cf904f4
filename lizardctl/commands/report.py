"""``lizardctl report`` and ``lizardctl rejects``: what ingest runs did; ``report reviews``:
how the reviewers are doing; ``report fines``: what the confirmed cases are worth."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lizardctl.commands._runtime import (
    Column,
    FormatOpt,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    RunOpt,
    SinceOpt,
    echo,
    emit_json,
    page_title,
    print_fields,
    print_table,
    run,
    table_format,
    wants_json,
)
from lizardctl.core.choices import TableFormat
from lizardctl.core.vocabulary import Reason

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.services.fines import FinesReport
    from lizardctl.core.services.reports import PeriodReport, RejectionListing, RunView
    from lizardctl.core.services.review_report import ReviewReport

app = typer.Typer()


def _run_fields(data: dict[str, Any]) -> list[tuple[str, Any]]:
    rate = (
        f"{data['shots_per_s']:,} shots/s, {data['mb_per_s']} MB/s"
        if data["shots_per_s"] is not None
        else "-"
    )
    fields = [
        ("run", data["run_id"]),
        ("status", data["status"]),
        ("started", data["started_at"]),
        ("finished", data["finished_at"] or "-"),
        ("host / pid", f"{data['host']} / {data['pid']}"),
        ("paths", ", ".join(data["paths"])),
        ("shots", data["shots"]),
        ("ingested", data["ingested"]),
        ("duplicate", data["duplicate"]),
        ("pending", data["pending"]),
        ("rejected", data["rejected"]),
    ]
    fields += [(f"  {reason}", n) for reason, n in data["rejected_by_reason"].items()]
    fields += [
        ("vanished", data["vanished"]),
        ("kept_changed", data["kept_changed"]),
        ("claimed elsewhere", data["claimed_elsewhere"]),
        ("ignored files", data["ignored_files"]),
    ]
    fields += [(f"type {name}", n) for name, n in data["ingested_by_type"].items()]
    fields += [("elapsed", f"{data['elapsed_s']} s"), ("throughput", rate)]
    fields += [("problem", problem) for problem in data["problems"]]
    if data["shard"]:
        fields.append(("shard", data["shard"]))
    if data["job"] and len(data["job"]["runs"]) > 1:
        fields.append(("job", data["job"]["job_id"]))
        fields += [
            (f"  worker {w['worker']}", f"{w['shots']} shots ({w['share']:.0%}), {w['status']}")
            for w in data["job"]["runs"]
        ]
    return fields


@app.callback(invoke_without_command=True)
def report(
    ctx: typer.Context,
    last: Annotated[bool, typer.Option("--last", help="The latest run (the default).")] = False,
    run_id: RunOpt = None,
    since: SinceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Report ingest runs: one run in detail (the latest, or --run ID) or a period
    (--since DATE) with totals and a per-day table. A period's pending is what the latest
    run on each set of paths left pending, not a sum over runs (a pending shot is seen
    again by every run); the other counts add up the runs.
    `report reviews` reports on reviewing.
    Example: lizardctl report --since 2026-11-01"""
    from lizardctl.core.services.reports import ReportService

    if ctx.invoked_subcommand is not None:
        return
    if sum((last, run_id is not None, since is not None)) > 1:
        raise typer.BadParameter("give one of --last, --run, --since")

    async def one(db: Database) -> RunView:
        return await ReportService(db.uow).run(run_id)

    async def period(db: Database) -> PeriodReport:
        assert since is not None
        return await ReportService(db.uow).period(since)

    as_json = wants_json(ctx, json_)
    if since is None:
        data = {
            "scope": "run" if run_id else "latest run",
            **run(ctx, one, read_only=True).to_dict(),
        }
        if as_json:
            emit_json(data)
        else:
            echo(
                f"Ingest run {data['run_id']}"
                if run_id
                else "The latest ingest run (--run ID for another, --since DATE for a period)"
            )
            print_fields(_run_fields(data))
        return
    result = run(ctx, period, read_only=True)
    data = result.to_dict()
    if as_json:
        emit_json(data)
        return
    columns = ["day", "runs", "shots", "ingested", "duplicate", "pending", "rejected", "shots/s"]
    rows = [[d[c] if c != "shots/s" else d["shots_per_s"] for c in columns] for d in data["days"]]
    totals = data["totals"]
    rows.append(["total", *(totals[c] for c in columns[1:-1]), totals["shots_per_s"]])
    print_table(f"Ingest since {_day(since)}", columns, rows)
    if data["rejected_by_reason"]:
        print_table("Rejected by reason", ["reason", "shots"], data["rejected_by_reason"].items())


@app.command()
def reviews(ctx: typer.Context, since: SinceOpt = None, json_: JsonOpt = False) -> None:
    """Review backlog by status and level, leases out, decisions per hour, median time from
    ingest to decision, per reviewer: votes and agreement with the final decisions, cases
    awaiting a supervisor and the supervisors' decisions.
    Backlog is always now; the rest covers --since DATE (default: the last 24 hours).
    Example: lizardctl report reviews --since 2026-11-25 --json"""
    from lizardctl.core.services.review_report import ReviewReportService

    async def work(db: Database) -> ReviewReport:
        return await ReviewReportService(db.uow).report(since)

    result = run(ctx, work, read_only=True)
    if wants_json(ctx, json_):
        emit_json(result.to_dict())
        return
    data = result.to_dict()
    median = data["median_seconds_to_decision"]
    print_fields(
        [
            ("window", f"{data['since']} .. {data['until']}"),
            ("decisions", data["decisions"]),
            ("decisions per hour", data["decisions_per_hour"]),
            ("median to decision", "-" if median is None else f"{median / 60:.1f} min"),
            ("leases out", data["leased"]),
            ("awaiting a supervisor", data["awaiting_supervisor"]),
            ("supervisor decisions", data["supervisor_decisions"]),
        ]
    )
    print_table(
        "Backlog by status and level",
        ["status", "level", "cases"],
        [(b["status"], b["level"], b["cases"]) for b in data["backlog"]],
    )
    if data["by_hour"]:
        print_table(
            "Decisions per hour (UTC)",
            ["hour", "confirmed", "dismissed", "total"],
            [(h["hour"], h["confirmed"], h["dismissed"], h["total"]) for h in data["by_hour"]],
        )
    print_table(
        "Reviewers",
        ["name", "skill", "active", "votes", "violation", "no-violation", "agreement"],
        [
            (
                r["name"],
                r["skill"],
                "yes" if r["active"] else "no",
                r["votes"],
                r["violation"],
                r["no_violation"],
                "-" if r["agreement"] is None else f"{r['agreement']:.0%}",
            )
            for r in data["reviewers"]
        ],
    )
    if data["supervisors"]:
        print_table(
            "Supervisor decisions",
            ["supervisor", "confirmed", "dismissed", "total"],
            [(s["name"], s["confirmed"], s["dismissed"], s["total"]) for s in data["supervisors"]],
        )


@app.command("fines")
def fines_report(ctx: typer.Context, since: SinceOpt = None, json_: JsonOpt = False) -> None:
    """The catalog view: confirmed cases and fine totals per violation type and per UTC day
    of decision, over --since DATE (default: the last 30 days). Totals are the fines frozen
    when each case was confirmed ("fine now" is the catalog's today); cases confirmed while
    their violation was not in the catalog are counted without a fine.
    Example: lizardctl report fines --since 2026-11-01"""
    from lizardctl.core.services.fines import FinesService

    async def work(db: Database) -> FinesReport:
        return await FinesService(db.uow).report(since)

    data = run(ctx, work, read_only=True).to_dict()
    if wants_json(ctx, json_):
        emit_json(data)
        return
    print_fields(
        [
            ("since", data["since"]),
            ("confirmed cases", data["cases"]),
            ("fines", data["total"]),
            ("without a fine", data["unpriced"]),
        ]
    )
    print_table(
        "Per violation type",
        ["violation", "id", "fine now", "cases", "without a fine", "total"],
        [
            (
                v["violation"] or "unknown violation",
                v["violation_id"],
                v["fine"] or "-",
                v["cases"],
                v["unpriced"],
                v["total"],
            )
            for v in data["by_violation"]
        ],
    )
    print_table(
        "Per day of decision (UTC)",
        ["day", "cases", "without a fine", "total"],
        [(d["day"], d["cases"], d["cases"] - d["priced"], d["total"]) for d in data["by_day"]],
    )


def _day(value: datetime) -> str:
    return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()


def rejects(
    ctx: typer.Context,
    run_id: RunOpt = None,
    every_run: Annotated[
        bool, typer.Option("--all", help="Every run's rejections, not one run's.")
    ] = False,
    reason: Annotated[
        Reason | None, typer.Option("--reason", help="Only this reason code.")
    ] = None,
    limit: LimitOpt = 1000,
    offset: OffsetOpt = 0,
    fmt: FormatOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List one run's rejected shots (default: the latest run; --run ID another, --all every
    run) with their reason and message, to fix and re-run. The title says which run and
    how many there are in all.
    Example: lizardctl rejects --reason invalid --limit 20 --offset 20"""
    from lizardctl.core.services.reports import ReportService

    if every_run and run_id is not None:
        raise typer.BadParameter("give --run or --all, not both")

    async def work(db: Database) -> RejectionListing:
        return await ReportService(db.uow).rejections(
            run_id=run_id,
            every_run=every_run,
            reason=reason.value if reason else None,
            limit=limit,
            offset=offset,
        )

    listing = run(ctx, work, read_only=True)
    form = table_format(ctx, fmt, json_)
    if form is TableFormat.JSON:
        emit_json(listing.to_dict())
        return
    if listing.run_id is not None:
        scope = f"in {listing.scope} {listing.run_id}"
    else:
        scope = "in every run" if every_run else f"({listing.scope})"
    noun = f"{reason.value} rejected shot(s)" if reason else "rejected shot(s)"
    print_table(
        page_title(listing.page, noun, scope),
        [
            Column("reason", "key", rank=1),
            Column("photo", "path", keep=True),
            Column("metadata", "path", keep=True),
            Column("message", rank=2),
        ],
        [
            (r.reason, r.photo_path or "-", r.metadata_path or "-", r.message)
            for r in listing.page.items
        ],
        form,
    )

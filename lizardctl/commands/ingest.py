"""``lizardctl ingest``: the main job."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lizardctl.commands._runtime import (
    INTERNAL_ERROR_EXIT,
    JsonOpt,
    StoreOpt,
    count_option,
    echo,
    emit_json,
    fail,
    in_cli_terms,
    info,
    run,
    seconds_option,
    show_progress,
    state,
    wants_json,
)
from lizardctl.core.choices import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLAIM_LEASE,
    DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_PHOTO_BYTES,
    DEFAULT_SETTLE_S,
    MAX_BATCH_SIZE,
    MAX_CLAIM_LEASE_S,
    MAX_SETTLE_S,
    MAX_SHARDS,
    MAX_WORKERS,
)
from lizardctl.core.config import METRICS_FILE_ENV
from lizardctl.core.errors import LizardError
from lizardctl.core.vocabulary import RunStatus

if TYPE_CHECKING:
    from lizardctl.core.db.database import Database
    from lizardctl.core.ingest.outcome import BatchResult
    from lizardctl.core.services.ingest import IngestSummary


class _Bar:
    """A rich progress line on stderr: shots/s, MB/s and counts as batches complete."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from lizardctl.core.ingest.outcome import BatchResult

        self.done = BatchResult()
        self.progress = Progress(
            TextColumn("[bold]ingest"),
            BarColumn(bar_width=None, pulse_style="cyan"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("ingest", total=None, status="walking…")

    def __call__(self, result: BatchResult) -> None:
        self.done.add(result)
        elapsed = max(self.progress.tasks[0].elapsed or 0.0, 1e-6)
        counts = self.done.outcomes
        self.progress.update(
            self.task,
            status=(
                f"{self.done.shots} shots · {self.done.shots / elapsed:,.0f}/s · "
                f"{self.done.bytes / elapsed / 1e6:,.1f} MB/s · {counts['ingested']} new · "
                f"{counts['duplicate']} dup · {counts['rejected']} rejected"
            ),
        )


def render_summary(summary: IngestSummary, settle: float) -> None:
    data = summary.to_dict()
    head = "dry run, nothing written: " if summary.dry_run else ""
    echo(
        f"{head}{data['shots']} shots in {data['elapsed_s']:.1f}s "
        f"({data['shots_per_s']:,.0f} shots/s, {data['mb_per_s']:.1f} MB/s)"
    )
    echo(
        f"  ingested {data['ingested']}, duplicate {data['duplicate']}, "
        f"pending {data['pending']}, rejected {data['rejected']}"
        + (f", vanished during the run {data['vanished']}" if data["vanished"] else "")
    )
    if data["pending_settle"]:
        echo(
            f"  pending: {data['pending_settle']} shot(s) have files younger than --settle "
            f"{settle:g} s (e.g. {data['pending_example']}), maybe still being written: the "
            "next run takes them; for a complete dump (a copy has fresh times) use --settle 0"
        )
    if data["kept_changed"]:
        typer.echo(
            f"  kept the files of {data['kept_changed']} shot(s) changed or replaced since "
            "they were read: not deleted, the next run takes them"
        )
    for reason, count in data["rejected_by_reason"].items():
        echo(f"    {reason}: {count}")
    for problem in data["problems"]:
        echo(f"  problem: {problem}")
    if summary.dry_run:
        echo(f"  not recorded (dry run) · database {data['database']} · store {data['store']}")
        if summary.rejected:
            echo("  rejections are not recorded: run without --dry-run, then lizardctl rejects")
        return
    echo(f"  run {data['run_id']} · database {data['database']} · store {data['store']}")
    if summary.rejected:
        echo(f"  see the rejected shots: lizardctl rejects --run {data['run_id']}")


def future_warning(summary: IngestSummary) -> str | None:
    """Files modified in the future stay pending until the clock passes their time, which
    ``--settle 0`` does not change: a warning, not a silent pending count."""
    if not summary.pending_future:
        return None
    return (
        f"{summary.pending_future} shot(s) pending because their files are modified in the "
        f"future (e.g. {summary.future_example}): they stay pending until the clock passes "
        "that time; check the clock of the camera or of the copy, or touch the files"
    )


class _RunEnd:
    """What the service tells of the run's end, for the metrics file."""

    def __init__(self) -> None:
        self.summary: IngestSummary | None = None
        self.status = RunStatus.FAILED

    def __call__(self, summary: IngestSummary, status: RunStatus) -> None:
        self.summary, self.status = summary, status


@contextmanager
def metrics_file_written(path: Path | None, dry_run: bool) -> Iterator[_RunEnd]:
    """Write ``--metrics-file`` once the exit code is known, whichever way the run ends.

    The code is the one the shell will see: ``typer.Exit`` carries it from the error seam
    (``run``) and from the rejected-shots exit. A file that cannot be written is an
    ``Error:`` line; it turns a clean run's exit non-zero (monitoring would not see it),
    and leaves a failed run's exit code as it was."""
    from lizardctl.core.metrics import RunMetrics, check_metrics_path, write_metrics

    end = _RunEnd()
    if path is None:
        yield end
        return
    try:
        check_metrics_path(path)
    except LizardError as exc:
        fail(in_cli_terms(exc), exc.exit_code)
    started = time.monotonic()
    code = INTERNAL_ERROR_EXIT
    try:
        yield end
        code = 0
    except typer.Exit as exc:
        code = exc.exit_code
        raise
    except KeyboardInterrupt:
        code = 130
        raise
    finally:
        summary = end.summary
        status = end.status
        if status is RunStatus.FINISHED and code not in (0, 1):
            status = RunStatus.FAILED  # e.g. the run's outcome could not be recorded
        metrics = RunMetrics(
            status=status,
            exit_code=code,
            finished_at=time.time(),
            duration_s=summary.elapsed_s if summary else time.monotonic() - started,
            dry_run=dry_run,
            summary=summary.to_dict() if summary else None,
        )
        try:
            write_metrics(path, metrics)
        except LizardError as exc:
            echo(f"Error: {in_cli_terms(exc)}", err=True)
            if code == 0:
                raise typer.Exit(exc.exit_code) from exc


def parse_shard(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    # ASCII digits only (int() refuses superscripts that isdigit() accepts), and few of them:
    # int() of thousands of digits is slow or refused.
    numbers = (k, n) if all(p.isascii() and p.isdecimal() and len(p) <= 9 for p in (k, n)) else None
    if numbers is None or not 1 <= int(k) <= int(n) <= MAX_SHARDS:
        raise typer.BadParameter(
            f"expected K/N with 1 <= K <= N <= {MAX_SHARDS}, e.g. 2/4; got {text!r}",
            param_hint="'--shard'",
        )
    return int(k), int(n)


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Dump folders, walked recursively.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Do everything but write to the database and store.")
    ] = False,
    workers: Annotated[
        int,
        count_option(
            "--workers", low=0, high=MAX_WORKERS, help="Worker processes (0: in this process)."
        ),
    ] = min(os.cpu_count() or 1, MAX_WORKERS),  # a default past the bound fails too
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=MAX_BATCH_SIZE, help="Shots per transaction."),
    ] = DEFAULT_BATCH_SIZE,
    settle: Annotated[
        float,
        seconds_option(
            "--settle",
            low=0,
            high=MAX_SETTLE_S,
            help="Files younger than this many seconds may still be being written: left for "
            "the next run and counted as pending.",
        ),
    ] = DEFAULT_SETTLE_S,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            metavar="GLOB",
            help="Only shots whose stem, photo or metadata name (or path) match: "
            "'*.jpg' takes JPEG shots with their metadata.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="GLOB",
            help="Skip shots (stem, photo or metadata name or path) and folders that match.",
        ),
    ] = None,
    store: StoreOpt = None,
    delete_source: Annotated[
        bool,
        typer.Option(
            "--delete-source",
            help="Remove a shot's files once its case and photo are durably stored; a shot "
            "whose files changed or were replaced since they were read is kept and counted "
            "as kept_changed.",
        ),
    ] = False,
    max_photo_bytes: Annotated[
        int,
        count_option(
            "--max-photo-bytes",
            help="Larger photos are rejected as too-large, unread.",
            high=1 << 40,
        ),
    ] = DEFAULT_MAX_PHOTO_BYTES,
    max_metadata_bytes: Annotated[
        int,
        count_option(
            "--max-metadata-bytes",
            help="Larger metadata files are rejected as too-large, unread.",
            high=1 << 40,
        ),
    ] = DEFAULT_MAX_METADATA_BYTES,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Static partitioning: only the K-th of N shares of the shots (run K=1..N).",
        ),
    ] = None,
    claim_lease: Annotated[
        float,
        seconds_option(
            "--claim-lease",
            low=1,
            high=MAX_CLAIM_LEASE_S,
            help="Seconds before a dead worker's claimed folder parts are taken over by others.",
        ),
    ] = DEFAULT_CLAIM_LEASE,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            envvar=METRICS_FILE_ENV,
            metavar="PATH",
            help="Write the run's counters, exit code and finish time to PATH in the "
            "Prometheus text format (node_exporter's textfile collector reads *.prom), "
            "atomically, also when the run fails or is interrupted.",
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Ingest camera dump folders: pair photo and metadata, validate, store photo and case.
    Exit 0 when every shot was ingested, duplicate or pending; 1 when some were rejected
    (the summary is then printed even with --quiet).
    One photo is one case: the same photo re-sent is a duplicate however its metadata is
    encoded, or a photo-conflict rejection when its plate, camera, violation or time differ.
    Several processes started on the same paths against one database share the work.
    Example: lizardctl ingest /mnt/dumps/2026-11-25 --settle 120"""
    from lizardctl.core.services.ingest import IngestOptions, IngestService

    quiet = state(ctx).quiet
    as_json = wants_json(ctx, json_)
    options = IngestOptions(
        paths=paths,
        dry_run=dry_run,
        workers=workers,
        batch_size=batch_size,
        settle_seconds=settle,
        include=include or (),
        exclude=exclude or (),
        store=store,
        delete_source=delete_source,
        max_photo_bytes=max_photo_bytes,
        max_metadata_bytes=max_metadata_bytes,
        shard=parse_shard(shard) if shard else None,
        claim_lease=claim_lease,
    )
    bar = _Bar() if show_progress(ctx, as_json) else None

    with metrics_file_written(metrics_file, dry_run) as end:
        # Before the event loop: the workers are forked now, with this process's imports.
        with IngestService.forked_workers(workers) as forked:

            async def work(db: Database) -> IngestSummary:
                service = IngestService(db, forked)
                if bar is None:
                    return await service.ingest(options, outcome=end)
                with bar.progress:
                    return await service.ingest(options, bar, outcome=end)

            summary = run(ctx, work)
        for warning in (*summary.warnings, future_warning(summary)):
            if warning is not None:
                info(ctx, f"warning: {warning}")
        if as_json:
            emit_json(summary.to_dict())
        elif not quiet or summary.rejected or summary.problems:
            render_summary(summary, settle)
        if summary.rejected or summary.problems:
            raise typer.Exit(1)

"""What ingest runs did and what they rejected: run summaries, period reports, rejections."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lizardctl.core.db.models import IngestRun, Rejection
from lizardctl.core.db.uow import UnitOfWork, UowFactory
from lizardctl.core.errors import NoSuchRun, NotFoundError
from lizardctl.core.ids import IdText, resolve_id
from lizardctl.core.liveness import worker_alive
from lizardctl.core.paging import Page
from lizardctl.core.repositories.ingest import Committed
from lizardctl.core.vocabulary import RunStatus

COUNT_KEYS = ("shots", "ingested", "duplicate", "pending", "rejected")
RUN_ONLY_KEYS = ("vanished", "kept_changed", "claimed_elsewhere", "ignored_files")
"""Counts a run stores besides ``COUNT_KEYS``, shown for one run as its summary showed
them (0 for runs stored before a count existed)."""


def run_status(run: IngestRun) -> RunStatus:
    """A run still marked running whose process is gone from this host was killed."""
    if run.status == RunStatus.RUNNING and not worker_alive(f"{run.host}:{run.pid}"):
        return RunStatus.ABANDONED
    return RunStatus(run.status)


def run_counts(run: IngestRun, committed: Mapping[uuid.UUID, Committed]) -> dict[str, Any]:
    """A run writes its counts when it finishes; one that has not (still running, or
    killed) is counted from what it committed: its cases and its rejections. Duplicates
    and pending shots leave no row, so its ``shots`` are the shots it committed."""
    if run.finished_at is not None or run.id not in committed:
        return dict(run.counts)
    rows = committed[run.id]
    rejected = sum(rows.rejections.values())
    return {
        **run.counts,
        "shots": rows.cases + rejected,
        "ingested": rows.cases,
        "rejected": rejected,
        "rejected_by_reason": rows.rejections,
    }


@dataclass(frozen=True, slots=True)
class RunView:
    id: uuid.UUID
    status: str
    started_at: datetime
    finished_at: datetime | None
    host: str
    pid: int
    paths: list[str]
    counts: dict[str, Any]
    bytes: int
    job_id: uuid.UUID | None = None
    shard: str | None = None
    job_runs: tuple[RunView, ...] = ()

    @classmethod
    def of(
        cls,
        run: IngestRun,
        job_runs: Sequence[IngestRun] = (),
        committed: Mapping[uuid.UUID, Committed] | None = None,
    ) -> RunView:
        """``committed``: what unfinished runs committed (``RunRepository.committed``)."""
        committed = committed or {}
        return cls(
            run.id,
            run_status(run),
            run.started_at,
            run.finished_at,
            run.host,
            run.pid,
            list(run.paths),
            run_counts(run, committed),
            run.bytes,
            run.job_id,
            run.shard,
            tuple(RunView.of(other, committed=committed) for other in job_runs),
        )

    def job(self) -> dict[str, Any] | None:
        """The runs that shared this run's job, and each one's share of the shots."""
        if self.job_id is None:
            return None
        total = sum(int(r.counts.get("shots", 0)) for r in self.job_runs) or 1
        return {
            "job_id": str(self.job_id),
            "runs": [
                {
                    "run_id": str(r.id),
                    "worker": f"{r.host}:{r.pid}",
                    "status": r.status,
                    "shots": int(r.counts.get("shots", 0)),
                    "ingested": int(r.counts.get("ingested", 0)),
                    "share": round(int(r.counts.get("shots", 0)) / total, 3),
                }
                for r in self.job_runs
            ],
        }

    @property
    def elapsed_s(self) -> float:
        if "elapsed_s" in self.counts:
            return float(self.counts["elapsed_s"])
        end = self.finished_at or self.started_at
        return (end - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        elapsed = max(self.elapsed_s, 1e-9)
        shots = int(self.counts.get("shots", 0))
        return {
            "run_id": str(self.id),
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "host": self.host,
            "pid": self.pid,
            "paths": self.paths,
            **{key: self.counts.get(key, 0) for key in COUNT_KEYS + RUN_ONLY_KEYS},
            "rejected_by_reason": self.counts.get("rejected_by_reason", {}),
            "ingested_by_type": self.counts.get("ingested_by_type", {}),
            "problems": self.counts.get("problems", []),
            "elapsed_s": round(self.elapsed_s, 3),
            "bytes": self.bytes,
            "shots_per_s": round(shots / elapsed, 1) if self.finished_at else None,
            "mb_per_s": round(self.bytes / elapsed / 1e6, 2) if self.finished_at else None,
            "shard": self.shard,
            "job": self.job(),
        }


def still_pending(runs: Sequence[RunView]) -> int:
    """Shots left pending at the end of a set of runs, each shot counted once.

    A pending shot is looked at again by the next run on the same paths, so summing the
    runs' ``pending`` counts it once per run (three nightly runs of one copied dump made
    2,376 pending of 792 shots). What still waits is what the latest run on each set of
    paths (and shard) left pending: the runs of that run's job when several processes
    shared it, which split the folders between them.
    """
    latest: dict[tuple[tuple[str, ...], str | None], RunView] = {}
    for run in runs:
        key = (tuple(sorted(run.paths)), run.shard)
        if key not in latest or run.started_at >= latest[key].started_at:
            latest[key] = run
    pending = 0
    for key, last in latest.items():
        same_job = [
            r
            for r in runs
            if (tuple(sorted(r.paths)), r.shard) == key
            and (r is last or (last.job_id is not None and r.job_id == last.job_id))
        ]
        pending += sum(int(r.counts.get("pending", 0)) for r in same_job)
    return pending


@dataclass(slots=True)
class DayRow:
    day: date
    runs: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "runs": self.runs,
            **{key: self.counts[key] for key in COUNT_KEYS},
            "bytes": self.bytes,
            "shots_per_s": round(self.counts["shots"] / self.elapsed_s, 1)
            if self.elapsed_s
            else None,
        }


@dataclass(frozen=True, slots=True)
class PeriodReport:
    since: datetime
    runs: list[RunView]
    days: list[DayRow]
    totals: DayRow
    rejected_by_reason: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        totals = self.totals.to_dict()
        totals.pop("day")
        return {
            "since": self.since.isoformat(),
            "totals": totals,
            "rejected_by_reason": self.rejected_by_reason,
            "days": [d.to_dict() for d in self.days],
            "runs": [r.to_dict() for r in self.runs],
        }


@dataclass(frozen=True, slots=True)
class RejectionView:
    id: int
    run_id: uuid.UUID
    reason: str
    message: str
    photo_path: str | None
    metadata_path: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: Rejection) -> RejectionView:
        return cls(
            row.id,
            row.run_id,
            row.reason,
            row.message,
            row.photo_path,
            row.metadata_path,
            row.created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": str(self.run_id),
            "reason": self.reason,
            "message": self.message,
            "photo_path": self.photo_path,
            "metadata_path": self.metadata_path,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class RejectionListing:
    run_id: uuid.UUID | None
    """The run listed; None for every run (or no run yet)."""
    scope: str
    """What the listing covers, for its title: ``the latest run``, ``run``, ``every run``."""
    page: Page[RejectionView]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": None if self.run_id is None else str(self.run_id),
            "scope": self.scope,
            **self.page.to_dict(RejectionView.to_dict),
        }


class ReportService:
    def __init__(self, uow_factory: UowFactory) -> None:
        self.uow_factory = uow_factory

    async def run(self, run_id: IdText | None = None) -> RunView:
        """One run by id (or a unique prefix of one), or the latest one."""
        async with self.uow_factory() as uow:
            if run_id is not None:
                run_id = await resolve_id(run_id, "ingest run", uow.runs.ids_between)
            run = await (uow.runs.get(run_id) if run_id is not None else uow.runs.last())
            if run is None:
                raise NotFoundError(f"no ingest run {run_id}" if run_id else "no ingest run yet")
            job_runs = await uow.runs.of_job(run.job_id) if run.job_id is not None else ()
            return RunView.of(run, job_runs, await _committed(uow, [run, *job_runs]))

    async def period(self, since: datetime) -> PeriodReport:
        """Totals and a row per day; ``pending`` is not a sum (see ``still_pending``)."""
        async with self.uow_factory() as uow:
            rows = await uow.runs.since(since)
            committed = await _committed(uow, rows)
            runs = [RunView.of(r, committed=committed) for r in rows]
        days: dict[date, DayRow] = {}
        totals = DayRow(since.date())
        reasons: Counter[str] = Counter()
        for run in runs:
            day = days.setdefault(run.started_at.date(), DayRow(run.started_at.date()))
            for row in (day, totals):
                row.runs += 1
                row.counts.update({k: int(run.counts.get(k, 0)) for k in COUNT_KEYS})
                row.bytes += run.bytes
                row.elapsed_s += run.elapsed_s
            reasons.update(run.counts.get("rejected_by_reason", {}))
        for row in (totals, *days.values()):
            of_row = runs if row is totals else [r for r in runs if r.started_at.date() == row.day]
            row.counts["pending"] = still_pending(of_row)
        return PeriodReport(
            since,
            runs,
            sorted(days.values(), key=lambda d: d.day),
            totals,
            dict(sorted(reasons.items())),
        )

    async def rejections(
        self,
        *,
        run_id: IdText | None,
        every_run: bool = False,
        reason: str | None,
        limit: int,
        offset: int = 0,
    ) -> RejectionListing:
        """One run's rejections (``run_id``, by default the latest run) or, with
        ``every_run``, every run's: a run is the subject, as in ``report``."""
        async with self.uow_factory() as uow:
            run = None
            if run_id is not None:
                run_id = await resolve_id(run_id, "ingest run", uow.runs.ids_between)
                run = await uow.runs.get(run_id)
                if run is None:
                    raise NoSuchRun(run_id)
            elif not every_run:
                run = await uow.runs.last()
                if run is None:
                    return RejectionListing(None, "no ingest run yet", Page([], 0, offset))
            scope = "every run" if run is None else "run" if run_id else "the latest run"
            wanted = None if run is None else run.id
            rows = await uow.rejections.list(
                run_id=wanted, reason=reason, limit=limit, offset=offset
            )
            total = await uow.rejections.count(run_id=wanted, reason=reason)
            return RejectionListing(
                wanted, scope, Page([RejectionView.of(r) for r in rows], total, offset)
            )


async def _committed(uow: UnitOfWork, runs: Sequence[IngestRun]) -> dict[uuid.UUID, Committed]:
    return await uow.runs.committed({r.id for r in runs if r.finished_at is None})

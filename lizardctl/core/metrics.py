"""An ingest run's counters in the Prometheus text exposition format, for monitoring.

node_exporter's textfile collector reads every ``*.prom`` file of a folder on each scrape,
so a nightly ``ingest --metrics-file /var/lib/node_exporter/lizard.prom`` is watched like
any other job: an alert on the exit code or on an old finish time, a graph of shots/s.
The text is made by a pure function and written with ``atomic_output``, whose temporary
(``.NAME.….part``) is not a ``*.prom`` file: the collector sees the old file or the new
one, never half of one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lizardctl.core.errors import MetricsFileUnusable
from lizardctl.core.files import atomic_output
from lizardctl.core.vocabulary import RunStatus

PREFIX = "lizardctl_ingest_"
OUTCOMES = (
    "ingested",
    "duplicate",
    "rejected",
    "pending",
    "vanished",
    "kept_changed",
    "claimed_elsewhere",
)
"""Keys of the ``--json`` summary that are shot counts by outcome, in that order."""


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """What the file says of one run. ``summary`` is the ``--json`` summary, or None when
    the run failed before it had counted anything (no such folder, store not writable,
    database unreachable): the counters are then 0."""

    status: RunStatus
    """Finished, interrupted or failed: as the run is recorded in the database."""
    exit_code: int
    finished_at: float
    """Unix time in seconds."""
    duration_s: float
    dry_run: bool
    summary: Mapping[str, Any] | None = None


def escape_label(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and newline escaped.
    Text that is not valid UTF-8 (a surrogate from an undecodable name) is written as
    ``\\udcff``, so the file is always UTF-8."""
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """``# HELP`` text escapes only backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(
    name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {PREFIX}{name} {escape_help(help_text)}", f"# TYPE {PREFIX}{name} gauge"]
    for labels, value in samples:
        pairs = ",".join(f'{key}="{escape_label(text)}"' for key, text in labels.items())
        selector = f"{{{pairs}}}" if pairs else ""
        lines.append(f"{PREFIX}{name}{selector} {_number(value)}")
    return lines


def ingest_metrics(run: RunMetrics) -> str:
    """The text of the metrics file. Every family is a gauge: the file holds the values of
    the last run, replaced by the next one, not counters that grow across runs."""
    summary = run.summary or {}
    run_id = summary.get("run_id") or ""  # a dry run or a run that never started has none
    reasons: Mapping[str, int] = summary.get("rejected_by_reason", {})
    families = [
        _family(
            "info",
            "The last ingest run: its id (empty for a dry run, which is not recorded), "
            "status (finished, interrupted, failed) and whether it was a dry run.",
            [
                (
                    {
                        "run_id": run_id,
                        "status": run.status,
                        "dry_run": "true" if run.dry_run else "false",
                    },
                    1,
                )
            ],
        ),
        _family(
            "exit_code",
            "Exit code of the last ingest run: 0 all shots taken, 1 some rejected, "
            "2 usage, 3 environment (database, store), 70 bug, 130 SIGINT, 143 SIGTERM.",
            [({}, run.exit_code)],
        ),
        _family(
            "finish_time_seconds",
            "When the last ingest run ended, as a Unix timestamp.",
            [({}, run.finished_at)],
        ),
        _family(
            "duration_seconds",
            "How long the last ingest run took.",
            [({}, run.duration_s)],
        ),
        _family(
            "shots",
            "Shots of the last ingest run by outcome (pending: left for the next run).",
            [({"outcome": outcome}, summary.get(outcome, 0)) for outcome in OUTCOMES],
        ),
        _family(
            "rejected_shots",
            "Rejected shots of the last ingest run by reason code.",
            [({"reason": reason}, count) for reason, count in sorted(reasons.items())],
        ),
        _family(
            "read_bytes",
            "Bytes of photos and metadata read by the last ingest run.",
            [({}, summary.get("bytes", 0))],
        ),
        _family(
            "shots_per_second",
            "Shots examined per second by the last ingest run.",
            [({}, summary.get("shots_per_s", 0.0))],
        ),
        _family(
            "ignored_files",
            "Files of the dump that are neither photo nor metadata, in the last run.",
            [({}, summary.get("ignored_files", 0))],
        ),
        _family(
            "problems",
            "Problems of the last ingest run that are not shots (unreadable folders, links "
            "leading out of the dump).",
            [({}, len(summary.get("problems", ())))],
        ),
    ]
    return "".join(line + "\n" for family in families for line in family)


def check_metrics_path(path: Path) -> None:
    """Refuse before the run, not after it, a path the file cannot be written to."""
    if path.is_dir():
        raise MetricsFileUnusable(path, "a folder, not a file")
    if not path.parent.is_dir():
        raise MetricsFileUnusable(path, f"no such folder {path.parent}")


def write_metrics(path: Path, run: RunMetrics) -> None:
    """Replace ``path`` with the run's metrics, atomically (see ``atomic_output``)."""
    with atomic_output(path) as out:
        out.write(ingest_metrics(run))

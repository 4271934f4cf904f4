"""``core.metrics``: the Prometheus text a textfile collector reads, parsed back here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lizardctl.core.errors import MetricsFileUnusable
from lizardctl.core.metrics import (
    RunMetrics,
    check_metrics_path,
    escape_label,
    ingest_metrics,
    write_metrics,
)
from lizardctl.core.vocabulary import RunStatus

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse(text: str) -> tuple[Samples, dict[str, str], dict[str, str]]:
    """A strict reader of the text exposition format: samples, HELP and TYPE by family.
    Anything it does not recognise fails the test, as it would fail the collector."""
    samples: Samples = {}
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    assert text.endswith("\n")
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in helps
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("gauge", "counter") and name in helps and name not in types
            types[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, line
            name, raw_labels, value = match.groups()
            assert name in types, f"{name} has no TYPE line before it"
            labels: list[tuple[str, str]] = []
            rest = raw_labels or ""
            while rest:
                label = _LABEL.match(rest)
                assert label, rest
                value_text = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group()], label.group(2))
                labels.append((label.group(1), value_text))
                rest = rest[label.end() :]
            key = (name, frozenset(labels))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = float(value)
    return samples, helps, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(f"lizardctl_ingest_{name}", frozenset(labels.items()))]


SUMMARY: dict[str, Any] = {
    "run_id": "bf058c65-2c16-413b-bdad-c87a7cdbbc89",
    "ingested": 15,
    "duplicate": 1,
    "pending": 4,
    "rejected": 3,
    "vanished": 0,
    "kept_changed": 2,
    "claimed_elsewhere": 7,
    "rejected_by_reason": {"orphan": 2, "bad-photo": 1},
    "bytes": 921786,
    "shots_per_s": 60.1,
    "ignored_files": 5,
    "problems": ["a", "b"],
}


def test_a_finished_run_has_every_counter() -> None:
    run = RunMetrics(RunStatus.FINISHED, 1, 1796141511.25, 0.45, False, SUMMARY)
    samples, helps, types = parse(ingest_metrics(run))

    assert set(types.values()) == {"gauge"}
    assert all(name.startswith("lizardctl_ingest_") for name in types)
    assert value(samples, "info", run_id=SUMMARY["run_id"], status="finished", dry_run="false")
    assert value(samples, "exit_code") == 1
    assert value(samples, "finish_time_seconds") == 1796141511.25
    assert value(samples, "duration_seconds") == 0.45
    for outcome in ("ingested", "duplicate", "pending", "rejected", "kept_changed"):
        assert value(samples, "shots", outcome=outcome) == SUMMARY[outcome]
    assert value(samples, "shots", outcome="claimed_elsewhere") == 7
    assert value(samples, "rejected_shots", reason="orphan") == 2
    assert value(samples, "rejected_shots", reason="bad-photo") == 1
    assert value(samples, "read_bytes") == 921786
    assert value(samples, "shots_per_second") == 60.1
    assert value(samples, "ignored_files") == 5
    assert value(samples, "problems") == 2
    assert all(helps[name] for name in types)


def test_a_run_that_never_started_counts_zero_and_has_no_run_id() -> None:
    run = RunMetrics(RunStatus.FAILED, 3, 1796141511.0, 0.1, False, None)
    samples, _, _ = parse(ingest_metrics(run))

    assert value(samples, "info", run_id="", status="failed", dry_run="false") == 1
    assert value(samples, "exit_code") == 3
    assert value(samples, "shots", outcome="ingested") == 0
    assert not [key for key in samples if key[0].endswith("rejected_shots")]


def test_a_dry_run_is_marked() -> None:
    run = RunMetrics(RunStatus.FINISHED, 0, 1.0, 0.1, True, {**SUMMARY, "run_id": None})
    samples, _, _ = parse(ingest_metrics(run))

    assert value(samples, "info", run_id="", status="finished", dry_run="true") == 1


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ('\\"\n', '\\\\\\"\\n'),
        ("caf\udcc3", "caf\\\\udcc3"),  # not UTF-8: escaped, and the backslash too
    ],
)
def test_label_values_are_escaped_per_the_format(raw: str, escaped: str) -> None:
    assert escape_label(raw) == escaped


@given(st.text())
def test_any_reason_round_trips_through_the_text(reason: str) -> None:
    """Whatever a label holds, the file stays one sample per line and reads back."""
    summary = {**SUMMARY, "rejected_by_reason": {reason: 3}}
    text = ingest_metrics(RunMetrics(RunStatus.FINISHED, 1, 1.0, 1.0, False, summary))
    samples, _, _ = parse(text)
    expected = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    assert value(samples, "rejected_shots", reason=expected) == 3


def test_written_atomically_with_nothing_left_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "lizard.prom"
    target.write_text("old\n")
    write_metrics(target, RunMetrics(RunStatus.FAILED, 3, 1.0, 0.1, False, None))

    assert "lizardctl_ingest_exit_code 3\n" in target.read_text()
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("where", ["folder", "missing-parent"])
def test_a_path_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, where: str
) -> None:
    path = tmp_path if where == "folder" else tmp_path / "nowhere" / "m.prom"
    with pytest.raises(MetricsFileUnusable) as caught:
        check_metrics_path(path)
    assert caught.value.path == path
    assert caught.value.exit_code == 2

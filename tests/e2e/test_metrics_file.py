"""``ingest --metrics-file``: what monitoring reads after a run, however the run ended.

Through the real command line on real temp folders, on SQLite and on PostgreSQL; the
text is read back with the strict parser of ``tests/unit/test_metrics.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lizardctl.testing.dumpgen import DumpManifest, generate_dump
from tests.e2e.conftest import Cli, invoke
from tests.e2e.test_ingest_cli import count
from tests.e2e.test_ingest_workers import _pg, lockable_pg  # noqa: F401 - fixture
from tests.unit.test_metrics import Samples, parse, value

WAIT_S = 60  # a bound against hanging, never an expectation of speed


def read_metrics(path: Path) -> Samples:
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".part")] == []
    samples, _, _ = parse(path.read_text())
    return samples


def info_labels(samples: Samples) -> dict[str, str]:
    (labels,) = [dict(labels) for name, labels in samples if name == "lizardctl_ingest_info"]
    return labels


@pytest.fixture
def dump(cli: Cli, tmp_path: Path) -> DumpManifest:
    manifest = generate_dump(tmp_path / "gen", cameras=3, shots_per_camera=4)
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    return manifest


def test_the_file_holds_the_counts_of_the_json_summary(
    cli: Cli, tmp_path: Path, dump: DumpManifest
) -> None:
    metrics = tmp_path / "mon" / "lizard.prom"
    metrics.parent.mkdir()
    out = cli(
        "ingest", dump.dump_dir, "--settle", "0", "--workers", "0", "--json",
        "--metrics-file", metrics,
    )  # fmt: skip
    summary = out.json()
    samples = read_metrics(metrics)

    assert out.code == 1 and summary["rejected"] > 0  # the generated dump has bad shots
    assert info_labels(samples) == {
        "run_id": summary["run_id"],
        "status": "finished",
        "dry_run": "false",
    }
    assert value(samples, "exit_code") == 1
    for outcome in ("ingested", "duplicate", "rejected", "pending", "vanished"):
        assert value(samples, "shots", outcome=outcome) == summary[outcome], outcome
    for reason, n in summary["rejected_by_reason"].items():
        assert value(samples, "rejected_shots", reason=reason) == n
    assert value(samples, "read_bytes") == summary["bytes"]
    assert value(samples, "shots_per_second") == summary["shots_per_s"]
    assert value(samples, "duration_seconds") == pytest.approx(summary["elapsed_s"], abs=1e-3)
    assert time.time() - 60 < value(samples, "finish_time_seconds") <= time.time()
    assert sorted(p.name for p in metrics.parent.iterdir()) == ["lizard.prom"]

    rerun = cli("ingest", dump.dump_dir, "--settle", "0", "--workers", "0", "--metrics-file",
                metrics, "--json")  # fmt: skip
    samples = read_metrics(metrics)  # replaced by the next run's
    assert info_labels(samples)["run_id"] == rerun.json()["run_id"]
    assert value(samples, "shots", outcome="ingested") == 0


def test_a_dry_run_writes_the_file_marked_as_such(
    cli: Cli, tmp_path: Path, dump: DumpManifest
) -> None:
    metrics = tmp_path / "dry.prom"
    out = cli("ingest", dump.dump_dir, "--settle", "0", "--workers", "0", "--dry-run",
              "--json", "--metrics-file", metrics)  # fmt: skip
    samples = read_metrics(metrics)

    assert info_labels(samples) == {"run_id": "", "status": "finished", "dry_run": "true"}
    assert value(samples, "shots", outcome="ingested") == out.json()["ingested"] > 0


def test_the_env_var_names_the_file(cli: Cli, tmp_path: Path, db_url: str) -> None:
    (tmp_path / "empty").mkdir()
    metrics = tmp_path / "env.prom"
    out = invoke(
        ["--db", db_url, "ingest", str(tmp_path / "empty"), "--workers", "0"],
        env={"LIZARD_METRICS_FILE": str(metrics)},
    )
    assert out.code == 0, out.output
    assert value(read_metrics(metrics), "exit_code") == 0


def test_a_store_that_cannot_be_written_fails_the_run_and_the_file_says_so(
    cli: Cli, tmp_path: Path, dump: DumpManifest
) -> None:
    (tmp_path / "a-file").write_text("")
    metrics = tmp_path / "lizard.prom"
    out = cli("ingest", dump.dump_dir, "--settle", "0", "--workers", "0",
              "--store", tmp_path / "a-file" / "photos", "--metrics-file", metrics)  # fmt: skip
    samples = read_metrics(metrics)

    assert out.code == 3, out.output
    assert value(samples, "exit_code") == 3
    assert info_labels(samples) == {"run_id": "", "status": "failed", "dry_run": "false"}
    assert value(samples, "shots", outcome="ingested") == 0


def test_an_unreachable_database_is_exit_3_in_the_file(tmp_path: Path) -> None:
    (tmp_path / "dump").mkdir()
    metrics = tmp_path / "lizard.prom"
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    out = invoke(["--db", url, "ingest", str(tmp_path / "dump"), "--metrics-file", str(metrics)])

    assert out.code == 3, out.output
    assert value(read_metrics(metrics), "exit_code") == 3


def test_a_path_that_cannot_be_written_is_refused_before_the_run(
    cli: Cli, tmp_path: Path, dump: DumpManifest, db_url: str
) -> None:
    out = cli("ingest", dump.dump_dir, "--settle", "0", "--workers", "0",
              "--metrics-file", tmp_path / "nowhere" / "m.prom")  # fmt: skip

    assert out.code == 2
    assert out.stderr.startswith("Error: --metrics-file ") and out.stderr.count("\n") == 1
    assert count(db_url, "ingest_runs") == 0


def test_a_symlink_at_the_path_is_replaced_not_followed(
    cli: Cli, tmp_path: Path, dump: DumpManifest
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    metrics = tmp_path / "lizard.prom"
    metrics.symlink_to(victim)
    cli("ingest", dump.dump_dir, "--settle", "0", "--workers", "0", "--metrics-file", metrics)

    assert victim.read_text() == "precious\n"
    assert not metrics.is_symlink()
    assert value(read_metrics(metrics), "exit_code") == 1


@pytest.mark.slow
def test_sigterm_mid_run_exits_143_and_the_file_says_interrupted(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    manifest = generate_dump(tmp_path / "gen", cameras=1, shots_per_camera=120, bad=False,
                             photo_bytes=(1500, 2500))  # fmt: skip
    assert cli("camera", "import", manifest.cameras_csv).code == 0
    metrics = tmp_path / "lizard.prom"
    process = _start(db_url, tmp_path, manifest.dump_dir, metrics)
    try:
        _when_a_case_is_committed(db_url, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        process.kill()
        process.wait()
    samples = read_metrics(metrics)

    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr
    assert value(samples, "exit_code") == 143
    assert info_labels(samples)["status"] == "interrupted"
    ingested = value(samples, "shots", outcome="ingested")
    assert 0 < ingested == count(db_url, "cases") < len(manifest.shots)


def _start(db_url: str, cwd: Path, dump: Path, metrics: Path) -> subprocess.Popen[str]:
    """A real ``python -m lizardctl ingest`` in one transaction per shot, slow enough to be
    caught mid-run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIZARD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "lizardctl", "--db", db_url, "ingest", str(dump),
         "--settle", "0", "--workers", "0", "--batch-size", "1", "--json",
         "--metrics-file", str(metrics)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _when_a_case_is_committed(db_url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while count(db_url, "cases") < 1:
        assert time.monotonic() < deadline and process.poll() is None, "no case committed"
        time.sleep(0.01)


@pytest.mark.slow
def test_postgres_lost_mid_run_is_exit_3_with_what_was_done(
    lockable_pg: tuple[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, role = lockable_pg
    manifest = generate_dump(tmp_path / "gen", cameras=1, shots_per_camera=120, bad=False,
                             photo_bytes=(1500, 2500))  # fmt: skip
    for step in (["db", "upgrade"], ["camera", "import", str(manifest.cameras_csv)]):
        assert invoke(["--db", url, *step]).code == 0
    metrics = tmp_path / "lizard.prom"
    process = _start(url, tmp_path, manifest.dump_dir, metrics)
    try:
        _when_a_case_is_committed(url, process)
        asyncio.run(
            _pg(
                f"ALTER ROLE {role} NOLOGIN;"
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            )
        )
        _, stderr = process.communicate(timeout=WAIT_S)
    finally:
        process.kill()
        process.wait()
    samples = read_metrics(metrics)

    assert process.returncode == 3, stderr
    assert value(samples, "exit_code") == 3
    assert info_labels(samples)["status"] == "failed"
    assert info_labels(samples)["run_id"]  # the run had started: its id is there to look up
    assert 0 < value(samples, "shots", outcome="ingested") < len(manifest.shots)

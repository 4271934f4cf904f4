"""Several ingest processes on one dump: shared work, crashes, shards, signals, outages.

Real ``python -m lizardctl`` processes on SQLite and on PostgreSQL (each test in its own
schema); the database is the only thing they share.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from lizardctl.testing.dumpgen import DumpManifest
from tests.conftest import PG_URL
from tests.e2e.conftest import invoke
from tests.e2e.test_ingest_cli import count, expected_counts, sql
from tests.e2e.test_ingest_processes import (
    WAIT_S,
    big,  # noqa: F401 - fixture
    check_exactly_once,
    finish,
    lizardctl,
    wait_for_group_to_vanish,
)

pytestmark = pytest.mark.slow


def wait_for_cases(db_url: str, at_least: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while count(db_url, "cases") < at_least:
        assert time.monotonic() < deadline, "no case committed"
        time.sleep(0.02)


def wait_for_runs(db_url: str, runs: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while count(db_url, "ingest_runs") < runs:
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.02)


def check_rejections_once(db_url: str, manifest: DumpManifest) -> None:
    """Every bad shot is rejected exactly once across all the runs of the job."""
    rows = sql(db_url, "SELECT photo_path, metadata_path, reason FROM rejections")
    assert len(rows) == len(set(rows)), "a shot was rejected twice"
    assert len(rows) == sum(expected_counts(manifest.shots)["rejected_by_reason"].values())


def test_three_workers_share_the_dump(db_url: str, tmp_path: Path, big: DumpManifest) -> None:  # noqa: F811
    store = tmp_path / "photos"
    want = expected_counts(big.shots)
    args = ("ingest", big.dump_dir, "--settle", "0", "--workers", "1", "--store", store)
    processes = [
        lizardctl(db_url, tmp_path, *args, "--batch-size", "25", "--json") for _ in range(3)
    ]
    results = [finish(p) for p in processes]

    assert all(code == 1 for code, _ in results), results  # the dump's bad shots
    assert len({summary["job_id"] for _, summary in results}) == 1, "they did not share a job"
    assert sum(s["ingested"] for _, s in results) == want["ingested"]
    assert sum(s["rejected"] for _, s in results) == sum(want["rejected_by_reason"].values())
    assert sum(s["shots"] for _, s in results) == len(big.shots)
    assert sum(s["claimed_elsewhere"] > 0 for _, s in results) >= 2, "no work was shared"
    check_exactly_once(db_url, big, store)
    check_rejections_once(db_url, big)

    report = invoke(["--db", db_url, "report", "--run", results[0][1]["run_id"], "--json"]).json()
    workers = report["job"]["runs"]
    assert sorted(w["run_id"] for w in workers) == sorted(s["run_id"] for _, s in results)
    assert sum(w["shots"] for w in workers) == len(big.shots)


def test_a_killed_worker_is_taken_over_by_the_others(
    db_url: str,
    tmp_path: Path,
    big: DumpManifest,  # noqa: F811
) -> None:
    store = tmp_path / "photos"
    want = expected_counts(big.shots)
    args = ("ingest", big.dump_dir, "--settle", "0", "--workers", "1", "--store", store)
    common = ("--batch-size", "25", "--json", "--claim-lease", "600")
    victim, *others = [lizardctl(db_url, tmp_path, *args, *common) for _ in range(3)]
    # Kill only once all have joined one job (a process starting after the victim died
    # would start a job of its own, and reject again what the victim rejected), and
    # while the dump is far from done, so that the victim dies holding claims.
    wait_for_runs(db_url, 3)
    wait_for_cases(db_url, 200)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=WAIT_S)
    wait_for_group_to_vanish(victim.pid)

    # The lease is long: the survivors take the dead worker's claims over because its
    # process is gone from this host, not because they waited out the lease.
    results = [finish(p) for p in others]
    assert all(code in (0, 1) for code, _ in results), results  # 1: saw bad shots
    assert len({summary["job_id"] for _, summary in results}) == 1
    assert sum(s["ingested"] for _, s in results) > 0, "the victim had finished the dump"
    check_exactly_once(db_url, big, store)
    check_rejections_once(db_url, big)

    code, rerun = finish(lizardctl(db_url, tmp_path, *args, "--json"))
    assert code == 1
    assert rerun["ingested"] == 0
    assert rerun["duplicate"] == want["ingested"] + want["duplicate"]


def test_shards_cover_every_shot_exactly_once(
    db_url: str,
    tmp_path: Path,
    big: DumpManifest,  # noqa: F811
) -> None:
    store = tmp_path / "photos"
    want = expected_counts(big.shots)
    args = ("ingest", big.dump_dir, "--settle", "0", "--store", store, "--json")
    results = [finish(lizardctl(db_url, tmp_path, *args, "--shard", f"{k}/3")) for k in (1, 2, 3)]

    assert all(summary["shots"] > 0 for _, summary in results), "a shard was empty"
    assert sum(s["shots"] for _, s in results) == len(big.shots)
    assert sum(s["ingested"] for _, s in results) == want["ingested"]
    check_exactly_once(db_url, big, store)
    check_rejections_once(db_url, big)


def test_bad_shard_is_a_usage_error(tmp_path: Path) -> None:
    out = invoke(
        ["--db", f"sqlite+aiosqlite:///{tmp_path}/x.db", "ingest", str(tmp_path), "--shard", "4/3"]
    )
    assert out.code == 2
    assert "K/N" in out.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_batches_in_flight_and_records_the_run(
    db_url: str,
    tmp_path: Path,
    big: DumpManifest,  # noqa: F811
    signum: int,
) -> None:
    store = tmp_path / "photos"
    args = ("ingest", big.dump_dir, "--settle", "0", "--workers", "2", "--store", store)
    process = lizardctl(db_url, tmp_path, *args, "--batch-size", "20", "--json")
    wait_for_cases(db_url, 100)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum], stderr
    assert stderr.count("\n") == 1, stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    wait_for_group_to_vanish(process.pid)

    assert sql(db_url, "SELECT status FROM ingest_runs") == [("interrupted",)]
    assert count(db_url, "cases") < len(big.shots)

    code, _ = finish(lizardctl(db_url, tmp_path, *args, "--json"))
    assert code == 1
    check_exactly_once(db_url, big, store)


# --- PostgreSQL going away mid-run ---------------------------------------------------------


async def _pg(sql_text: str) -> None:
    connection = await asyncpg.connect(PG_URL.replace("+asyncpg", ""), timeout=5)
    try:
        await connection.execute(sql_text)
    finally:
        await connection.close()


@pytest.fixture
def lockable_pg(pg_url: str) -> Iterator[tuple[str, str]]:
    """The test's schema reached through a role of its own, which the test can lock out."""
    role = f"lizard_out_{uuid.uuid4().hex[:8]}"
    schema = pg_url.rsplit("search_path=", 1)[1]
    asyncio.run(_pg(f'CREATE ROLE {role} LOGIN; GRANT ALL ON SCHEMA "{schema}" TO {role}'))
    url = pg_url.replace("postgres@", f"{role}@", 1)
    try:
        yield url, role
    finally:
        asyncio.run(
            _pg(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';"
                f"DROP OWNED BY {role}; DROP ROLE {role}"
            )
        )


def test_postgres_outage_stops_the_run_with_exit_3_and_a_rerun_completes(
    lockable_pg: tuple[str, str], tmp_path: Path
) -> None:
    from lizardctl.testing.dumpgen import generate_dump

    url, role = lockable_pg
    manifest = generate_dump(
        tmp_path / "gen", cameras=6, shots_per_camera=400, bad=False, photo_bytes=(1500, 2500)
    )
    for step in (["db", "upgrade"], ["camera", "import", str(manifest.cameras_csv)]):
        out = invoke(["--db", url, *step])
        assert out.code == 0, out.output
    store = tmp_path / "photos"
    args = ("ingest", manifest.dump_dir, "--settle", "0", "--workers", "2", "--store", store)
    process = lizardctl(url, tmp_path, *args, "--batch-size", "20", "--json")
    wait_for_cases(url, 100)
    asyncio.run(
        _pg(
            f"ALTER ROLE {role} NOLOGIN;"
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        )
    )
    _, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 3, stderr
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert "database" in stderr
    wait_for_group_to_vanish(process.pid)

    asyncio.run(_pg(f"ALTER ROLE {role} LOGIN"))
    code, rerun = finish(lizardctl(url, tmp_path, *args, "--json"))
    assert code == 0, rerun
    keys = sql(url, "SELECT photo_sha256, metadata_sha256 FROM cases")
    assert len(keys) == len(set(keys)) == len(manifest.shots)

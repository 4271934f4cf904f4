"""``lizardctl ingest`` and what it leaves behind, through the CLI on real temp folders.

Every test runs on a SQLite file and on PostgreSQL; those about what lands in the photo
store also with the store in an S3 bucket (``both_stores``). Dumps come from
``generate_dump``, whose manifest says what each shot must become, so the counts asserted
here are exact. Most runs use ``--workers 0`` (in-process, fast); a few use the process pool.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from lizardctl.core.codecs import decode_metadata
from lizardctl.core.store import PhotoStore
from lizardctl.core.store.identity import IDENTITY_FILE
from lizardctl.testing.dumpgen import (
    DUPLICATE,
    INGESTED,
    DumpManifest,
    GeneratedShot,
    generate_dump,
)
from tests.e2e.conftest import Cli, Outcome, both_stores
from tests.s3server import S3Location
from tests.stored import (
    StoreAt,
    default_store,
    pack_records,
    packs_in,
    store_contents,
    stored_photos_at,
)

SUMMARY_KEYS = {
    "run_id",
    "ingested",
    "duplicate",
    "pending",
    "rejected",
    "rejected_by_reason",
    "elapsed_s",
    "shots_per_s",
    "bytes",
}
DIGEST = re.compile(r"[0-9a-f]{64}")
HOUR_AGO = 3600


# -- helpers shared with test_ingest_processes ---------------------------------------------


def sql(db_url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of ``query``, read straight from the database behind the tool's back."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        with closing(sqlite3.connect(str(url.database), timeout=30)) as connection:
            return connection.execute(query).fetchall()
    schema = str(url.query["search_path"])
    dsn = (
        url.difference_update_query(["search_path"])
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )

    async def fetch() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            return [tuple(row) for row in await connection.fetch(query)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


def count(db_url: str, table: str) -> int:
    return int(sql(db_url, f"SELECT count(*) FROM {table}")[0][0])


def expected_counts(shots: Iterable[GeneratedShot]) -> dict[str, Any]:
    """The summary fields a run over exactly ``shots`` must report."""
    outcomes = Counter(shot.expected for shot in shots)
    reasons = {k: n for k, n in outcomes.items() if k not in (INGESTED, DUPLICATE)}
    return {
        "ingested": outcomes[INGESTED],
        "duplicate": outcomes[DUPLICATE],
        "rejected": sum(reasons.values()),
        "rejected_by_reason": reasons,
    }


def counts_of(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        key: summary[key] for key in ("ingested", "duplicate", "rejected", "rejected_by_reason")
    }


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shot_keys(shots: Iterable[GeneratedShot]) -> set[tuple[str, str]]:
    """(photo sha256, metadata sha256) of every shot that must become a case."""
    return {
        (file_sha256(shot.photo), file_sha256(shot.metadata))
        for shot in shots
        if shot.expected in (INGESTED, DUPLICATE) and shot.photo and shot.metadata
    }


def case_keys(db_url: str) -> list[tuple[str, str]]:
    return [(p, m) for p, m in sql(db_url, "SELECT photo_sha256, metadata_sha256 FROM cases")]


def check_store(store: StoreAt, db_url: str) -> set[str]:
    """Every photo record in the store's packs is whole (its bytes hash to the digest its
    header names), and every photo row reads back, by its pack and offset, the bytes of its
    digest and size; every case's photo has a row. Returns the digests the packs hold."""
    records = set(pack_records(store))
    rows = stored_photos_at(db_url, store)
    assert set(rows) <= records
    case_photos = {p for p, _ in case_keys(db_url)}
    assert case_photos <= set(rows), "a case whose photo is not stored"
    return records


def make_young(*paths: Path) -> None:
    now = time.time()
    for path in paths:
        os.utime(path, (now, now))


def make_old(*paths: Path) -> None:
    then = time.time() - HOUR_AGO
    for path in paths:
        os.utime(path, (then, then))


def must(path: Path | None) -> Path:
    """A shot's file that the dump is known to have."""
    assert path is not None
    return path


def exists(shot: GeneratedShot) -> list[bool]:
    return [path.exists() for path in shot.paths]


# -- fixtures -------------------------------------------------------------------------------


def _register(cli: Cli, manifest: DumpManifest) -> DumpManifest:
    imported = cli("camera", "import", manifest.cameras_csv)
    assert imported.code == 0, imported.output
    return manifest


SMALL_PHOTOS = (4_000, 8_000)
"""Most tests need no realistic 30-50 KB photos, which take the generator a second to make."""


@pytest.fixture
def realistic(cli: Cli, tmp_path: Path) -> DumpManifest:
    """6 cameras x 5 good shots of 30-50 KB plus one bad shot of every kind, cameras registered."""
    return _register(cli, generate_dump(tmp_path / "gen"))


@pytest.fixture
def mixed(cli: Cli, tmp_path: Path) -> DumpManifest:
    """As ``realistic``, with small photos."""
    return _register(cli, generate_dump(tmp_path / "gen", photo_bytes=SMALL_PHOTOS))


@pytest.fixture
def clean(cli: Cli, tmp_path: Path) -> DumpManifest:
    return _register(cli, generate_dump(tmp_path / "gen", bad=False, photo_bytes=SMALL_PHOTOS))


@pytest.fixture
def store(tmp_path: Path, db_url: str, s3_location: S3Location | None) -> StoreAt:
    """The default store: named after the SQLite file, beside it, or ./photos for
    PostgreSQL (the cli runs in tmp_path); for the s3 kind, the prefix LIZARD_STORE names."""
    return s3_location.url if s3_location else default_store(db_url, tmp_path)


def ingest(cli: Cli, *args: str | Path, workers: int = 0, settle: float = 0) -> Outcome:
    return cli("ingest", *args, "--workers", str(workers), "--settle", str(settle))


def ingest_json(cli: Cli, *args: str | Path, **kwargs: Any) -> tuple[Outcome, dict[str, Any]]:
    out = ingest(cli, *args, "--json", **kwargs)
    return out, out.json()


def good(manifest: DumpManifest) -> list[GeneratedShot]:
    """Good shots whose content appears once in the dump (not the original of a re-send)."""
    names = Counter(s.photo.name for s in manifest.shots if s.photo is not None)
    return [s for s in manifest.shots if s.expected == INGESTED and names[must(s.photo).name] == 1]


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "store_kind"),
    [(0, "folder"), (2, "folder"), pytest.param(2, "s3", marks=pytest.mark.s3)],
    ids=["in-process", "pool", "pool-s3"],
    indirect=["store_kind"],
)
def test_mixed_dump_counts_rejects_report_and_cases(
    cli: Cli, db_url: str, realistic: DumpManifest, store: StoreAt, workers: int
) -> None:
    mixed = realistic
    out, summary = ingest_json(cli, mixed.dump_dir, workers=workers)

    assert out.code == 1, out.output
    assert set(summary) >= SUMMARY_KEYS
    assert counts_of(summary) == expected_counts(mixed.shots)
    assert summary["pending"] == 0
    assert summary["shots"] == len(mixed.shots)
    assert summary["problems"] == []
    assert summary["dry_run"] is False
    run_id = summary["run_id"]

    rejects = cli("rejects", "--run", run_id, "--json")
    assert rejects.code == 0, rejects.output
    listed = rejects.json()["items"]
    got = Counter((r["photo_path"], r["metadata_path"], r["reason"]) for r in listed)
    want = Counter(
        (str(s.photo) if s.photo else None, str(s.metadata) if s.metadata else None, s.expected)
        for s in mixed.shots
        if s.expected not in (INGESTED, DUPLICATE)
    )
    assert got == want
    assert all(r["run_id"] == run_id and r["message"].strip() for r in listed)
    (invalid,) = [r for r in listed if r["reason"] == "invalid"]
    assert "datetime.month" in invalid["message"]  # the field path of the month-13 defect
    only_orphans = cli("rejects", "--run", run_id, "--reason", "orphan", "--json").json()["items"]
    assert {r["reason"] for r in only_orphans} == {"orphan"} and len(only_orphans) == 2

    report = cli("report", "--run", run_id, "--json")
    assert report.code == 0, report.output
    view = report.json()
    assert view["status"] == "finished"
    assert view["paths"] == [str(mixed.dump_dir)]
    for key in ("ingested", "duplicate", "pending", "rejected", "rejected_by_reason", "shots"):
        assert view[key] == summary[key], key
    assert view["bytes"] == summary["bytes"] > 0
    assert cli("report", "--last", "--json").json()["run_id"] == run_id

    cases = cli("cases", "list", "--limit", "1000", "--json").json()["items"]
    assert len(cases) == expected_counts(mixed.shots)["ingested"]
    assert sorted(case_keys(db_url)) == sorted(shot_keys(mixed.shots))

    stored = check_store(store, db_url)
    assert stored == {photo for photo, _ in shot_keys(mixed.shots)}


@both_stores
def test_cases_show_gives_the_stored_photo_and_raw_metadata(
    cli: Cli, db_url: str, mixed: DumpManifest, store: StoreAt, tmp_path: Path
) -> None:
    assert ingest(cli, mixed.dump_dir).code == 1
    sizes = dict(sql(db_url, "SELECT sha256, size FROM photos"))
    shown_suffixes = set()
    for case in cli("cases", "list", "--json").json()["items"]:
        detail = cli("cases", "show", case["id"], "--json").json()
        metadata = Path(detail["source_metadata"])
        if metadata.suffix in shown_suffixes:
            continue
        shown_suffixes.add(metadata.suffix)

        assert detail["photo_path"] is None  # packed: no file of its own
        assert detail["photo_store"] == PhotoStore.at(store).location
        assert detail["photo_pack"] in packs_in(store)
        assert detail["photo_size"] == sizes[detail["photo_sha256"]]
        copy = tmp_path / "shown.jpg"
        assert cli("photo", "get", case["id"], "-o", copy).code == 0
        assert copy.read_bytes() == Path(detail["source_photo"]).read_bytes()
        assert file_sha256(copy) == detail["photo_sha256"]
        raw = decode_metadata(metadata.read_bytes(), metadata.suffix)
        assert detail["raw"] == raw

        text = cli("cases", "show", case["id"])
        assert text.code == 0, text.output
        assert detail["photo_pack"] in text.stdout
        assert f"offset {detail['photo_offset']}" in text.stdout
        assert case["plate"] in text.stdout
        printed_raw = text.stdout.split("raw metadata:\n", 1)[1]
        assert json.loads(printed_raw) == raw
    assert shown_suffixes == {".json", ".bin"}

    missing = cli("cases", "show", "00000000-0000-4000-8000-000000000000")
    assert missing.code == 2
    assert missing.stderr.count("\n") == 1


@both_stores
def test_clean_dump_then_rerun_ingests_nothing(
    cli: Cli, db_url: str, clean: DumpManifest, store: StoreAt
) -> None:
    total = len(clean.shots)
    out, first = ingest_json(cli, clean.dump_dir, workers=2)
    assert out.code == 0, out.output
    assert counts_of(first) == {
        "ingested": total,
        "duplicate": 0,
        "rejected": 0,
        "rejected_by_reason": {},
    }
    assert sum(first["ingested_by_type"].values()) == total
    stored = check_store(store, db_url)
    assert len(stored) == total

    again, second = ingest_json(cli, clean.dump_dir)
    assert again.code == 0, again.output
    assert counts_of(second) == {
        "ingested": 0,
        "duplicate": total,
        "rejected": 0,
        "rejected_by_reason": {},
    }
    assert second["run_id"] != first["run_id"]
    assert count(db_url, "cases") == total
    assert check_store(store, db_url) == stored

    text = ingest(cli, clean.dump_dir, workers=2)  # the pool, in text mode, on a known dump
    assert text.code == 0, text.output
    assert f"ingested 0, duplicate {total}, pending 0, rejected 0" in text.stdout
    assert count(db_url, "cases") == total


def test_settle_leaves_young_files_pending_until_they_are_old(
    cli: Cli, db_url: str, mixed: DumpManifest
) -> None:
    orphans = [s for s in mixed.shots if s.expected == "orphan"]
    half_written = good(mixed)[:2]
    young = [
        *(path for shot in orphans for path in shot.paths),
        must(half_written[0].photo),
        must(half_written[1].metadata),
    ]
    make_young(*young)
    want = expected_counts(mixed.shots)

    out, first = ingest_json(cli, mixed.dump_dir, settle=600)
    assert out.code == 1  # the other bad shots are still rejected
    assert first["pending"] == len(orphans) + 2
    assert first["ingested"] == want["ingested"] - 2
    assert "orphan" not in first["rejected_by_reason"]
    assert first["rejected"] == want["rejected"] - len(orphans)
    rejected_paths = {
        p
        for r in cli("rejects", "--run", first["run_id"], "--json").json()["items"]
        for p in r.values()
    }
    assert not rejected_paths & {str(p) for p in young}
    assert cli("report", "--run", first["run_id"], "--json").json()["pending"] == first["pending"]

    make_old(*young)
    out = cli("ingest", mixed.dump_dir, "--workers", "0", "--json")  # the default settle, 60 s
    second = out.json()
    assert second["pending"] == 0
    assert second["ingested"] == 2
    assert second["rejected_by_reason"] == want["rejected_by_reason"]
    assert count(db_url, "cases") == want["ingested"]
    assert sorted(case_keys(db_url)) == sorted(shot_keys(mixed.shots))


def test_pending_alone_is_exit_0(cli: Cli, clean: DumpManifest) -> None:
    shot = clean.shots[0]
    make_young(must(shot.photo))
    out, summary = ingest_json(cli, clean.dump_dir, settle=600)
    assert out.code == 0, out.output
    assert summary["pending"] == 1
    assert summary["ingested"] == len(clean.shots) - 1
    assert summary["rejected"] == 0


@both_stores
def test_dry_run_writes_nothing(
    cli: Cli, db_url: str, mixed: DumpManifest, store: StoreAt, tmp_path: Path
) -> None:
    before = {p: p.stat().st_mtime_ns for p in mixed.dump_dir.rglob("*")}

    text = ingest(cli, mixed.dump_dir, "--dry-run", "--delete-source")
    assert text.code == 1, text.output
    assert "dry run" in text.stdout
    # A dry run is recorded nowhere, so its summary points at no run to look up.
    assert "rejects --run" not in text.stdout and "not recorded (dry run)" in text.stdout
    assert "rejections are not recorded: run without --dry-run" in text.stdout
    out, summary = ingest_json(cli, mixed.dump_dir, "--dry-run", workers=2)
    assert out.code == 1, out.output
    assert (summary["dry_run"], summary["run_id"]) == (True, None)
    assert counts_of(summary) == expected_counts(mixed.shots)

    for table in ("ingest_runs", "cases", "photos", "rejections"):
        assert count(db_url, table) == 0, table
    assert cli("cases", "list", "--json").json()["items"] == []
    nothing = cli("rejects", "--json").json()
    assert (nothing["scope"], nothing["total"], nothing["items"]) == ("no ingest run yet", 0, [])
    unknown = str(uuid.uuid4())
    for command in (["report"], ["rejects"], ["cases", "list"]):
        no_run = cli(*command, "--run", unknown)
        assert (no_run.code, no_run.stdout) == (2, ""), command
        assert f"no ingest run {unknown}" in no_run.stderr
    assert cli("report").stderr.strip() == "Error: no ingest run yet"
    # A dry run binds a store that exists (an S3 prefix always does: its bucket exists),
    # as it would an existing folder, and writes no photo.
    assert [name for name in store_contents(store) if name != IDENTITY_FILE] == []
    assert {p: p.stat().st_mtime_ns for p in mixed.dump_dir.rglob("*")} == before


def test_json_is_all_of_stdout(cli: Cli, clean: DumpManifest) -> None:
    out = ingest(cli, clean.dump_dir, "--json")
    assert out.code == 0
    summary = json.loads(out.stdout)  # nothing else on stdout, or this fails
    assert isinstance(summary, dict) and set(summary) >= SUMMARY_KEYS
    assert isinstance(summary["rejected_by_reason"], dict)
    assert summary["bytes"] == sum(p.stat().st_size for s in clean.shots for p in s.paths)
    assert summary["elapsed_s"] >= 0 and summary["shots_per_s"] >= 0
    root_flag = cli("--json", "ingest", clean.dump_dir, "--workers", "0", "--settle", "0")
    assert json.loads(root_flag.stdout)["duplicate"] == len(clean.shots)


def test_quiet_prints_only_when_something_was_rejected(
    cli: Cli, clean: DumpManifest, tmp_path: Path
) -> None:
    silent = ingest(cli, clean.dump_dir, "--quiet")
    assert (silent.code, silent.stdout, silent.stderr) == (0, "", "")
    root_flag = cli("-q", "ingest", clean.dump_dir, "--workers", "0", "--settle", "0")
    assert (root_flag.code, root_flag.stdout, root_flag.stderr) == (0, "", "")

    lonely = clean.dump_dir / "extra" / "lonely.jpg"
    lonely.parent.mkdir()
    lonely.write_bytes(must(clean.shots[0].photo).read_bytes())
    make_old(lonely)
    loud = ingest(cli, clean.dump_dir, "--quiet")
    assert loud.code == 1
    assert "rejected 1" in loud.stdout
    assert "orphan: 1" in loud.stdout
    assert "lizardctl rejects --run" in loud.stdout


@both_stores
def test_delete_source_removes_only_committed_shots(
    cli: Cli, db_url: str, mixed: DumpManifest, store: StoreAt
) -> None:
    pending = good(mixed)[0]
    make_young(must(pending.metadata))

    out, summary = ingest_json(cli, mixed.dump_dir, "--delete-source", settle=600)
    assert out.code == 1, out.output
    assert summary["problems"] == []
    assert summary["pending"] == 1
    for shot in mixed.shots:
        if shot is pending:
            assert exists(shot) == [True, True]
        elif shot.expected == INGESTED and shot in good(mixed):
            assert exists(shot) == [False, False], shot
        elif shot.expected not in (INGESTED, DUPLICATE):
            assert all(exists(shot)), shot  # rejected: kept for the operator to fix
    resent = [s for s in mixed.shots if s.expected == DUPLICATE]
    originals = [s for s in mixed.shots if s.expected == INGESTED and s not in good(mixed)]
    # Of a shot sent twice, the copy that became the case is gone.
    assert sum(not any(exists(s)) for s in resent + originals) >= len(resent)
    assert (
        count(db_url, "cases")
        == summary["ingested"]
        == expected_counts(mixed.shots)["ingested"] - 1
    )
    check_store(store, db_url)


def test_include_and_exclude(cli: Cli, db_url: str, mixed: DumpManifest) -> None:
    def under(shot: GeneratedShot, folder: str) -> bool:
        return all(p.relative_to(mixed.dump_dir).parts[0] == folder for p in shot.paths)

    part0 = [s for s in mixed.shots if under(s, "part-00")]
    assert 0 < len(part0) < len(mixed.shots)
    out, summary = ingest_json(cli, mixed.dump_dir, "--include", "part-00/*", "--dry-run")
    assert counts_of(summary) == expected_counts(part0)

    # A pattern takes or leaves whole shots: '*.bin' drops the binary shots, photo and all.
    binary = [s for s in mixed.shots if s.metadata and s.metadata.suffix == ".bin"]
    assert binary
    seen = [s for s in mixed.shots if s not in binary]
    out, summary = ingest_json(cli, mixed.dump_dir, "--exclude", "*.bin", "--dry-run")
    assert counts_of(summary) == expected_counts(seen)
    assert summary["ignored_files"] == sum(len(s.paths) for s in binary)

    not_resent = [s for s in mixed.shots if not under(s, "resent")]
    out, summary = ingest_json(cli, mixed.dump_dir, "--exclude", "resent")
    assert out.code == 1
    assert counts_of(summary) == expected_counts(not_resent)
    assert summary["duplicate"] == 0
    assert count(db_url, "cases") == summary["ingested"]


def test_identical_photos_are_stored_once(
    cli: Cli, db_url: str, clean: DumpManifest, store: StoreAt
) -> None:
    shot = next(s for s in clean.shots if s.metadata and s.metadata.suffix == ".json")
    assert shot.photo is not None and shot.metadata is not None
    metadata = json.loads(shot.metadata.read_bytes())
    if "violation_value" in metadata:  # camerus1 is flat, the others nest the violation
        metadata["violation_value"] = "199km/h"
    else:
        metadata["violation"]["value"] = "199km/h"
    again = shot.photo.parent / "same-photo-other-shot"
    again.with_suffix(".json").write_text(json.dumps(metadata))
    again.with_suffix(shot.photo.suffix).write_bytes(shot.photo.read_bytes())
    make_old(again.with_suffix(".json"), again.with_suffix(shot.photo.suffix))

    out, summary = ingest_json(cli, clean.dump_dir)
    assert out.code == 0, out.output
    # The same photo of the same canonical case: one case, whatever the measured value.
    assert (summary["ingested"], summary["duplicate"]) == (len(clean.shots), 1)
    assert len(check_store(store, db_url)) == len(clean.shots)
    assert count(db_url, "photos") == len(clean.shots)
    photo = file_sha256(shot.photo)
    assert [p for p, _ in case_keys(db_url)].count(photo) == 1


def test_unreadable_files_and_symlink_loops_are_reported_not_fatal(
    cli: Cli, db_url: str, clean: DumpManifest
) -> None:
    broken = clean.dump_dir / "broken"
    broken.mkdir()
    (broken / "gone.jpg").symlink_to(broken / "nowhere.jpg")
    (broken / "gone.json").write_bytes(must(clean.shots[0].metadata).read_bytes())
    make_old(broken / "gone.json")
    (broken / "loop").symlink_to(clean.dump_dir, target_is_directory=True)

    out, summary = ingest_json(cli, clean.dump_dir, settle=0)
    assert out.code == 1, out.output
    assert summary["ingested"] == len(clean.shots)
    assert summary["rejected_by_reason"] == {"unreadable": 1}
    assert any("loop" in problem for problem in summary["problems"]), summary["problems"]
    (rejected,) = cli("rejects", "--run", summary["run_id"], "--json").json()["items"]
    assert rejected["photo_path"] == str(broken / "gone.jpg")
    assert "nowhere.jpg" in rejected["message"] or "gone.jpg" in rejected["message"]
    assert count(db_url, "cases") == len(clean.shots)


def test_missing_folder_or_a_file_is_exit_2(cli: Cli, db_url: str, mixed: DumpManifest) -> None:
    nowhere = mixed.root / "nowhere"
    out = ingest(cli, mixed.dump_dir, nowhere)
    assert out.code == 2
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("Error: ") and str(nowhere) in out.stderr
    a_file = ingest(cli, mixed.dump_dir, mixed.cameras_csv)
    assert a_file.code == 2, a_file.output
    assert a_file.stdout == ""
    assert a_file.stderr.count("\n") == 1
    assert str(mixed.cameras_csv) in a_file.stderr
    assert count(db_url, "ingest_runs") == count(db_url, "cases") == 0


def test_unwritable_store_is_exit_3_and_ingests_nothing(
    cli: Cli, db_url: str, mixed: DumpManifest, tmp_path: Path
) -> None:
    regular = tmp_path / "a-file"
    regular.write_text("not a folder")
    out = ingest(cli, mixed.dump_dir, "--store", regular / "photos", workers=2)
    assert out.code == 3, out.output
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("Error: photo store ")
    for table in ("ingest_runs", "cases", "photos", "rejections"):
        assert count(db_url, table) == 0, table
    assert all(all(exists(s)) for s in mixed.shots)


DISK_FULL_HOOK = """
import errno, hashlib, os

_victim = os.environ.get("LIZARD_TEST_DISK_FULL_AT")
if _victim:
    _real_writev = os.writev

    def _writev(fd, buffers):
        if any(hashlib.sha256(buffer).hexdigest() == _victim for buffer in buffers):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return _real_writev(fd, buffers)

    os.writev = _writev
"""
"""Makes the photo whose sha256 is ``LIZARD_TEST_DISK_FULL_AT`` meet a full disk as it is
appended to a pack, in the process and in the workers it forks."""


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "pool"])
def test_store_failing_mid_run_is_exit_3_and_leaves_no_partial_batch(
    cli: Cli,
    db_url: str,
    tmp_path: Path,
    clean: DumpManifest,
    store: StoreAt,
    workers: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills up as the victim's photo is appended to a pack: its batch commits
    nothing, the run fails, a re-run completes. With workers the run is a process of its
    own whose ``os.writev`` a ``sitecustomize`` replaces before its workers fork: a patch in
    this test process would not reach workers spawned by a forkserver, which a test process
    that has used the S3 client must use."""
    victim = clean.shots[len(clean.shots) // 2]
    photo = must(victim.photo).read_bytes()
    digest = hashlib.sha256(photo).hexdigest()
    if workers:
        hooks = tmp_path / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(DISK_FULL_HOOK)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(hooks), *sys.path]),
            "LIZARD_TEST_DISK_FULL_AT": digest,
        }
        args = [clean.dump_dir, "--batch-size", "4", "--workers", str(workers), "--settle", "0"]
        command = [sys.executable, "-m", "lizardctl", "--db", db_url, "ingest", *map(str, args)]
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        out = Outcome(done.returncode, done.stdout, done.stderr)
    else:
        real_writev = os.writev

        def writev(fd: int, buffers: list[Any]) -> int:
            if any(buffer == photo for buffer in buffers):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_writev(fd, buffers)

        with monkeypatch.context() as patch:
            patch.setattr(os, "writev", writev)
            out = ingest(cli, clean.dump_dir, "--batch-size", "4", workers=workers)
    assert out.code == 3, out.output
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("Error: photo store ")
    view = cli("report", "--json").json()
    assert view["status"] == "failed"
    committed = case_keys(db_url)
    assert view["ingested"] == len(committed) < len(clean.shots)
    assert digest not in {photo for photo, _ in committed}
    check_store(store, db_url)  # every committed case has its whole photo
    assert digest not in pack_records(store)

    out, summary = ingest_json(cli, clean.dump_dir, workers=workers)
    assert out.code == 0, out.output
    assert summary["ingested"] == len(clean.shots) - len(committed)
    assert sorted(case_keys(db_url)) == sorted(shot_keys(clean.shots))
    assert len(check_store(store, db_url)) == len(clean.shots)

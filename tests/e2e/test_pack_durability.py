"""The pack store's durability order, proved by killing and starving real ingest runs (issue 13).

A worker appends a batch's photos to its pack, ``fdatasync``s the pack (and its directory
when the pack is new), then commits the batch's rows. A crash at any point may leave bytes
that no row references, never a row pointing at bytes that are not durable. Here a worker
is SIGKILLed between each pair of steps (a ``sitecustomize`` on the subprocess's
``PYTHONPATH`` wraps the real calls: production code has no test hook), the store fills up
or turns read-only mid-run, and two hosts write one store at once; each time, a normal
re-run ingests every shot exactly once and every case's photo reads back whole.

On an S3 store a worker's append builds a sealed pack object and PUTs it, and the PUT's
answer is the durable step; the crash test kills it there too: before the PUT, after it
(rows not committed), after the commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.store import PhotoLocation, PhotoStore
from lizardctl.core.store.packs import is_being_written, list_packs, pack_path, scan_pack
from lizardctl.testing.dumpgen import DumpManifest, generate_dump
from tests.conftest import IN_CI
from tests.e2e.conftest import both_stores, invoke
from tests.e2e.test_ingest_cli import case_keys, shot_keys, sql
from tests.e2e.test_ingest_processes import finish, wait_for_group_to_vanish
from tests.mounts import remount, tmpfs
from tests.s3server import S3Location
from tests.stored import StoreAt, pack_bytes, packs_in, scan, store_contents

pytestmark = pytest.mark.slow

WAIT_S = 120  # a bound against hanging, never an expectation of speed

CRASH_HOOK = '''
"""Test hook: SIGKILL this worker process at the Nth call of one step, before or after it."""
import functools
import multiprocessing
import os
import signal

_STEP = os.environ.get("LIZARD_TEST_CRASH", "")
if _STEP:
    import importlib

    from lizardctl.core.db.uow import UnitOfWork

    _module, _, _class = os.environ["LIZARD_TEST_CRASH_WRITER"].partition(":")
    _writer = getattr(importlib.import_module(_module), _class)
    _name, _when = _STEP.split(":")
    _nth = int(os.environ["LIZARD_TEST_CRASH_AT"])
    _owner, _method = {
        "append": (_writer, "append"),
        "sync": (_writer, "sync"),
        "commit": (UnitOfWork, "commit"),
    }[_name]
    _real = getattr(_owner, _method)
    _calls = {}

    def _die(when):
        if when == _when and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)

    def _counted(call):
        _calls[os.getpid()] = _calls.get(os.getpid(), 0) + 1
        return _calls[os.getpid()] == _nth

    if _name == "commit":
        async def _wrapped(self, *args, **kwargs):
            hit = _counted(self)
            if hit:
                _die("before")
            result = await _real(self, *args, **kwargs)
            if hit:
                _die("after")
            return result
    else:
        def _wrapped(self, *args, **kwargs):
            hit = _counted(self)
            if hit:
                _die("before")
            result = _real(self, *args, **kwargs)
            if hit:
                _die("after")
            return result

    setattr(_owner, _method, functools.wraps(_real)(_wrapped))
'''

STEPS = [
    "append:before",  # nothing written yet
    "append:after",  # written, not durable
    "sync:after",  # durable, no row
    "commit:before",  # rows sent, not committed
    "commit:after",  # committed, the parent never hears of it
]
S3_STEPS = [
    "append:before",  # before the PUT
    "append:after",  # the PUT answered, no row
    "commit:after",  # committed, the parent never hears of it
]
WRITERS = {
    "folder": "lizardctl.core.store.packs:PackWriter",
    "s3": "lizardctl.core.store.s3:S3PackWriter",
}


def small_dump(db_url: str, tmp_path: Path) -> DumpManifest:
    """30 good shots of small photos, cameras registered."""
    manifest = generate_dump(
        tmp_path / "gen",
        cameras=3,
        shots_per_camera=10,
        bad=False,
        photo_bytes=(3000, 5000),
        folders=3,
    )
    for args in (["db", "upgrade"], ["camera", "import", str(manifest.cameras_csv)]):
        out = invoke(["--db", db_url, *args])
        assert out.code == 0, out.output
    return manifest


@pytest.fixture
def dump(db_url: str, tmp_path: Path) -> DumpManifest:
    return small_dump(db_url, tmp_path)


def start(
    db_url: str, cwd: Path, *args: str | Path, env: dict[str, str] | None = None, host: str = ""
) -> subprocess.Popen[str]:
    """``python -m lizardctl ARGS`` as the leader of a new process group; with ``host``, in
    a UTS namespace of its own whose host name is ``host``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIZARD_")}
    command = [sys.executable, "-m", "lizardctl", "--db", db_url, *map(str, args)]
    if host:
        command = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**base, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def ingest_args(dump: DumpManifest, store: StoreAt, workers: int = 2) -> list[str | Path]:
    return [
        "ingest",
        dump.dump_dir,
        "--settle",
        "0",
        "--workers",
        str(workers),
        "--batch-size",
        "5",
        "--store",
        str(store),
        "--json",
    ]


def check_every_case_reads_back(db_url: str, store: StoreAt) -> int:
    """Every case's photo reads back through the store and hashes to its digest; returns
    how many cases there are."""
    rows = sql(
        db_url,
        "SELECT c.photo_sha256, p.size, p.pack, p.pack_offset FROM cases c "
        "JOIN photos p ON p.sha256 = c.photo_sha256",
    )
    assert len(rows) == len(case_keys(db_url)), "a case without its photo row"
    photos = PhotoStore.at(store)
    for sha256, size, pack, offset in rows:
        assert pack is not None, "a new photo stored outside the packs"
        data = photos.read(PhotoLocation(sha256, size, pack, offset))
        assert hashlib.sha256(data).hexdigest() == sha256
    return len(rows)


def check_exactly_once(db_url: str, dump: DumpManifest, store: StoreAt) -> None:
    keys = case_keys(db_url)
    assert len(keys) == len(set(keys)), "a shot became two cases"
    assert set(keys) == shot_keys(dump.shots)
    assert check_every_case_reads_back(db_url, store) == len(dump.shots)


def rerun(db_url: str, tmp_path: Path, dump: DumpManifest, store: StoreAt) -> dict[str, Any]:
    """A normal run after the failed one: it completes, and the packs it wrote are sealed
    (its workers closed their writers on exit)."""
    before = set(packs_in(store))
    code, summary = finish(start(db_url, tmp_path, *ingest_args(dump, store)))
    assert code == 0, summary
    new = set(packs_in(store)) - before
    assert new, "the re-run wrote no pack"
    backend = PhotoStore.at(store).backend
    for name in new:
        assert not backend.being_written(name)
        scanned = scan(pack_bytes(store, name))
        assert scanned.sealed and scanned.end == scanned.size, name
    check_exactly_once(db_url, dump, store)
    return summary


@pytest.mark.parametrize(
    ("store_kind", "step"),
    [
        *(("folder", step) for step in STEPS),
        *(pytest.param("s3", step, marks=pytest.mark.s3) for step in S3_STEPS),
    ],
    indirect=["store_kind"],
)
def test_a_worker_killed_between_any_two_steps_loses_nothing_and_stores_nothing_twice(
    db_url: str,
    tmp_path: Path,
    dump: DumpManifest,
    store_kind: str,
    s3_location: S3Location | None,
    step: str,
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH_HOOK)
    store: StoreAt = s3_location.url if s3_location else tmp_path / "photos"
    crash = {
        "PYTHONPATH": os.pathsep.join([str(hooks), *sys.path]),
        "LIZARD_TEST_CRASH": step,
        "LIZARD_TEST_CRASH_AT": "2",
        "LIZARD_TEST_CRASH_WRITER": WRITERS[store_kind],
    }
    victim = start(db_url, tmp_path, *ingest_args(dump, store), env=crash)
    stdout, stderr = victim.communicate(timeout=WAIT_S)
    assert victim.returncode == 3, (stdout, stderr)
    (line,) = stderr.splitlines()  # one line, no traceback
    assert "an ingest worker process died" in line
    wait_for_group_to_vanish(victim.pid)

    survived = check_every_case_reads_back(db_url, store)
    assert 0 < survived < len(dump.shots)
    summary = rerun(db_url, tmp_path, dump, store)
    assert summary["ingested"] == len(dump.shots) - survived


READ_ONLY_HOOK = '''
"""Test hook: at the Nth append of this worker, seal its pack and remount the store
read-only (a file open for writing would make the remount fail), then append."""
import os
import shutil
import subprocess

_AT = os.environ.get("LIZARD_TEST_READ_ONLY_AT")
if _AT:
    from lizardctl.core.store.packs import PackWriter

    _real = PackWriter.append
    _calls = []

    def _append(self, items):
        _calls.append(1)
        if len(_calls) == int(_AT):
            self.close()
            mount = os.environ["LIZARD_TEST_READ_ONLY_MOUNT"]
            subprocess.run(["mount", "-o", "remount,ro", mount], check=True)
        return _real(self, items)

    PackWriter.append = _append
'''


def check_failed_in_one_line(process: subprocess.Popen[str], *expected: str) -> None:
    stdout, stderr = process.communicate(timeout=WAIT_S)
    assert process.returncode == 3, (stdout, stderr)
    (line,) = stderr.splitlines()  # one line, no traceback
    for words in expected:
        assert words in line, line
    wait_for_group_to_vanish(process.pid)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_store_that_fills_up_mid_run_fails_in_one_line_and_the_next_run_completes(
    db_url: str, tmp_path: Path, dump: DumpManifest, workers: int
) -> None:
    with tmpfs(tmp_path / "photos", "64k") as store:
        full = start(db_url, tmp_path, *ingest_args(dump, store, workers))
        check_failed_in_one_line(full, f"photo store {store}", "No space left on device")
        survived = check_every_case_reads_back(db_url, store)
        assert 0 < survived < len(dump.shots), "the disk did not fill mid-run"

        remount(store, "size=4m")
        summary = rerun(db_url, tmp_path, dump, store)
        assert summary["ingested"] == len(dump.shots) - survived


def test_a_store_turned_read_only_mid_run_fails_in_one_line_and_the_next_run_completes(
    db_url: str, tmp_path: Path, dump: DumpManifest
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(READ_ONLY_HOOK)
    with tmpfs(tmp_path / "photos", "4m") as store:
        env = {
            "PYTHONPATH": os.pathsep.join([str(hooks), *sys.path]),
            "LIZARD_TEST_READ_ONLY_AT": "3",
            "LIZARD_TEST_READ_ONLY_MOUNT": str(store),
        }
        args = ingest_args(dump, store, workers=1)
        read_only = start(db_url, tmp_path, *args, env=env)
        check_failed_in_one_line(read_only, f"photo store {store}", "Read-only file system")
        survived = check_every_case_reads_back(db_url, store)
        assert 0 < survived < len(dump.shots)

        remount(store, "rw")
        summary = rerun(db_url, tmp_path, dump, store)
        assert summary["ingested"] == len(dump.shots) - survived


def _unshare_problem() -> str | None:
    """None when this process may give a command a host name of its own, else why not."""
    try:
        done = subprocess.run(
            ["unshare", "--uts", "hostname", "lizard-probe"], capture_output=True, check=False
        )
    except FileNotFoundError:
        return "no unshare(1)"
    return None if done.returncode == 0 else f"unshare --uts refused: {done.stderr!r}"


@both_stores
def test_two_hosts_write_one_store_at_once_each_to_packs_of_its_own(
    db_url: str, tmp_path: Path, dump: DumpManifest, s3_location: S3Location | None
) -> None:
    """Two hosts, one database and one store; on S3 they share no file system at all."""
    problem = _unshare_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)
    store: StoreAt = s3_location.url if s3_location else tmp_path / "photos"
    own_a, own_b, both = sorted(dump.dump_dir.iterdir())
    resent = tmp_path / "resent"  # the same shots again, for the two hosts to race over
    shutil.copytree(both, resent)
    # The store is bound to the database first: two first uses at once race in
    # StoreService.open (reported with issue 13), which is not what this test is about.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert finish(start(db_url, tmp_path, "ingest", empty, "--store", store, "--json"))[0] == 0
    runs = {}
    for host, folders in (("lizard-a", [own_a, resent]), ("lizard-b", [both, own_b])):
        args = ["ingest", *folders, *ingest_args(dump, store, workers=2)[2:]]
        runs[host] = start(db_url, tmp_path, *args, host=host)
    summaries = [finish(process) for process in runs.values()]

    assert [code for code, _ in summaries] == [0, 0]
    assert sum(s["ingested"] for _, s in summaries) == len(dump.shots)
    assert sum(s["duplicate"] for _, s in summaries) == sum(1 for _ in resent.rglob("*.??g"))
    check_exactly_once(db_url, dump, store)
    packs = packs_in(store)
    for host in runs:
        assert any(f"-{host}-" in name for name in packs), f"{host} wrote no pack: {packs}"
    assert all("-lizard-a-" in name or "-lizard-b-" in name for name in packs)
    for name in packs:
        assert scan(pack_bytes(store, name)).sealed
    # No lock file, no shared state: the identity, and packs no other writer touches.
    assert store_contents(store) == ["lizardctl-store.json", *(f"packs/{n}" for n in packs)]


def test_a_run_without_workers_seals_its_pack(
    db_url: str, tmp_path: Path, dump: DumpManifest
) -> None:
    store = tmp_path / "photos"
    code, summary = finish(start(db_url, tmp_path, *ingest_args(dump, store, workers=0)))
    assert (code, summary["ingested"]) == (0, len(dump.shots))
    (name,) = list_packs(store)
    assert not is_being_written(store, name)
    assert scan_pack(pack_path(store, name)).sealed
    check_exactly_once(db_url, dump, store)

"""``--store s3://BUCKET/PREFIX`` through the command line, against a real S3 server
(SeaweedFS): every photo command takes it, and its failures are one line, exit 3 (2 for a
bucket that is not there), never a secret. A server that dies mid-ingest leaves only rows
whose photos were uploaded, and the run after it, with the server back, completes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from lizardctl.core.ingest import pool
from lizardctl.core.store import PhotoLocation, PhotoStore
from lizardctl.testing.dumpgen import DumpManifest
from tests.e2e.conftest import Outcome, invoke
from tests.e2e.test_ingest_cli import case_keys, shot_keys, sql
from tests.e2e.test_ingest_processes import finish
from tests.e2e.test_pack_durability import small_dump, start
from tests.s3server import S3Location, WeedServer

WAIT_S = 120  # a bound against hanging, never an expectation of speed

STALL_HOOK = '''
"""Test hook: after each commit, a worker waits until the test has killed the S3 server."""
import multiprocessing
import os
import time
from pathlib import Path

_DIR = os.environ.get("LIZARD_TEST_STALL_DIR")
if _DIR:
    from lizardctl.core.db.uow import UnitOfWork

    _real = UnitOfWork.commit

    async def _commit(self, *args, **kwargs):
        result = await _real(self, *args, **kwargs)
        killed = Path(_DIR, "killed")
        if multiprocessing.parent_process() is not None and not killed.exists():
            Path(_DIR, f"committed-{os.getpid()}").touch()
            deadline = time.monotonic() + 60
            while not killed.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return result

    UnitOfWork.commit = _commit
'''


def no_profile_files(tmp_path: Path) -> dict[str, str]:
    """The user's own ~/.aws files stay out of the tests."""
    return {
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }


@pytest.fixture
def dump(db_url: str, tmp_path: Path) -> DumpManifest:
    return small_dump(db_url, tmp_path)


def lizard(db_url: str, location: S3Location, tmp_path: Path, *args: str, **env: str) -> Outcome:
    return invoke(["--db", db_url, *args], env=location.env | no_profile_files(tmp_path) | env)


def ingest(dump: DumpManifest, *more: str) -> list[str]:
    return ["ingest", str(dump.dump_dir), "--settle", "0", "--batch-size", "5", *more]


def reads_back(db_url: str, location: S3Location, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every case's photo reads back from the S3 store and hashes to its digest; returns
    how many cases there are."""
    for name, value in location.env.items():
        monkeypatch.setenv(name, value)
    rows = sql(
        db_url,
        "SELECT c.photo_sha256, p.size, p.pack, p.pack_offset FROM cases c "
        "JOIN photos p ON p.sha256 = c.photo_sha256",
    )
    assert len(rows) == len(case_keys(db_url)), "a case without its photo row"
    photos = PhotoStore.at(location.url)
    for sha256, size, pack, offset in rows:
        data = photos.read(PhotoLocation(sha256, size, pack, offset))
        assert hashlib.sha256(data).hexdigest() == sha256
    return len(rows)


def one_error_line(outcome: Outcome) -> str:
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, outcome.output
    return errors[0]


def test_every_photo_command_takes_an_s3_store(
    db_url: str,
    dump: DumpManifest,
    s3_store: S3Location,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = ingest(dump, "--workers", "2", "--store", s3_store.url, "--json")
    out = lizard(db_url, s3_store, tmp_path, *run)
    assert out.code == 0, out.output
    assert out.json()["store"] == s3_store.url
    assert reads_back(db_url, s3_store, monkeypatch) == len(dump.shots)

    # The database remembers its store: LIZARD_STORE or nothing at all names it again.
    photo = dump.shots[0].photo
    assert photo is not None
    sha256 = hashlib.sha256(photo.read_bytes()).hexdigest()
    got = tmp_path / "got.jpg"
    out = lizard(db_url, s3_store, tmp_path, "photo", "get", sha256, "-o", str(got))
    assert out.code == 0, out.output
    assert got.read_bytes() == photo.read_bytes()
    out = lizard(
        db_url, s3_store, tmp_path, "verify", "--read-data", "--json", LIZARD_STORE=s3_store.url
    )
    assert out.code == 0, out.output
    report = out.json()
    assert report["counts"]["problems"] == 0
    assert report["store"] == s3_store.url

    (case_id,) = sql(db_url, f"SELECT id FROM cases WHERE photo_sha256 = '{sha256}'")[0]
    out = lizard(db_url, s3_store, tmp_path, "cases", "show", str(case_id), "--json")
    assert out.code == 0, out.output
    assert out.json()["photo_store"] == s3_store.url

    out = lizard(db_url, s3_store, tmp_path, "store", "reclaim", "--store", s3_store.url)
    assert out.code == 0, out.output
    out = lizard(db_url, s3_store, tmp_path, "store", "repack")
    assert (out.code, out.stdout.strip()) == (
        0,
        "nothing to move: this photo store holds packs only (no file per photo)",
    )

    out = lizard(db_url, s3_store, tmp_path, *ingest(dump, "--json"))
    assert out.code == 0, out.output
    assert out.json()["duplicate"] == len(dump.shots)


def test_an_unreachable_endpoint_is_exit_3_naming_it_in_one_line(
    db_url: str, dump: DumpManifest, s3_store: S3Location, tmp_path: Path
) -> None:
    out = lizard(
        db_url,
        s3_store,
        tmp_path,
        *ingest(dump, "--store", s3_store.url),
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
    )
    assert out.code == 3, out.output
    assert one_error_line(out) == (
        f"Error: photo store {s3_store.url} at http://127.0.0.1:9: cannot reach the endpoint "
        "(no answer after retries)"
    )
    assert s3_store.env["AWS_SECRET_ACCESS_KEY"] not in out.output


def test_refused_credentials_are_exit_3_and_no_secret_is_printed(
    db_url: str, dump: DumpManifest, s3_store: S3Location, tmp_path: Path
) -> None:
    wrong = "wrong-" + "s" * 34
    for args in (ingest(dump, "--store", s3_store.url), ["verify", "--store", s3_store.url]):
        out = lizard(db_url, s3_store, tmp_path, *args, AWS_SECRET_ACCESS_KEY=wrong)
        assert out.code == 3, out.output
        line = one_error_line(out)
        assert line.startswith(f"Error: photo store {s3_store.url} at ")
        assert line.endswith("the credentials were refused (SignatureDoesNotMatch)")
        assert wrong not in out.output
        assert s3_store.env["AWS_SECRET_ACCESS_KEY"] not in out.output


def test_a_bucket_that_does_not_exist_is_named_and_never_made(
    db_url: str, dump: DumpManifest, s3_server: WeedServer, tmp_path: Path
) -> None:
    location = s3_server.new_location("no-such-bucket")
    out = lizard(db_url, location, tmp_path, *ingest(dump, "--store", location.url))
    assert out.code == 2, out.output
    assert one_error_line(out) == (
        f"Error: bucket no-such-bucket does not exist at {s3_server.endpoint}: create it "
        "first (lizardctl never creates buckets)"
    )
    out = lizard(db_url, location, tmp_path, *ingest(dump, "--store", "s3://No_Such"))
    assert out.code == 2, out.output
    assert "not an S3 bucket name 'No_Such'" in one_error_line(out)


@pytest.mark.slow
def test_the_server_dying_mid_ingest_commits_only_uploaded_photos_and_the_rerun_completes(
    db_url: str,
    dump: DumpManifest,
    own_s3_server: WeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location = own_s3_server.new_location()
    hooks, stall = tmp_path / "hooks", tmp_path / "stall"
    hooks.mkdir()
    stall.mkdir()
    (hooks / "sitecustomize.py").write_text(STALL_HOOK)
    env = location.env | no_profile_files(tmp_path)
    stalled = env | {
        "PYTHONPATH": os.pathsep.join([str(hooks), *sys.path]),
        "LIZARD_TEST_STALL_DIR": str(stall),
    }

    def kill_after_first_commit() -> None:
        deadline = time.monotonic() + WAIT_S
        while not any(stall.glob("committed-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        own_s3_server.kill()
        (stall / "killed").touch()

    killer = threading.Thread(target=kill_after_first_commit)
    killer.start()
    args = ingest(dump, "--workers", "2", "--store", location.url, "--json")
    process = start(db_url, tmp_path, *args, env=stalled)
    try:
        stdout, stderr = process.communicate(timeout=WAIT_S)
    finally:
        killer.join()
    assert process.returncode == 3, stdout + stderr
    assert stderr.strip() == (
        f"Error: photo store {location.url} at {own_s3_server.endpoint}: cannot reach the "
        "endpoint (no answer after retries)"
    )
    assert location.env["AWS_SECRET_ACCESS_KEY"] not in stdout + stderr
    committed = len(case_keys(db_url))
    assert 0 < committed < len(dump.shots)

    own_s3_server.restart()
    assert reads_back(db_url, location, monkeypatch) == committed
    code, summary = finish(start(db_url, tmp_path, *args, env=env))
    assert code == 0, summary
    keys = case_keys(db_url)
    assert len(keys) == len(set(keys)) == len(dump.shots), "a shot lost or stored twice"
    assert set(keys) == shot_keys(dump.shots)
    assert reads_back(db_url, location, monkeypatch) == len(dump.shots)


def test_workers_from_a_forkserver_started_before_the_s3_settings_still_reach_the_store(
    db_url: str,
    dump: DumpManifest,
    s3_store: S3Location,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forkserver keeps the environment it started with: workers it spawns must get the
    store from the command, not from variables they would not see (CI found them signing
    in to AWS itself). Here the forkserver starts with no AWS variables at all, and the pool
    is made to use it, as it does once the S3 client's threads run in the process."""
    for name in s3_store.env:
        monkeypatch.delenv(name, raising=False)
    forkserver = multiprocessing.get_context("forkserver")
    with forkserver.Pool(1) as warm:  # starts the forkserver now, without the variables
        assert warm.apply(os.getpid) != os.getpid()
    monkeypatch.setattr(pool, "_fork_is_safe", lambda: False)
    run = ingest(dump, "--workers", "2", "--store", s3_store.url)
    out = lizard(db_url, s3_store, tmp_path, *run)
    assert out.code == 0, out.output
    assert reads_back(db_url, s3_store, monkeypatch) == len(dump.shots)

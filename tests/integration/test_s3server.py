"""The S3 server of the tests (``tests/s3server.py``) is a real one, reachable only from
this machine, that refuses other credentials and leaves nothing running.

The object tests go through obstore, the client the photo store will use; they skip while
obstore is not installed (it joins the main dependencies with the S3 store).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import weed_or_skip
from tests.s3server import (
    SESSION_BUCKET,
    S3Location,
    WeedServer,
    grpc_sockets,
    remove_stale_sockets,
)

REPO = Path(__file__).resolve().parents[2]
_LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 in /proc/net


@pytest.fixture
def obstore() -> ModuleType:
    module: ModuleType = pytest.importorskip("obstore", reason="obstore is not installed")
    return module


def _open(obstore: ModuleType, location: S3Location, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The store at ``location`` as the product opens it: from its URL and the environment."""
    for name, value in location.env.items():
        monkeypatch.setenv(name, value)
    return obstore.store.S3Store.from_url(location.url, retry_config={"max_retries": 0})


def test_objects_round_trip(
    obstore: ModuleType, s3_store: S3Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _open(obstore, s3_store, monkeypatch)
    photos = {f"ab/{n}.jpg": os.urandom(1000 + n) for n in range(3)}
    for path, data in photos.items():
        obstore.put(store, path, data)

    assert obstore.get(store, "ab/1.jpg").bytes().to_bytes() == photos["ab/1.jpg"]
    middle = obstore.get_range(store, "ab/2.jpg", start=10, end=20)
    assert bytes(middle) == photos["ab/2.jpg"][10:20]
    assert sorted(meta["path"] for batch in obstore.list(store) for meta in batch) == sorted(photos)

    obstore.delete(store, "ab/0.jpg")
    with pytest.raises(FileNotFoundError, match="NoSuchKey"):
        obstore.get(store, "ab/0.jpg")
    assert [m["path"] for batch in obstore.list(store) for m in batch] == ["ab/1.jpg", "ab/2.jpg"]


def test_each_store_is_a_fresh_prefix(s3_server: WeedServer) -> None:
    first, second = s3_server.new_location(), s3_server.new_location()
    assert first.bucket == second.bucket
    assert first.prefix != second.prefix
    assert first.url == f"s3://{first.bucket}/{first.prefix}"


def test_create_only_put_is_refused_over_an_existing_object(
    obstore: ModuleType, s3_store: S3Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo store writes content-addressed objects with If-None-Match: SeaweedFS keeps it."""
    store = _open(obstore, s3_store, monkeypatch)
    obstore.put(store, "photo", b"first", mode="create")
    with pytest.raises(obstore.exceptions.AlreadyExistsError):
        obstore.put(store, "photo", b"second", mode="create")
    assert obstore.get(store, "photo").bytes().to_bytes() == b"first"


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_other_credentials_are_refused(
    obstore: ModuleType,
    s3_store: S3Location,
    monkeypatch: pytest.MonkeyPatch,
    wrong: str,
) -> None:
    name = "AWS_SECRET_ACCESS_KEY" if wrong == "secret" else "AWS_ACCESS_KEY_ID"
    wrong_env = replace(s3_store, env=s3_store.env | {name: "x"})
    store = _open(obstore, wrong_env, monkeypatch)
    with pytest.raises(obstore.exceptions.PermissionDeniedError, match="403 Forbidden"):
        obstore.put(store, "photo", b"data")


def test_a_wrong_secret_is_refused_without_obstore_too(s3_server: WeedServer) -> None:
    """The server's own check, whatever client asks."""
    status, body = s3_server.request("GET", f"/{SESSION_BUCKET}/missing", secret_key="wrong")
    assert status == 403
    assert b"SignatureDoesNotMatch" in body


def test_an_unknown_bucket_is_an_error_not_made_on_upload(
    obstore: ModuleType, s3_server: WeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = s3_server.new_location(bucket="no-such-bucket")
    store = _open(obstore, location, monkeypatch)
    with pytest.raises(FileNotFoundError, match="NoSuchBucket"):
        obstore.put(store, "photo", b"data")
    status, _ = s3_server.request("HEAD", "/no-such-bucket")
    assert status == 404


def test_make_bucket_gives_a_bucket_of_its_own(
    obstore: ModuleType, s3_server: WeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = s3_server.new_location(bucket=s3_server.make_bucket())
    store = _open(obstore, location, monkeypatch)
    obstore.put(store, "photo", b"data")
    assert [m["path"] for batch in obstore.list(store) for m in batch] == ["photo"]


def _listening(pid: int) -> list[tuple[str, int]]:
    """(hex address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink())
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((address, int(port, 16)))
    return found


def test_the_server_listens_on_loopback_only(s3_server: WeedServer) -> None:
    listening = _listening(s3_server.process.pid)
    assert {port for _, port in listening} == set(s3_server.ports.values())
    assert {address for address, _ in listening} <= _LOOPBACK


def _alive(pid: int) -> bool:
    """Does any thread of ``pid`` still run? A killed weed's main thread is a zombie
    (unreaped: its parent is gone) while others still exit, holding its sockets open."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(FileNotFoundError):
            states.append(stat.read_bytes().rsplit(b")", 1)[1].split()[0])
    return any(state != b"Z" for state in states)


@pytest.mark.slow
def test_stop_leaves_no_process_listener_or_socket(own_s3_server: WeedServer) -> None:
    assert own_s3_server.pids() == {own_s3_server.process.pid}  # weed forks no children
    own_s3_server.stop()  # SIGTERM; weed mini's shutdown hangs now and then, then SIGKILL
    assert own_s3_server.process.returncode is not None
    assert own_s3_server.pids() == set()
    assert own_s3_server.request("GET", f"/{SESSION_BUCKET}") == (0, b"")
    assert [path for path in grpc_sockets(own_s3_server.ports) if path.exists()] == []
    assert list(Path("/tmp").glob(f"weed.*.{own_s3_server.process.pid}")) == []  # glog's files


@pytest.mark.slow
def test_a_killed_server_stops_answering_and_its_sockets_go_at_stop(
    own_s3_server: WeedServer,
) -> None:
    own_s3_server.kill()
    assert own_s3_server.pids() == set()
    assert own_s3_server.request("PUT", f"/{SESSION_BUCKET}/photo", b"data") == (0, b"")
    assert all(path.exists() for path in grpc_sockets(own_s3_server.ports))  # weed's litter
    own_s3_server.stop()
    assert [path for path in grpc_sockets(own_s3_server.ports) if path.exists()] == []


_PARENT = """
import json, sys
from pathlib import Path
from tests.s3server import WeedServer, weed_binary
server = WeedServer.start(weed_binary(), Path(sys.argv[1]))
print(json.dumps({"pid": server.process.pid, "ports": server.ports}), flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_the_server_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: a pytest killed with SIGKILL leaves no weed running."""
    weed_or_skip()
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        start_new_session=True,
    )
    started: dict[str, Any] = {}
    try:
        assert parent.stdout is not None
        started = json.loads(parent.stdout.readline())
        assert _alive(started["pid"])
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(started["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(started["pid"])
        # Nobody stopped it, so weed's sockets are left; what stop() does removes them all.
        remove_stale_sockets(started["ports"])
        assert [path for path in grpc_sockets(started["ports"]) if path.exists()] == []
    finally:
        parent.kill()
        parent.wait()
        if started:
            if _alive(started["pid"]):
                os.killpg(started["pid"], signal.SIGKILL)
            remove_stale_sockets(started["ports"])

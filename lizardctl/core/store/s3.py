"""A store in an S3 bucket: packs as objects under ``PREFIX/packs/``, the identity object
``PREFIX/lizardctl-store.json`` beside them. No shared file system is needed between hosts.

Every object is a sealed pack, byte for byte in the folder format (``packs.py``): header,
records, seal. A writer builds one object per ``append`` (one read round of a batch, at
most ~64 MB) and uploads it with one single-part PUT, so a photo costs no request of its
own and an interrupted upload leaves nothing behind: there is no multipart upload to
abort. The PUT returning is the durable step: S3 acknowledges an object only once it is
stored whole, and only whole objects are ever visible. So a batch commits its rows after its
PUTs returned, and a read is one ranged GET of record header and photo.

An object is never written again, so no writer "holds" one: ``being_written`` is always
False. An object uploaded by a live ingest whose rows are not committed yet looks
unreferenced; reclaiming space never deletes it because reclaim and ingest never run at
the same time (``PruneGuard``), on S3 as on a folder.

The client is obstore (measured against aiobotocore in ``benchmarks/bench_s3_client.py``);
its calls are synchronous, release the GIL and retry throttling, 5xx answers and dropped
connections with backoff. Its errors become ours here, each one line naming the store and
the endpoint, never a credential or the server's XML.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError

from lizardctl.core.errors import EnvironmentFailure, UsageError
from lizardctl.core.store.backend import PackFinding
from lizardctl.core.store.folder import check_record, cut_short
from lizardctl.core.store.identity import IDENTITY_FILE, identity_content, parse_identity
from lizardctl.core.store.packs import (
    PACK_HEADER,
    PACKS_DIR,
    RECORD,
    SEAL_MAGIC,
    DamagedRecord,
    PackError,
    check_read,
    host_label,
    is_pack_name,
    new_pack_name,
    pack_header,
    record_header,
    seal_record,
)
from lizardctl.core.store.s3config import S3Settings, resolve

if TYPE_CHECKING:
    from obstore.store import S3Store

RETRY = {
    "max_retries": 5,
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=5),
        "base": 2,
    },
    "retry_timeout": timedelta(seconds=60),
}
"""Bounded retries: a throttled or briefly failing server gets ~6 s (jittered backoff, up
to 60 s with slow answers); a dead endpoint fails a run in about a second."""
WHOLE_OBJECT_SHARE = 0.5
"""``check_records`` with data GETs a whole object when at least this share of it is to be
read: one request instead of many ranges."""
_CODE = re.compile(r"<Code>([A-Za-z]{1,64})</Code>")
_STATUS = re.compile(r"status code: ([0-9]{3}[A-Za-z ]{0,40})")
_REFUSED = ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "ExpiredToken")


class BucketMissing(UsageError):
    """The bucket named by ``--store`` does not exist: lizardctl never creates buckets."""


class S3Unavailable(EnvironmentFailure):
    """The S3 endpoint cannot be reached, refused the credentials, or failed a request."""


class S3Backend:
    """Packs in ``s3://BUCKET/PREFIX``; picklable (only its settings travel: each process
    opens its own client, a forked one too)."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._client: S3Store | None = None
        self._pid = 0
        self._sizes: dict[str, int] | None = None

    @classmethod
    def at(cls, url: str) -> S3Backend:
        """The store at ``url``, signed in as the environment and profile files say."""
        return cls(resolve(url))

    def __getstate__(self) -> S3Settings:
        return self.settings

    def __setstate__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._client, self._pid, self._sizes = None, 0, None

    def __eq__(self, other: object) -> bool:
        """The same store signed in the same way: a worker keeps its writer while its
        batches name one store."""
        return isinstance(other, S3Backend) and other.settings == self.settings

    def __hash__(self) -> int:
        return hash(self.settings)

    @property
    def client(self) -> S3Store:
        """This process's client (a client is not carried across ``fork``)."""
        if self._client is None or self._pid != os.getpid():
            from obstore.store import S3Store

            settings = self.settings
            self._client = S3Store(
                settings.bucket,
                prefix=settings.prefix or None,
                client_options={"allow_http": True} if settings.allow_http else None,
                retry_config=RETRY,  # type: ignore[arg-type]
                **settings.store_options(),  # type: ignore[arg-type]
            )
            self._pid = os.getpid()
        return self._client

    @property
    def location(self) -> str:
        return self.settings.url

    def exists(self) -> bool:
        """Whether the bucket answers; a missing bucket is False, anything else raises."""
        try:
            with self._calls("list"):
                next(iter(obstore.list(self.client, PACKS_DIR + "/", chunk_size=1)), None)
        except BucketMissing:
            return False
        return True

    def make(self) -> None:
        """Nothing to create: a prefix needs none, and buckets are the operator's to make
        (with their region, policy and lifecycle), never made on a typo."""
        if not self.exists():
            raise self._bucket_missing()

    def check_writable(self) -> None:
        """PUT and DELETE a tiny probe object, so that bad credentials, a read-only key or
        a dead endpoint fail the run before it starts."""
        probe = f".probe-{host_label()}-{os.getpid()}-{secrets.token_hex(4)}"
        with self._calls("write a probe object"):
            obstore.put(self.client, probe, b"probe", use_multipart=False)
            obstore.delete(self.client, probe)

    def identity(self) -> uuid.UUID | None:
        try:
            with self._calls("read the identity object"):
                text = bytes(obstore.get(self.client, IDENTITY_FILE).bytes())
        except FileNotFoundError:
            return None
        return parse_identity(text[:4096], self.location, self._url(IDENTITY_FILE))

    def create_identity(self, store_id: uuid.UUID | None = None) -> uuid.UUID:
        """Create the identity object unless one exists (If-None-Match: a concurrent
        creator's stands), and return the id the store has."""
        content = identity_content(store_id or uuid.uuid4())
        with contextlib.suppress(AlreadyExistsError), self._calls("write the identity object"):
            obstore.put(self.client, IDENTITY_FILE, content, mode="create", use_multipart=False)
        found = self.identity()
        assert found is not None
        return found

    def writer(self, store_id: uuid.UUID, limit: int) -> S3PackWriter:
        """A writer of this process's own; ``limit`` does not apply: an object holds one
        append, whose size the caller bounds."""
        return S3PackWriter(self, store_id)

    def read(self, pack: str, offset: int, sha256: str, length: int) -> bytes:
        key = self._key(pack)
        data = self._get_range(pack, key, offset, RECORD.size + length)
        return check_read(self._url(key), offset, sha256, length, data)

    def where(self, pack: str, offset: int) -> str:
        return f"{self._url(self._key(pack))} at offset {offset}"

    def packs(self) -> list[str]:
        """Every pack object, oldest first; their sizes are kept for ``size`` (objects never
        change, so a size listed stays true until the object is removed)."""
        sizes: dict[str, int] = {}
        with self._calls("list the packs"):
            for batch in obstore.list(self.client, PACKS_DIR + "/", chunk_size=1000):
                for meta in batch:
                    name = meta["path"].rpartition("/")[2]
                    if is_pack_name(name):
                        sizes[name] = meta["size"]
        self._sizes = sizes
        return sorted(sizes)

    def size(self, pack: str) -> int | None:
        """From the last listing (one listing serves a whole pass), else a HEAD."""
        if self._sizes is None:
            self.packs()
        assert self._sizes is not None
        if pack in self._sizes:
            return self._sizes[pack]
        return self._head(pack)

    def being_written(self, pack: str) -> bool:
        return False

    def seal_bytes(self, pack: str, size: int) -> int:
        if size < PACK_HEADER.size + RECORD.size:
            return 0
        tail = self._get_range(pack, self._key(pack), size - RECORD.size, RECORD.size)
        return RECORD.size if tail[:4] == SEAL_MAGIC else 0

    def remove(self, pack: str) -> None:
        """Delete the object; S3 acknowledges a DELETE once it is done."""
        with self._calls("delete a pack"):
            obstore.delete(self.client, self._key(pack))
        if self._sizes is not None:
            self._sizes.pop(pack, None)

    def check_records(
        self, pack: str, records: Sequence[tuple[int, str, int]], read_data: bool
    ) -> tuple[int, list[PackFinding]]:
        """Headers (with ``read_data``, whole records) in one ranged request set, or one
        GET of the object when most of it is to be read; ``check_record`` judges each."""
        end = self._head(pack)
        if end is None:
            return 0, _missing(pack, records)
        inside = [r for r in records if r[0] + RECORD.size + r[2] <= end]
        findings = [cut_short(pack, o, s, end) for o, s, n in records if o + RECORD.size + n > end]
        wanted = sum(RECORD.size + (n if read_data else 0) for _, _, n in inside)
        key = self._key(pack)
        try:
            with self._calls("read a pack"):
                if read_data and wanted >= WHOLE_OBJECT_SHARE * end:
                    whole = memoryview(obstore.get(self.client, key).bytes())
                    datas = [whole[o : o + RECORD.size + n] for o, _, n in inside]
                elif inside:
                    datas = [
                        memoryview(b)
                        for b in obstore.get_ranges(
                            self.client,
                            key,
                            starts=[o for o, _, _ in inside],
                            lengths=[RECORD.size + (n if read_data else 0) for _, _, n in inside],
                        )
                    ]
                else:
                    datas = []
        except FileNotFoundError:
            return 0, _missing(pack, records)
        hashed = 0
        for (offset, sha256, size), data in zip(inside, datas, strict=True):
            finding = check_record(pack, offset, sha256, size, data, read_data)
            if finding is not None:
                findings.append(finding)
            if read_data and (finding is None or finding[1] != "damaged-record"):
                hashed += size
        findings.sort(key=lambda finding: finding[4])
        return hashed, findings

    def put_pack(self, name: str, body: Sequence[bytes]) -> None:
        """Upload one whole pack object: one single-part PUT."""
        with self._calls("upload a pack"):
            obstore.put(self.client, self._key(name), body, use_multipart=False)

    def _head(self, pack: str) -> int | None:
        try:
            with self._calls("look at a pack"):
                return int(obstore.head(self.client, self._key(pack))["size"])
        except FileNotFoundError:
            return None

    def _get_range(self, pack: str, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the object's end); a pack that is gone
        is ``FileNotFoundError`` naming it, a start past its end ``DamagedRecord``."""
        try:
            with self._calls("read a pack"):
                return bytes(obstore.get_range(self.client, key, start=start, length=length))
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no such pack object", self._url(key)) from None
        except S3Unavailable as exc:
            if "416" not in str(exc.__cause__) and "InvalidRange" not in str(exc.__cause__):
                raise
            message = f"{self._url(key)}: the object ends before offset {start}"
            raise DamagedRecord(message) from None

    def _key(self, pack: str) -> str:
        if not is_pack_name(pack):
            raise DamagedRecord(f"not a pack name: {pack!r}")
        return f"{PACKS_DIR}/{pack}"

    def _url(self, key: str) -> str:
        return f"{self.location}/{key}"

    def _bucket_missing(self) -> BucketMissing:
        return BucketMissing(
            f"bucket {self.settings.bucket} does not exist at {self.settings.shown_endpoint}: "
            "create it first (lizardctl never creates buckets)"
        )

    @contextlib.contextmanager
    def _calls(self, action: str) -> Iterator[None]:
        """The client's errors as ours: a missing object stays ``FileNotFoundError`` for
        the caller; a missing bucket, refused credentials and a dead endpoint become one
        line naming the endpoint, with at most the server's error code as the reason."""
        try:
            yield
        except FileNotFoundError as exc:
            if _code(exc) == "NoSuchBucket":
                raise self._bucket_missing() from exc
            raise
        except AlreadyExistsError:
            raise
        except BaseError as exc:
            raise self._failure(action, exc) from exc

    def _failure(self, action: str, exc: BaseError) -> BucketMissing | S3Unavailable:
        code = _code(exc)
        if code == "NoSuchBucket":
            return self._bucket_missing()
        text = str(exc)
        where = f"photo store {self.location} at {self.settings.shown_endpoint}"
        status = _STATUS.search(text)
        if code in _REFUSED or type(exc).__name__ in (
            "PermissionDeniedError",
            "UnauthenticatedError",
        ):
            return S3Unavailable(f"{where}: the credentials were refused ({code or 'HTTP 403'})")
        if status is None and "error sending request" in text:
            return S3Unavailable(f"{where}: cannot reach the endpoint (no answer after retries)")
        if status is not None and status.group(1).startswith("403"):
            return S3Unavailable(f"{where}: the credentials were refused ({code or 'HTTP 403'})")
        reason = code or (f"HTTP {status.group(1).strip()}" if status else type(exc).__name__)
        return S3Unavailable(f"{where}: cannot {action} ({reason})")


def _code(exc: BaseException) -> str | None:
    """The S3 error code in the server's answer (``NoSuchBucket``), if it sent one."""
    found = _CODE.search(str(exc))
    return found.group(1) if found else None


def _missing(pack: str, records: Sequence[tuple[int, str, int]]) -> list[PackFinding]:
    message = f"pack {pack} is not in the store"
    return [(sha256, "missing-photo", message, pack, offset) for offset, sha256, _ in records]


class S3PackWriter:
    """Uploads each append as one sealed pack object.

    Batches run side by side in one process (``--workers 0``) share a writer; each call
    holds a lock, so PUTs are sequential per writer (one writer per worker process bounds
    the concurrency). ``sync`` names the places a batch appended and fails unless every one
    is in an object this writer saw acknowledged.
    """

    def __init__(self, backend: S3Backend, store_id: uuid.UUID) -> None:
        self.backend = backend
        self.store_id = store_id
        self.host = host_label()
        self._name = ""
        self._uploaded: set[str] = set()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The pack object written last ('' before the first append)."""
        return self._name

    def append(self, items: Sequence[tuple[str, bytes]]) -> list[tuple[str, int]]:
        """Upload ``items`` (sha256, bytes) as one new pack object; returns (pack, record
        offset) of each, in order, once the PUT is acknowledged. ``PackError`` otherwise."""
        if not items:
            return []
        with self._lock:
            name = new_pack_name(self.host)
            body = [pack_header(self.store_id)]
            places = []
            offset = PACK_HEADER.size
            for sha256, data in items:
                places.append((name, offset))
                body += (record_header(sha256, len(data)), data)
                offset += RECORD.size + len(data)
            body.append(seal_record(len(items)))
            try:
                self.backend.put_pack(name, body)
            except (S3Unavailable, BucketMissing) as exc:
                raise PackError(str(exc)) from exc
            self._uploaded.add(name)
            self._name = name
            return places

    def sync(self, places: Sequence[tuple[str, int]] = ()) -> None:
        """Nothing to flush (an acknowledged PUT is durable); fails when any of ``places``
        is not in an object this writer uploaded, so no row points at bytes not stored."""
        with self._lock:
            lost = [place for place in places if place[0] not in self._uploaded]
        if lost:
            raise PackError(
                f"photo store {self.backend.location}: {len(lost)} photos appended are in no "
                "uploaded pack object"
            )

    def close(self) -> None:
        """Nothing to seal: every object was sealed when it was built."""

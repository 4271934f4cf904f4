"""The S3 backend against a real server (SeaweedFS): packs uploaded whole and sealed, read
back by ranged GETs, checked like folder packs, and failures said in one line."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import uuid
from pathlib import Path

import obstore
import pytest

from lizardctl.core.store import PhotoLocation, PhotoStore, PhotoUnreadable
from lizardctl.core.store.identity import IDENTITY_FILE, StoreIdentityError
from lizardctl.core.store.packs import (
    PACK_HEADER,
    RECORD,
    DamagedRecord,
    PackError,
    is_pack_name,
    scan_pack,
)
from lizardctl.core.store.s3 import BucketMissing, S3Backend, S3Unavailable
from lizardctl.core.store.s3config import resolve
from tests.s3server import S3Location, WeedServer

STORE_ID = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def backend(location: S3Location, **env: str) -> S3Backend:
    return S3Backend(resolve(location.url, location.env | env))


def photos(count: int, size: int = 2000) -> list[tuple[str, bytes]]:
    blobs = [os.urandom(size + n) for n in range(count)]
    return [(hashlib.sha256(blob).hexdigest(), blob) for blob in blobs]


def stored(s3: S3Backend, count: int = 4) -> tuple[list[tuple[str, bytes]], list[tuple[str, int]]]:
    items = photos(count)
    writer = s3.writer(STORE_ID, 0)
    places = writer.append(items)
    writer.sync(places)
    return items, places


def records(
    items: list[tuple[str, bytes]], places: list[tuple[str, int]]
) -> list[tuple[int, str, int]]:
    return [
        (offset, sha256, len(data))
        for (sha256, data), (_, offset) in zip(items, places, strict=True)
    ]


def raw(s3: S3Backend, pack: str) -> bytearray:
    return bytearray(obstore.get(s3.client, f"packs/{pack}").bytes().to_bytes())


def replace_object(s3: S3Backend, pack: str, data: bytes | bytearray) -> None:
    obstore.put(s3.client, f"packs/{pack}", bytes(data), use_multipart=False)


def test_an_append_is_one_sealed_pack_object_read_back_record_by_record(
    s3_store: S3Location, tmp_path: Path
) -> None:
    s3 = backend(s3_store)
    items, places = stored(s3)

    (name,) = {pack for pack, _ in places}
    assert is_pack_name(name)
    assert s3.packs() == [name]
    for (sha256, data), (pack, offset) in zip(items, places, strict=True):
        assert s3.read(pack, offset, sha256, len(data)) == data
    # Byte for byte a folder pack: the folder's scanner reads it whole and sealed.
    copy = tmp_path / name
    copy.write_bytes(raw(s3, name))
    scan = scan_pack(copy)
    assert scan.sealed and scan.end == scan.size
    assert [(r.offset, r.sha256) for r in scan.records] == [
        (o, s) for (s, _), (_, o) in zip(items, places, strict=True)
    ]
    size = PACK_HEADER.size + sum(RECORD.size + len(d) for _, d in items) + RECORD.size
    assert s3.size(name) == size
    assert s3.seal_bytes(name, size) == RECORD.size


def test_a_changed_or_cut_object_is_a_damaged_record_and_a_deleted_one_missing(
    s3_store: S3Location,
) -> None:
    s3 = backend(s3_store)
    items, places = stored(s3, 3)
    name = places[0][0]
    store = PhotoStore(s3)
    sha256, data = items[1]
    location = PhotoLocation(sha256, len(data), name, places[1][1])

    body = raw(s3, name)
    body[places[1][1] + 10] ^= 0xFF  # inside the record's header
    replace_object(s3, name, body)
    with pytest.raises(DamagedRecord):
        s3.read(name, places[1][1], sha256, len(data))
    with pytest.raises(PhotoUnreadable, match="is damaged"):
        store.read(location)

    replace_object(s3, name, body[: places[1][1] + 20])  # cut inside the record
    with pytest.raises(PhotoUnreadable, match="is damaged"):
        store.read(location)
    with pytest.raises(PhotoUnreadable, match="is damaged"):  # starts past the end
        store.read(PhotoLocation(items[2][0], len(items[2][1]), name, places[2][1]))

    s3.remove(name)
    assert s3.packs() == []
    assert s3.size(name) is None
    with pytest.raises(PhotoUnreadable, match=f"missing from the store: .*{name}"):
        store.read(location)


@pytest.mark.parametrize("read_data", [False, True], ids=["headers", "read-data"])
@pytest.mark.parametrize("share", ["all", "one"], ids=["whole-object", "ranges"])
def test_check_records_finds_wrong_hash_cut_and_missing_records(
    s3_store: S3Location, read_data: bool, share: str
) -> None:
    s3 = backend(s3_store)
    items, places = stored(s3, 4)
    name = places[0][0]
    wanted = records(items, places)
    if share == "one":  # a small share of the object: ranged reads, not one GET
        wanted = wanted[1:2]
    assert s3.check_records(name, wanted, read_data) == (
        sum(size for _, _, size in wanted) if read_data else 0,
        [],
    )

    body = raw(s3, name)
    offset = places[1][1]
    body[offset + RECORD.size + 7] ^= 0xFF  # a photo byte: only hashing notices
    replace_object(s3, name, body)
    _, findings = s3.check_records(name, wanted, read_data)
    if read_data:
        assert [(f[0], f[1], f[4]) for f in findings] == [(items[1][0], "wrong-hash", offset)]
    else:
        assert findings == []

    replace_object(s3, name, body[: offset + RECORD.size + 5])  # cut inside record 1
    _, findings = s3.check_records(name, wanted, read_data)
    cut = [(f[0], f[1]) for f in findings]
    expected = [(sha256, "damaged-record") for o, sha256, _ in wanted if o >= offset]
    assert cut == expected

    s3.remove(name)
    assert s3.check_records(name, wanted, read_data) == (
        0,
        [
            (sha256, "missing-photo", f"pack {name} is not in the store", name, o)
            for o, sha256, _ in wanted
        ],
    )


def test_the_identity_object_is_created_once_and_two_creators_agree(
    s3_store: S3Location,
) -> None:
    assert backend(s3_store).identity() is None
    barrier = threading.Barrier(4)
    found: list[uuid.UUID] = []

    def create() -> None:
        s3 = backend(s3_store)
        barrier.wait()
        found.append(s3.create_identity(uuid.uuid4()))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1
    assert backend(s3_store).identity() == found[0]
    assert backend(s3_store).create_identity(uuid.uuid4()) == found[0]


def test_an_identity_object_that_is_not_ours_is_refused(s3_store: S3Location) -> None:
    s3 = backend(s3_store)
    obstore.put(s3.client, IDENTITY_FILE, b'{"format": "something else"}')
    with pytest.raises(StoreIdentityError, match="not a lizardctl store identity file"):
        s3.identity()


def test_a_failed_put_gives_no_places_and_sync_refuses_places_not_uploaded(
    own_s3_server: WeedServer,
) -> None:
    """Two batches share one writer: the first one's PUT was acknowledged, the second's
    fails when the server dies. The first may commit; nothing lets the second."""
    location = own_s3_server.new_location()
    s3 = backend(location)
    writer = s3.writer(STORE_ID, 0)
    first_items = photos(2)
    first = writer.append(first_items)

    own_s3_server.kill()
    with pytest.raises(PackError, match=r"cannot reach the endpoint"):
        writer.append(photos(2))
    writer.sync(first)  # acknowledged before the server died: durable
    never_uploaded = [("20260101T000000-host-1-00000000.pack", PACK_HEADER.size)]
    with pytest.raises(PackError, match="in no uploaded pack object"):
        writer.sync(first + never_uploaded)

    own_s3_server.restart()
    s3 = backend(location)
    assert s3.packs() == [first[0][0]]  # the failed PUT left nothing behind
    sha256, data = first_items[1]
    assert s3.read(first[1][0], first[1][1], sha256, len(data)) == data


def test_the_backend_pickles_without_its_client_and_never_shows_the_secret(
    s3_store: S3Location,
) -> None:
    s3 = backend(s3_store)
    items, places = stored(s3, 1)
    copy = pickle.loads(pickle.dumps(s3))
    assert copy.read(places[0][0], places[0][1], items[0][0], len(items[0][1])) == items[0][1]
    secret = s3_store.env["AWS_SECRET_ACCESS_KEY"]
    assert secret not in repr(s3.settings)


def test_a_missing_bucket_is_said_plainly_and_never_made(s3_server: WeedServer) -> None:
    s3 = backend(s3_server.new_location("no-such-bucket-here"))
    assert not s3.exists()
    with pytest.raises(
        BucketMissing,
        match=r"bucket no-such-bucket-here does not exist at "
        rf"{s3_server.endpoint}: create it first",
    ):
        s3.make()
    with pytest.raises(BucketMissing):
        s3.identity()
    assert not backend(s3_server.new_location("no-such-bucket-here")).exists()


def test_refused_credentials_and_a_dead_endpoint_fail_the_probe_in_one_line(
    s3_store: S3Location,
) -> None:
    wrong = "w" * 40
    with pytest.raises(S3Unavailable) as refused:
        backend(s3_store, AWS_SECRET_ACCESS_KEY=wrong).check_writable()
    with pytest.raises(S3Unavailable) as dead:
        backend(s3_store, AWS_ENDPOINT_URL="http://127.0.0.1:9").check_writable()
    assert "the credentials were refused (SignatureDoesNotMatch)" in str(refused.value)
    assert str(dead.value) == (
        f"photo store {s3_store.url} at http://127.0.0.1:9: cannot reach the endpoint "
        "(no answer after retries)"
    )
    for message in (str(refused.value), str(dead.value)):
        assert "\n" not in message and "<" not in message
        assert wrong not in message and s3_store.env["AWS_SECRET_ACCESS_KEY"] not in message
    backend(s3_store).check_writable()
    assert backend(s3_store).packs() == []  # the probe is gone, and never a pack

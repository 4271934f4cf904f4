"""The review cache on a real pack store: copies are whole, re-used, and bounded."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest

from lizardctl.core.store import PhotoLocation, PhotoStore, PhotoUnreadable
from lizardctl.core.store.cache import ReviewCache

LEASE_S = 600.0


def _packed(tmp_path: Path, count: int) -> tuple[PhotoStore, list[PhotoLocation]]:
    root = tmp_path / "store"
    store = PhotoStore.at(root)
    writer = store.writer(store.create_identity())
    photos = [os.urandom(1000 + n) for n in range(count)]
    digests = [hashlib.sha256(p).hexdigest() for p in photos]
    places = writer.append(list(zip(digests, photos, strict=True)))
    writer.close()
    return store, [
        PhotoLocation(d, len(p), pack, offset)
        for d, p, (pack, offset) in zip(digests, photos, places, strict=True)
    ]


def test_copies_are_the_photos_and_the_cache_keeps_to_its_bounds(tmp_path: Path) -> None:
    store, locations = _packed(tmp_path, 6)
    cache = ReviewCache(tmp_path / "cache", max_files=3, max_bytes=1 << 20)
    cases = [uuid.uuid4() for _ in locations]
    copies = []
    for case_id, location in zip(cases, locations, strict=True):
        copy = cache.extract(store, case_id, location, "JPEG", lease_seconds=LEASE_S)
        assert copy.read_bytes() == store.read(location)
        assert copy.name == f"{case_id}.jpg"
        copies.append(copy)
        time.sleep(0.01)  # distinct mtimes: oldest first is well defined
    assert [c.exists() for c in copies] == [False, False, False, True, True, True]
    assert not list((tmp_path / "cache").glob("*/.*"))  # no temporaries left

    by_size = ReviewCache(tmp_path / "cache", max_files=100, max_bytes=2100)
    by_size.extract(store, cases[5], locations[5], "JPEG", lease_seconds=LEASE_S)
    # 1005 + 1004 bytes fit in 2100, 1003 more do not
    assert [c.exists() for c in copies[3:]] == [False, True, True]


def test_a_lapsed_lease_or_a_vote_drops_the_copy(tmp_path: Path) -> None:
    store, locations = _packed(tmp_path, 2)
    cache = ReviewCache(tmp_path / "cache")
    first, second = uuid.uuid4(), uuid.uuid4()
    old = cache.extract(store, first, locations[0], "PNG", lease_seconds=LEASE_S)
    assert old.suffix == ".png"
    lapsed = time.time() - LEASE_S - 1
    os.utime(old, (lapsed, lapsed))
    new = cache.extract(store, second, locations[1], "JPEG", lease_seconds=LEASE_S)
    assert not old.exists() and new.exists()
    cache.drop(second)
    assert not new.exists()


def test_a_damaged_copy_is_written_again_and_a_damaged_pack_is_refused(tmp_path: Path) -> None:
    store, (location,) = _packed(tmp_path, 1)
    cache = ReviewCache(tmp_path / "cache")
    case_id = uuid.uuid4()
    copy = cache.extract(store, case_id, location, "JPEG", lease_seconds=LEASE_S)
    copy.write_bytes(b"cut")
    again = cache.extract(store, case_id, location, "JPEG", lease_seconds=LEASE_S)
    assert again.read_bytes() == store.read(location)

    wrong = PhotoLocation("0" * 64, location.size, location.pack, location.offset)
    with pytest.raises(PhotoUnreadable, match="is damaged"):
        cache.extract(store, uuid.uuid4(), wrong, "JPEG", lease_seconds=LEASE_S)

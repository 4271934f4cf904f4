"""FileStore's whole-store reads for ``verify`` (the first layout): scan, size_of, read_digest,
remove_temporary."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lizardctl.core.errors import UsageError
from lizardctl.core.store import FileStore, StoreEntry


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def put(store: FileStore, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    store.put(digest, data)
    return digest


def test_scan_lists_photos_in_digest_order_with_temporaries_and_skips_the_rest(
    store: FileStore,
) -> None:
    digests = sorted(put(store, f"photo {n}".encode() * n) for n in range(1, 30))
    leaf = store.path_for(digests[0]).parent
    (leaf / ".tmp-0123456789abcdef").write_bytes(b"half")
    (leaf / "notes.txt").write_text("foreign")
    misplaced = ("f" if not leaf.name.startswith("f") else "0") * 64
    (leaf / misplaced).write_bytes(b"a digest in the wrong directory")
    (store.root / "README").write_text("foreign")
    entries = list(store.scan())

    photos = {e.digest: e for e in entries if e.digest is not None}
    assert list(photos) == digests
    for digest, entry in photos.items():
        path = store.path_for(digest)
        assert (entry.path, entry.size, entry.mtime) == (str(path), *_size_and_mtime(path))
    temporaries = [e for e in entries if e.digest is None]
    assert [(Path(e.path).name, e.size) for e in temporaries] == [(".tmp-0123456789abcdef", 4)]


def test_scan_of_a_missing_store_is_empty(tmp_path: Path) -> None:
    assert list(FileStore(tmp_path / "none").scan()) == []


def test_size_of_and_read_digest_read_the_file_as_it_is_now(store: FileStore) -> None:
    data = b"x" * 3_000_000  # larger than the read buffer
    digest = put(store, data)
    assert store.size_of(digest) == len(data)
    assert store.read_digest(digest) == digest
    store.path_for(digest).write_bytes(b"y" + data[1:])
    assert store.read_digest(digest) == hashlib.sha256(b"y" + data[1:]).hexdigest()
    store.remove(digest)
    assert store.size_of(digest) is None
    assert store.read_digest(digest) is None


def test_remove_temporary_deletes_only_a_temporary_file_of_this_store(
    store: FileStore, tmp_path: Path
) -> None:
    digest = put(store, b"photo")
    temporary = store.path_for(digest).parent / ".tmp-00ff"
    temporary.write_bytes(b"half")
    entry = next(e for e in store.scan() if e.digest is None)
    assert entry == StoreEntry(str(temporary), None, 4, temporary.stat().st_mtime)
    store.remove_temporary(entry.path)
    assert not temporary.exists()
    store.remove_temporary(entry.path)  # gone already: not an error
    for wrong in (str(store.path_for(digest)), str(tmp_path / "a" / "b" / ".tmp-00ff")):
        with pytest.raises(UsageError):
            store.remove_temporary(wrong)
    assert store.path_for(digest).exists()


def _size_and_mtime(path: Path) -> tuple[int, float]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime

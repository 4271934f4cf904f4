"""``FolderBackend.check_records``: what verify concludes from one pack's records, on real packs."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from lizardctl.core.store.folder import FolderBackend
from lizardctl.core.store.packs import RECORD, PackWriter, pack_path

PHOTOS = [f"photo {n} ".encode() * (n + 5) for n in range(4)]


def write(root: Path) -> tuple[str, list[tuple[int, str, int]]]:
    writer = PackWriter(root, uuid.uuid4())
    items = [(hashlib.sha256(data).hexdigest(), data) for data in PHOTOS]
    places = writer.append(items)
    writer.close()
    records = [
        (offset, digest, len(data))
        for (digest, data), (_, offset) in zip(items, places, strict=True)
    ]
    return places[0][0], records


def change(path: Path, at: int) -> None:
    path.chmod(0o644)
    with path.open("r+b") as file:
        file.seek(at)
        byte = file.read(1)
        file.seek(at)
        file.write(bytes([byte[0] ^ 1]))


def test_a_whole_pack_checks_clean_and_read_data_hashes_every_byte(tmp_path: Path) -> None:
    pack, records = write(tmp_path)
    assert FolderBackend(tmp_path).check_records(pack, records, False) == (0, [])
    assert FolderBackend(tmp_path).check_records(pack, records, True) == (sum(map(len, PHOTOS)), [])


def test_each_kind_of_damage_names_its_photo_only(tmp_path: Path) -> None:
    pack, records = write(tmp_path)
    path = pack_path(tmp_path, pack)
    change(path, records[0][0] + 20)  # a header's sha256
    change(path, records[1][0] + RECORD.size + 3)  # a photo's byte
    os.truncate(path, records[3][0] + RECORD.size + 1)  # the last record cut short
    hashed, quick = FolderBackend(tmp_path).check_records(pack, records, False)
    assert hashed == 0
    assert [(photo, kind) for photo, kind, *_ in quick] == [
        (records[0][1], "damaged-record"),
        (records[3][1], "damaged-record"),
    ]
    hashed, full = FolderBackend(tmp_path).check_records(pack, records, True)
    assert hashed == len(PHOTOS[1]) + len(PHOTOS[2])
    assert [(photo, kind) for photo, kind, *_ in full] == [
        (records[0][1], "damaged-record"),
        (records[1][1], "wrong-hash"),
        (records[3][1], "damaged-record"),
    ]


def test_a_record_whose_row_gives_another_size_is_damaged(tmp_path: Path) -> None:
    pack, records = write(tmp_path)
    offset, digest, size = records[2]
    _, found = FolderBackend(tmp_path).check_records(pack, [(offset, digest, size - 1)], True)
    assert [kind for _, kind, *_ in found] == ["damaged-record"]


def test_a_missing_pack_makes_every_record_missing(tmp_path: Path) -> None:
    pack, records = write(tmp_path)
    pack_path(tmp_path, pack).unlink()
    _, found = FolderBackend(tmp_path).check_records(pack, records, True)
    assert {kind for _, kind, *_ in found} == {"missing-photo"}
    assert len(found) == len(records)

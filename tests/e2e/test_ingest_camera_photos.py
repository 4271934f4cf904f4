"""Photos as real cameras write them, through ``lizardctl ingest`` (issue 12, item 4).

An MPO, a JPEG with a vendor trailer and one with junk and a stuffed ``FF 00`` between
segments were rejected as ``bad-photo``; Pillow decodes each fully, so they must become
cases. Cut short, they must still be rejected.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lizardctl.testing.dumpgen import DumpManifest
from tests.e2e.conftest import Cli
from tests.e2e.test_ingest_cli import count, good, ingest_json, must
from tests.e2e.test_ingest_hostile import clean, rejects  # noqa: F401 - fixture
from tests.stored import stored_photos_at
from tests.unit.test_photos_tolerant import TRAILER, before, jpeg, mpo, pillow_decodes_every_frame

ACCEPTED = {
    "mpo": mpo(seed=11),
    "trailer": jpeg(12) + TRAILER,
    "junk": before(before(jpeg(13), b"\xff\xdb", b"\xff\x00"), b"\xff\xda", b"\x00\x01"),
}
REJECTED = {
    "cut-mpo": mpo(seed=14)[:-200],  # inside its second frame
    "cut-first-image": (jpeg(15) + TRAILER)[: len(jpeg(15)) - 200],
}


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "pool"])
def test_camera_photos_are_ingested_and_cut_ones_rejected(
    cli: Cli,
    db_url: str,
    clean: DumpManifest,  # noqa: F811
    tmp_path: Path,
    workers: int,
) -> None:
    shots = good(clean)
    replaced: dict[str, Path] = {}
    for (name, data), shot in zip({**ACCEPTED, **REJECTED}.items(), shots, strict=False):
        photo = must(shot.photo)
        photo.write_bytes(data)
        replaced[name] = photo
    for name in ACCEPTED:
        pillow_decodes_every_frame(ACCEPTED[name])

    out, summary = ingest_json(cli, clean.dump_dir, "--store", tmp_path / "store", workers=workers)
    assert out.code == 1, out.output  # the two cut photos
    assert summary["ingested"] == len(clean.shots) - len(REJECTED) == count(db_url, "cases")
    assert summary["rejected_by_reason"] == {"bad-photo": len(REJECTED)}
    messages = {name: row["message"] for name, row in rejects(cli, summary["run_id"]).items()}
    assert "truncated MPO" in messages[replaced["cut-mpo"].name]
    assert "truncated JPEG" in messages[replaced["cut-first-image"].name]

    # Stored as sent, trailer and second frame included: the photo is evidence.
    stored = stored_photos_at(db_url, tmp_path / "store")
    for name, data in ACCEPTED.items():
        assert stored[hashlib.sha256(data).hexdigest()] == data, name

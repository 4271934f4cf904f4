"""Exactly-once by photo and canonical case, through the CLI (issue 11, item 12).

The reproduction: the same photo re-sent with re-indented JSON, an upper-case camera id
and a non-minimal LEB128 integer in binary metadata made three cases, three fines for one
offence. Now it is one case and two duplicates; the same photo with another plate is a
``photo-conflict`` rejection a human sees in ``rejects``.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

from PIL import Image

from tests.e2e.conftest import Cli
from tests.unit.test_identity import encode_binary_padded

CAMERA_ID = "104fc08a-efb6-427f-9193-2d54e4ed3e12"
RAW: dict[str, Any] = {
    "transport_chars": "ABC",
    "transport_numbers": "123",
    "transport_region": "77",
    "camera_id": CAMERA_ID,
    "violation_id": "de163a57-fd92-47a6-9b78-82bb0d41be71",
    "violation_value": "62km/h",
    "skill_value": 1,
    "datetime": "2024-01-01T00:00:00+00:00",
}


def _photo() -> bytes:
    buffer = io.BytesIO()
    pixels = random.Random(11).randbytes(40 * 30 * 3)
    Image.frombytes("RGB", (40, 30), pixels).save(buffer, "JPEG")
    return buffer.getvalue()


PHOTO = _photo()


def shot(folder: Path, stem: str, metadata: bytes, suffix: str = ".json") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.jpg").write_bytes(PHOTO)
    (folder / f"{stem}{suffix}").write_bytes(metadata)


def ingest(cli: Cli, folder: Path, store: Path) -> tuple[int, dict[str, Any]]:
    out = cli("ingest", folder, "--settle", "0", "--workers", "0", "--store", store, "--json")
    return out.code, {k: out.json()[k] for k in ("ingested", "duplicate", "rejected_by_reason")}


def test_one_photo_re_encoded_three_ways_is_one_case_and_another_plate_a_conflict(
    cli: Cli, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    camera = ["--type", "camerus1", "--lat", "55.7", "--lon", "37.6", "--id", CAMERA_ID]
    assert cli("camera", "add", *camera).code == 0
    resent = tmp_path / "resent"
    shot(resent, "indented", json.dumps(RAW, indent=4).encode())
    shot(resent, "upper", json.dumps({**RAW, "camera_id": CAMERA_ID.upper()}).encode())
    shot(resent, "leb128", encode_binary_padded(RAW), ".bin")

    assert ingest(cli, resent, store) == (
        0,
        {"ingested": 1, "duplicate": 2, "rejected_by_reason": {}},
    )
    (case,) = cli("cases", "list", "--json").json()["items"]

    later = tmp_path / "later"
    shot(later, "compact", json.dumps(RAW, separators=(",", ":")).encode())
    shot(later, "other-plate", json.dumps({**RAW, "transport_numbers": "223"}).encode())
    for _ in range(2):  # and so on every re-run: never a second case
        code, counts = ingest(cli, later, store)
        assert (code, counts) == (
            1,
            {"ingested": 0, "duplicate": 1, "rejected_by_reason": {"photo-conflict": 1}},
        )
    assert [c["id"] for c in cli("cases", "list", "--json").json()["items"]] == [case["id"]]

    rejects = cli("rejects", "--all", "--reason", "photo-conflict", "--json").json()["items"]
    assert [r["photo_path"] for r in rejects] == [str(later / "other-plate.jpg")] * 2
    assert rejects[0]["message"] == (
        f"the photo is already the evidence of case {case['id']}; this shot differs in plate "
        "(1ABC2377 there, 2ABC2377 here)"
    )

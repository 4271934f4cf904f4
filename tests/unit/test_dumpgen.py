"""The dump generator: deterministic, counted, and every shot exactly as its manifest says.

Tests, the bundled example and the benchmark trust the manifest's expected outcomes, so
each bad shot is checked here for carrying its one defect and nothing else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from lizardctl.core.codecs import MetadataDecodeError, decode_metadata
from lizardctl.core.schema.format import load_schema_file
from lizardctl.core.services.cameras import CAMERAS, parse_camera
from lizardctl.core.spreadsheets import open_sheet
from lizardctl.testing.dumpgen import (
    BAD_SHOT_KINDS,
    FILE_AGE_S,
    DumpManifest,
    GeneratedShot,
    SchemaLayout,
    ShotFields,
    generate_dump,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
PLATE = re.compile(r"[0-9][A-Z]{3}[0-9]{2}[0-9]{2,3}")
REPO = Path(__file__).resolve().parents[2]


def small(root: Path, **options: Any) -> DumpManifest:
    """A dump with 2-5 KB photos and a fixed ``now``: fast, and comparable across calls."""
    return generate_dump(root, photo_bytes=(2_000, 5_000), now=NOW, **options)


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> DumpManifest:
    return small(tmp_path_factory.mktemp("dump"), cameras=6, shots_per_camera=4)


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def metadata_of(shot: GeneratedShot) -> dict[str, Any]:
    assert shot.metadata is not None
    return decode_metadata(shot.metadata.read_bytes(), shot.metadata.suffix)


def plate_and_time(metadata: dict[str, Any]) -> tuple[str, datetime]:
    """The canonical plate and timestamp, per the DESIGN.md layouts; KeyError if no layout."""
    if "transport_chars" in metadata:
        numbers = metadata["transport_numbers"]
        plate = numbers[0] + metadata["transport_chars"] + numbers[1:]
        return plate + metadata["transport_region"], datetime.fromisoformat(metadata["datetime"])
    if isinstance(metadata["transport"], dict):
        transport, parts = metadata["transport"], metadata["datetime"]
        numbers = transport["numbers"]
        plate = numbers[0] + transport["chars"] + numbers[1:] + transport["transport_region"]
        stamp = (
            f"{parts['year']:04d}-{parts['month']:02d}-{parts['day']:02d}T{parts['hour']:02d}:"
            f"{parts['minute']:02d}:{parts['seconds']:02d}{parts['utf_offset']}"
        )
        return plate, datetime.fromisoformat(stamp)
    return metadata["transport"], datetime.fromtimestamp(metadata["datetime"], UTC)


def camera_of(metadata: dict[str, Any]) -> str:
    return str(metadata.get("camera_id") or metadata["camera"]["id"])


def layout_of(metadata: dict[str, Any]) -> str:
    if "transport_chars" in metadata:
        return "camerus1"
    return "camerus2" if isinstance(metadata["transport"], dict) else "camerus3"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first = small(tmp_path / "a", seed=7)
    second = small(tmp_path / "b", seed=7)
    other = small(tmp_path / "c", seed=8)
    assert files_under(first.root) == files_under(second.root)
    assert first.expected_counts() == second.expected_counts()
    assert first.cameras_csv.read_bytes() != other.cameras_csv.read_bytes()


def test_counts_one_bad_shot_of_each_kind(dump: DumpManifest) -> None:
    expected = Counter(outcome for _, outcome in BAD_SHOT_KINDS)
    expected["ingested"] = 24
    assert dump.expected_counts() == dict(expected)
    assert sum(dump.expected_counts().values()) == len(dump.shots)
    assert {shot.detail for shot in dump.shots if shot.detail} == {k for k, _ in BAD_SHOT_KINDS}
    written = sum(len(shot.paths) for shot in dump.shots)
    assert len(files_under(dump.dump_dir)) == written


def test_bad_sets_and_clean_dumps_scale_counts(tmp_path: Path) -> None:
    manifest = small(tmp_path / "a", cameras=3, shots_per_camera=2, bad_sets=3)
    counts = manifest.expected_counts()
    assert counts["ingested"] == 6
    assert counts["orphan"] == counts["bad-photo"] == 6
    assert counts["invalid"] == counts["duplicate"] == 3
    assert sum(counts.values()) == len(manifest.shots) == 6 + 3 * len(BAD_SHOT_KINDS)
    clean = small(tmp_path / "b", cameras=1, shots_per_camera=3, bad=False)
    assert clean.expected_counts() == {"ingested": 3}


def test_photos_are_distinct_valid_images_of_the_asked_size(dump: DumpManifest) -> None:
    hashes: dict[str, Path] = {}
    formats: Counter[str] = Counter()
    for shot in dump.shots:
        if shot.photo is None or shot.expected == "duplicate":
            continue
        data = shot.photo.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert digest not in hashes, f"{shot.photo} repeats {hashes[digest]}"
        hashes[digest] = shot.photo
        if shot.expected == "bad-photo":
            with pytest.raises(OSError), Image.open(shot.photo) as image:
                image.load()
            continue
        assert 2_000 <= len(data) <= 5_000, shot.photo
        with Image.open(shot.photo) as image:
            image.load()
            assert image.format == {".jpg": "JPEG", ".png": "PNG"}[shot.photo.suffix]
            formats[image.format] += 1
    assert formats["JPEG"] > formats["PNG"] >= 1


def test_realistic_photo_sizes_by_default(tmp_path: Path) -> None:
    manifest = generate_dump(tmp_path, cameras=1, shots_per_camera=40, bad=False, now=NOW)
    sizes = [shot.photo.stat().st_size for shot in manifest.shots if shot.photo is not None]
    assert all(30_000 <= size <= 50_000 for size in sizes)
    assert max(sizes) - min(sizes) > 10_000  # spread over the range, not one size


def test_binary_metadata_decodes_to_its_json_twin(tmp_path: Path) -> None:
    as_json = small(tmp_path / "j", binary_fraction=0.0)
    as_binary = small(tmp_path / "b", binary_fraction=1.0)
    good = [
        (j, b)
        for j, b in zip(as_json.shots, as_binary.shots, strict=True)
        if j.expected == "ingested"
    ]
    assert good
    for json_shot, binary_shot in good:
        assert json_shot.metadata is not None and binary_shot.metadata is not None
        assert (json_shot.metadata.suffix, binary_shot.metadata.suffix) == (".json", ".bin")
        assert metadata_of(binary_shot) == metadata_of(json_shot)


def test_a_third_of_metadata_is_binary(tmp_path: Path) -> None:
    manifest = small(tmp_path, cameras=3, shots_per_camera=30, bad=False)
    suffixes = Counter(shot.metadata.suffix for shot in manifest.shots if shot.metadata)
    assert suffixes == {".bin": 30, ".json": 60}


def test_cameras_csv_parses_with_types_evenly_spread(dump: DumpManifest) -> None:
    with open_sheet(dump.cameras_csv, CAMERAS.columns, CAMERAS.required) as rows:
        cameras = [parse_camera(row.values) for row in rows]
    assert Counter(camera.camera_type for camera in cameras) == {
        "camerus1": 2,
        "camerus2": 2,
        "camerus3": 2,
    }
    assert [camera.id for camera in cameras] == [camera.id for camera in dump.cameras]


def test_good_shots_are_valid_past_shots_of_registered_cameras(dump: DumpManifest) -> None:
    types = {str(camera.id): camera.camera_type for camera in dump.cameras}
    for shot in dump.shots:
        if shot.expected not in ("ingested", "duplicate"):
            continue
        metadata = metadata_of(shot)
        plate, taken = plate_and_time(metadata)
        assert PLATE.fullmatch(plate), plate
        assert taken < NOW
        assert types[camera_of(metadata)] == layout_of(metadata)
        skill: Any = metadata.get("skill_value", metadata.get("skill"))
        assert 1 <= (skill["value"] if isinstance(skill, dict) else skill) <= 5
        uuid.UUID(metadata.get("violation_id") or metadata["violation"]["id"])


def test_each_bad_shot_has_its_one_defect(dump: DumpManifest) -> None:
    types = {str(camera.id): camera.camera_type for camera in dump.cameras}
    shots = {shot.detail: shot for shot in dump.shots if shot.detail}
    assert shots["orphan-photo"].metadata is None and shots["orphan-photo"].photo is not None
    assert shots["orphan-metadata"].photo is None and shots["orphan-metadata"].metadata
    for kind in ("broken-json", "corrupt-bin"):
        with pytest.raises(MetadataDecodeError):
            metadata_of(shots[kind])
    with pytest.raises(KeyError):
        plate_and_time(metadata_of(shots["unknown-type"]))
    month_13 = metadata_of(shots["month-13"])
    assert month_13["datetime"]["month"] == 13
    assert types[camera_of(month_13)] == "camerus2"
    assert camera_of(metadata_of(shots["unknown-camera"])) not in types
    mismatch = metadata_of(shots["type-mismatch"])
    assert (layout_of(mismatch), types[camera_of(mismatch)]) == ("camerus2", "camerus1")
    future = metadata_of(shots["future"])
    assert plate_and_time(future)[1] > NOW
    assert types[camera_of(future)] == layout_of(future)
    resent, original = shots["resent"], None
    for shot in dump.shots:
        if shot.expected == "ingested" and shot.photo and shot.photo.name == resent.paths[0].name:
            original = shot
    assert original is not None and original.photo is not None and resent.photo is not None
    assert resent.photo.parent != original.photo.parent
    assert [p.read_bytes() for p in resent.paths] == [p.read_bytes() for p in original.paths]


def test_every_file_is_an_hour_old(dump: DumpManifest) -> None:
    newest = max(p.stat().st_mtime for p in dump.root.rglob("*") if p.is_file())
    assert newest <= time.time() - FILE_AGE_S + 60


def test_refuses_an_existing_dump_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "dump").mkdir()
    with pytest.raises(FileExistsError):
        small(tmp_path)
    with pytest.raises(ValueError, match="timezone"):
        generate_dump(tmp_path / "x", now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="3 cameras"):
        small(tmp_path / "y", cameras=2)
    with pytest.raises(ValueError, match="too small"):
        generate_dump(tmp_path / "z", photo_bytes=(100, 200), now=NOW)


def test_the_committed_example_is_what_the_script_makes(tmp_path: Path) -> None:
    """Names and metadata bytes only: JPEG bytes may shift with the bundled libjpeg."""
    spec = importlib.util.spec_from_file_location("make_example", REPO / "scripts/make_example.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    fresh = files_under(script.make_example(tmp_path).root)
    committed = files_under(REPO / "examples")
    committed.pop("README.md")
    assert sorted(committed) == sorted(fresh)
    for name, data in fresh.items():
        if not name.endswith((".jpg", ".png")):
            assert committed[name] == data, f"examples/{name} is stale: run scripts/make_example.py"


def test_any_schema_is_laid_out_from_its_file_not_from_code() -> None:
    """A made-up type (plate pieces in another order, the value split in two, epoch
    milliseconds) is laid out by reading its mapping backwards, and its own compiled
    schema reads back exactly what was laid out."""
    doc = load_schema_file(REPO / "tests" / "fixtures" / "schemas" / "camerus4.json")
    layout = SchemaLayout("camerus4", doc)
    when = datetime(2026, 10, 31, 23, 59, 58, tzinfo=timezone(timedelta(hours=3)))
    for region, value in (("77", "62km/h"), ("199", "140km/h")):
        fields = ShotFields(
            "ABC", "123", region, str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), value, 5, when, ""
        )
        metadata = layout.metadata(fields)
        assert list(metadata) == ["reg", "meta", "offence", "review"]  # the file's order
        case = layout.compiled.to_case(metadata, now=NOW)
        assert (case.plate, case.violation_value, case.skill) == (f"1ABC23{region}", value, 5)
        assert case.occurred_at == when
        assert metadata["meta"]["ts_ms"] == int(when.timestamp()) * 1000

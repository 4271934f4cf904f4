"""Cameras through the command line, on a real SQLite file and on PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.e2e.conftest import Cli

CAM1 = "104fc08a-efb6-427f-9193-2d54e4ed3e12"
CAM2 = "d5cf359d-f9c3-48a1-8bb2-7a2f66f26670"
CAM3 = "baa1b593-4635-45d4-9a29-181a7f5bb77a"
GOOD_CSV = (
    "id,type,latitude,longitude,description\n"
    f"{CAM1},camerus1,55.75,37.62,Tverskaya\n"
    f"{CAM2},camerus2,-33.9,151.2,\n"
    f'{CAM3},camerus3,0,180,"Ring road, km 12"\n'
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_add_show_list(cli: Cli) -> None:
    added = cli(
        "camera",
        "add",
        "--type",
        "camerus1",
        "--lat",
        "55.75",
        "--lon",
        "37.62",
        "--description",
        "Tverskaya",
    )
    assert added.code == 0, added.output
    camera_id = uuid.UUID(added.stdout.strip())

    shown = cli("camera", "show", str(camera_id), "--json")
    assert shown.code == 0
    assert shown.json()["camera_type"] == "camerus1"
    assert shown.json()["description"] == "Tverskaya"

    listed = cli("camera", "list", "--json")
    assert [c["id"] for c in listed.json()] == [str(camera_id)]
    table = cli("camera", "list")
    assert str(camera_id) in table.stdout


def test_add_with_given_id_and_root_json(cli: Cli) -> None:
    out = cli(
        "--json", "camera", "add", "--type", "camerus3", "--lat", "0", "--lon", "0", "--id", CAM3
    )
    assert out.code == 0
    assert out.json()["id"] == CAM3
    again = cli("camera", "add", "--type", "camerus3", "--lat", "0", "--lon", "0", "--id", CAM3)
    assert again.code == 2
    assert again.stderr.strip() == f"Error: camera {CAM3} already exists"


def test_add_rejects_bad_values(cli: Cli) -> None:
    bad_lat = cli("camera", "add", "--type", "camerus1", "--lat", "91", "--lon", "0")
    assert bad_lat.code == 2
    assert "latitude" in bad_lat.stderr
    assert len(bad_lat.stderr.strip().splitlines()) == 1
    bad_type = cli("camera", "add", "--type", "nosuch", "--lat", "1", "--lon", "1")
    assert bad_type.code == 2
    assert "unknown camera type 'nosuch'" in bad_type.stderr
    long_description = cli(
        "camera",
        "add",
        "--type",
        "camerus1",
        "--lat",
        "1",
        "--lon",
        "1",
        "--description",
        "x" * 101,
    )
    assert long_description.code == 2
    assert "description" in long_description.stderr
    assert cli("camera", "list", "--json").json() == []


def test_show_unknown_camera(cli: Cli) -> None:
    out = cli("camera", "show", str(uuid.uuid4()))
    assert out.code == 2
    assert out.stderr.startswith("Error: no camera ")


def test_import_and_reimport(cli: Cli, tmp_path: Path) -> None:
    csv_file = _write(tmp_path, "cameras.csv", GOOD_CSV)
    first = cli("camera", "import", csv_file, "--json")
    assert first.code == 0, first.output
    assert first.json() == {
        "file": str(csv_file),
        "table": "camera",
        "added": 3,
        "updated": 0,
        "unchanged": 0,
        "updates": [],
        "priced": 0,
    }
    second = cli("camera", "import", csv_file)
    assert second.code == 0
    assert "nothing to do" in second.stdout
    cameras = {c["id"]: c for c in cli("camera", "list", "--json").json()}
    assert set(cameras) == {CAM1, CAM2, CAM3}
    assert cameras[CAM3]["description"] == "Ring road, km 12"

    moved = _write(tmp_path, "moved.csv", GOOD_CSV.replace("55.75,37.62", "55.76,37.63"))
    third = cli("camera", "import", moved, "--json")
    report = third.json()
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 1, 2)
    assert report["updates"] == [f"{CAM1}: latitude 55.75 -> 55.76, longitude 37.62 -> 37.63"]


def test_import_bad_rows_imports_nothing(cli: Cli, tmp_path: Path) -> None:
    text = (
        "id,type,latitude,longitude,description\n"
        f"{CAM1},camerus1,55.75,37.62,ok\n"
        "not-a-uuid,camerus1,1,1,\n"
        f"{CAM2},camerus2,95,1,\n"
        f"{CAM3},nosuch,1,1,\n"
        f"{CAM1},camerus1,1,1,\n"
        f"{uuid.uuid4()},camerus1,1,1,{'x' * 101}\n"
    )
    out = cli("camera", "import", _write(tmp_path, "bad.csv", text))
    assert out.code == 2
    lines = out.stderr.strip().splitlines()
    assert lines[0].endswith("5 bad row(s), nothing imported")
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert "repeats line 2" in lines[4]
    assert cli("camera", "list", "--json").json() == []


def test_import_bad_files(cli: Cli, tmp_path: Path) -> None:
    missing = cli("camera", "import", tmp_path / "nope.csv")
    assert missing.code == 2
    assert missing.stderr.strip() == f"Error: {tmp_path / 'nope.csv'}: no such file"
    header = cli("camera", "import", _write(tmp_path, "h.csv", "id,kind,lat\n"))
    assert header.code == 2
    assert "bad header: missing column(s) latitude, longitude, type" in header.stderr
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00junk")
    assert cli("camera", "import", binary).code == 2

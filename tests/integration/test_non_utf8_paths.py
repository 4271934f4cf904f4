"""File names that are not UTF-8, ingested through the CLI on both engines (issue 11, item 9).

Linux names are bytes; ``root\\xff`` used to fail the run's insert on PostgreSQL (exit 70),
and a sub-folder with such a name let the cases commit and then failed the run's update,
leaving it ``running``. They must be stored as ``\\xff`` escapes and never fail a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lizardctl.core.storable import storable, storable_json
from lizardctl.testing.dumpgen import generate_dump
from tests.e2e.conftest import Outcome, invoke
from tests.e2e.test_ingest_cli import SMALL_PHOTOS, sql

ROOT = os.fsdecode(b"root\xff")
SUB = os.fsdecode(b"sub\xfe")
BAD = os.fsdecode(b"bad\xfd")


def test_storable_escapes_undecodable_bytes_stray_surrogates_and_nul() -> None:
    assert storable("plain/ü.jpg") == "plain/ü.jpg"
    assert storable(os.fsdecode(b"/d/root\xff/x.jpg")) == "/d/root\\xff/x.jpg"
    assert storable("\ud800 lone") == "\\ud800 lone"
    assert storable("a\x00b") == "a\\x00b"
    assert storable(None) is None
    document = {"problems": [f"{ROOT}: gone"], ROOT: 1, "n": 2}
    assert storable_json(document) == {"problems": ["root\\xff: gone"], "root\\xff": 1, "n": 2}


def _cli(db_url: str, *args: str | Path) -> Outcome:
    return invoke(["--db", db_url, *(str(a) for a in args)])


def test_ingest_of_non_utf8_root_and_subfolder_finishes_and_shows_escaped_names(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # PostgreSQL's default store is ./photos: not in the checkout
    assert _cli(db_url, "db", "upgrade").code == 0
    manifest = generate_dump(
        tmp_path / "gen", cameras=3, shots_per_camera=2, bad=False, photo_bytes=SMALL_PHOTOS
    )
    assert _cli(db_url, "camera", "import", manifest.cameras_csv).code == 0
    photo = next(p for p in manifest.dump_dir.rglob("*.jpg"))
    root = tmp_path / ROOT
    sub = root / SUB
    root.mkdir()
    (sub / f"{BAD}.jpg").parent.mkdir()
    (sub / f"{BAD}.jpg").write_bytes(photo.read_bytes())
    for part in manifest.dump_dir.iterdir():
        part.rename(sub / part.name)
    (sub / f"{BAD}.json").write_text('{"broken": ')
    (sub / "loop").symlink_to(".")  # a problem that names the sub-folder in the run's record

    ingested = _cli(db_url, "ingest", root, "--settle", "0", "--workers", "0")
    assert ingested.code == 1, ingested.output  # a rejected shot; not 70
    assert int(sql(db_url, "SELECT count(*) FROM cases")[0][0]) == 6

    report = _cli(db_url, "report", "--last", "--json")
    assert report.code == 0, report.output
    run = report.json()
    assert run["status"] == "finished"
    assert (run["ingested"], run["rejected"]) == (6, 1)
    assert run["paths"] == [str(tmp_path / "root\\xff")]
    assert any("root\\xff/sub\\xfe/loop" in problem for problem in run["problems"])
    assert "root\\xff" in _cli(db_url, "report", "--last").stdout

    rejects = _cli(db_url, "rejects", "--json")
    assert rejects.code == 0, rejects.output
    (rejected,) = rejects.json()["items"]
    assert rejected["reason"] == "bad-metadata"
    assert rejected["photo_path"] == str(tmp_path / "root\\xff" / "sub\\xfe" / "bad\\xfd.jpg")
    assert rejected["metadata_path"].endswith("root\\xff/sub\\xfe/bad\\xfd.json")
    assert "bad\\xfd.json" in _cli(db_url, "rejects").stdout.replace("\n", "")

    (status, paths, counts) = sql(db_url, "SELECT status, paths, counts FROM ingest_runs")[0]
    assert status == "finished"
    stored = (
        [paths, counts] if not isinstance(paths, str) else [json.loads(paths), json.loads(counts)]
    )
    assert storable_json(stored) == stored  # nothing left that an engine could refuse
    sources = {row[0] for row in sql(db_url, "SELECT source_photo FROM cases")}
    assert all("/root\\xff/sub\\xfe/" in source for source in sources)

    again = _cli(db_url, "ingest", root, "--settle", "0", "--workers", "0")
    assert again.code == 1, again.output
    assert int(sql(db_url, "SELECT count(*) FROM cases")[0][0]) == 6
    assert sql(db_url, "SELECT count(*) FROM ingest_runs WHERE status = 'running'")[0][0] == 0

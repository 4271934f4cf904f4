"""Hostile dumps through the CLI: the reproductions of issue 11, items 1, 2, 3 and 5.

Every test builds its hostile files in a temporary folder (symlinks out of the dump, a
FIFO, a socket, a symlink to /dev/zero, sparse giants) beside a clean generated dump, and
checks the run ends, commits the good shots, rejects each hostile one with a clear
message, and deletes nothing it was not given.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from lizardctl.core.store import PackWriter
from lizardctl.testing.dumpgen import DumpManifest, GeneratedShot, generate_dump
from tests.e2e.conftest import Cli
from tests.e2e.test_ingest_cli import SMALL_PHOTOS, count, good, ingest, ingest_json, must

WAIT_S = 60  # a bound against hanging, never an expectation of speed
NOT_READ = "not read (only regular files are)"


@pytest.fixture
def clean(cli: Cli, tmp_path: Path) -> DumpManifest:
    """30 good shots of small photos, cameras registered."""
    manifest = generate_dump(tmp_path / "gen", bad=False, photo_bytes=SMALL_PHOTOS)
    imported = cli("camera", "import", manifest.cameras_csv)
    assert imported.code == 0, imported.output
    return manifest


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def rejects(cli: Cli, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's rejections by photo file name."""
    rows = cli("rejects", "--run", run_id, "--json").json()["items"]
    return {Path(row["photo_path"]).name: row for row in rows}


def partner(folder: Path, stem: str, source: Path) -> Path:
    """A valid file under ``stem`` with ``source``'s suffix, copied from ``source``."""
    return Path(shutil.copy(source, folder / f"{stem}{source.suffix}"))


def make_socket(path: Path) -> None:
    """A Unix socket file at ``path`` (bound by a relative name: sun_path is short)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.path.relpath(path))


def hostile_folder(clean: DumpManifest) -> tuple[Path, GeneratedShot]:
    folder = clean.dump_dir / "hostile"
    folder.mkdir()
    return folder, good(clean)[0]


# -- item 1: the walk never leaves the given folders ----------------------------------------


def test_delete_source_never_follows_links_out_of_the_dump(
    cli: Cli, db_url: str, clean: DumpManifest, tmp_path: Path
) -> None:
    """``mkdir d2; ln -s $PWD/victimdir d2/ext; ingest d2 --delete-source`` emptied victimdir."""
    victim = clean.dump_dir
    before = files_under(victim)
    d2 = tmp_path / "d2"
    d2.mkdir()
    (d2 / "ext").symlink_to(victim, target_is_directory=True)
    (d2 / "up").symlink_to("..", target_is_directory=True)
    shot = good(clean)[0]
    (d2 / "stolen.jpg").symlink_to(must(shot.photo))  # a file link out of the dump
    partner(d2, "stolen", must(shot.metadata))

    out, summary = ingest_json(cli, d2, "--delete-source")

    assert out.code == 1, out.output
    assert (summary["ingested"], summary["duplicate"]) == (0, 0)
    assert summary["rejected_by_reason"] == {"unreadable": 1}
    assert sorted(summary["problems"]) == [
        f"{d2 / name}: symlink to a folder outside the given paths, not followed"
        for name in ("ext", "up")
    ]
    assert files_under(victim) == before
    assert (d2 / "stolen.json").exists()
    assert (d2 / "stolen.jpg").is_symlink()
    assert count(db_url, "cases") == 0
    stolen = rejects(cli, summary["run_id"])["stolen.jpg"]
    assert stolen["message"] == f"{d2 / 'stolen.jpg'}: a symbolic link, {NOT_READ}"


def test_a_folder_link_inside_the_dump_is_walked_and_its_sources_deleted(
    cli: Cli, clean: DumpManifest
) -> None:
    part = next(p for p in sorted(clean.dump_dir.iterdir()) if p.is_dir())
    (clean.dump_dir / "alias").symlink_to(part.name, target_is_directory=True)
    out, summary = ingest_json(cli, clean.dump_dir, "--delete-source")
    # Whichever way in is listed second is reported as a repeat (the walk order is random).
    assert all("repeated folder" in p for p in summary["problems"]), summary["problems"]
    assert out.code == (1 if summary["problems"] else 0), out.output
    assert summary["ingested"] == len(clean.shots)
    assert files_under(clean.dump_dir) == {}


# -- item 2: special files never hang the run or exhaust memory ----------------------------


def plant_special_files(folder: Path, shot: GeneratedShot) -> None:
    """A FIFO, a socket and a /dev/zero link as photos, a FIFO as metadata; valid partners."""
    os.mkfifo(folder / "fifo.jpg")
    partner(folder, "fifo", must(shot.metadata))
    (folder / "zero.jpg").symlink_to("/dev/zero")
    partner(folder, "zero", must(shot.metadata))
    make_socket(folder / "sock.jpg")
    partner(folder, "sock", must(shot.metadata))
    partner(folder, "mfifo", must(shot.photo))
    os.mkfifo(folder / "mfifo.json")


def test_fifo_socket_and_dev_zero_are_one_rejection_each(
    cli: Cli, db_url: str, clean: DumpManifest
) -> None:
    folder, shot = hostile_folder(clean)
    plant_special_files(folder, shot)
    out, summary = ingest_json(cli, clean.dump_dir)
    assert out.code == 1, out.output
    assert summary["ingested"] == len(clean.shots) == count(db_url, "cases")
    assert summary["rejected_by_reason"] == {"unreadable": 4}
    messages = {name: row["message"] for name, row in rejects(cli, summary["run_id"]).items()}
    assert messages == {
        "fifo.jpg": f"{folder / 'fifo.jpg'}: a FIFO, {NOT_READ}",
        "zero.jpg": f"{folder / 'zero.jpg'}: a symbolic link, {NOT_READ}",
        "sock.jpg": f"{folder / 'sock.jpg'}: a socket, {NOT_READ}",
        "mfifo.jpg": f"{folder / 'mfifo.json'}: a FIFO, {NOT_READ}",
    }


def test_special_files_do_not_hang_a_real_process_with_workers(
    db_url: str, cli: Cli, clean: DumpManifest, tmp_path: Path
) -> None:
    """The reproduction as a user runs it: ``python -m lizardctl ingest`` with a pool."""
    folder, shot = hostile_folder(clean)
    plant_special_files(folder, shot)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIZARD_")}
    args = ["ingest", clean.dump_dir, "--workers", "1", "--settle", "0", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "lizardctl", "--db", db_url, *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ingested"] == len(clean.shots)
    assert summary["rejected_by_reason"] == {"unreadable": 4}


# -- item 3: size limits -------------------------------------------------------------------


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.truncate(size)
    return path


def test_giant_files_are_too_large_unread(cli: Cli, db_url: str, clean: DumpManifest) -> None:
    """A 1.5 GB photo and a 300 MB metadata file, sparse: refused by size, never read."""
    folder, shot = hostile_folder(clean)
    sparse(folder / "huge.jpg", 1_500_000_000)
    partner(folder, "huge", must(shot.metadata))
    partner(folder, "big", must(shot.photo))
    sparse(folder / "big.json", 300_000_000)
    started = time.monotonic()
    out, summary = ingest_json(cli, clean.dump_dir)
    assert time.monotonic() - started < 20  # reading 1.8 GB of zeros would take far longer
    assert out.code == 1, out.output
    assert summary["ingested"] == len(clean.shots) == count(db_url, "cases")
    assert summary["rejected_by_reason"] == {"too-large": 2}
    assert summary["bytes"] < 10_000_000
    messages = {name: row["message"] for name, row in rejects(cli, summary["run_id"]).items()}
    assert messages == {
        "huge.jpg": f"{folder / 'huge.jpg'}: 1,500,000,000 bytes, over the limit of "
        "50,000,000 bytes; not read",
        "big.jpg": f"{folder / 'big.json'}: 300,000,000 bytes, over the limit of "
        "1,000,000 bytes; not read",
    }


def test_size_limits_are_options(cli: Cli, clean: DumpManifest) -> None:
    photos = [must(s.photo).stat().st_size for s in clean.shots]
    limit = sorted(photos)[len(photos) // 2]
    over = sum(size > limit for size in photos)
    out, summary = ingest_json(cli, clean.dump_dir, "--max-photo-bytes", str(limit), "--dry-run")
    assert out.code == 1, out.output
    assert summary["rejected_by_reason"] == {"too-large": over}
    assert summary["ingested"] == len(photos) - over
    out, summary = ingest_json(cli, clean.dump_dir, "--max-metadata-bytes", "10", "--dry-run")
    assert summary["rejected_by_reason"] == {"too-large": len(photos)}
    for bad in ("0", "99999999999999999999"):
        out = ingest(cli, clean.dump_dir, "--max-photo-bytes", bad)
        assert out.code == 2, out.output


def test_rejection_messages_are_capped(cli: Cli, clean: DumpManifest) -> None:
    """Metadata under the size limit whose message would list 50,000 keys."""
    folder, shot = hostile_folder(clean)
    partner(folder, "keys", must(shot.photo))
    (folder / "keys.json").write_text(json.dumps({f"k{i}": i for i in range(50_000)}))
    out, summary = ingest_json(cli, clean.dump_dir)
    assert summary["rejected_by_reason"] == {"unknown-type": 1}, out.output
    message = rejects(cli, summary["run_id"])["keys.jpg"]["message"]
    assert 2_000 < len(message) < 2_100
    assert message.endswith(" more characters cut]")


# -- item 5: --delete-source deletes only the file that was read ---------------------------


def resend_during_the_run(monkeypatch: pytest.MonkeyPatch, resend: Sequence[Path]) -> None:
    """A camera re-sends files after they were read, before their batch commits: the first
    store write of the run replaces the first by rename (a new inode), grows the second in
    place and rewrites the third in place with the same bytes (only its mtime changes)."""
    append = PackWriter.append
    pending = list(resend)

    def append_and_resend(self: PackWriter, items: Any) -> Any:
        if pending:
            renamed, grown, rewritten = pending
            fresh = renamed.with_name(f".{renamed.name}.tmp")
            fresh.write_bytes(renamed.read_bytes())
            fresh.replace(renamed)
            with grown.open("ab") as file:
                file.write(b" ")
            before = rewritten.stat().st_mtime_ns
            rewritten.write_bytes(rewritten.read_bytes())
            assert rewritten.stat().st_mtime_ns != before
            pending.clear()
        return append(self, items)

    monkeypatch.setattr(PackWriter, "append", append_and_resend)


def resent_shots(clean: DumpManifest) -> list[GeneratedShot]:
    return [s for s in good(clean) if must(s.metadata).suffix == ".json"][:3]


def resent_files(shots: Sequence[GeneratedShot]) -> list[Path]:
    """A photo to replace, a JSON metadata file to grow, a photo to rewrite unchanged."""
    return [must(shots[0].photo), must(shots[1].metadata), must(shots[2].photo)]


def test_delete_source_keeps_files_replaced_after_they_were_read(
    cli: Cli, clean: DumpManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    resent = resent_shots(clean)
    resend_during_the_run(monkeypatch, resent_files(resent))
    out, summary = ingest_json(cli, clean.dump_dir, "--delete-source")
    assert out.code == 0, out.output
    assert summary["ingested"] == len(clean.shots)
    assert summary["kept_changed"] == 3
    assert summary["problems"] == []
    left = set(files_under(clean.dump_dir))
    assert left == {str(p.relative_to(clean.dump_dir)) for s in resent for p in s.paths}

    # The next run takes the re-sent shots whole (the camera's copy is what it reads now).
    out, summary = ingest_json(cli, clean.dump_dir, "--delete-source")
    assert out.code == 0, out.output
    assert summary["kept_changed"] == 0
    assert files_under(clean.dump_dir) == {}


def test_the_summary_tells_how_many_changed_files_were_kept(
    cli: Cli, clean: DumpManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    resend_during_the_run(monkeypatch, resent_files(resent_shots(clean)))
    out = ingest(cli, clean.dump_dir, "--delete-source")
    assert out.code == 0, out.output
    assert "  kept the files of 3 shot(s) changed or replaced since they were read" in out.stdout

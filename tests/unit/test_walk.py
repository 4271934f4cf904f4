"""The Walker: every folder walked once, photos paired with metadata by stem, nothing lost.

Files are given an mtime an hour before the walk's ``now``, so ``settle`` holds nothing
back unless a test makes a file young on purpose.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lizardctl.core.ingest.outcome import Pending
from lizardctl.core.ingest.walk import Listing, ShotFiles, Walker, WalkOptions, pair, part_of
from lizardctl.core.vocabulary import Reason

NOW = time.time()
OLD = NOW - 3600


def touch(path: Path, *, age: float = 3600.0, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (NOW - age, NOW - age))
    return path


def shot(folder: Path, stem: str, photo: str = ".jpg", metadata: str = ".json") -> None:
    touch(folder / f"{stem}{photo}")
    touch(folder / f"{stem}{metadata}")


async def walk(
    roots: Sequence[Path],
    *,
    settle: float = 60.0,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    concurrency: int = 8,
) -> tuple[list[ShotFiles], Walked]:
    walker = Walker(roots, WalkOptions(settle, include, exclude, concurrency), now=NOW)
    listings = [listing async for group in walker for listing in group]
    shots, pending = paired(walker, listings)
    stats = walker.stats
    return shots, Walked(
        pending.count, stats.ignored_files, stats.directories, stats.problems, pending
    )


@dataclass(frozen=True)
class Walked:
    """What the walk saw (``WalkStats``) and what pairing held back, for the assertions."""

    pending: int
    ignored_files: int
    directories: int
    problems: list[str]
    held: Pending


def paired(
    walker: Walker, listings: Iterable[Listing], stems: Iterable[str] | None = None
) -> tuple[list[ShotFiles], Pending]:
    """Pair listings as the workers do, each as one part."""
    shots: list[ShotFiles] = []
    pending = Pending()
    for listing in listings:
        found, held = pair(listing.part(stems), walker.young_after)
        shots.extend(found)
        pending.add(held)
    return shots, pending


def rel(path: str | None, base: Path) -> str | None:
    return None if path is None else Path(path).relative_to(base).as_posix()


def pairs(shots: Iterable[ShotFiles], base: Path) -> set[tuple[str | None, str | None]]:
    """Good pairs only, as paths relative to ``base``."""
    return {(rel(s.photo, base), rel(s.metadata, base)) for s in shots if s.problem is None}


def problems(shots: Iterable[ShotFiles], base: Path) -> list[tuple[Any, ...]]:
    found = [
        (rel(s.photo, base), rel(s.metadata, base), s.problem[0])
        for s in shots
        if s.problem is not None
    ]
    return sorted(found, key=lambda row: row[0] or row[1] or "")


def all_paths(shots: Iterable[ShotFiles]) -> list[str]:
    return [p for s in shots for p in (s.photo, s.metadata) if p is not None]


def resolved(paths: Iterable[str]) -> list[Path]:
    return [Path(p).resolve() for p in paths]


def read(path: str | None) -> bytes:
    assert path is not None
    return Path(path).read_bytes()


# --- pairing ------------------------------------------------------------------------------

PHOTO_SUFFIXES = [".jpg", ".JPG", ".jpeg", ".JPEG", ".Jpg", ".png", ".PNG", ".webp", ".WebP"]
PHOTO_SUFFIXES += [".tif", ".TIF", ".tiff", ".TIFF"]
METADATA_SUFFIXES = [".json", ".JSON", ".Json", ".bin", ".BIN", ".Bin"]


async def test_every_photo_suffix_pairs_with_every_metadata_suffix(tmp_path: Path) -> None:
    expected = set()
    for i, (photo, metadata) in enumerate(product(PHOTO_SUFFIXES, METADATA_SUFFIXES)):
        shot(tmp_path, f"s{i:03d}", photo, metadata)
        expected.add((f"s{i:03d}{photo}", f"s{i:03d}{metadata}"))
    shots, stats = await walk([tmp_path])
    assert pairs(shots, tmp_path) == expected
    assert len(shots) == len(expected)
    assert problems(shots, tmp_path) == []
    assert (stats.pending, stats.ignored_files, stats.problems) == (0, 0, [])


async def test_paths_are_absolute_even_for_a_relative_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shot(tmp_path / "dump", "a")
    monkeypatch.chdir(tmp_path)
    shots, _ = await walk([Path("dump")])
    assert [(s.photo, s.metadata) for s in shots] == [
        (str(tmp_path / "dump" / "a.jpg"), str(tmp_path / "dump" / "a.json"))
    ]


async def test_orphans_both_ways(tmp_path: Path) -> None:
    touch(tmp_path / "lonely.jpg")
    touch(tmp_path / "lost.bin")
    shot(tmp_path, "fine")
    shots, stats = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {("fine.jpg", "fine.json")}
    assert problems(shots, tmp_path) == [
        ("lonely.jpg", None, Reason.ORPHAN),
        (None, "lost.bin", Reason.ORPHAN),
    ]
    messages = {rel(s.photo or s.metadata, tmp_path): s.problem[1] for s in shots if s.problem}
    assert "no metadata file" in messages["lonely.jpg"]
    assert "'lonely'" in messages["lonely.jpg"]
    assert "no photo" in messages["lost.bin"]
    assert stats.pending == 0


async def test_two_photos_without_metadata_are_both_orphans(tmp_path: Path) -> None:
    touch(tmp_path / "x.jpg")
    touch(tmp_path / "x.png")
    shots, _ = await walk([tmp_path])
    assert problems(shots, tmp_path) == [
        ("x.jpg", None, Reason.ORPHAN),
        ("x.png", None, Reason.ORPHAN),
    ]


@pytest.mark.parametrize(
    "names",
    [
        ("x.jpg", "x.json", "x.bin"),
        ("x.jpg", "x.png", "x.json"),
        ("x.jpg", "x.JPG", "x.json", "x.JSON"),
    ],
)
async def test_ambiguous_pairs_reject_every_file_of_the_stem(
    tmp_path: Path, names: tuple[str, ...]
) -> None:
    for name in names:
        touch(tmp_path / name)
    shot(tmp_path, "y")
    shots, _ = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {("y.jpg", "y.json")}
    rejected = [s for s in shots if s.problem is not None]
    assert sorted(all_paths(rejected)) == sorted(str(tmp_path / n) for n in names)
    for s in rejected:
        assert s.problem is not None
        reason, message = s.problem
        assert reason is Reason.AMBIGUOUS_PAIR
        assert all(name in message for name in names)
        # Each file is rejected once, on the side it belongs to.
        assert (s.photo is None) != (s.metadata is None)
        assert s.photo is None or Path(s.photo).suffix.lower() in {".jpg", ".png"}


async def test_stems_are_case_sensitive_and_only_the_last_suffix_counts(tmp_path: Path) -> None:
    touch(tmp_path / "A.jpg")
    touch(tmp_path / "a.json")
    shot(tmp_path, "multi.part.name")
    touch(tmp_path / "z.tar.jpg")
    touch(tmp_path / "z.json")
    shots, _ = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {("multi.part.name.jpg", "multi.part.name.json")}
    assert problems(shots, tmp_path) == [
        ("A.jpg", None, Reason.ORPHAN),
        (None, "a.json", Reason.ORPHAN),
        (None, "z.json", Reason.ORPHAN),
        ("z.tar.jpg", None, Reason.ORPHAN),
    ]


async def test_non_shot_files_are_ignored_and_counted(tmp_path: Path) -> None:
    shot(tmp_path, "a")
    for name in ["README.txt", "a.jpg.part", "a.json~", "Thumbs.db", "noext", ".jpg", ".json"]:
        touch(tmp_path / name)
    touch(tmp_path / "sub" / "notes.md")
    (tmp_path / "empty").mkdir()
    shots, stats = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {("a.jpg", "a.json")}
    assert len(shots) == 1
    assert stats.ignored_files == 8
    assert stats.directories == 3


@pytest.mark.parametrize("concurrency", [1, 2, 8])
async def test_nested_folders_pair_only_within_their_folder(
    tmp_path: Path, concurrency: int
) -> None:
    expected = set()
    for path in ["a", "a/b", "a/b/c", "a/b/c/d/e", "f", "f/g"]:
        for stem in ("one", "two"):
            shot(tmp_path / path, stem)
            expected.add((f"{path}/{stem}.jpg", f"{path}/{stem}.json"))
    touch(tmp_path / "left" / "split.jpg")
    touch(tmp_path / "right" / "split.json")
    shots, stats = await walk([tmp_path], concurrency=concurrency)
    assert pairs(shots, tmp_path) == expected
    assert problems(shots, tmp_path) == [
        ("left/split.jpg", None, Reason.ORPHAN),
        (None, "right/split.json", Reason.ORPHAN),
    ]
    assert len(shots) == len(expected) + 2
    assert stats.directories == 10
    assert stats.problems == []


async def test_each_listing_is_one_folder(tmp_path: Path) -> None:
    for folder in ["a", "b", "b/c"]:
        shot(tmp_path / folder, "s1")
        shot(tmp_path / folder, "s2")
    walker = Walker([tmp_path], WalkOptions(60), now=NOW)
    listings = [listing async for group in walker for listing in group]
    assert sorted(Path(listing.directory).name for listing in listings) == ["a", "b", "c"]
    assert all(sorted(listing.stems) == ["s1", "s2"] for listing in listings)


async def test_listing_stats_nothing_until_a_part_is_paired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers skip the parts others claimed without a stat per file: listing reads names."""
    for i in range(20):
        shot(tmp_path, f"s{i:02d}")
    walker = Walker([tmp_path], WalkOptions(60), now=NOW)
    stats: list[str] = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os,
            name,
            lambda path, *a, real=real, **k: stats.append(str(path)) or real(path, *a, **k),
        )
    [[listing]] = [group async for group in walker]
    assert [s for s in stats if s != str(tmp_path)] == []
    first, _second = listing.split(2)
    shots, _ = paired(walker, [listing], first)
    assert {Path(s.photo or "").stem for s in shots} == set(first)
    assert sorted(Path(s).name for s in stats if s != str(tmp_path)) == sorted(
        f"{stem}{suffix}" for stem in first for suffix in (".jpg", ".json")
    )


@given(
    stems=st.sets(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1), max_size=60),
    parts=st.integers(1, 9),
)
def test_parts_cover_every_stem_once_and_the_same_way_everywhere(
    stems: set[str], parts: int
) -> None:
    listing = Listing("/d", ".", {stem: [] for stem in stems})
    cut = listing.split(parts)
    assert len(cut) == parts
    assert sorted(s for part in cut for s in part) == sorted(stems)
    assert all(part == sorted(part) for part in cut)
    assert all(part_of(stem, parts) == index for index, part in enumerate(cut) for stem in part)
    again = Listing("/elsewhere", ".", {stem: [] for stem in sorted(stems, reverse=True)})
    assert again.split(parts) == cut


def test_parts_are_about_one_batch_each() -> None:
    listing = Listing("/d", ".", {f"shot-{i:05d}": [] for i in range(2560)})
    assert listing.parts_for(256) == 10
    assert listing.parts_for(5000) == 1
    sizes = [len(part) for part in listing.split(10)]
    assert min(sizes) > 256 * 0.75 and max(sizes) < 256 * 1.25, sizes
    assert Listing("/d", ".").parts_for(256) == 1


# --- roots --------------------------------------------------------------------------------


async def test_several_roots_are_all_walked(tmp_path: Path) -> None:
    shot(tmp_path / "one", "a")
    shot(tmp_path / "two" / "deep", "b")
    shots, stats = await walk([tmp_path / "one", tmp_path / "two"])
    assert pairs(shots, tmp_path) == {
        ("one/a.jpg", "one/a.json"),
        ("two/deep/b.jpg", "two/deep/b.json"),
    }
    assert stats.problems == []


async def test_overlapping_roots_yield_each_shot_once(tmp_path: Path) -> None:
    root = tmp_path / "dump"
    shot(root, "top")
    shot(root / "cam1", "a")
    shot(root / "cam1" / "day", "b")
    shot(root / "cam2", "c")
    (tmp_path / "alias").symlink_to(root, target_is_directory=True)
    roots = [
        root,
        root,  # the same folder twice
        root / "cam1",  # a folder inside another root
        root / "cam1" / ".." / "cam1" / "day",  # another spelling of a folder inside
        tmp_path / "alias",  # the same folder through a symlink
    ]
    for order in (roots, roots[::-1]):
        shots, stats = await walk(order)
        paths = resolved(all_paths(shots))
        assert len(paths) == len(set(paths)) == 8
        assert len(shots) == 4
        assert stats.directories == 4
        assert stats.problems == []


async def test_a_root_that_is_a_file_or_missing_is_a_problem(tmp_path: Path) -> None:
    shot(tmp_path / "good", "a")
    touch(tmp_path / "file.jpg")
    shots, stats = await walk([tmp_path / "file.jpg", tmp_path / "missing", tmp_path / "good"])
    assert pairs(shots, tmp_path) == {("good/a.jpg", "good/a.json")}
    assert len(shots) == 1
    assert len(stats.problems) == 2
    assert f"{tmp_path / 'file.jpg'}: not a folder" in stats.problems
    assert any(
        p.startswith(str(tmp_path / "missing")) and "No such file" in p for p in stats.problems
    )


# --- settle -------------------------------------------------------------------------------


async def test_young_files_are_pending_not_rejected(tmp_path: Path) -> None:
    shot(tmp_path, "old")
    touch(tmp_path / "young-pair.jpg", age=10)
    touch(tmp_path / "young-pair.json")
    touch(tmp_path / "young-meta.jpg")
    touch(tmp_path / "young-meta.bin", age=59)
    touch(tmp_path / "young-orphan.jpg", age=1)
    touch(tmp_path / "young-orphan-meta.json", age=0)
    touch(tmp_path / "old-orphan.jpg", age=61)
    touch(tmp_path / "future.jpg", age=-3600)  # clock skew: mtime ahead of now
    shots, stats = await walk([tmp_path], settle=60)
    assert pairs(shots, tmp_path) == {("old.jpg", "old.json")}
    assert problems(shots, tmp_path) == [("old-orphan.jpg", None, Reason.ORPHAN)]
    assert stats.pending == 5


async def test_young_ambiguous_group_counts_as_pending_once_per_shot(tmp_path: Path) -> None:
    touch(tmp_path / "x.jpg", age=5)
    touch(tmp_path / "x.json")
    touch(tmp_path / "x.bin")
    shots, stats = await walk([tmp_path], settle=60)
    assert shots == []
    assert stats.pending == 2


async def test_settle_zero_holds_nothing_back(tmp_path: Path) -> None:
    touch(tmp_path / "a.jpg", age=0.5)
    touch(tmp_path / "a.json", age=0.5)
    touch(tmp_path / "b.jpg", age=0.5)
    shots, stats = await walk([tmp_path], settle=0)
    assert pairs(shots, tmp_path) == {("a.jpg", "a.json")}
    assert problems(shots, tmp_path) == [("b.jpg", None, Reason.ORPHAN)]
    assert stats.pending == 0


# --- include / exclude --------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in ["cam1", "cam2", "cam1/tmp", "skip"]:
        shot(tmp_path / folder, "a")
        shot(tmp_path / folder, "b", ".png", ".bin")
    return tmp_path


async def test_exclude_by_name_ignores_matching_files(tree: Path) -> None:
    shots, stats = await walk([tree], exclude=["b.*"])
    assert pairs(shots, tree) == {
        (f"{folder}/a.jpg", f"{folder}/a.json") for folder in ["cam1", "cam2", "cam1/tmp", "skip"]
    }
    assert problems(shots, tree) == []
    assert stats.ignored_files == 8


async def test_a_pattern_takes_or_leaves_whole_shots(tree: Path) -> None:
    """A metadata file's name drops its photo too, and a photo's name keeps its metadata:
    no pattern turns a shot into an orphan."""
    shots, stats = await walk([tree / "cam2"], exclude=["*.bin"])
    assert pairs(shots, tree) == {("cam2/a.jpg", "cam2/a.json")}
    assert problems(shots, tree) == []
    assert stats.ignored_files == 2
    shots, stats = await walk([tree], include=["*.jpg"])
    assert pairs(shots, tree) == {
        (f"{folder}/a.jpg", f"{folder}/a.json") for folder in ["cam1", "cam2", "cam1/tmp", "skip"]
    }
    assert problems(shots, tree) == []
    shots, _ = await walk([tree / "cam1"], include=["b"])  # a stem
    assert pairs(shots, tree) == {
        ("cam1/b.png", "cam1/b.bin"),
        ("cam1/tmp/b.png", "cam1/tmp/b.bin"),
    }


async def test_exclude_a_folder_by_name_does_not_walk_it(tree: Path) -> None:
    shots, stats = await walk([tree], exclude=["tmp", "skip"])
    folders = {Path(p).parent.relative_to(tree).as_posix() for p in all_paths(shots)}
    assert folders == {"cam1", "cam2"}
    assert stats.directories == 3  # root, cam1, cam2
    assert stats.ignored_files == 0


async def test_exclude_by_relative_path(tree: Path) -> None:
    shots, _ = await walk([tree], exclude=["cam1/tmp", "cam2/a.*"])
    folders = sorted(Path(p).relative_to(tree).as_posix() for p in all_paths(shots))
    assert "cam1/tmp/a.jpg" not in folders
    assert "cam2/a.jpg" not in folders and "cam2/a.json" not in folders
    assert "cam2/b.png" in folders and "cam1/a.jpg" in folders
    assert len(shots) == 5


async def test_include_by_name_and_by_relative_path(tree: Path) -> None:
    shots, stats = await walk([tree], include=["a.*"])
    assert pairs(shots, tree) == {
        (f"{folder}/a.jpg", f"{folder}/a.json") for folder in ["cam1", "cam2", "cam1/tmp", "skip"]
    }
    assert stats.ignored_files == 8
    shots, _ = await walk([tree], include=["cam1/*"])
    assert {Path(p).parent.relative_to(tree).as_posix() for p in all_paths(shots)} == {
        "cam1",
        "cam1/tmp",
    }
    assert len(shots) == 4


async def test_exclude_wins_over_include(tree: Path) -> None:
    shots, _ = await walk([tree], include=["cam1/*"], exclude=["*/tmp/*"])
    assert pairs(shots, tree) == {("cam1/a.jpg", "cam1/a.json"), ("cam1/b.png", "cam1/b.bin")}


# --- links and broken folders ------------------------------------------------------------


async def test_symlink_loop_is_reported_and_not_walked_twice(tmp_path: Path) -> None:
    shot(tmp_path / "a", "top")
    shot(tmp_path / "a" / "b", "deep")
    (tmp_path / "a" / "b" / "up").symlink_to("..", target_is_directory=True)
    (tmp_path / "a" / "b" / "self").symlink_to(".", target_is_directory=True)
    shots, stats = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {
        ("a/top.jpg", "a/top.json"),
        ("a/b/deep.jpg", "a/b/deep.json"),
    }
    assert len(shots) == 2
    assert stats.directories == 3
    assert sorted(stats.problems) == [
        f"{tmp_path / 'a' / 'b' / 'self'}: symlink loop or repeated folder, not walked twice",
        f"{tmp_path / 'a' / 'b' / 'up'}: symlink loop or repeated folder, not walked twice",
    ]


async def test_symlink_to_a_folder_outside_the_roots_is_reported_not_walked(
    tmp_path: Path,
) -> None:
    shot(tmp_path / "elsewhere", "far")
    shot(tmp_path / "dump", "near")
    (tmp_path / "dump" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "dump" / "up").symlink_to("..", target_is_directory=True)
    shots, stats = await walk([tmp_path / "dump"])
    assert pairs(shots, tmp_path) == {("dump/near.jpg", "dump/near.json")}
    assert len(shots) == 1
    assert sorted(stats.problems) == [
        f"{tmp_path / 'dump' / name}: symlink to a folder outside the given paths, not followed"
        for name in ("link", "up")
    ]


async def test_symlink_to_a_folder_inside_the_roots_is_walked_once(tmp_path: Path) -> None:
    shot(tmp_path / "dump" / "real", "a")
    (tmp_path / "dump" / "alias").symlink_to("real", target_is_directory=True)
    shots, stats = await walk([tmp_path / "dump"])
    assert [Path(s.photo or "").resolve() for s in shots] == [
        (tmp_path / "dump" / "real" / "a.jpg").resolve()
    ]
    assert len(stats.problems) <= 1  # the second way in, whichever is listed second
    assert all("repeated folder" in p for p in stats.problems)


async def test_a_folder_given_through_a_symlink_is_inside_itself(tmp_path: Path) -> None:
    shot(tmp_path / "data" / "cam", "a")
    (tmp_path / "data" / "cam-latest").symlink_to("cam", target_is_directory=True)
    (tmp_path / "today").symlink_to(tmp_path / "data", target_is_directory=True)
    shots, stats = await walk([tmp_path / "today"])
    assert len(shots) == 1
    assert all("outside" not in p for p in stats.problems)


async def test_unreadable_folder_is_reported_and_the_rest_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shot(tmp_path / "ok", "a")
    shot(tmp_path / "locked", "b")
    shot(tmp_path / "locked" / "inner", "c")
    shot(tmp_path / "ok" / "deeper", "d")
    blocked = str(tmp_path / "locked")
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) == blocked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    shots, stats = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {
        ("ok/a.jpg", "ok/a.json"),
        ("ok/deeper/d.jpg", "ok/deeper/d.json"),
    }
    assert len(shots) == 2
    assert stats.problems == [f"{blocked}: cannot list folder: Permission denied"]


async def test_dangling_photo_symlink_is_paired_and_refused(tmp_path: Path) -> None:
    touch(tmp_path / "x.json")
    (tmp_path / "x.jpg").symlink_to(tmp_path / "gone.jpg")
    os.utime(tmp_path / "x.jpg", (OLD, OLD), follow_symlinks=False)
    shots, stats = await walk([tmp_path])
    message = f"{tmp_path / 'x.jpg'}: a symbolic link, not read (only regular files are)"
    assert [(s.photo, s.metadata, s.problem) for s in shots] == [
        (str(tmp_path / "x.jpg"), str(tmp_path / "x.json"), (Reason.UNREADABLE, message))
    ]
    assert stats.pending == 0


@pytest.mark.parametrize("kind", ["symlink-outside", "symlink-inside", "fifo", "socket", "zero"])
async def test_only_regular_files_become_shots_to_read(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a name points at, a file that is not regular is one rejection, never read."""
    monkeypatch.chdir(tmp_path)  # a socket is bound by a relative name: sun_path is short
    touch(tmp_path / "dump" / "x.json")
    touch(tmp_path / "secret.jpg")
    photo = tmp_path / "dump" / "x.jpg"
    expected = "a symbolic link"
    if kind == "symlink-outside":
        photo.symlink_to(tmp_path / "secret.jpg")
    elif kind == "symlink-inside":
        touch(tmp_path / "dump" / "y.png")
        photo.symlink_to("y.png")
    elif kind == "zero":
        photo.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(photo)
        expected = "a FIFO"
    else:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind("dump/x.jpg")
        expected = "a socket"
    os.utime(photo, (OLD, OLD), follow_symlinks=False)
    shots, stats = await walk([tmp_path / "dump"])
    refused = [s for s in shots if s.photo == str(photo)]
    assert [s.problem for s in refused] == [
        (Reason.UNREADABLE, f"{photo}: {expected}, not read (only regular files are)")
    ]
    assert stats.problems == []


async def test_young_dangling_symlink_is_pending(tmp_path: Path) -> None:
    """A dangling link has no target mtime: its own mtime decides."""
    touch(tmp_path / "x.json")
    (tmp_path / "x.jpg").symlink_to(tmp_path / "gone.jpg")
    shots, stats = await walk([tmp_path])
    assert shots == []
    assert stats.pending == 1


class _Entry:
    """A directory entry whose ``stat`` fails the way ``errors`` says for its path."""

    def __init__(self, entry: os.DirEntry[str], errors: dict[str, OSError]) -> None:
        self._entry, self._errors = entry, errors
        self.name, self.path = entry.name, entry.path

    def is_dir(self, **kw: Any) -> bool:
        return self._entry.is_dir(**kw)

    def is_symlink(self) -> bool:
        return self._entry.is_symlink()

    def is_file(self, **kw: Any) -> bool:
        return self._entry.is_file(**kw)

    def stat(self, **kw: Any) -> os.stat_result:
        if self.path in self._errors:
            raise self._errors[self.path]
        return self._entry.stat(**kw)


def failing_stat(monkeypatch: pytest.MonkeyPatch, errors: dict[str, OSError]) -> None:
    """Make ``DirEntry.stat`` fail for some paths; entries come in name order."""
    real_scandir = os.scandir

    class Listing:
        def __init__(self, path: Any) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> Iterable[_Entry]:
            return (_Entry(e, errors) for e in sorted(self._it, key=lambda e: e.name))

        def __exit__(self, *exc: object) -> None:
            self._it.close()

    monkeypatch.setattr(os, "scandir", Listing)


async def test_a_file_vanishing_during_the_walk_loses_nothing_else(tmp_path: Path) -> None:
    """A file deleted between listing and stat (another run, a camera's rename) is just gone.

    The rest of its folder must still be paired normally: a partial listing would turn
    the files listed after it into false orphans, or lose them.
    """
    for stem in ("a", "b", "c", "d"):
        shot(tmp_path, stem)
    walker = Walker([tmp_path], WalkOptions(60), now=NOW)
    [[listing]] = [group async for group in walker]
    (tmp_path / "b.json").unlink()
    shots, _ = paired(walker, [listing])
    stats = walker.stats
    assert pairs(shots, tmp_path) == {("a.jpg", "a.json"), ("c.jpg", "c.json"), ("d.jpg", "d.json")}
    assert problems(shots, tmp_path) == [("b.jpg", None, Reason.ORPHAN)]
    assert stats.problems == []


async def test_a_subfolder_that_cannot_be_used_is_reported_and_its_siblings_paired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shot(tmp_path, "a")
    shot(tmp_path / "b-broken", "inner")
    shot(tmp_path, "c")
    broken = str(tmp_path / "b-broken")
    failing_stat(monkeypatch, {broken: OSError(116, "Stale file handle", broken)})
    shots, stats = await walk([tmp_path])
    assert pairs(shots, tmp_path) == {("a.jpg", "a.json"), ("c.jpg", "c.json")}
    assert problems(shots, tmp_path) == []
    assert stats.problems == [f"{broken}: cannot use folder: Stale file handle"]


async def test_folder_failing_mid_listing_yields_no_false_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error half way through a folder (NFS) must not pair the half that was read."""
    for stem in ("a", "b", "c"):
        shot(tmp_path / "flaky", stem)
    shot(tmp_path / "fine", "z")
    flaky = str(tmp_path / "flaky")
    real_scandir = os.scandir

    class Listing:
        def __init__(self, path: Any) -> None:
            self._path = os.fspath(path)
            self._it = real_scandir(path)

        def __enter__(self) -> Iterable[os.DirEntry[str]]:
            entries = sorted(self._it, key=lambda e: e.name)
            if self._path != flaky:
                return iter(entries)

            def failing() -> Iterable[os.DirEntry[str]]:
                yield from entries[:3]  # a.jpg, a.json, b.jpg
                raise OSError(5, "Input/output error", self._path)

            return failing()

        def __exit__(self, *exc: object) -> None:
            self._it.close()

    monkeypatch.setattr(os, "scandir", Listing)
    shots, stats = await walk([tmp_path])
    assert problems(shots, tmp_path) == []
    assert ("fine/z.jpg", "fine/z.json") in pairs(shots, tmp_path)
    assert stats.problems == [f"{flaky}: cannot list folder: Input/output error"]

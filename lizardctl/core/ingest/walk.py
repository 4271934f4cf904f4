"""Walking dump folders concurrently and pairing each photo with its metadata file.

Pairing only ever looks inside one directory (a shot's two files share a folder and a
stem), so every directory is listed once, in a worker thread, and handed on at once:
memory holds one directory's listing per scanning task, never the whole dump.

Listing a folder reads names only, in the main process. The per-file ``lstat`` (file
type and settle time) and the pairing happen in ``pair``, in the worker process that
gets the *part* of the folder (``Listing.part``: its names, by stem): processes that
share a dump claim folder parts through the database and never stat or pair the files
of parts another process holds, and the main process stats nothing.

The walk never leaves the paths it was given: a folder symlink is followed only when it
resolves inside one of them, others are reported. Only regular files become shots to
read; a symlink, FIFO, socket or device under a shot's name makes the shot a rejection
(the ``lstat`` of pairing says so), so nothing is opened that could block, never end,
or lie outside the dump.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import stat
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from lizardctl.core.choices import DEFAULT_SETTLE_S
from lizardctl.core.files import file_kind
from lizardctl.core.ingest.outcome import Pending
from lizardctl.core.photos import PHOTO_SUFFIXES
from lizardctl.core.vocabulary import Reason

METADATA_SUFFIXES = frozenset({".json", ".bin"})
FUTURE_SLACK_S = 2.0
"""An mtime this far past the clock is in the future, not a file being written now."""


@dataclass(frozen=True, slots=True)
class ShotFiles:
    """A shot to examine, or a file that cannot become one (``problem`` says why)."""

    photo: str | None
    metadata: str | None
    problem: tuple[Reason, str] | None = None


@dataclass(slots=True)
class WalkStats:
    """What the walk saw besides shots: files ignored, folders it could not use."""

    ignored_files: int = 0
    directories: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Part:
    """A part of one folder as its worker gets it: the file names of each stem, in order.

    Tuples of strings: the message to the worker stays small and cheap to pickle.
    """

    directory: str
    stems: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(slots=True)
class Listing:
    """One folder's files that may form shots, names grouped by stem; nothing stat'ed yet."""

    directory: str
    relative: str
    stems: dict[str, list[str]] = field(default_factory=dict)
    subdirs: list[tuple[str, tuple[int, int], bool]] = field(default_factory=list)
    ignored: int = 0
    problems: list[str] = field(default_factory=list)

    def parts_for(self, batch_size: int) -> int:
        """How many parts to cut this folder into: about one batch of shots each."""
        return max(1, -(-len(self.stems) // batch_size))

    def split(self, parts: int) -> list[list[str]]:
        """The stems, sorted, cut into ``parts`` by ``part_of``: the same cut on every host."""
        cut: list[list[str]] = [[] for _ in range(parts)]
        for stem in sorted(self.stems):
            cut[part_of(stem, parts)].append(stem)
        return cut

    def part(self, stems: Iterable[str] | None = None) -> Part:
        """The files of ``stems`` (default: the whole folder, sorted), for ``pair``."""
        chosen = sorted(self.stems) if stems is None else stems
        return Part(self.directory, tuple((stem, tuple(self.stems[stem])) for stem in chosen))


@dataclass(frozen=True, slots=True)
class WalkOptions:
    settle_seconds: float = DEFAULT_SETTLE_S
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    concurrency: int = 8
    shard: tuple[int, int] | None = None
    """``(k, n)``: only shots whose folder-relative stem hashes to k of n (1-based)."""


def _matches(patterns: Sequence[str], relative: str, name: str) -> bool:
    return any(fnmatchcase(relative, p) or fnmatchcase(name, p) for p in patterns)


def _shot_matches(patterns: Sequence[str], folder: str, names: Sequence[str]) -> bool:
    """Whether a pattern matches one of a shot's names (stem, photo, metadata file), alone
    or relative to the root (``folder`` is the folder's relative path, ``.`` for the root)."""
    prefix = "" if folder == "." else folder + os.sep
    return any(_matches(patterns, prefix + name, name) for name in names)


def _kind(name: str) -> str | None:
    """``photo``, ``metadata`` or None, by suffix (os.path: pathlib costs ~6 us a name here)."""
    suffix = os.path.splitext(name)[1].lower()  # noqa: PTH122 - hot path
    if suffix in PHOTO_SUFFIXES:
        return "photo"
    if suffix in METADATA_SUFFIXES:
        return "metadata"
    return None


def part_of(stem: str, parts: int) -> int:
    """Which of a folder's ``parts`` a stem falls in: the same on every host.

    blake2b, not crc32 as for shards: crc32 is linear, so with a fixed folder prefix the
    two would agree bit for bit and one part would get all of a shard's shots.
    """
    if parts == 1:
        return 0
    digest = hashlib.blake2b(os.fsencode(stem), digest_size=8).digest()
    return int.from_bytes(digest, "little") % parts


def refusal(path: str, mode: int) -> str:
    """The message of a shot whose file is not read because of its type."""
    return f"{path}: {file_kind(mode)}, not read (only regular files are)"


def inside(path: str, roots: Sequence[str]) -> bool:
    """Whether the real ``path`` is one of ``roots`` (real paths) or below one."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _in_shard(name: str, shard: tuple[int, int]) -> bool:
    """Static partitioning: the same shot lands in the same shard on every host."""
    k, n = shard
    return zlib.crc32(os.fsencode(name)) % n == k - 1


class Walker:
    """Yields batches of ``ShotFiles`` per directory, walking directories concurrently."""

    def __init__(self, roots: Sequence[Path], options: WalkOptions, now: float) -> None:
        self.roots = [Path(r).absolute() for r in roots]
        self.real_roots = [os.path.realpath(r) for r in self.roots]
        self.options = options
        self.young_after = now - options.settle_seconds
        self.stats = WalkStats()

    def _scan(self, root: Path, directory: str) -> Listing:
        listing = Listing(directory, os.path.relpath(directory, root))
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    self._add(listing, root, entry)
            self._select_shots(listing)
        except OSError as exc:
            # Half a folder must not be paired: the files not listed yet would turn their
            # partners into false orphans. The folder is reported; a re-run takes it whole.
            listing.stems.clear()
            listing.problems.append(f"{directory}: cannot list folder: {exc.strerror or exc}")
        return listing

    def _select_shots(self, listing: Listing) -> None:
        """``--include``/``--exclude`` keep or drop whole shots, never single files: a
        pattern matching the photo (``*.jpg``), the metadata file or the stem takes both,
        so a photo never loses its metadata to a pattern and turns into an orphan."""
        include, exclude = self.options.include, self.options.exclude
        if not include and not exclude:
            return
        for stem, entries in list(listing.stems.items()):
            names = [stem, *entries]
            if (exclude and _shot_matches(exclude, listing.relative, names)) or (
                include and not _shot_matches(include, listing.relative, names)
            ):
                del listing.stems[stem]
                listing.ignored += len(entries)

    def _add(self, listing: Listing, root: Path, entry: os.DirEntry[str]) -> None:
        """File one directory entry; a failure on one entry never costs the rest of the folder."""
        options = self.options
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if options.exclude and _matches(
                options.exclude, os.path.relpath(entry.path, root), entry.name
            ):
                return
            try:
                info = entry.stat()
                is_link = entry.is_symlink()
            except FileNotFoundError:
                return  # removed since it was listed
            except OSError as exc:
                listing.problems.append(f"{entry.path}: cannot use folder: {exc.strerror or exc}")
                return
            if is_link and not inside(os.path.realpath(entry.path), self.real_roots):
                listing.problems.append(
                    f"{entry.path}: symlink to a folder outside the given paths, not followed"
                )
                return
            listing.subdirs.append((entry.path, (info.st_dev, info.st_ino), is_link))
            return
        kind = _kind(entry.name)
        if kind is None:
            listing.ignored += 1
            return
        stem = os.path.splitext(entry.name)[0]  # noqa: PTH122 - hot path
        shard = options.shard
        if shard is not None and not _in_shard(f"{listing.relative}/{stem}", shard):
            return
        listing.stems.setdefault(stem, []).append(entry.name)

    async def rescan(self, directory: str) -> Listing:
        """List one folder again (a dead worker's part to take over), relative to its root."""
        roots = [
            r for r in self.roots if directory == str(r) or directory.startswith(f"{r}{os.sep}")
        ]
        root = max(roots, key=lambda r: len(str(r)), default=Path(directory))
        listing = await asyncio.to_thread(self._scan, root, directory)
        self.stats.problems.extend(listing.problems)
        return listing

    async def __aiter__(self) -> AsyncIterator[list[Listing]]:
        """The folders listed since the last step; several are listed at once in threads."""
        pending: set[asyncio.Task[Listing]] = set()
        seen: set[tuple[int, int]] = set()
        queue: list[tuple[Path, str]] = []
        for root in self.roots:
            try:
                info = root.stat()
            except OSError as exc:
                self.stats.problems.append(f"{root}: {exc.strerror or exc}")
                continue
            if not stat.S_ISDIR(info.st_mode):
                self.stats.problems.append(f"{root}: not a folder")
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                queue.append((root, str(root)))
        roots_of: dict[asyncio.Task[Listing], Path] = {}
        while queue or pending:
            while queue and len(pending) < self.options.concurrency:
                root, directory = queue.pop()
                task = asyncio.create_task(asyncio.to_thread(self._scan, root, directory))
                roots_of[task] = root
                pending.add(task)
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            listings: list[Listing] = []
            for task in done:
                root = roots_of.pop(task)
                listing = task.result()
                self.stats.directories += 1
                self.stats.ignored_files += listing.ignored
                self.stats.problems.extend(listing.problems)
                # Each process walks in its own random order, so processes sharing a job
                # meet on few folders instead of splitting every batch between them.
                random.shuffle(listing.subdirs)
                for path, key, is_link in listing.subdirs:
                    if key in seen:
                        if is_link:
                            self.stats.problems.append(
                                f"{path}: symlink loop or repeated folder, not walked twice"
                            )
                        continue
                    seen.add(key)
                    queue.append((root, path))
                if listing.stems:
                    listings.append(listing)
            if listings:
                yield listings


@dataclass(frozen=True, slots=True)
class _File:
    name: str
    path: str
    is_photo: bool
    mtime: float | None
    """None when the file is gone since the listing."""
    refused: str | None
    """Why the file is not read (it is not a regular file), or None."""


def _looked_at(directory: str, name: str) -> _File:
    """A listed file's type and mtime, from one ``lstat``: a symlink is never followed,
    so its own type and mtime decide."""
    path = os.path.join(directory, name)  # noqa: PTH118 - hot path
    is_photo = _kind(name) == "photo"
    try:
        info = os.lstat(path)
    except FileNotFoundError:  # removed since it was listed: nothing to ingest or reject
        return _File(name, path, is_photo, None, None)
    except OSError:  # cannot even lstat it: let the read fail and say why
        return _File(name, path, is_photo, 0.0, None)
    refused = None if stat.S_ISREG(info.st_mode) else refusal(path, info.st_mode)
    return _File(name, path, is_photo, info.st_mtime, refused)


def pair(part: Part, young_after: float) -> tuple[list[ShotFiles], Pending]:
    """Pair the settled files of a part; the shots held back are counted in ``Pending``."""
    shots: list[ShotFiles] = []
    pending = Pending()
    for stem, names in part.stems:
        files = [_looked_at(part.directory, name) for name in names]
        young = [f for f in files if f.mtime is not None and f.mtime > young_after]
        if young:
            photo_count = sum(1 for f in files if f.is_photo)
            held = max(photo_count, len(files) - photo_count)
            pending.count += held
            ahead = [
                f for f in young if f.mtime is not None and f.mtime > time.time() + FUTURE_SLACK_S
            ]
            if ahead:
                pending.future += held
                pending.future_example = pending.future_example or ahead[0].path
            else:
                pending.example = pending.example or young[0].path
            continue
        present = [f for f in files if f.mtime is not None]
        photos = [f for f in present if f.is_photo]
        metadata = [f for f in present if not f.is_photo]
        group = photos + metadata
        if not group:
            continue
        if len(photos) == 1 and len(metadata) == 1:
            refused = photos[0].refused or metadata[0].refused
            problem = None if refused is None else (Reason.UNREADABLE, refused)
            shots.append(ShotFiles(photos[0].path, metadata[0].path, problem))
        elif not photos or not metadata:
            partner = "metadata file" if photos else "photo"
            for f in group:
                shots.append(
                    ShotFiles(
                        f.path if photos else None,
                        None if photos else f.path,
                        (Reason.ORPHAN, f"no {partner} with the stem {stem!r} beside it"),
                    )
                )
        else:
            names_ = ", ".join(sorted(f.name for f in group))
            message = f"cannot pair {names_}: several photos or metadata files share one stem"
            shots.extend(
                ShotFiles(
                    f.path if f.is_photo else None,
                    None if f.is_photo else f.path,
                    (Reason.AMBIGUOUS_PAIR, message),
                )
                for f in group
            )
    return shots, pending

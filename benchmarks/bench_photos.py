"""Micro-benchmark of the per-shot photo work: probing and storing.

Prints microseconds per photo for ``probe_photo`` (JPEG fast path, sha256 included) against
a bare ``PIL.Image.open``, and for ``FileStore.put_many`` (the store's first layout, a file
per photo, kept to read old stores) in batches against one ``put`` per photo, with MB/s of
photo data, for each durability strategy: per-file fsync one at a time, per-file fsync on a
thread pool, and one syncfs per batch stage. Photos are ~30-50 KB JPEGs of random noise, so
their entropy-coded data is as long as a real shot's. Run the store part on the disk the
store will live on: on tmpfs, flushing is free and the figures mean nothing. Every store
timing starts after a ``sync``, so no dirty page left by an earlier row (or another program)
is flushed on its clock. The stores' directories are created beforehand, as in a store that
has seen a few hundred thousand photos: creating them costs as much as storing the photos
(on our ext4 VM any inode, file or directory, takes ~0.3-0.8 ms of kernel time), and a store
pays it only once; ``--fresh-stores`` times it too.

    python benchmarks/bench_photos.py --photos 1024 --dir /srv/lizard --strategy syncfs
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from lizardctl.core.photos import probe_photo
from lizardctl.core.store import FileStore
from lizardctl.core.store import files as store_module

STRATEGIES: dict[str, Callable[[Path], FileStore]] = {
    "fsync-serial": lambda root: FileStore(root, syncfs=False, fsync_threads=1),
    "fsync-parallel": lambda root: FileStore(root, syncfs=False),
    "syncfs": FileStore,
}


def make_photos(count: int, seed: int) -> list[bytes]:
    """Noise JPEGs whose sizes spread over ~30-50 KB, as the cameras' do."""
    rng = random.Random(seed)
    photos = []
    for _ in range(count):
        width = rng.randrange(230, 290)
        height = width * 3 // 4
        image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        photos.append(buffer.getvalue())
    return photos


def per_photo_us(run: Callable[[], object], count: int, repeat: int) -> float:
    """Best of ``repeat`` timings of ``run``, in microseconds per photo."""
    best = min(_timed(run) for _ in range(repeat))
    return best / count / 1_000


def _timed(run: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    run()
    return time.perf_counter_ns() - start


def bench_probe(photos: Sequence[bytes], repeat: int) -> None:
    count = len(photos)
    rows = {
        "probe_photo (fast path + sha256)": lambda: [probe_photo(data) for data in photos],
        "  of which sha256": lambda: [hashlib.sha256(data).hexdigest() for data in photos],
        "PIL.Image.open (header only)": lambda: [
            Image.open(io.BytesIO(data)).size for data in photos
        ],
    }
    for label, run in rows.items():
        print(f"{label:<40} {per_photo_us(run, count, repeat):8.1f} us/photo")


def make_directories(root: Path, items: Sequence[tuple[str, bytes]]) -> None:
    """Create the directories the photos go to, as a long-lived store already has them."""
    for sha, _ in items:
        (root / sha[:2] / sha[2:4]).mkdir(parents=True, exist_ok=True)


def bench_store(
    photos: Sequence[bytes], batch: int, parent: Path, strategy: str, *, fresh: bool
) -> None:
    items = [(hashlib.sha256(data).hexdigest(), data) for data in photos]
    batches = [items[start : start + batch] for start in range(0, len(items), batch)]
    megabytes = sum(len(data) for data in photos) / 1e6
    open_store = STRATEGIES[strategy]
    with (
        tempfile.TemporaryDirectory(dir=parent) as one,
        tempfile.TemporaryDirectory(dir=parent) as many,
    ):
        single, batched = open_store(Path(one)), open_store(Path(many))
        if not fresh:
            make_directories(single.root, items)
            make_directories(batched.root, items)
        rows = {
            "put, one photo at a time": lambda: [single.put(sha, data) for sha, data in items],
            f"put_many, batches of {batch}": lambda: [batched.put_many(b) for b in batches],
            f"put_many, batches of {batch}, all stored": lambda: [
                batched.put_many(b) for b in batches
            ],
        }
        print(f"store: {strategy}")
        for label, run in rows.items():
            os.sync()
            seconds = _timed(run) / 1e9
            rate = "" if label.endswith("all stored") else f" {megabytes / seconds:8.1f} MB/s"
            print(f"  {label:<38} {seconds / len(items) * 1e6:8.1f} us/photo{rate}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1024, help="photos to generate")
    parser.add_argument("--batch", type=int, default=256, help="put_many batch size")
    parser.add_argument("--repeat", type=int, default=5, help="probe timings: best of N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        action="append",
        help="store durability strategy to time; repeat for several (default: all)",
    )
    parser.add_argument(
        "--fresh-stores", action="store_true", help="time creating the directories too"
    )
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the stores go"
    )
    args = parser.parse_args(argv)
    strategies = args.strategy or list(STRATEGIES)
    if "syncfs" in strategies and store_module._syncfs is None:
        parser.error("syncfs(2) is not usable here: the syncfs store would time fsync instead")

    photos = make_photos(args.photos, args.seed)
    sizes = sorted(len(data) for data in photos)
    print(
        f"{len(photos)} JPEGs, {sizes[0] // 1024}-{sizes[-1] // 1024} KB "
        f"(mean {sum(sizes) // len(sizes) // 1024} KB); stores under {args.dir}"
    )
    bench_probe(photos, args.repeat)
    for strategy in strategies:
        bench_store(photos, args.batch, args.dir, strategy, fresh=args.fresh_stores)


if __name__ == "__main__":
    main()

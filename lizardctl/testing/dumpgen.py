"""Generate camera dump folders: the bundled example, test fixtures and benchmark input.

A dump is what cameras leave behind: ``dump/<part>/<camera>/<stem>.<photo>`` beside
``<stem>.json`` or ``<stem>.bin``, plus the ``cameras.csv`` that registers the cameras.
Optionally it carries deliberately bad shots, each with the one defect whose rejection
reason the manifest records, so tests and the benchmark know the exact expected outcome.

Metadata is laid out from the camera types' shipped schema files and written with the
codecs' encoder: nothing here knows camerus1-3 by name, so a shipped type whose schema
the generator cannot read backwards fails loudly here rather than going untested.

Photos must be realistic (30-50 KB JPEGs by default) yet each of a distinct hash, and the
benchmark needs 100,000 of them quickly: a handful of base images is encoded once, and
each photo is a base with a small unique comment segment inserted after its signature,
which every decoder skips. Output is deterministic for a ``seed`` and ``now``.
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
import random
import struct
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from lizardctl.core.codecs import encode_binary
from lizardctl.core.output import SpreadsheetWriter
from lizardctl.core.schema.builtin import builtin_schema_files
from lizardctl.core.schema.compiler import compile_schema
from lizardctl.core.schema.errors import ShotInvalid
from lizardctl.core.schema.format import (
    Concat,
    Epoch,
    FieldSpec,
    Parts,
    Ref,
    SchemaDocument,
    Source,
    load_schema_file,
)

__all__ = [
    "BAD_SHOT_KINDS",
    "CAMERA_TYPES",
    "DUPLICATE",
    "FILE_AGE_S",
    "FUTURE_OFFSET",
    "INGESTED",
    "PNG_FRACTION",
    "DumpManifest",
    "GeneratedCamera",
    "GeneratedShot",
    "SchemaLayout",
    "ShotFields",
    "generate_dump",
]

CAMERA_TYPES: tuple[str, ...] = tuple(builtin_schema_files())
"""The shipped camera types (camerus1-3): cameras cycle through them."""
INGESTED = "ingested"
DUPLICATE = "duplicate"

BAD_SHOT_KINDS: tuple[tuple[str, str], ...] = (
    ("orphan-photo", "orphan"),
    ("orphan-metadata", "orphan"),
    ("broken-json", "bad-metadata"),
    ("corrupt-bin", "bad-metadata"),
    ("unknown-type", "unknown-type"),
    ("month-13", "invalid"),
    ("unknown-camera", "unknown-camera"),
    ("type-mismatch", "type-mismatch"),
    ("future", "future-timestamp"),
    ("truncated-jpeg", "bad-photo"),
    ("text-as-jpeg", "bad-photo"),
    ("resent", DUPLICATE),
)
"""Each bad shot's stem suffix and the outcome an ingest must give it; one of each per set."""


FUTURE_OFFSET = timedelta(days=3650)
"""How far after ``now`` the future-timestamp shot is dated. Not a day: the example dump is
generated with a fixed ``now`` and must still be in the future when someone ingests it."""

FILE_AGE_S = 3600
"""Every file's mtime is this far behind the wall clock, so ``--settle 60`` holds none back."""

PNG_FRACTION = 0.03
"""Share of good shots whose photo is a PNG rather than a JPEG; at least one."""

_JPEG_BASES, _PNG_BASES = 8, 2
_UTC_OFFSETS = ("+00:00", "+03:00", "+05:00", "-04:00")
_PLATE_LETTERS = "ABEKMHOPCTYX"  # A-Z letters that are also valid on Cyrillic plates
_SHOT_AGE_S = (3600, 30 * 86400)  # good shots were taken 1 hour to 30 days before ``now``
_JPEG_SOI = b"\xff\xd8"
_WRITER_THREADS, _MAX_PENDING = 2, 256
_PNG_SIGNATURE_AND_IHDR = 8 + 25  # signature, then IHDR: length, type, 13 data bytes, CRC


@dataclass(frozen=True, slots=True)
class GeneratedCamera:
    """One row of ``cameras.csv``."""

    id: uuid.UUID
    camera_type: str
    latitude: float
    longitude: float
    description: str


@dataclass(frozen=True, slots=True)
class GeneratedShot:
    """One shot as written, and the outcome an ingest must report for it.

    ``expected`` is ``"ingested"``, ``"duplicate"`` or a rejection reason code; an orphan
    has only one of ``photo`` and ``metadata``. ``detail`` names the defect of a bad shot.
    """

    photo: Path | None
    metadata: Path | None
    expected: str
    detail: str = ""

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.photo, self.metadata) if p is not None)


@dataclass(frozen=True)
class DumpManifest:
    """What ``generate_dump`` wrote: ingest ``dump_dir`` after importing ``cameras_csv``."""

    root: Path
    cameras_csv: Path
    dump_dir: Path
    cameras: tuple[GeneratedCamera, ...]
    shots: list[GeneratedShot]
    now: datetime

    def expected_counts(self) -> dict[str, int]:
        """Outcome (``ingested``, ``duplicate``) or rejection reason -> number of shots."""
        return dict(Counter(shot.expected for shot in self.shots))


def generate_dump(
    root: Path,
    *,
    cameras: int = 6,
    shots_per_camera: int = 5,
    bad: bool = True,
    bad_sets: int = 1,
    binary_fraction: float = 1 / 3,
    photo_bytes: tuple[int, int] = (30_000, 50_000),
    folders: int = 2,
    seed: int = 0,
    now: datetime | None = None,
) -> DumpManifest:
    """Write ``root/cameras.csv`` and ``root/dump/part-NN/cam-NNN/shot-NNNNNN.*``.

    Cameras cycle through camerus1/2/3; each camera's shots are spread over ``folders``
    parts. ``binary_fraction`` of the good shots carry ``.bin`` metadata, ``PNG_FRACTION``
    a PNG photo. With ``bad``, ``bad_sets`` sets of ``BAD_SHOT_KINDS`` are added, one shot
    of each kind per set (the duplicates are copies of good shots under ``dump/resent``).
    Refuses to write into an existing ``root/dump``: stale files would corrupt the counts.
    """
    now = datetime.now(UTC) if now is None else now
    _check_arguments(cameras, shots_per_camera, bad, bad_sets, binary_fraction, folders, now)
    dump_dir = root / "dump"
    if dump_dir.exists():
        raise FileExistsError(f"{dump_dir} already exists; generate into a fresh root")
    photos = _PhotoFactory(_rng(seed, "photos"), photo_bytes, seed)
    made = _make_cameras(_rng(seed, "cameras"), cameras)
    cameras_csv = root / "cameras.csv"
    root.mkdir(parents=True, exist_ok=True)
    content = _ShotContent(_rng(seed, "shots"), now)
    good_total = cameras * shots_per_camera
    is_binary = _spread(_rng(seed, "encoding"), good_total, round(good_total * binary_fraction))
    is_png = _spread(_rng(seed, "formats"), good_total, max(1, round(good_total * PNG_FRACTION)))
    folder_of = _Folders(dump_dir, folders)
    shots: list[GeneratedShot] = []
    with _Writer(time.time() - FILE_AGE_S) as writer:
        _write_cameras_csv(writer, cameras_csv, made)
        for n in range(good_total):
            index, shot = divmod(n, shots_per_camera)
            stem = folder_of(shot, index) / f"shot-{n:06d}"
            photo = stem.with_suffix(".png" if is_png[n] else ".jpg")
            metadata = stem.with_suffix(".bin" if is_binary[n] else ".json")
            writer.write(photo, photos.png(n) if is_png[n] else photos.jpeg(n))
            writer.write(metadata, _encode(content.metadata(made[index]), metadata.suffix))
            shots.append(GeneratedShot(photo, metadata, INGESTED))
        if bad:
            writer.drain()  # the re-sent duplicates are copied from files written above
            bad_maker = _BadShots(
                _rng(seed, "bad"), writer, photos, content, made, folder_of, binary_fraction
            )
            originals = _rng(seed, "duplicates").sample(shots, bad_sets)
            for number, original in enumerate(originals):
                first = good_total + number * len(BAD_SHOT_KINDS)
                shots.extend(bad_maker.make_set(first, original))
    return DumpManifest(root, cameras_csv, dump_dir, made, shots, now)


def _check_arguments(
    cameras: int,
    shots_per_camera: int,
    bad: bool,
    bad_sets: int,
    binary_fraction: float,
    folders: int,
    now: datetime,
) -> None:
    if cameras < (3 if bad else 1):
        raise ValueError("need at least 3 cameras for bad shots (one of each type), else 1")
    if shots_per_camera < 1 or folders < 1:
        raise ValueError("shots_per_camera and folders must be at least 1")
    if bad and not 1 <= bad_sets <= cameras * shots_per_camera:
        raise ValueError("bad_sets must be between 1 and the number of good shots")
    if not 0 <= binary_fraction <= 1:
        raise ValueError("binary_fraction must be between 0 and 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _rng(seed: int, purpose: str) -> random.Random:
    """One independent stream per purpose: changing one knob leaves the other files as they were."""
    return random.Random(f"lizardctl-dumpgen:{seed}:{purpose}")


def _spread(rng: random.Random, total: int, chosen: int) -> list[bool]:
    """Exactly ``chosen`` of ``total`` flags set, at random places (not in step with types)."""
    flags = [True] * chosen + [False] * (total - chosen)
    rng.shuffle(flags)
    return flags


class _Folders:
    """``dump/part-NN/cam-NNN`` for a shot and a camera index, created on first use."""

    def __init__(self, dump_dir: Path, parts: int) -> None:
        self.dump_dir = dump_dir
        self._parts = parts
        self._made: dict[tuple[int, int], Path] = {}

    def __call__(self, shot: int, camera_index: int) -> Path:
        key = (shot % self._parts, camera_index)
        folder = self._made.get(key)
        if folder is None:
            folder = self.dump_dir / f"part-{key[0]:02d}" / f"cam-{camera_index:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            self._made[key] = folder
        return folder


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _encode(metadata: dict[str, Any], suffix: str) -> bytes:
    return encode_binary(metadata) if suffix == ".bin" else json.dumps(metadata).encode()


class _Writer:
    """Writes files on a few threads and backdates them, so ``--settle`` holds none back.

    Creating files is kernel time (most of the generator's, on a real disk) that runs
    without the GIL: threads overlap it with making the next shots. At most
    ``_MAX_PENDING`` writes are in flight, which bounds memory; errors surface in order.
    """

    def __init__(self, mtime: float) -> None:
        self._times = (mtime, mtime)
        self._pool = ThreadPoolExecutor(_WRITER_THREADS, thread_name_prefix="dumpgen")
        self._pending: deque[Future[None]] = deque()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self.drain()
        finally:
            self._pool.shutdown(cancel_futures=True)

    def write(self, path: Path, data: bytes) -> None:
        self._pending.append(self._pool.submit(self._write, path, data))
        if len(self._pending) > _MAX_PENDING:
            self._pending.popleft().result()

    def drain(self) -> None:
        """Wait for every write so far: before reading a written file back."""
        while self._pending:
            self._pending.popleft().result()

    def _write(self, path: Path, data: bytes) -> None:
        with path.open("wb") as f:
            f.write(data)
            f.flush()  # a write after the utime would set the mtime to now again
            os.utime(f.fileno(), self._times)


def _make_cameras(rng: random.Random, count: int) -> tuple[GeneratedCamera, ...]:
    made = []
    for index in range(count):
        camera_type = CAMERA_TYPES[index % len(CAMERA_TYPES)]
        made.append(
            GeneratedCamera(
                id=_uuid(rng),
                camera_type=camera_type,
                latitude=round(rng.uniform(55.55, 55.95), 6),
                longitude=round(rng.uniform(37.35, 37.85), 6),
                description=f"{camera_type} test camera {index + 1}, km {rng.randint(1, 99)}",
            )
        )
    return tuple(made)


def _write_cameras_csv(writer: _Writer, path: Path, cameras: tuple[GeneratedCamera, ...]) -> None:
    buffer = io.StringIO(newline="")
    out = SpreadsheetWriter(buffer)
    out.writerow(["id", "type", "latitude", "longitude", "description"])
    for camera in cameras:
        out.writerow(
            [camera.id, camera.camera_type, camera.latitude, camera.longitude, camera.description]
        )
    writer.write(path, buffer.getvalue().encode())


class _ShotContent:
    """Valid metadata for any camera type: plate, violation, skill and a past timestamp."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self._rng = rng
        self.now = now
        self._violations = [_uuid(rng) for _ in range(3)]
        self.layouts = _layouts()

    def metadata(
        self,
        camera: GeneratedCamera,
        *,
        camera_type: str | None = None,
        camera_id: uuid.UUID | None = None,
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """Metadata in ``camera_type``'s layout (default: the camera's own) for ``camera``."""
        fields = self.fields(camera, camera_id=camera_id, when=when)
        return self.layouts[camera_type or camera.camera_type].metadata(fields)

    def fields(
        self,
        camera: GeneratedCamera,
        *,
        camera_id: uuid.UUID | None = None,
        when: datetime | None = None,
    ) -> ShotFields:
        """What one shot of ``camera`` says, whatever the layout it is sent in."""
        rng = self._rng
        if when is None:
            when = self.now - timedelta(seconds=rng.randint(*_SHOT_AGE_S))
        offset = _UTC_OFFSETS[camera.id.int % len(_UTC_OFFSETS)]
        local = when.astimezone(timezone(_parse_offset(offset))).replace(microsecond=0)
        region = str(rng.randint(10, 199))
        return ShotFields(
            chars="".join(rng.choices(_PLATE_LETTERS, k=3)),
            numbers=f"{rng.randint(1, 999):03d}",
            region=region,
            camera_id=str(camera_id or camera.id),
            violation_id=str(rng.choice(self._violations)),
            violation_value=f"{rng.randint(61, 140)}km/h",
            skill=rng.randint(1, 5),
            local=local,
            offset=offset,
        )


@dataclass(frozen=True, slots=True)
class ShotFields:
    """What one shot says, before it is laid out in a camera type's metadata."""

    chars: str
    numbers: str
    region: str
    camera_id: str
    violation_id: str
    violation_value: str
    skill: int
    local: datetime
    offset: str


def _parse_offset(offset: str) -> timedelta:
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    return sign * timedelta(hours=hours, minutes=minutes)


class SchemaLayout:
    """Metadata in one camera type's layout, made from its schema file: the mapping read
    backwards (a value goes where the mapping reads it from), as any user's type would be.

    A value read as a concatenation of slices (the plate) is cut into as many pieces as
    the mapping has parts; which cuts are the layout's is found once per value length, by
    trying cuts until the schema itself maps the metadata back to the values.
    """

    def __init__(self, name: str, doc: SchemaDocument) -> None:
        self.name = name
        self.mapping = doc.mapping
        self.compiled = compile_schema(name, 1, doc)
        self._concats = {f: s for f, s in doc.mapping.items() if isinstance(s, Concat)}
        self._pieced = {ref.path for source in self._concats.values() for ref in source.parts}
        self._cuts: dict[tuple[int, ...], tuple[tuple[int, ...], ...]] = {}

    def metadata(self, f: ShotFields) -> dict[str, Any]:
        values: dict[str, Any] = {
            "plate": f.numbers[0] + f.chars + f.numbers[1:] + f.region,
            "camera_id": f.camera_id,
            "violation_id": f.violation_id,
            "violation_value": f.violation_value,
            "skill": f.skill,
        }
        metadata: dict[str, Any] = {}
        for field, source in self.mapping.items():
            if field == "occurred_at":
                _put_time(metadata, source, f.local, f.offset)
            elif isinstance(source, Ref):
                _put(metadata, source.path, values[field])
        _fill(metadata, self.compiled.document.layout, self._pieced)
        if self._concats:
            lengths = tuple(len(values[field]) for field in self._concats)
            cuts = self._cuts.get(lengths)
            if cuts is None:
                cuts = self._cuts[lengths] = self._find_cuts(metadata, values, f.local)
            self._put_concats(metadata, values, cuts)
        return _in_layout_order(metadata, self.compiled.document.layout)

    def _put_concats(
        self, metadata: dict[str, Any], values: dict[str, Any], cuts: tuple[tuple[int, ...], ...]
    ) -> bool:
        return all(
            _put_pieces(metadata, source, _pieces(values[field], cut))
            for (field, source), cut in zip(self._concats.items(), cuts, strict=True)
        )

    def _find_cuts(
        self, metadata: dict[str, Any], values: dict[str, Any], when: datetime
    ) -> tuple[tuple[int, ...], ...]:
        """The piece lengths with which the schema reads the values back, given the rest
        of the shot in ``metadata`` (taken at ``when``)."""
        choices = [
            itertools.combinations(range(1, len(values[field])), len(source.parts) - 1)
            for field, source in self._concats.items()
        ]
        for cuts in itertools.product(*choices):
            trial = copy.deepcopy(metadata)
            if not self._put_concats(trial, values, cuts):
                continue
            try:
                case = self.compiled.to_case(trial, now=when)
            except ShotInvalid:
                continue
            if all(getattr(case, field) == values[field] for field in self._concats):
                return cuts
        raise ValueError(f"{self.name}: no way to lay out {values} in this schema")


def _pieces(value: str, cut: tuple[int, ...]) -> list[str]:
    bounds = (0, *cut, len(value))
    return [value[start:stop] for start, stop in itertools.pairwise(bounds)]


def _put_pieces(metadata: dict[str, Any], source: Concat, pieces: list[str]) -> bool:
    """Join each path's pieces in slice order; False if the slices then do not read them."""
    by_path: dict[tuple[str, ...], list[tuple[Ref, str]]] = {}
    for ref, piece in zip(source.parts, pieces, strict=True):
        by_path.setdefault(ref.path, []).append((ref, piece))
    for path, refs in by_path.items():
        refs.sort(key=lambda rp: (rp[0].slice or (0, None))[0] or 0)
        value = "".join(piece for _, piece in refs)
        for ref, piece in refs:
            start, stop = ref.slice or (None, None)
            if value[start:stop] != piece:
                return False
        _put(metadata, path, value)
    return True


def _put_time(metadata: dict[str, Any], source: Source, local: datetime, offset: str) -> None:
    match source:
        case Ref(path=path):
            _put(metadata, path, local.isoformat())
        case Epoch(ref=ref, unit=unit):
            seconds = int(local.timestamp())
            _put(metadata, ref.path, seconds if unit == "seconds" else seconds * 1000)
        case Parts(refs=refs):
            parts = (local.year, local.month, local.day, local.hour, local.minute, local.second)
            for ref, value in zip(refs, (*parts, offset), strict=True):
                _put(metadata, ref.path, value)
        case _:
            raise ValueError(f"no way to lay out a timestamp read as {source!r}")


def _put(metadata: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        metadata = metadata.setdefault(key, {})
    metadata[path[-1]] = value


def _fill(
    metadata: dict[str, Any],
    layout: Mapping[str, FieldSpec],
    pieced: set[tuple[str, ...]],
    prefix: tuple[str, ...] = (),
) -> None:
    """Give the required keys the mapping does not read the least value they allow
    (``pieced`` keys are read, in slices: they are laid out last)."""
    for key, spec in layout.items():
        path = (*prefix, key)
        if spec.fields is not None:
            if key in metadata or not spec.optional:
                _fill(metadata.setdefault(key, {}), spec.fields, pieced, path)
        elif key not in metadata and not spec.optional and path not in pieced:
            metadata[key] = _least(key, spec)


def _least(key: str, spec: FieldSpec) -> Any:
    if spec.enum:
        return spec.enum[0]
    match spec.type:
        case "int" | "float":
            return spec.ge if spec.ge is not None else min(0, spec.le or 0)
        case "bool":
            return False
        case "uuid":
            return str(uuid.UUID(int=0))
        case "string" if spec.pattern is None:
            return "x" * (spec.min_length or 0)
    raise ValueError(f"{key}: no value to give a required {spec.type} the mapping does not read")


def _in_layout_order(metadata: dict[str, Any], layout: Mapping[str, FieldSpec]) -> dict[str, Any]:
    """Keys in the order the schema file lists them, as a camera would send them."""
    ordered = {}
    for key, spec in layout.items():
        if key in metadata:
            value = metadata[key]
            ordered[key] = _in_layout_order(value, spec.fields) if spec.fields else value
    return ordered


def _layouts() -> dict[str, SchemaLayout]:
    """Every built-in camera type's layout, from its shipped schema file."""
    return {
        name: SchemaLayout(name, load_schema_file(path))
        for name, path in builtin_schema_files().items()
    }


class _PhotoFactory:
    """Unique photos at the cost of one concatenation each: bases are encoded once.

    Base sizes are spread over ``photo_bytes``: each base image is the largest that encodes
    under its target, then padded up to it with a comment (JPEG) or text chunk (PNG).
    """

    def __init__(self, rng: random.Random, photo_bytes: tuple[int, int], seed: int) -> None:
        low, high = photo_bytes
        if not 0 < low <= high:
            raise ValueError(f"photo_bytes must be (low, high) with 0 < low <= high: {photo_bytes}")
        self._rng = rng
        self._seed = seed
        self._jpegs = [
            _jpeg_base(rng, _target(low, high, i, _JPEG_BASES)) for i in range(_JPEG_BASES)
        ]
        self._pngs = [_png_base(rng, _target(low, high, i, _PNG_BASES)) for i in range(_PNG_BASES)]

    def _tag(self, n: int) -> bytes:
        return f"lizardctl dumpgen seed {self._seed} photo {n}".encode()

    def jpeg(self, n: int) -> bytes:
        """Photo ``n``: a base JPEG with a unique comment segment right after SOI."""
        base = self._rng.choice(self._jpegs)
        return _JPEG_SOI + _jpeg_comment(self._tag(n)) + base[len(_JPEG_SOI) :]

    def png(self, n: int) -> bytes:
        """Photo ``n``: a base PNG with a unique text chunk right after IHDR."""
        base = self._rng.choice(self._pngs)
        cut = _PNG_SIGNATURE_AND_IHDR
        return base[:cut] + _png_text(self._tag(n)) + base[cut:]


def _target(low: int, high: int, index: int, count: int) -> int:
    """Evenly spaced targets inside [low, high], leaving room for the per-photo tag."""
    return max(1, int(low + (high - low) * (index + 0.5) / count) - 64)


def _image(rng: random.Random, width: int, height: int) -> Image.Image:
    """A gradient under noise: compresses like a photo, unlike flat colour or pure noise."""
    gradient = Image.linear_gradient("L").resize((width, height))
    background = Image.merge(
        "RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180), gradient.rotate(90))
    )
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    return Image.blend(background, noise, 0.1)


def _largest_under(
    rng: random.Random, target: int, encode: Callable[[Image.Image], bytes]
) -> bytes:
    """The largest 4:3 image whose encoding fits ``target`` bytes, by bisection on width.

    The upper bound is found by doubling, so a few small encodes settle any target.
    """
    low, high = 8, 16
    while len(encode(_image(rng, high, high * 3 // 4))) <= target:
        low, high = high, high * 2
    best: bytes | None = None
    while low <= high:
        width = (low + high) // 2
        data = encode(_image(rng, width, max(1, width * 3 // 4)))
        if len(data) <= target:
            best, low = data, width + 1
        else:
            high = width - 1
    if best is None:
        raise ValueError(f"photo_bytes too small: no image encodes in {target} bytes")
    return best


def _jpeg_base(rng: random.Random, target: int) -> bytes:
    def encode(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    data = _largest_under(rng, target - 4, encode)  # 4: the padding segment's own header
    padding = _jpeg_comment(b" " * (target - len(data) - 4))
    return _JPEG_SOI + padding + data[len(_JPEG_SOI) :]


def _jpeg_comment(text: bytes) -> bytes:
    """A COM segment: marker FFFE, then a big-endian length counting itself but not the marker."""
    return b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text


def _png_base(rng: random.Random, target: int) -> bytes:
    def encode(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    data = _largest_under(rng, target - 20, encode)  # 20: the padding chunk's own overhead
    cut = _PNG_SIGNATURE_AND_IHDR
    return data[:cut] + _png_text(b" " * (target - len(data) - 20)) + data[cut:]


def _png_text(text: bytes) -> bytes:
    """A tEXt chunk (keyword, NUL, text) with its CRC; 20 bytes of overhead for "Comment"."""
    body = b"tEXt" + b"Comment\x00" + text
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))


class _BadShots:
    """Writes sets of ``BAD_SHOT_KINDS``; every shot has exactly the one defect named."""

    def __init__(
        self,
        rng: random.Random,
        writer: _Writer,
        photos: _PhotoFactory,
        content: _ShotContent,
        cameras: tuple[GeneratedCamera, ...],
        folder_of: _Folders,
        binary_fraction: float,
    ) -> None:
        self._rng = rng
        self._writer = writer
        self._photos = photos
        self._content = content
        self._cameras = cameras
        self._folder_of = folder_of
        self._binary_fraction = binary_fraction
        self._months = {
            name: layout.mapping["occurred_at"].refs[1].path
            for name, layout in content.layouts.items()
            if isinstance(layout.mapping["occurred_at"], Parts)
        }
        """Types whose timestamp comes in calendar parts: where each keeps the month."""
        self._camera_of_kind = {
            "month-13": next(iter(self._months)),
            "type-mismatch": CAMERA_TYPES[0],
        }
        """The registered type of the camera a bad shot must come from, where it matters."""

    def make_set(self, first: int, original: GeneratedShot) -> list[GeneratedShot]:
        """Shots ``first`` .. ``first + len(BAD_SHOT_KINDS) - 1``; ``original`` is re-sent."""
        made = []
        for offset, (kind, expected) in enumerate(BAD_SHOT_KINDS):
            if kind == "resent":
                made.append(self._resend(original))
                continue
            n = first + offset
            # The shot sits in the folder of the camera its metadata names (or claims to).
            index = self._rng.choice(
                [
                    i
                    for i, c in enumerate(self._cameras)
                    if self._camera_of_kind.get(kind, c.camera_type) == c.camera_type
                ]
            )
            stem = self._folder_of(n, index) / f"shot-{n:06d}-{kind}"
            photo_data, metadata_data, suffix = self._defect(kind, self._cameras[index], n)
            photo = metadata = None
            if photo_data is not None:
                photo = stem.with_suffix(".jpg")
                self._writer.write(photo, photo_data)
            if metadata_data is not None:
                metadata = stem.with_suffix(suffix)
                self._writer.write(metadata, metadata_data)
            made.append(GeneratedShot(photo, metadata, expected, kind))
        return made

    def _defect(
        self, kind: str, camera: GeneratedCamera, n: int
    ) -> tuple[bytes | None, bytes | None, str]:
        """Photo bytes, metadata bytes and metadata suffix for one bad shot of ``kind``."""
        photo: bytes | None = self._photos.jpeg(n)
        suffix = ".bin" if self._rng.random() < self._binary_fraction else ".json"
        content = self._content
        match kind:
            case "orphan-photo":
                return photo, None, suffix
            case "orphan-metadata":
                return None, _encode(content.metadata(camera), suffix), suffix
            case "broken-json":
                text = json.dumps(content.metadata(camera)).encode()
                return photo, text[: len(text) * 2 // 3], ".json"
            case "corrupt-bin":
                return photo, encode_binary(content.metadata(camera))[:-5], ".bin"
            case "unknown-type":
                metadata: dict[str, Any] = {
                    "plate": "1ABC2377",
                    "camera_id": str(camera.id),
                    "speed": "62km/h",
                    "taken_at": content.fields(camera).local.isoformat(),
                }
            case "month-13":
                metadata = content.metadata(camera)
                _put(metadata, self._months[camera.camera_type], 13)
            case "unknown-camera":
                metadata = content.metadata(camera, camera_id=_uuid(self._rng))
            case "type-mismatch":
                other = CAMERA_TYPES[
                    (CAMERA_TYPES.index(camera.camera_type) + 1) % len(CAMERA_TYPES)
                ]
                metadata = content.metadata(camera, camera_type=other)
            case "future":
                metadata = content.metadata(camera, when=content.now + FUTURE_OFFSET)
            case "truncated-jpeg":
                assert photo is not None
                photo = photo[: len(photo) // 2]
                metadata = content.metadata(camera)
            case "text-as-jpeg":
                photo = f"not a photo: camera log line {n}\n".encode()
                metadata = content.metadata(camera)
            case _:
                raise AssertionError(f"unhandled bad shot kind {kind!r}")
        return photo, _encode(metadata, suffix), suffix

    def _resend(self, original: GeneratedShot) -> GeneratedShot:
        """Copy a good shot's two files to ``dump/resent/...``: the same shot, sent twice."""
        assert original.photo is not None and original.metadata is not None
        dump_dir = self._folder_of.dump_dir
        folder = dump_dir / "resent" / original.photo.parent.relative_to(dump_dir)
        folder.mkdir(parents=True, exist_ok=True)
        photo, metadata = folder / original.photo.name, folder / original.metadata.name
        self._writer.write(photo, original.photo.read_bytes())
        self._writer.write(metadata, original.metadata.read_bytes())
        return GeneratedShot(photo, metadata, DUPLICATE, "resent")

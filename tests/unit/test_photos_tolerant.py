"""probe_photo accepts the JPEGs real cameras write that Pillow decodes, and no truncated one.

Cameras and phones append bytes after the end-of-image marker (an MPO's further frames,
vendor trailers) and some leave junk or a stuffed ``FF 00`` between segments, which libjpeg
skips. Every fixture is written here with Pillow plus byte surgery, and proven decodable by
Pillow (every frame) before the probe is asked about it.
"""

from __future__ import annotations

import io
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lizardctl.core.photos import BadPhotoError, probe_photo
from tests.unit.test_photos import encode, noise, probe_or_reject


def mpo(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    """A two-frame MPO, as stereo cameras and many phones write."""
    buffer = io.BytesIO()
    first, second = noise(size, seed=seed), noise(size, seed=seed + 1)
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def jpeg(seed: int = 0, **options: object) -> bytes:
    return encode(noise((64, 48), seed=seed), "JPEG", **options)


def before(data: bytes, marker: bytes, extra: bytes) -> bytes:
    """``extra`` inserted just before the first ``marker`` segment."""
    at = data.index(marker)
    return data[:at] + extra + data[at:]


def between_scans(data: bytes, extra: bytes) -> bytes:
    """``extra`` inserted before the second scan of a progressive JPEG."""
    at = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    return data[:at] + extra + data[at:]


TRAILER = b"\x00" * 16 + b"SEFH" + random.Random(5).randbytes(600) + b"\xff\xd8\xff\xd9"


def with_trailer(first: bytes, trailer: bytes) -> tuple[bytes, int]:
    return first + trailer, len(first)


def whole(data: bytes) -> tuple[bytes, int]:
    return data, len(data)


def mpo_file(seed: int = 0, size: tuple[int, int] = (64, 48)) -> tuple[bytes, int]:
    data = mpo(seed, size)
    with Image.open(io.BytesIO(data)) as image:
        first = int(image.mpinfo[0xB002][0]["Size"])  # type: ignore[attr-defined]
    return data, first


PLAIN = {n: jpeg(n) for n in range(1, 11)}
CAMERA_FILES: dict[str, tuple[bytes, int]] = {
    "MPO, two frames": mpo_file(),
    "MPO, 300x200": mpo_file(seed=7, size=(300, 200)),
    "vendor trailer after EOI": with_trailer(PLAIN[1], TRAILER),
    "zero padding after EOI": with_trailer(PLAIN[2], b"\x00" * 4096),
    "a second JPEG after EOI": with_trailer(PLAIN[3], PLAIN[4]),
    "FF00 before the quantisation tables": whole(before(PLAIN[5], b"\xff\xdb", b"\xff\x00")),
    "junk byte before the scan": whole(before(PLAIN[6], b"\xff\xda", b"\x00")),
    "FF00 and junk after SOI": whole(PLAIN[7][:2] + b"\xff\x00junk\x00" + PLAIN[7][2:]),
    "FF00 and fill bytes before the frame": whole(
        before(PLAIN[8], b"\xff\xc0", b"\xff\x00\xff\xff")
    ),
    "junk between progressive scans": whole(
        between_scans(jpeg(9, progressive=True), b"\x00\xff\x00\x13")
    ),
    "junk, FF00 and a trailer together": with_trailer(
        before(PLAIN[10], b"\xff\xc4", b"\xff\x00\x01"), TRAILER
    ),
}
"""Name: (the file, the length of its first image, up to and with its EOI)."""
CAMERA_JPEGS = {name: data for name, (data, _) in CAMERA_FILES.items()}


def pillow_decodes_every_frame(data: bytes) -> tuple[int, int]:
    """The fixture is valid: Pillow decodes all its frames. Returns the first one's size."""
    with Image.open(io.BytesIO(data)) as image:
        size = image.size
        for frame in range(getattr(image, "n_frames", 1)):
            image.seek(frame)
            image.load()
    return size


@pytest.mark.parametrize("name", CAMERA_JPEGS)
def test_what_pillow_decodes_is_accepted(name: str) -> None:
    data = CAMERA_JPEGS[name]
    size = pillow_decodes_every_frame(data)
    info = probe_photo(data)
    assert (info.format, (info.width, info.height)) == ("JPEG", size)
    assert info.size == len(data)


@pytest.mark.parametrize("name", CAMERA_JPEGS)
def test_a_cut_into_the_first_image_is_still_truncated(name: str) -> None:
    data, first = CAMERA_FILES[name]
    for cut in [*range(2, first, max(1, first // 500)), first - 1]:
        with pytest.raises(BadPhotoError, match=r"^truncated JPEG"):
            probe_photo(data[:cut])
    if not name.startswith("MPO"):  # a cut MPO: test_an_mpo_cut_inside_its_second_frame...
        assert probe_photo(data[:first]).size == first  # a trailer cut leaves a whole JPEG


def test_junk_right_after_soi_is_refused_as_pillow_refuses_it() -> None:
    """Pillow recognises a JPEG by its first three bytes, FF D8 FF."""
    data = PLAIN[7][:2] + b"junk" + PLAIN[7][2:]
    with pytest.raises(OSError, match="cannot identify"):
        pillow_decodes_every_frame(data)
    with pytest.raises(BadPhotoError, match="expected a marker at byte 2"):
        probe_photo(data)


def test_an_mpo_cut_inside_its_second_frame_is_truncated() -> None:
    """Pillow opens the first frame of such a file, but cannot decode the second."""
    data, first = CAMERA_FILES["MPO, two frames"]
    for cut in range(first, len(data)):
        with pytest.raises(BadPhotoError, match=r"^truncated MPO: .* past the end"):
            probe_photo(data[:cut])
    with pytest.raises(OSError, match="truncated"):
        pillow_decodes_every_frame(data[:-1])


def mpf_index(data: bytes) -> int:
    """Offset of the MPO index's TIFF header (just after ``MPF\\0``)."""
    return data.index(b"MPF\x00") + 4


def test_an_unreadable_mpo_index_is_ignored_as_pillow_ignores_it() -> None:
    data = bytearray(CAMERA_JPEGS["MPO, two frames"])
    tiff = mpf_index(bytes(data))
    data[tiff : tiff + 4] = b"XX*\x00"  # neither byte order: not an index
    cut = bytes(data[: CAMERA_FILES["MPO, two frames"][1] + 100])
    with pytest.warns(UserWarning, match="interpreted as a base JPEG"):
        assert pillow_decodes_every_frame(cut) == (64, 48)
    info = probe_photo(cut)
    assert (info.width, info.height) == (64, 48)


def test_an_index_claiming_a_frame_past_the_end_is_truncation() -> None:
    data = bytearray(CAMERA_JPEGS["MPO, two frames"])
    tiff = mpf_index(bytes(data))
    order = "<" if data[tiff : tiff + 2] == b"II" else ">"
    # The MP entry tag (type UNDEFINED, two 16-byte entries), then the second one's size.
    tag = bytes(data).index(struct.pack(order + "HHI", 0xB002, 7, 32), tiff)
    (offset,) = struct.unpack_from(order + "I", data, tag + 8)
    struct.pack_into(order + "I", data, tiff + offset + 16 + 4, 1 << 30)
    with pytest.raises(BadPhotoError, match="truncated MPO"):
        probe_photo(bytes(data))


@given(
    junk=st.binary(min_size=1, max_size=64).filter(lambda b: b"\xff" not in b),
    marker=st.sampled_from([b"\xff\xdb", b"\xff\xc0", b"\xff\xc4", b"\xff\xda"]),
)
@settings(max_examples=100, deadline=None)
def test_any_junk_between_segments_is_skipped_like_libjpeg(junk: bytes, marker: bytes) -> None:
    data = before(jpeg(), marker, junk)
    size = pillow_decodes_every_frame(data)
    assert (probe_photo(data).width, probe_photo(data).height) == size


@given(
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    name=st.sampled_from(sorted(CAMERA_JPEGS)),
)
@settings(max_examples=300, deadline=None)
def test_corrupted_camera_jpegs_are_a_photo_or_a_bad_photo(
    name: str, edits: list[tuple[float, int]]
) -> None:
    data = bytearray(CAMERA_JPEGS[name])
    for where, value in edits:
        data[int(where * len(data))] = value
    probe_or_reject(bytes(data))

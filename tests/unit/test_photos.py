"""probe_photo: the JPEG fast path agrees with Pillow, and every bad photo is a BadPhotoError.

Fixtures are made with Pillow here, from seeded noise (so file sizes are realistic), and
each valid one is proven valid by Pillow decoding it fully before it is compared.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, PngImagePlugin

from lizardctl.core.errors import UsageError
from lizardctl.core.photos import (
    DEFAULT_MAX_PIXELS,
    PHOTO_SUFFIXES,
    BadPhotoError,
    PhotoInfo,
    probe_photo,
)


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    width, height = size
    pixels = random.Random(seed).randbytes(width * height * 3)
    return Image.frombytes("RGB", size, pixels).convert(mode)


def encode(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def insert_before(jpeg: bytes, marker: bytes, segment: bytes) -> bytes:
    """Insert a whole segment just before the first occurrence of ``marker``."""
    at = jpeg.index(marker)
    return jpeg[:at] + segment + jpeg[at:]


def insert_before_second_scan(jpeg: bytes, segment: bytes) -> bytes:
    at = jpeg.index(b"\xff\xda", jpeg.index(b"\xff\xda") + 2)
    return jpeg[:at] + segment + jpeg[at:]


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def sof_offset(jpeg: bytes) -> int:
    """Offset of the frame marker in a Pillow-written (baseline or progressive) JPEG."""
    return min(at for at in (jpeg.find(b"\xff\xc0"), jpeg.find(b"\xff\xc2")) if at >= 0)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims a size its tiny pixel data cannot fill."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


SMALL = noise((64, 48))
EXIF = Image.Exif()
EXIF[0x010F] = "Camerus"  # Make
EXIF[0x0110] = "camerus2"  # Model
EXIF[0x0132] = "2024:01:01 00:00:00"  # DateTime
FAKE_THUMBNAIL = b"Exif\x00\x00" + encode(noise((8, 8), seed=3), "JPEG")  # ends in FF D9

JPEGS: dict[str, bytes] = {
    "1x1": encode(noise((1, 1)), "JPEG"),
    "7x5": encode(noise((7, 5)), "JPEG"),
    "17x9 odd MCU": encode(noise((17, 9)), "JPEG"),
    "64x48": encode(SMALL, "JPEG"),
    "640x480 q90": encode(noise((640, 480), seed=1), "JPEG", quality=90),
    "1920x1080 gradient": encode(Image.linear_gradient("L").resize((1920, 1080)), "JPEG"),
    "quality 1": encode(SMALL, "JPEG", quality=1),
    "quality 100": encode(SMALL, "JPEG", quality=100),
    "subsampling 4:4:4": encode(SMALL, "JPEG", subsampling=0),
    "optimized": encode(SMALL, "JPEG", optimize=True),
    "progressive": encode(SMALL, "JPEG", progressive=True),
    "progressive optimized": encode(
        noise((300, 200), seed=2), "JPEG", progressive=True, optimize=True
    ),
    "restart markers": encode(SMALL, "JPEG", restart_marker_blocks=1),
    "progressive restart markers": encode(SMALL, "JPEG", progressive=True, restart_marker_rows=1),
    "grayscale": encode(noise((64, 48), "L"), "JPEG"),
    "grayscale progressive": encode(noise((64, 48), "L"), "JPEG", progressive=True),
    "CMYK": encode(noise((64, 48), "CMYK"), "JPEG"),
    "EXIF": encode(SMALL, "JPEG", exif=EXIF),
    "comment": encode(SMALL, "JPEG", comment=b"plate 1ABC2377"),
    "dpi": encode(SMALL, "JPEG", dpi=(300, 300)),
    # An ICC profile over 64 KiB spans several APP2 segments and holds FF D9 pairs.
    "multi-segment ICC": encode(SMALL, "JPEG", icc_profile=random.Random(4).randbytes(150_000)),
    "APP1 thumbnail ending in EOI": insert_before(
        encode(SMALL, "JPEG"), b"\xff\xdb", segment(0xE1, FAKE_THUMBNAIL)
    ),
    "COM with EOI after the frame": insert_before(
        encode(SMALL, "JPEG"), b"\xff\xda", segment(0xFE, b"\xff\xd9" * 4)
    ),
    # Legal between progressive scans; ending the data at that pair must still be truncation.
    "COM with EOI between scans": insert_before_second_scan(
        encode(SMALL, "JPEG", progressive=True), segment(0xFE, b"\xff\xd9")
    ),
    "fill bytes before markers": encode(SMALL, "JPEG").replace(b"\xff\xda", b"\xff\xff\xff\xda"),
}

OTHERS: dict[str, bytes] = {
    "PNG RGB": encode(SMALL, "PNG"),
    "PNG RGBA": encode(noise((64, 48), "RGBA"), "PNG"),
    "PNG grayscale": encode(noise((64, 48), "L"), "PNG"),
    "PNG palette": encode(noise((64, 48), "P"), "PNG"),
    "PNG 16-bit": encode(noise((64, 48), "I;16"), "PNG"),
    "PNG 1x1": encode(noise((1, 1)), "PNG"),
    "WEBP lossy": encode(SMALL, "WEBP"),
    "WEBP lossless RGBA": encode(noise((64, 48), "RGBA"), "WEBP", lossless=True),
    "TIFF raw": encode(SMALL, "TIFF"),
    "TIFF LZW": encode(SMALL, "TIFF", compression="tiff_lzw"),
    "TIFF deflate": encode(SMALL, "TIFF", compression="tiff_deflate"),
    "TIFF packbits grayscale": encode(noise((64, 48), "L"), "TIFF", compression="packbits"),
    "TIFF CMYK": encode(noise((64, 48), "CMYK"), "TIFF"),
}

VALID = {**JPEGS, **OTHERS}
SMALL_JPEGS = {name: data for name, data in JPEGS.items() if len(data) < 20_000}
NEW_SIGNATURES = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"II*\x00",
]


def pillow_view(data: bytes) -> tuple[str | None, tuple[int, int]]:
    """Format and size according to Pillow, after a full decode proves the fixture valid."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format, image.size


def probe_or_reject(data: bytes, **options: Any) -> PhotoInfo | BadPhotoError:
    """The totality contract: a PhotoInfo or a BadPhotoError, any other exception escapes."""
    try:
        return probe_photo(data, **options)
    except BadPhotoError as exc:
        return exc


# --- valid photos --------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID)
def test_probe_agrees_with_pillow(name: str) -> None:
    data = VALID[name]
    info = probe_photo(data)
    assert (info.format, (info.width, info.height)) == pillow_view(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)


def test_jpeg_fast_path_does_not_touch_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the JPEG fast path opened the photo with Pillow")

    monkeypatch.setattr(Image, "open", refuse)
    info = probe_photo(JPEGS["EXIF"])
    assert (info.format, info.width, info.height) == ("JPEG", 64, 48)


def test_photo_info_is_frozen() -> None:
    info = probe_photo(JPEGS["64x48"])
    with pytest.raises(AttributeError):
        info.width = 1  # type: ignore[misc]


def test_photo_suffixes() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"} == PHOTO_SUFFIXES


def test_bad_photo_is_a_usage_error() -> None:
    assert issubclass(BadPhotoError, UsageError)
    assert BadPhotoError.exit_code == 2


# --- truncation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL_JPEGS)
def test_every_strict_prefix_of_a_jpeg_is_truncated(name: str) -> None:
    data = SMALL_JPEGS[name]
    for cut in range(2, len(data)):
        with pytest.raises(BadPhotoError, match=r"^truncated JPEG"):
            probe_photo(data[:cut])


@given(name=st.sampled_from(sorted(JPEGS)), data=st.data())
@settings(max_examples=300, deadline=None)
def test_any_truncation_of_any_jpeg_fixture_is_rejected(name: str, data: st.DataObject) -> None:
    jpeg = JPEGS[name]
    cut = data.draw(st.integers(min_value=0, max_value=len(jpeg) - 1), label="cut")
    with pytest.raises(BadPhotoError):
        probe_photo(jpeg[:cut])


@pytest.mark.parametrize("name", OTHERS)
def test_every_strict_prefix_of_other_formats_is_rejected(name: str) -> None:
    """PNG structurally (CRCs plus the exact IEND end); WEBP and TIFF by a full decode.

    Known gap: a TIFF whose IFD comes last still decodes without the IFD's final 4 bytes
    (the next-IFD pointer); every pixel is present, so that cut is tolerated.
    """
    data = OTHERS[name]
    last_cut = len(data) - 4 if name.startswith("TIFF") else len(data)
    accepted = [
        cut for cut in range(last_cut) if isinstance(probe_or_reject(data[:cut]), PhotoInfo)
    ]
    assert accepted == []


def test_truncated_png_message() -> None:
    with pytest.raises(BadPhotoError, match="truncated PNG"):
        probe_photo(OTHERS["PNG RGB"][:-2])


@pytest.mark.parametrize("padding", [b"\x00", b"\x00" * 512, b"\xff\xd9", b"junk"])
def test_bytes_after_the_png_end_are_rejected(padding: bytes) -> None:
    """JPEG trailers are accepted: tests/unit/test_photos_tolerant.py."""
    with pytest.raises(BadPhotoError, match=r"\d+ bytes after the"):
        probe_photo(OTHERS["PNG RGB"] + padding)


# --- not images, and broken or unsupported JPEG structure ------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty photo"),
        (random.Random(7).randbytes(4096), "not a supported image"),
        (b"plate,camera\n1ABC2377,104fc08a\n", "not a supported image"),  # text named .jpg
        (b"\xff", "not a supported image"),
        (encode(SMALL, "GIF"), "not a supported image"),
        (encode(SMALL, "BMP"), "not a supported image"),
        (b"\xff\xd8", "truncated JPEG"),
        (b"\xff\xd8\xff\xd9", "end-of-image marker before any image data"),
        (b"\x89PNG\r\n\x1a\n", "unreadable PNG"),
        (b"II*\x00" + bytes(64), "unreadable TIFF"),
        (b"RIFF\x04\x00\x00\x00WEBP", "unreadable WEBP"),
    ],
    ids=[
        "empty",
        "random",
        "text",
        "one byte",
        "GIF",
        "BMP",
        "SOI only",
        "no frame",
        "PNG signature only",
        "TIFF header only",
        "WEBP header only",
    ],
)
def test_not_a_readable_image(data: bytes, message: str) -> None:
    with pytest.raises(BadPhotoError, match=message):
        probe_photo(data)


def patch_frame(at: int, value: bytes) -> bytes:
    """The 64x48 JPEG with bytes overwritten ``at`` bytes after its frame marker."""
    jpeg = JPEGS["64x48"]
    start = sof_offset(jpeg) + at
    return jpeg[:start] + value + jpeg[start + len(value) :]


def without_frame() -> bytes:
    jpeg = JPEGS["64x48"]
    start = sof_offset(jpeg)
    length = int.from_bytes(jpeg[start + 2 : start + 4], "big")
    return jpeg[:start] + jpeg[start + 2 + length :]


FRAME = JPEGS["64x48"][sof_offset(JPEGS["64x48"]) :][:19]  # 3-component SOF0 segment


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (patch_frame(1, b"\xc3"), "unsupported JPEG: frame type FFC3"),  # lossless
        (patch_frame(1, b"\xc9"), "unsupported JPEG: frame type FFC9"),  # arithmetic
        (patch_frame(4, b"\x0c"), "unsupported JPEG: 12-bit samples"),
        (patch_frame(5, b"\x00\x00"), "unsupported JPEG: frame size 64x0"),  # DNL height
        (patch_frame(7, b"\x00\x00"), "unsupported JPEG: frame size 0x48"),
        (patch_frame(2, b"\x00\x12"), "frame header at byte \\d+ has a bad length"),
        (patch_frame(9, b"\x02"), "frame header at byte \\d+ has a bad length"),
        (patch_frame(2, b"\x00\x01"), "invalid length"),
        # Skipped as junk, as libjpeg does: the frame header goes with it.
        (patch_frame(0, b"\x00"), "scan at byte \\d+ before the frame header"),
        (patch_frame(1, b"\xd0"), "unexpected marker FFD0"),
        (patch_frame(1, b"\x02"), "unexpected marker FF02"),
        (insert_before(JPEGS["64x48"], b"\xff\xda", FRAME), "second frame header"),
        (without_frame(), "scan at byte \\d+ before the frame header"),
        (
            JPEGS["64x48"].replace(b"\xff\xda\x00\x0c", b"\xff\xda\x00\x0e", 1),
            "scan header at byte \\d+ has a bad length",
        ),
    ],
    ids=[
        "lossless",
        "arithmetic",
        "12-bit",
        "DNL height",
        "zero width",
        "frame length",
        "component count",
        "segment length",
        "junk",
        "restart in header",
        "reserved marker",
        "two frames",
        "no frame",
        "scan length",
    ],
)
def test_broken_or_unsupported_jpeg(data: bytes, message: str) -> None:
    with pytest.raises(BadPhotoError, match=message):
        probe_photo(data)


def test_two_component_jpeg_is_unsupported() -> None:
    frame = segment(0xC0, struct.pack(">BHHB", 8, 48, 64, 2) + b"\x01\x11\x00\x02\x11\x00")
    jpeg = JPEGS["64x48"]
    start = sof_offset(jpeg)
    data = jpeg[:start] + frame + jpeg[start + len(FRAME) :]
    with pytest.raises(BadPhotoError, match="2 colour components"):
        probe_photo(data)


# --- decompression bombs ---------------------------------------------------------------------


def test_jpeg_bomb_rejected_from_its_header_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Pillow was called"))
    bomb = patch_frame(5, struct.pack(">HH", 65_000, 65_000))
    with pytest.raises(BadPhotoError, match="too large: 65000x65000 pixels"):
        probe_photo(bomb)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of Pillow's decoding entry points called during the test."""
    calls: list[str] = []

    def spy(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy("load", ImageFile.ImageFile.load))
    monkeypatch.setattr(
        PngImagePlugin.PngImageFile, "verify", spy("verify", PngImagePlugin.PngImageFile.verify)
    )
    return calls


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (100_000, 100_000, DEFAULT_MAX_PIXELS),  # caught by Pillow's own bomb error first
        (100_000, 100_000, 10**12),  # Pillow's DecompressionBombError
        (10_000, 9_000, 10**9),  # Pillow's DecompressionBombWarning
        (8_000, 8_000, DEFAULT_MAX_PIXELS),  # under Pillow's limit, over ours
    ],
)
def test_png_bomb_rejected_without_decoding(
    decode_calls: list[str], width: int, height: int, max_pixels: int
) -> None:
    with pytest.raises(BadPhotoError, match="image too large"):
        probe_photo(png_header_only(width, height), max_pixels=max_pixels)
    assert decode_calls == []


@pytest.mark.parametrize("name", ["64x48", "PNG RGB", "WEBP lossy", "TIFF raw"])
def test_max_pixels_is_inclusive(name: str) -> None:
    assert probe_photo(VALID[name], max_pixels=64 * 48).width == 64
    with pytest.raises(BadPhotoError, match="64x48 pixels exceeds the limit of 3,071"):
        probe_photo(VALID[name], max_pixels=64 * 48 - 1)


# --- totality --------------------------------------------------------------------------------


@given(st.binary(max_size=4096))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes(data: bytes) -> None:
    probe_or_reject(data)


@given(st.sampled_from(NEW_SIGNATURES), st.binary(max_size=2048))
@settings(max_examples=500, deadline=None)
def test_arbitrary_bytes_behind_a_real_signature(signature: bytes, tail: bytes) -> None:
    probe_or_reject(signature + tail)


@given(
    name=st.sampled_from(sorted(name for name in VALID if len(VALID[name]) < 20_000)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
)
@settings(max_examples=500, deadline=None)
def test_corrupted_valid_photos(name: str, edits: list[tuple[float, int]]) -> None:
    data = bytearray(VALID[name])
    for where, value in edits:
        data[int(where * len(data))] = value
    probe_or_reject(bytes(data))

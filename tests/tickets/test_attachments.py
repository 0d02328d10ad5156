"""Photos are checked by decoding them (Pillow), not by their name or claimed type."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tickets.attachments import PHOTO_NOT_IMAGE, PHOTO_TOO_LARGE, PHOTO_TOO_MANY_PIXELS, check_photo
from tickets.exceptions import InvalidInput


def image(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 60)).save(buf, format=fmt)
    return buf.getvalue()


LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


@pytest.mark.parametrize(
    ("fmt", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_photos_of_the_three_types_are_taken_with_their_decoded_type(fmt, content_type):
    a = check_photo(image(fmt), original_name="anything.txt", **LIMITS)
    assert (a.content_type, a.width, a.height, a.kind) == (content_type, 40, 30, "photo")
    assert a.original_name == "anything.txt" and len(a.sha256) == 64


@pytest.mark.parametrize(
    "data",
    [
        b"Just text, saved as photo.jpg\n" * 10,
        b"",
        image("PNG")[:70],  # cut short
        image("JPEG")[:200],
        image("GIF"),  # an image, not one of ours
        image("BMP"),
        b"%PDF-1.4\n" + b"0" * 500,
        b"\xff\xd8\xff\xe0" + b"\x00" * 400,  # a JPEG's magic number and nothing after
    ],
)
def test_what_is_not_a_photo_is_refused_naming_the_field(data):
    with pytest.raises(InvalidInput) as e:
        check_photo(data, field="photo", **LIMITS)
    assert [(x.field, x.message) for x in e.value.errors] == [("photo", PHOTO_NOT_IMAGE)]


def test_size_and_pixel_limits():
    with pytest.raises(InvalidInput) as e:
        check_photo(image("PNG"), max_bytes=100, max_pixels=10**6)
    assert e.value.errors[0].message == PHOTO_TOO_LARGE
    assert e.value.errors[0].params == {"max": "0.0001"}
    with pytest.raises(InvalidInput) as e:
        check_photo(image("PNG", (2000, 1000)), max_bytes=10**7, max_pixels=1_000_000)
    assert e.value.errors[0].message == PHOTO_TOO_MANY_PIXELS


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_decompression_bomb_is_refused_not_decoded():
    # a PNG of a few bytes whose header claims 40000 x 40000 pixels
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _chunk(b"IEND", b"")
    )
    with pytest.raises(InvalidInput) as e:
        check_photo(bomb, max_bytes=10**7, max_pixels=10**9)
    assert e.value.errors[0].message == PHOTO_NOT_IMAGE

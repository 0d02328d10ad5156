"""Files staff and officers attach: a photo or a PDF found by its content, never its name.

The PDFs are real ones: written by Pillow here, and the documentation PDFs Debian
ships when they are installed (other producers)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tickets.attachments import (
    FILE_EMPTY,
    FILE_NOT_ALLOWED,
    PDF,
    PHOTO_TOO_LARGE,
    check_file,
)
from tickets.exceptions import InvalidInput

ALL = ["image/jpeg", "image/png", "image/webp", PDF]
LIMITS = {"max_bytes": 2_000_000, "max_pixels": 1_000_000}
SHIPPED = [
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
]
# the start of a Windows program (the "MZ" header and its DOS stub), as a renamed .exe
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 48
    + (b"This program cannot be run in DOS mode.\r\r\n$" + b"\x00" * 400)
)


def pdf() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 30, 30)).save(buf, format="PDF")
    return buf.getvalue()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (60, 40), (10, 120, 60)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_pdf_is_taken_as_a_document():
    a = check_file(pdf(), allowed=ALL, original_name="bien-ban.pdf", **LIMITS)
    assert (a.kind, a.content_type, a.original_name) == ("document", PDF, "bien-ban.pdf")
    assert a.width is None


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_pdfs_of_other_producers_are_taken(path: Path):
    if not path.is_file():
        pytest.skip(f"{path} is not installed")
    data = path.read_bytes()
    assert check_file(data, allowed=ALL, max_bytes=10_000_000, max_pixels=1).content_type == PDF


def test_a_photo_is_taken_with_its_decoded_type():
    a = check_file(png(), allowed=ALL, original_name="anh.pdf", **LIMITS)
    assert (a.kind, a.content_type, a.width, a.height) == ("photo", "image/png", 60, 40)


@pytest.mark.parametrize(
    "data",
    [
        EXE,  # a program renamed .pdf
        b"%PDF-1.4\n" + EXE,  # a PDF header glued on a program
        pdf()[:-200],  # cut short: no end, no cross-reference table
        pdf().replace(b"startxref", b"startxrex"),
        b"%PDF-1.7\n%%EOF\n" * 10,
        b"<html><script>alert(1)</script></html>",
    ],
    ids=["exe", "pdf-header-on-exe", "truncated", "no-startxref", "markers-only", "html"],
)
def test_anything_else_is_refused_naming_the_field(data: bytes):
    with pytest.raises(InvalidInput) as e:
        check_file(data, allowed=ALL, original_name="hoa-don.pdf", **LIMITS)
    [err] = e.value.errors
    assert (err.field, err.message) == ("attachment", FILE_NOT_ALLOWED)
    assert err.params == {"types": "JPEG, PNG, WebP, PDF"}


def test_a_startxref_pointing_elsewhere_is_refused():
    data = pdf()
    at = data.rindex(b"startxref")
    bad = data[:at] + b"startxref\n5\n%%EOF\n"
    with pytest.raises(InvalidInput):
        check_file(bad, allowed=ALL, **LIMITS)


def test_limits_and_types_of_the_settings():
    with pytest.raises(InvalidInput) as e:
        check_file(pdf(), allowed=ALL, max_bytes=100, max_pixels=1)
    [err] = e.value.errors
    assert (err.field, err.message, err.params) == (
        "attachment",
        PHOTO_TOO_LARGE,
        {"max": "0.0001"},
    )
    with pytest.raises(InvalidInput) as e:
        check_file(pdf(), allowed=["image/jpeg", "image/png"], **LIMITS)
    assert e.value.errors[0].params == {"types": "JPEG, PNG"}
    with pytest.raises(InvalidInput) as e:
        check_file(png(), allowed=[PDF], **LIMITS)
    assert (e.value.errors[0].message, e.value.errors[0].params) == (
        FILE_NOT_ALLOWED,
        {"types": "PDF"},
    )
    with pytest.raises(InvalidInput) as e:
        check_file(b"", allowed=ALL, **LIMITS)
    assert e.value.errors[0].message == FILE_EMPTY

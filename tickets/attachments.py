"""Files citizens send with a report: photos checked by decoding them, kept by id.

A photo is accepted only when Pillow decodes it as JPEG, PNG or WebP, within
the size and pixel limits of ``[web_report]``: the name and the type the
browser claimed are never believed (a text file renamed ``.jpg`` is refused,
and so is a truncated image or one that would decompress into gigabytes).
:func:`check_photo` is pure CPU work: the web layer runs it in a thread.

Staff and agencies' officers attach photos and documents to a ticket
(:func:`check_file`, ``[tickets] attachment_*``): a photo is checked as above,
a PDF by its magic bytes and then by reading its structure (:func:`check_pdf`:
the cross-reference table or stream ``startxref`` points at, the trailer's
catalogue, the end-of-file marker), so an executable renamed ``.pdf`` or a
truncated upload is refused with a message naming the field.

The bytes are written under ``<state_dir>/attachments/`` as the row's random
id, with no extension, in the same transaction as the ticket that owns them
(:meth:`tickets.service.TicketService.create`): a report refused or rolled back
leaves no file behind.  Whoever serves one sends the ``content_type`` stored
with it, found here by decoding, and ``nosniff``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.settings import Settings, TicketSettings
from tickets.exceptions import InvalidInput

#: Pillow's format name -> the content type the file is stored (and served) with.
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# field error msgids (translated by the web layer, as tickets.exceptions' are)
PHOTO_TOO_LARGE = "is too large (at most {max} MB)"
PHOTO_NOT_IMAGE = "must be a photo (JPEG, PNG or WebP)"
PHOTO_TOO_MANY_PIXELS = "has too many pixels (at most {max} megapixels)"
# staff's and officers' files (check_file): a photo or a PDF, as the settings allow
FILE_NOT_ALLOWED = "must be one of: {types}"
FILE_EMPTY = "is empty"
FILE_TOO_MANY = "cannot be added: the ticket has {max} files already"
MESSAGES = (
    PHOTO_TOO_LARGE,
    PHOTO_NOT_IMAGE,
    PHOTO_TOO_MANY_PIXELS,
    FILE_NOT_ALLOWED,
    FILE_EMPTY,
    FILE_TOO_MANY,
)
PDF = "application/pdf"
#: How the settings' types are named to the person whose file was refused.
TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP", PDF: "PDF"}


@dataclass(frozen=True)
class NewAttachment:
    """A checked file, not stored yet."""

    kind: str
    content_type: str
    data: bytes
    width: int | None = None
    height: int | None = None
    original_name: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def too_large(field: str, max_bytes: int) -> InvalidInput:
    return InvalidInput.one(field, PHOTO_TOO_LARGE, max=f"{max_bytes / 1_000_000:g}")


def check_photo(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    original_name: str | None = None,
    field: str = "photo",
) -> NewAttachment:
    """``data`` as a photo attachment, or InvalidInput naming ``field``.

    Decodes the header to learn the format and size, then ``verify()`` reads
    the whole file's structure; the pixels are not decoded into memory.
    """
    if len(data) > max_bytes:
        raise too_large(field, max_bytes)
    try:
        with warnings.catch_warnings():
            # a "decompression bomb" warning is a refusal here, not a log line
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(PHOTO_TYPES)) as image:
                fmt = image.format or ""
                width, height = image.size
                if width * height > max_pixels:
                    raise InvalidInput.one(
                        field, PHOTO_TOO_MANY_PIXELS, max=f"{max_pixels / 1_000_000:g}"
                    )
                image.verify()
    except InvalidInput:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,  # Pillow's PNG reader raises it on a broken chunk
        ValueError,
        EOFError,
    ):
        raise InvalidInput.one(field, PHOTO_NOT_IMAGE) from None
    if fmt not in PHOTO_TYPES:
        raise InvalidInput.one(field, PHOTO_NOT_IMAGE)
    name = _clean_name(original_name)
    return NewAttachment(
        kind="photo",
        content_type=PHOTO_TYPES[fmt],
        data=data,
        width=width,
        height=height,
        original_name=name,
    )


def _pdf_ok(data: bytes) -> bool:
    """Whether ``data`` is structured as a PDF: the header, then from the end the
    ``%%EOF`` marker, ``startxref`` and an offset that lands on a cross-reference
    table (``xref``) or stream (``N G obj``), and a document catalogue (``/Root``).

    A parse of the file's skeleton, not a renderer: enough to tell a document from
    anything renamed ``.pdf`` without a dependency, and it never runs anything.
    """
    if not data.startswith(b"%PDF-") or len(data) < 64:
        return False
    version = data[5:8]
    if not re.fullmatch(rb"[12]\.\d", version):
        return False
    tail = data[-2048:]
    eof = tail.rfind(b"%%EOF")
    if eof < 0:
        return False
    found = re.search(rb"startxref\s+(\d{1,12})\s*$", tail[:eof])
    if not found:
        return False
    offset = int(found.group(1))
    if offset <= 0 or offset >= len(data):
        return False
    at = data[offset : offset + 64]
    if not (at.startswith(b"xref") or re.match(rb"\d{1,10}\s+\d{1,5}\s+obj\b", at)):
        return False
    return b"/Root" in data


def check_pdf(
    data: bytes, *, original_name: str | None = None, field: str = "attachment"
) -> NewAttachment:
    """``data`` as a PDF document attachment, or InvalidInput naming ``field``."""
    if not _pdf_ok(data):
        raise InvalidInput.one(field, FILE_NOT_ALLOWED, types="PDF")
    return NewAttachment(
        kind="document", content_type=PDF, data=data, original_name=_clean_name(original_name)
    )


async def check_upload(
    limits: TicketSettings, data: bytes, original_name: str | None, field: str = "attachment"
) -> NewAttachment:
    """:func:`check_file` with the configured limits, in a thread (decoding a photo is
    CPU work): what the ticket page and the API do with each file uploaded."""
    return await asyncio.to_thread(
        partial(
            check_file,
            data,
            allowed=limits.attachment_types,
            max_bytes=limits.attachment_max_bytes,
            max_pixels=limits.attachment_max_pixels,
            original_name=original_name,
            field=field,
        )
    )


def check_file(
    data: bytes,
    *,
    allowed: Sequence[str],
    max_bytes: int,
    max_pixels: int,
    original_name: str | None = None,
    field: str = "attachment",
) -> NewAttachment:
    """A file staff or an officer attach: a photo or a PDF among the ``allowed`` content
    types, found by its content (the name and claimed type are not believed); else
    InvalidInput naming ``field`` and the types allowed.  Pure CPU work: run it in a
    thread."""
    types = ", ".join(TYPE_NAMES[t] for t in allowed)
    if not data:
        raise InvalidInput.one(field, FILE_EMPTY)
    if len(data) > max_bytes:
        raise too_large(field, max_bytes)
    if data.startswith(b"%PDF-"):
        if PDF not in allowed or not _pdf_ok(data):
            raise InvalidInput.one(field, FILE_NOT_ALLOWED, types=types)
        return check_pdf(data, original_name=original_name, field=field)
    try:
        photo = check_photo(
            data,
            max_bytes=max_bytes,
            max_pixels=max_pixels,
            original_name=original_name,
            field=field,
        )
    except InvalidInput as e:
        if any(err.message == PHOTO_NOT_IMAGE for err in e.errors):
            raise InvalidInput.one(field, FILE_NOT_ALLOWED, types=types) from None
        raise
    if photo.content_type not in allowed:
        raise InvalidInput.one(field, FILE_NOT_ALLOWED, types=types)
    return photo


def _clean_name(original_name: str | None) -> str | None:
    return (original_name or "").replace("\x00", "").strip()[:200] or None


def attachments_dir(settings: Settings) -> Path:
    return settings.state_dir / "attachments"


def new_id() -> str:
    return secrets.token_hex(16)


def path_of(settings: Settings, attachment_id: str) -> Path:
    """Where an attachment's bytes are; the id is ours (hex), never the citizen's."""
    if len(attachment_id) != 32 or not all(c in "0123456789abcdef" for c in attachment_id):
        raise ValueError(f"not an attachment id: {attachment_id[:40]!r}")
    return attachments_dir(settings) / attachment_id


def write_file(settings: Settings, attachment_id: str, data: bytes) -> Path:
    """Write the bytes (blocking: call it in a thread); fsync'd before the row commits."""
    path = path_of(settings, attachment_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def remove_file(settings: Settings, attachment_id: str) -> None:
    path_of(settings, attachment_id).unlink(missing_ok=True)

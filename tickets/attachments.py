"""Files citizens send with a report: photos checked by decoding them, kept by id.

A photo is accepted only when Pillow decodes it as JPEG, PNG or WebP, within
the size and pixel limits of ``[web_report]``: the name and the type the
browser claimed are never believed (a text file renamed ``.jpg`` is refused,
and so is a truncated image or one that would decompress into gigabytes).
:func:`check_photo` is pure CPU work: the web layer runs it in a thread.

The bytes are written under ``<state_dir>/attachments/`` as the row's random
id, with no extension, in the same transaction as the ticket that owns them
(:meth:`tickets.service.TicketService.create`): a report refused or rolled back
leaves no file behind.  Whoever serves one sends the ``content_type`` stored
with it, found here by decoding, and ``nosniff``.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.settings import Settings
from tickets.exceptions import InvalidInput

#: Pillow's format name -> the content type the file is stored (and served) with.
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# field error msgids (translated by the web layer, as tickets.exceptions' are)
PHOTO_TOO_LARGE = "is too large (at most {max} MB)"
PHOTO_NOT_IMAGE = "must be a photo (JPEG, PNG or WebP)"
PHOTO_TOO_MANY_PIXELS = "has too many pixels (at most {max} megapixels)"
MESSAGES = (PHOTO_TOO_LARGE, PHOTO_NOT_IMAGE, PHOTO_TOO_MANY_PIXELS)


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
    name = (original_name or "").replace("\x00", "").strip()[:200] or None
    return NewAttachment(
        kind="photo",
        content_type=PHOTO_TYPES[fmt],
        data=data,
        width=width,
        height=height,
        original_name=name,
    )


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

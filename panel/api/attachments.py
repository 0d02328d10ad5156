"""A ticket's files in the JSON API: list them, download one, attach new ones.

The same rules as the ticket page's (:mod:`panel.views.review`, :mod:`panel.views.tickets`):

- **who**: anyone who may see the ticket reads its files and, but for the oversight role
  (which never writes), attaches files; an agency officer reading a report whose citizen
  did not agree to be known to it sees the files staff and officers attached, never the
  citizen's own (:func:`tickets.confidential.sees_attachment`: a photo can show who
  reported); such a file answers 404, as one that does not exist, and the list says how
  many are kept from the reader (``withheld``);
- **what**: a photo (JPEG, PNG, WebP) or a PDF as ``[tickets] attachment_types`` allow,
  found by its content in a thread (:func:`tickets.attachments.check_upload`), at most
  ``attachment_max_bytes`` each and ``attachments_per_ticket`` on the ticket; refused with
  422 naming ``attachment``.  The upload is ``multipart/form-data`` (one or more parts
  named ``attachment``); the body may be as large as the page's upload
  (:func:`panel.views.review.upload_limit`), every other route keeps the small limit;
- **the record**: an upload writes a line ``attached`` in the ticket's history; reading a
  restricted report's files is written in the ticket views audit log (``api`` for the
  list, ``file`` for a download).

The operations are declared with the others in :mod:`panel.api.operations`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from panel.api.schemas import UTCTime
from panel.api.views import PREFIX, READERS, _json
from panel.keys import ACTOR
from panel.security import json_error, require
from panel.views.common import attachments_for, ctx, visible_ticket
from panel.views.review import EXTENSIONS
from panel.views.tickets import file_response, ticket_file
from tickets.attachments import FILE_EMPTY, NewAttachment, check_upload
from tickets.audit import View
from tickets.exceptions import InvalidInput
from tickets.models import Attachment, Ticket

ALL = ("agent", "supervisor", "admin", "agency")
#: The multipart part (the page's form field too) a file is sent in.
FIELD = "attachment"


class AttachmentOut(BaseModel):
    id: Annotated[str, Field(description="The file's id (32 hexadecimal digits).")]
    kind: Annotated[
        str, Field(description="`photo`, `document` (a PDF) or `email` (a mail's attachment).")
    ]
    content_type: Annotated[
        str, Field(description="The type found by the file's content; it is served with it.")
    ]
    size: Annotated[int, Field(description="Bytes.")]
    width: int | None = None
    height: int | None = None
    original_name: Annotated[
        str | None, Field(description="The name it came with (shown, never used as a path).")
    ] = None
    added_by: Annotated[
        str | None,
        Field(description="Who attached it from the panel or the API; null: the citizen's own."),
    ] = None
    created_at: UTCTime
    url: Annotated[str, Field(description="Where to download it (this API).")]
    filename: Annotated[str, Field(description="The name the download is given.")]


class AttachmentList(BaseModel):
    ticket: str
    items: list[AttachmentOut]
    withheld: Annotated[
        int,
        Field(
            description="The citizen's own files kept from you: an agency sees them only "
            "when the citizen agreed that it may know who reported."
        ),
    ] = 0


def download_name(ticket: Ticket, row: Attachment) -> str:
    return f"{ticket.code}-{row.id[:8]}.{EXTENSIONS.get(row.content_type, 'bin')}"


def attachment_out(ticket: Ticket, row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "content_type": row.content_type,
        "size": row.size,
        "width": row.width,
        "height": row.height,
        "original_name": row.original_name,
        "added_by": row.added_by_name if row.added_by is not None else None,
        "created_at": row.created_at,
        "url": f"{PREFIX}/tickets/{ticket.code}/attachments/{row.id}",
        "filename": download_name(ticket, row),
    }


def _list(ticket: Ticket, rows: list[Attachment], withheld: int = 0) -> AttachmentList:
    return AttachmentList.model_validate(
        {
            "ticket": ticket.code,
            "items": [attachment_out(ticket, r) for r in rows],
            "withheld": withheld,
        }
    )


@require(*READERS)
async def list_attachments(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    shown, kept = await attachments_for(request, ticket)
    return _json(_list(ticket, shown, kept))


@require(*READERS)
async def download_attachment(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request, View.FILE)
    found = await ticket_file(request, ticket)
    if found is None:
        raise json_error(404, "no such attachment")
    return file_response(request, ticket, found)


@require(*ALL)
async def upload_attachment(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    if request.content_type != "multipart/form-data":
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps(
                {"error": f"send the file as multipart/form-data, in a part named {FIELD!r}"}
            ),
            content_type="application/json",
        )
    try:
        posted = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise json_error(413, "the body is too large", max_bytes=request.client_max_size) from None
    except ValueError:
        raise json_error(400, "the body cannot be read as multipart/form-data") from None
    uploads = [v for v in posted.getall(FIELD, []) if isinstance(v, web.FileField)]
    if not uploads:
        raise InvalidInput.one(FIELD, FILE_EMPTY)
    limits = ctx(request).settings.tickets
    checked: list[NewAttachment] = []
    for upload in uploads:
        data = await asyncio.to_thread(upload.file.read)
        checked.append(await check_upload(limits, data, upload.filename, FIELD))
    rows = await ctx(request).review.attach(request[ACTOR], ticket.id, checked)
    return _json(_list(ticket, rows), status=201)


#: The upload's body, for the OpenAPI document.
UPLOAD_FORM: dict[str, Any] = {
    "type": "object",
    "required": [FIELD],
    "properties": {
        FIELD: {
            "description": "One or more files (repeat the part): a photo or a PDF, found by "
            "its content (the name and the type sent are not believed).",
            "anyOf": [
                {"type": "string", "contentMediaType": "application/octet-stream"},
                {
                    "type": "array",
                    "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                },
            ],
        }
    },
}

"""The ticket page's review parts: refusing an answer, deadline extensions, attachments.

The actions come from the workflow's table (:mod:`tickets.workflow`) like the others and
are posted to ``/tickets/{code}/{action}`` (:func:`panel.views.tickets.ticket_action`
hands them here); files are posted to ``/tickets/{code}/attachments`` as
``multipart/form-data`` and checked by their content (:func:`tickets.attachments.check_upload`,
in a thread).  The upload routes alone (this one and the JSON API's,
:mod:`panel.api.attachments`) accept a body as large as the settings allow
(:func:`upload_limit_middleware`); every other form keeps the panel's small limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from accounts.identity import Actor
from panel.keys import ACTOR, GETTEXT
from panel.security import require
from panel.views.common import ctx, flash_redirect, visible_ticket
from tickets.attachments import FILE_EMPTY, check_upload
from tickets.exceptions import FieldError, InvalidInput
from tickets.models import Ticket
from tickets.review.models import ExtensionState

ALL = ("agent", "supervisor", "admin", "agency")
#: The workflow's actions this module handles.
ACTIONS = ("refuse_answer", "request_extension", "grant_extension", "refuse_extension")
# What the multipart body may hold besides the file: the CSRF token and the field name.
FORM_OVERHEAD = 64 * 1024


def upload_path(path: str) -> bool:
    """The two upload routes: the ticket page's and the JSON API's."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    return len(parts) == 3 and parts[0] == "tickets" and parts[2] == "attachments"


def upload_limit(settings: Any) -> int:
    """The largest body the upload route reads.  Twice the file limit, so that a file a
    little too large reaches the check that names the field instead of a bare 413."""
    return int(2 * settings.tickets.attachment_max_bytes + FORM_OVERHEAD)


@web.middleware
async def upload_limit_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Let the attachment upload route (only) read a body up to :func:`upload_limit`;
    first in the chain, before the sign-in reads the form for its CSRF token."""
    if not (request.method == "POST" and upload_path(request.path)):
        return await handler(request)
    limit = upload_limit(ctx(request).settings)
    request = request.clone(client_max_size=limit)  # type: ignore[assignment]
    try:
        return await handler(request)
    finally:
        _close_files(request)


def _close_files(request: web.Request) -> None:
    """Close the temporary files aiohttp wrote the form's files to, once the request is
    answered, whatever the answer (a refusal never reads them).  Only if the form was
    parsed (aiohttp keeps it in ``_post``; there is no public way to ask): reading a body
    now just to close it would read what a signed-out client sent."""
    posted = getattr(request, "_post", None)
    if posted is None:
        return
    for value in posted.values():
        if isinstance(value, web.FileField):
            value.file.close()


async def review_action(
    request: web.Request, ticket: Ticket, action: str, data: MultiDictProxy[str], version: int
) -> None:
    """Take one of :data:`ACTIONS` from the ticket page's form."""
    from panel.views.tickets import _local_dt  # the page's date parsing, one place

    review = ctx(request).review
    actor: Actor = request[ACTOR]
    if action == "refuse_answer":
        await review.refuse_answer(actor, ticket.id, version, data.get("reason", ""))
    elif action == "request_extension":
        until = _local_dt(request, data, "until") if data.get("until", "").strip() else None
        await review.request_extension(actor, ticket.id, version, until, data.get("reason", ""))
    elif action == "grant_extension":
        await review.grant_extension(actor, ticket.id, version, data.get("note") or None)
    elif action == "refuse_extension":
        await review.refuse_extension(actor, ticket.id, version, data.get("reason", ""))
    else:  # pragma: no cover - the caller dispatches only ACTIONS
        raise web.HTTPNotFound()


async def review_values(request: web.Request, ticket: Ticket) -> dict[str, Any]:
    """What the ticket page shows of the review: the refused answers (the last one's reason
    stands out while the ticket is back with the agency), the extension requests, and the
    file types one may attach."""
    review = ctx(request).review
    refusals = await review.refusals(ticket.id)
    extensions = await review.extensions(ticket.id)
    settings = ctx(request).settings.tickets
    return {
        "refusals": refusals,
        "last_refusal": refusals[-1] if refusals and ticket.status == "accepted" else None,
        "extensions": extensions,
        "open_extension": next(
            (e for e in extensions if e.state == ExtensionState.OPEN.value), None
        ),
        "attach_accept": ",".join(settings.attachment_types),
        "attach_max_mb": f"{settings.attachment_max_bytes / 1_000_000:g}",
    }


@require(*ALL)
async def attach_file(request: web.Request) -> web.StreamResponse:
    """A file attached from the ticket page (anyone who may see the ticket)."""
    _ = request[GETTEXT]
    c = ctx(request)
    ticket = await visible_ticket(request)
    posted = await request.post()  # read (and limited) once: the CSRF check read it
    upload = posted.get("attachment")
    try:
        if not isinstance(upload, web.FileField):
            raise InvalidInput([FieldError("attachment", FILE_EMPTY, {})])
        data = await asyncio.to_thread(upload.file.read)
        checked = await check_upload(c.settings.tickets, data, upload.filename)
        await c.review.attach(request[ACTOR], ticket.id, [checked])
    except InvalidInput as e:
        from panel.views.tickets import ticket_page_with_errors

        return await ticket_page_with_errors(request, ticket, "attach", e, {})
    raise flash_redirect(f"/tickets/{ticket.code}", _("File attached."))


def disposition(content_type: str) -> str:
    """Images are shown in the page; anything else is downloaded, never rendered."""
    return "inline" if content_type.startswith("image/") else "attachment"


#: A safe extension for the download's name, by the content type found.
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "application/pdf": "pdf",
}

"""The SMS and email desk in the JSON API: the messages waiting on the caller's
desks and what an agent does with one (claim, reply, attach to a ticket, no
content), a message's conversation, a ticket's conversation, and the size of a
text before it is sent.  The same service as the desk's pages
(panel/views/inbox.py); the operations are declared in panel/api/operations.py.

A mail carries what its page shows (``email``): the subject, the sender as the
mail gave it, the thread's Message-IDs, the HTML as sanitised when it was stored
(:mod:`mail.parse`) and the attachments kept, by id, each with the address of its
download (the panel's, which takes the same token).  Who sees what is the pages'
rule: a message on one of the caller's desks (:func:`panel.views.inbox.desk_teams`)
and of no restricted ticket withheld from them (:func:`panel.views.inbox.shown_messages`:
left out of the lists and conversations, 404 by its id, and audited when shown),
a ticket's conversation to staff who may see that ticket
(:func:`panel.views.common.visible_ticket`: a restricted report only to those
cleared for it, and the look written in its audit log)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, WithJsonSchema

from inbox.models import Direction, Message, MessageChannel, MessageEmail
from inbox.service import REPLY_MAX, InboxService
from panel.api.schemas import UTCTime, _Body
from panel.api.views import STAFF, _json, read_json
from panel.keys import ACTOR
from panel.security import require
from panel.views.common import ctx, visible_ticket
from panel.views.inbox import desk_teams, shown_messages, visible_message
from sms.coding import size
from tickets.audit import View
from tickets.models import Attachment
from tickets.schemas import text_schema, validate


class AttachmentOut(BaseModel):
    id: str
    filename: str | None = Field(description="The name the sender gave it (never a path).")
    content_type: str = Field(description="The type found by decoding it (images), as served.")
    size: int
    sha256: str
    url: str = Field(
        description="Where to download it: a panel path that takes the same bearer token "
        "(or session). Always served as a download, with its type and nosniff."
    )


class EmailOut(BaseModel):
    """A mail's own fields, beside the message's `body` (its text)."""

    subject: str
    from_address: str = Field(
        description="The sender's address. For a mail in, as the mail wrote it: anyone "
        "can write a From, so it is not proof of who sent it (it never links a mail "
        "to a ticket by itself)."
    )
    from_header: str | None = Field(
        description="The From header as written (a mail in), display name included."
    )
    to_address: str
    message_id: str | None = Field(description="The mail's Message-ID, with its <>.")
    in_reply_to: str | None
    references: list[str] = Field(description="The thread's Message-IDs, oldest first.")
    html: str | None = Field(
        description="The HTML part as sanitised when the mail was stored (no script, "
        "style, event handler, image, form or frame; links made rel=noopener noreferrer "
        "nofollow); null when the mail had none. Show it only as the panel does, under "
        "a Content-Security-Policy."
    )
    size: int | None = Field(description="The mail's size on the server, in bytes (in).")
    attachments: list[AttachmentOut] = Field(
        description="The files kept, in the order they came; those refused are listed "
        "in `body` as not kept."
    )


class MessageOut(BaseModel):
    id: int
    channel: str
    direction: str
    citizen: str
    service_address: str
    team: str | None
    body: str
    flag: str | None
    state: str
    ticket_id: int | None
    claimed_by: int | None
    reply_to_id: int | None
    coding: str | None
    parts: int | None
    error: str | None
    created_at: UTCTime
    email: EmailOut | None = Field(
        description="The mail's fields (channel email); null for an SMS or a voice message."
    )


class MessageList(BaseModel):
    items: list[MessageOut]


class ReplyIn(_Body):
    text: Annotated[
        str,
        Field(description="The answer; its SMS parts must not pass `sms.max_parts` (422)."),
        WithJsonSchema(text_schema(REPLY_MAX, required=True)),
    ]


class AttachIn(_Body):
    ticket: Annotated[
        str,
        Field(description="The ticket's tracking code or number."),
        WithJsonSchema(text_schema(40, required=True)),
    ]


class PartsIn(_Body):
    text: Annotated[str, Field(max_length=REPLY_MAX)]


class PartsOut(BaseModel):
    coding: str
    units: int
    parts: int
    per_part: int


#: the download address of an attachment of a message
FileUrl = Callable[[Message, Attachment], str]


def desk_file(m: Message, a: Attachment) -> str:
    """The message page's download (panel/views/inbox.py: the desk's rule)."""
    return f"/messages/{m.id}/files/{a.id}"


def email_out(
    m: Message, mail: MessageEmail | None, files: Sequence[Attachment], url: FileUrl
) -> EmailOut | None:
    if m.channel != MessageChannel.EMAIL:
        return None
    inbound = m.direction == Direction.IN
    return EmailOut(
        subject=mail.subject if mail else "",
        from_address=m.citizen if inbound else m.service_address,
        from_header=mail.from_header if mail else None,
        to_address=m.service_address if inbound else m.citizen,
        message_id=mail.rfc_message_id if mail else None,
        in_reply_to=mail.in_reply_to if mail else None,
        references=(mail.references or "").split() if mail else [],
        html=mail.html if mail else None,
        size=mail.size if mail else None,
        attachments=[
            AttachmentOut(
                id=a.id,
                filename=a.original_name,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256,
                url=url(m, a),
            )
            for a in files
        ],
    )


def message_out(
    m: Message,
    mail: MessageEmail | None = None,
    files: Sequence[Attachment] = (),
    url: FileUrl = desk_file,
) -> MessageOut:
    at: datetime = m.created_at
    return MessageOut(
        id=m.id,
        channel=m.channel,
        direction=m.direction,
        citizen=m.citizen,
        service_address=m.service_address,
        team=m.team,
        body=m.body,
        flag=m.flag,
        state=m.state,
        ticket_id=m.ticket_id,
        claimed_by=m.claimed_by,
        reply_to_id=m.reply_to_id,
        coding=m.coding,
        parts=m.parts,
        error=m.error,
        created_at=at,
        email=email_out(m, mail, files, url),
    )


async def messages_out(
    inbox: InboxService, rows: Sequence[Message], url: FileUrl = desk_file
) -> list[MessageOut]:
    """The rows with their mails' fields (two queries for all of them)."""
    mails = [m.id for m in rows if m.channel == MessageChannel.EMAIL]
    emails = await inbox.emails(mails)
    files = await inbox.files_of(mails)
    return [message_out(m, emails.get(m.id), files.get(m.id, ()), url) for m in rows]


async def _one(request: web.Request, m: Message, status: int = 200) -> web.StreamResponse:
    [out] = await messages_out(_inbox(request), [m])
    return _json(out, status)


def _inbox(request: web.Request) -> InboxService:
    inbox = ctx(request).inbox
    if inbox is None:
        raise web.HTTPNotFound()
    return inbox


async def _visible(request: web.Request) -> Message:
    """The message in the path, if it is on one of the caller's desks and of no ticket
    withheld from them (else 404: :func:`panel.views.inbox.visible_message`)."""
    _inbox(request)
    return await visible_message(request, int(request.match_info["id"]), View.API)


@require(*STAFF)
async def list_messages(request: web.Request) -> web.StreamResponse:
    teams = desk_teams(ctx(request).settings, request[ACTOR])
    inbox = _inbox(request)
    rows = await shown_messages(request, await inbox.desk(teams), View.LIST)
    return _json(MessageList(items=await messages_out(inbox, rows)))


@require(*STAFF)
async def get_message(request: web.Request) -> web.StreamResponse:
    return await _one(request, await _visible(request))


@require(*STAFF)
async def message_conversation(request: web.Request) -> web.StreamResponse:
    """The message's conversation as its page shows it (InboxService.conversation)."""
    msg = await _visible(request)
    inbox = _inbox(request)
    thread = await shown_messages(request, await inbox.conversation(msg.id), View.API)
    return _json(MessageList(items=await messages_out(inbox, thread)))


@require(*STAFF)
async def ticket_messages(request: web.Request) -> web.StreamResponse:
    """The ticket's conversation with the citizen, to staff who may see the ticket."""
    ticket = await visible_ticket(request)
    inbox = _inbox(request)

    def url(m: Message, a: Attachment) -> str:
        # the ticket's own file route (its rule: who may see the ticket)
        if a.ticket_id == ticket.id:
            return f"/tickets/{ticket.code}/attachments/{a.id}"
        return desk_file(m, a)

    rows = await inbox.for_ticket(ticket.id)
    return _json(MessageList(items=await messages_out(inbox, rows, url)))


@require(*STAFF)
async def claim_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    return await _one(request, await _inbox(request).claim(request[ACTOR], msg.id))


@require(*STAFF)
async def no_content_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    return await _one(request, await _inbox(request).no_content(request[ACTOR], msg.id))


@require(*STAFF)
async def attach_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    body = validate(AttachIn, await read_json(request))
    done = await _inbox(request).attach(request[ACTOR], msg.id, body.ticket)
    return await _one(request, done)


@require(*STAFF)
async def reply_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    body = validate(ReplyIn, await read_json(request))
    sent = await _inbox(request).reply(request[ACTOR], msg.id, body.text)
    return await _one(request, sent, 201)


@require(*STAFF)
async def message_parts(request: web.Request) -> web.StreamResponse:
    body = validate(PartsIn, await read_json(request))
    sz = size(body.text)
    return _json(PartsOut(coding=sz.coding, units=sz.units, parts=sz.parts, per_part=sz.per_part))

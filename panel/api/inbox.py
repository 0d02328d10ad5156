"""The SMS desk in the JSON API: the messages waiting on the caller's desks and
what an agent does with one (claim, reply, attach to a ticket, no content),
and the size of a text before it is sent.  The same service as the desk's
pages (panel/views/inbox.py); the operations are declared in
panel/api/operations.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, WithJsonSchema

from inbox.models import Message
from inbox.service import REPLY_MAX, InboxService
from panel.api.schemas import UTCTime, _Body
from panel.api.views import STAFF, _json, read_json
from panel.keys import ACTOR
from panel.security import require
from panel.views.common import ctx
from panel.views.inbox import desk_teams
from sms.coding import size
from tickets.schemas import text_schema, validate


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


def message_out(m: Message) -> MessageOut:
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
    )


def _inbox(request: web.Request) -> InboxService:
    inbox = ctx(request).inbox
    if inbox is None:
        raise web.HTTPNotFound()
    return inbox


async def _visible(request: web.Request) -> Message:
    """The message in the path, if it is on one of the caller's desks (else 404)."""
    from inbox.exceptions import MessageNotFound

    message_id = int(request.match_info["id"])
    msg = await _inbox(request).get(message_id)
    teams = desk_teams(ctx(request).settings, request[ACTOR])
    if msg.team is not None and msg.team not in teams:
        raise MessageNotFound(message_id)
    return msg


@require(*STAFF)
async def list_messages(request: web.Request) -> web.StreamResponse:
    teams = desk_teams(ctx(request).settings, request[ACTOR])
    rows = await _inbox(request).desk(teams)
    return _json(MessageList(items=[message_out(m) for m in rows]))


@require(*STAFF)
async def get_message(request: web.Request) -> web.StreamResponse:
    return _json(message_out(await _visible(request)))


@require(*STAFF)
async def claim_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    return _json(message_out(await _inbox(request).claim(request[ACTOR], msg.id)))


@require(*STAFF)
async def no_content_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    return _json(message_out(await _inbox(request).no_content(request[ACTOR], msg.id)))


@require(*STAFF)
async def attach_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    body = validate(AttachIn, await read_json(request))
    done = await _inbox(request).attach(request[ACTOR], msg.id, body.ticket)
    return _json(message_out(done))


@require(*STAFF)
async def reply_message(request: web.Request) -> web.StreamResponse:
    msg = await _visible(request)
    body = validate(ReplyIn, await read_json(request))
    sent = await _inbox(request).reply(request[ACTOR], msg.id, body.text)
    return _json(message_out(sent), 201)


@require(*STAFF)
async def message_parts(request: web.Request) -> web.StreamResponse:
    body = validate(PartsIn, await read_json(request))
    sz = size(body.text)
    return _json(PartsOut(coding=sz.coding, units=sz.units, parts=sz.parts, per_part=sz.per_part))

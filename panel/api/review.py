"""The supervisors' review in the JSON API: refusing an agency's answer, and the deadline
extensions an agency asks for and a supervisor grants or refuses.  The same service as
the ticket page (tickets/review/service.py); the operations are declared in
panel/api/operations.py.  Who may take which move from which status is the workflow's
table, as for every other ticket action."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import Field

from panel.api.schemas import Note, Said, Version, _Body
from panel.api.views import LEADS, _json, _one_ticket, read_json
from panel.keys import ACTOR
from panel.security import require
from panel.views.common import ctx, visible_ticket
from tickets.schemas import validate


class RefuseAnswerIn(_Body):
    version: Version
    reason: Annotated[Said, Field(description="Why the answer is sent back; the agency reads it.")]


class ExtensionIn(_Body):
    version: Version
    until: Annotated[
        datetime,
        Field(
            description="The new deadline asked for, later than the current one; ISO 8601, "
            "without an offset it is local time (settings timezone)."
        ),
    ]
    reason: Annotated[Said, Field(description="Why more time is needed.")]


class GrantExtensionIn(_Body):
    version: Version
    note: Note = None


class RefuseExtensionIn(_Body):
    version: Version
    reason: Annotated[Said, Field(description="Why the extension is refused.")]


@require(*LEADS)
async def refuse_answer(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(RefuseAnswerIn, await read_json(request))
    ticket = await ctx(request).review.refuse_answer(
        request[ACTOR], ticket.id, body.version, body.reason
    )
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def request_extension(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(ExtensionIn, await read_json(request))
    until = body.until
    if until.tzinfo is None:
        until = until.replace(tzinfo=ctx(request).settings.tz)
    ticket = await ctx(request).review.request_extension(
        request[ACTOR], ticket.id, body.version, until, body.reason
    )
    return _json(await _one_ticket(request, ticket))


@require(*LEADS)
async def grant_extension(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(GrantExtensionIn, await read_json(request))
    ticket = await ctx(request).review.grant_extension(
        request[ACTOR], ticket.id, body.version, body.note
    )
    return _json(await _one_ticket(request, ticket))


@require(*LEADS)
async def refuse_extension(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(RefuseExtensionIn, await read_json(request))
    ticket = await ctx(request).review.refuse_extension(
        request[ACTOR], ticket.id, body.version, body.reason
    )
    return _json(await _one_ticket(request, ticket))

"""Repeat reports in the JSON API: suggestions, a ticket's group, linking and unlinking.

The ticket form asks ``suggest_repeats`` as the agent types (``panel/static/repeats.js``);
a ticket that came by SMS or the web is compared with ``similar_tickets``.  Staff only:
the services decide who may link which ticket (:func:`tickets.workflow.may_link`).  The
operations are declared with the others in :mod:`panel.api.operations`.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from panel.api.schemas import TicketOut, UTCTime, Version, ticket_out
from panel.api.views import read_json
from panel.keys import ACTOR, GETTEXT
from panel.security import json_error, require
from panel.views.common import ctx, visible_ticket
from panel.views.tickets import repeat_target
from tickets.models import Ticket
from tickets.numbers import format_number
from tickets.repeats import DEFAULT_LIMIT, MAX_LIMIT, Draft, Suggestion
from tickets.schemas import validate

STAFF = ("agent", "supervisor", "admin")
# the draft's fields looked at, at most (the suggestions use a report's first words
# anyway): short enough that a URL with all of them, percent-encoded, stays under the
# server's 8 KiB request line whatever the characters
QUERY_MAX = {
    "description": 300,
    "citizen_address": 100,
    "citizen_phone": 40,
    "topic": 32,
    "district": 80,
}
EXCERPT = 300
DRAFT_FIELDS = ("description", "citizen_address", "citizen_phone", "topic", "district")


class _Body(BaseModel):
    # unknown keys refused, as every body of the API (panel.api.schemas)
    model_config = ConfigDict(extra="forbid")


class LinkIn(_Body):
    version: Version
    repeat_of: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description="The earlier report's tracking code or ticket number; the ticket "
            "joins that report's group.",
        ),
    ]


class UnlinkIn(_Body):
    version: Version


class RepeatTicket(BaseModel):
    """An earlier report, as a suggestion shows it."""

    id: int
    code: str
    number: str
    status: str
    level: int
    topic: str
    district: str | None
    citizen_phone: str | None
    created_at: UTCTime
    description: str = Field(description="Its first 300 characters.")


class RepeatSuggestionOut(BaseModel):
    ticket: RepeatTicket = Field(description="The group's ticket (or a report in no group).")
    reports: int = Field(description="Reports in its group, itself included.")
    score: float = Field(description="The rank: higher is likelier.")
    reasons: list[str] = Field(
        description="Why: `phone` (the same caller), `text` (the same words), `topic`, `district`."
    )


class RepeatSuggestionList(BaseModel):
    items: list[RepeatSuggestionOut]


class RepeatGroupOut(BaseModel):
    ticket: TicketOut = Field(description="The group's ticket.")
    items: list[TicketOut] = Field(description="The reports linked to it, oldest first.")
    reports: int = Field(description="Reports in the group, its ticket included.")


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def _brief(t: Ticket) -> RepeatTicket:
    return RepeatTicket(
        id=t.id,
        code=t.code,
        number=format_number(t.number),
        status=t.status,
        level=t.level,
        topic=t.topic,
        district=t.district,
        citizen_phone=t.citizen_phone,
        created_at=t.created_at,
        description=t.description[:EXCERPT],
    )


def suggestions_out(found: list[Suggestion]) -> RepeatSuggestionList:
    return RepeatSuggestionList(
        items=[
            RepeatSuggestionOut(
                ticket=_brief(x.ticket), reports=x.reports, score=x.score, reasons=list(x.reasons)
            )
            for x in found
        ]
    )


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "")
    if raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        _ = request[GETTEXT]
        raise json_error(
            422,
            "invalid input",
            fields={"limit": _("must be a whole number from {min} to {max}", min=1, max=MAX_LIMIT)},
        )
    return int(raw)


async def _out(request: web.Request, ticket: Ticket) -> TicketOut:
    c = ctx(request)
    names: dict[int, str] = {}
    if ticket.agency_id is not None:
        names[ticket.agency_id] = (await c.agencies.get(ticket.agency_id)).name
    return ticket_out(ticket, names, c.clock.now())


@require(*STAFF)
async def suggest_repeats(request: web.Request) -> web.StreamResponse:
    q = request.query
    draft = Draft(**{name: q.get(name) or None for name in DRAFT_FIELDS})
    found = await ctx(request).repeats.suggest(request[ACTOR], draft, limit=_limit(request))
    return _json(suggestions_out(found))


@require(*STAFF)
async def similar_tickets(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    found = await ctx(request).repeats.similar_to(request[ACTOR], ticket, limit=_limit(request))
    return _json(suggestions_out(found))


@require(*STAFF)
async def ticket_group(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    lead, members = await ctx(request).repeats.group(ticket, request[ACTOR])
    return _json(
        RepeatGroupOut(
            ticket=await _out(request, lead),
            items=[await _out(request, m) for m in members],
            reports=len(members) + 1,
        )
    )


@require(*STAFF)
async def link_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(LinkIn, await read_json(request))
    target = await repeat_target(request, body.repeat_of)
    ticket = await ctx(request).repeats.link(request[ACTOR], ticket.id, body.version, target.id)
    return _json(await _out(request, ticket))


@require(*STAFF)
async def unlink_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(UnlinkIn, await read_json(request))
    ticket = await ctx(request).repeats.unlink(request[ACTOR], ticket.id, body.version)
    return _json(await _out(request, ticket))

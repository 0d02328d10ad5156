""" "Call the citizen" from the ticket page, and the ticket's calls.

The button (agents and supervisors with a phone, on a ticket with a citizen's
number) and ``POST /api/v1/tickets/{code}/call`` share :func:`call_citizen`:
:class:`callcenter.outbound.OutboundService` places the call (the agent's
phone rings first, then the citizen's), the ticket's history notes it, and a
refusal comes back as a :class:`CallProblem` in the user's language: the
phone not registered, busy, already in an outgoing call (409), the number not
dialable (409, naming the ticket's ``citizen_phone``), no telephone system (503).  A second
click while the call is under way answers with that same call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callcenter.exceptions import (
    AgentBusy,
    AlreadyCalling,
    CallRefused,
    NoPhone,
    NotDialable,
    PhoneNotRegistered,
    TelephonyUnavailable,
)
from callcenter.models import Call
from callcenter.outbound import Placed
from panel.keys import ACTOR, GETTEXT
from panel.security import require
from panel.views.common import ctx, flash_redirect, visible_ticket
from recordings.replay import can_replay, mmss
from tickets.confidential import sees_identity
from tickets.models import Ticket

log = logging.getLogger(__name__)

# who may call a citizen from a ticket (with a phone of their own)
CALLERS = ("agent", "supervisor")


@dataclass
class CallProblem(Exception):
    """Why the call was not placed: the HTTP status, the sentence to show, a short
    reason (``detail`` in the API) and the field at fault, if one is."""

    status: int
    message: str
    reason: str
    field: str | None = None


def may_call(request: web.Request, ticket: Ticket) -> bool:
    """Whether the ticket page offers "call the citizen" to this user."""
    actor = request[ACTOR]
    return (
        ctx(request).outbound is not None
        and actor.role in CALLERS
        and bool(actor.extension)
        and bool(ticket.citizen_phone)
    )


async def call_citizen(request: web.Request, ticket: Ticket) -> Placed:
    """Place the call from the signed-in user's phone; :class:`CallProblem` if not."""
    _ = request[GETTEXT]
    c = ctx(request)
    actor = request[ACTOR]
    if c.outbound is None:
        raise CallProblem(
            503,
            _("Calling is not available: the panel has no connection to the telephone system."),
            "unavailable",
        )
    try:
        placed = await c.outbound.place(
            extension=actor.extension,
            ticket_id=ticket.id,
            ticket_code=ticket.code,
            phone=ticket.citizen_phone,
            origin_call_id=ticket.call_id,
        )
    except NotDialable as e:
        # the ticket's stored number, not the request, is at fault: a conflict
        raise CallProblem(
            409,
            _("{number} is not a number the hotline can dial.", number=e.number or ""),
            "not_dialable",
            field=e.field,
        ) from None
    except CallRefused as e:
        raise CallProblem(409, _refusal(request, e), e.reason) from None
    except TelephonyUnavailable as e:
        log.warning("call from %s for ticket %s: %s", actor.extension, ticket.code, e)
        raise CallProblem(
            503, _("The telephone system did not answer. Try again."), "unavailable"
        ) from None
    if not placed.repeated:
        await c.tickets.called(actor, ticket.id, placed.call.id, placed.call.caller_number or "")
    return placed


def _refusal(request: web.Request, e: CallRefused) -> str:
    _ = request[GETTEXT]
    ext = e.extension or ""
    if isinstance(e, NoPhone):
        text = _("You have no phone (extension) to call from.")
    elif isinstance(e, PhoneNotRegistered):
        text = _(
            "Your phone {extension} is not registered: start your softphone, then try again.",
            extension=ext,
        )
    elif isinstance(e, AgentBusy):
        text = _(
            "Your phone {extension} is busy (ringing or in a call): call when it is free.",
            extension=ext,
        )
    elif isinstance(e, AlreadyCalling):
        text = _("You are already in an outgoing call: hang up before calling again.")
    else:
        text = str(e)
    return str(text)


@require(*CALLERS)
async def call_from_ticket(request: web.Request) -> web.StreamResponse:
    """The ticket page's button: back to the ticket, saying what happens (or why not)."""
    _ = request[GETTEXT]
    ticket = await visible_ticket(request)
    await request.post()  # the CSRF token was checked by the middleware
    try:
        placed = await call_citizen(request, ticket)
    except CallProblem as p:
        raise flash_redirect(f"/tickets/{ticket.code}", p.message) from None
    number = placed.call.caller_number or ""
    message = (
        _("Already calling {number}: answer your phone.", number=number)
        if placed.repeated
        else _("Your phone rings: answer it, then {number} is called.", number=number)
    )
    raise flash_redirect(f"/tickets/{ticket.code}", message)


async def ticket_calls(request: web.Request, ticket: Ticket) -> dict[str, Any]:
    """What the ticket page shows of its calls: the list (with the recordings this
    user may replay) and whether it offers "call the citizen"."""
    c = ctx(request)
    actor = request[ACTOR]
    # the calls name the citizen's number: not for an agency the citizen is withheld from
    calls: list[Call] = (
        await c.calls.for_ticket(ticket.id, ticket.call_id) if sees_identity(actor, ticket) else []
    )
    transfers = {}
    if c.transfers is not None:
        for call in calls:
            chain = await c.transfers.chain(call.id)
            if chain:
                transfers[call.id] = chain
    return {
        "ticket_calls": calls,
        "call_transfers": transfers,
        "replayable": {
            call.id for call in calls if call.recording_base and can_replay(actor, call, c.settings)
        },
        "may_call": may_call(request, ticket),
        "mmss": mmss,
    }


def routes() -> list[web.RouteDef]:
    # before the ticket's generic actions (/tickets/{code}/{action})
    return [web.post("/tickets/{code}/call", call_from_ticket)]

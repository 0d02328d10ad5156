"""A ticket's agencies on its page: the lead, the co-handling agencies, the delegations.

:func:`handling_values` gives the ticket page its parts (tickets.handling) with the moves
the reader may make on each, and the sub-agencies each part may be delegated to; the
moves are posted to ``/tickets/{code}/parts/{part}/{action}`` (``part`` is a part's id,
or ``lead``).  A refused move shows the ticket page again with the errors by their
fields, in the part's form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import zip_longest
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from accounts.identity import Actor
from panel.dates import parse_moment
from panel.keys import ACTOR, GETTEXT
from panel.security import field_errors, require
from panel.views.common import ctx, flash_redirect, form, visible_ticket
from tickets.exceptions import REQUIRED, FieldError, InvalidInput
from tickets.handling.models import OPEN as OPEN_STATES
from tickets.handling.rounds import deadline_field, open_co
from tickets.handling.service import PartView
from tickets.models import Agency, Ticket

# the page's failed move: {"part": ..., "action": ..., "errors": ..., "values": ...}
FAILED = web.RequestKey("handling_failed", dict[str, Any])
# the forward form's co-handling rows as posted: [{"agency_id": ..., "deadline": ...}]
CO_ROWS = web.RequestKey("co_rows", list[dict[str, str]])
# empty rows of the forward form, to add co-handling agencies
EMPTY_CO_ROWS = 3
MOVES = ("delegate", "accept", "answer", "send_back", "adopt", "withdraw", "deadline")


def below(agencies: Sequence[Agency], top: int | None) -> list[Agency]:
    """The active agencies under ``top`` in the tree (children, their children, ...)."""
    found: list[Agency] = []
    frontier = {top} if top is not None else set()
    seen: set[int] = set()
    while frontier:
        level = [a for a in agencies if a.parent_id in frontier and a.id not in seen]
        seen |= {a.id for a in level}
        found += [a for a in level if a.active]
        frontier = {a.id for a in level}
    return sorted(found, key=lambda a: a.name)


def _delegators(parts: Sequence[PartView]) -> list[PartView]:
    out: list[PartView] = []
    for p in parts:
        if "delegate" in p.moves:
            out.append(p)
        out += _delegators(p.children)
    return out


async def handling_values(request: web.Request, ticket: Ticket) -> dict[str, Any]:
    """What the ticket page shows of the ticket's agencies."""
    c = ctx(request)
    actor: Actor = request[ACTOR]
    parts = await c.handling.tree(actor, ticket)
    agencies = await c.agencies.list(include_inactive=True)
    return {
        "parts": parts,
        # the forward form's co-handling agencies, as they are now
        "co_agency_ids": sorted(open_co([p.row for p in parts if p.row is not None])),
        "sub_agencies": {p.key: below(agencies, p.agency_id) for p in _delegators(parts)},
        "handling_failed": request.get(FAILED) or {},
        # the forward (approve) form's co-handling agencies, each with its deadline
        "co_rows": co_rows(request, parts),
    }


def co_agency_ids(data: MultiDictProxy[str]) -> list[int] | None:
    """The forward form's co-handling agencies; None when the form did not show them."""
    if "co_agencies_shown" not in data:
        return None
    return [int(v) for v in data.getall("co_agency_ids", []) if v.isascii() and v.isdigit()]


def co_deadlines(request: web.Request, data: MultiDictProxy[str]) -> dict[int, datetime] | None:
    """The forward form's deadlines of the co-handling agencies, by agency: each row of
    the form is an agency and its deadline (empty: the lead's).  What was posted is kept
    for the page shown again if the forward is refused."""
    if "co_agencies_shown" not in data:
        return None
    rows = list(
        zip_longest(data.getall("co_agency_ids", []), data.getall("co_deadline", []), fillvalue="")
    )
    request[CO_ROWS] = [{"agency_id": a, "deadline": d} for a, d in rows]
    found: dict[int, datetime] = {}
    for agency, raw in rows:
        if not (agency.isascii() and agency.isdigit()) or not raw.strip():
            continue
        moment = _deadline(request, raw, field=deadline_field(int(agency)))
        if moment is not None:
            found[int(agency)] = moment
    return found


def co_rows(request: web.Request, parts: Sequence[PartView]) -> list[dict[str, str]]:
    """The forward form's rows: as posted (a refused forward), else the co-handling
    agencies now, each with its deadline now beside an empty field (left empty, it keeps
    it: a deadline passed meanwhile is not sent back as a new one); then empty rows to
    add more."""
    posted = request.get(CO_ROWS)
    if posted is not None:
        rows = [r for r in posted if r["agency_id"] or r["deadline"]]
    else:
        tz = ctx(request).settings.tz
        rows = [
            {
                "agency_id": str(p.agency_id),
                "deadline": "",
                "current": p.deadline_at.astimezone(tz).strftime("%d/%m/%Y %H:%M")
                if p.deadline_at
                else "",
            }
            for p in parts
            if p.row is not None and p.role == "co" and p.row.status in OPEN_STATES
        ]
    return rows + [{"agency_id": "", "deadline": ""}] * EMPTY_CO_ROWS


def _deadline(request: web.Request, raw: str, field: str = "deadline_at") -> datetime | None:
    if not raw.strip():
        return None
    try:
        moment = parse_moment(raw)
    except ValueError:
        raise InvalidInput(
            [FieldError(field, "must be a date and time such as 25/11/2026 14:30")]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ctx(request).settings.tz)
    return moment


@require("agency", "supervisor", "admin")  # the supervisors: a co-agency's deadline
async def part_move(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    ticket = await visible_ticket(request)
    actor: Actor = request[ACTOR]
    key = request.match_info["part"]
    action = request.match_info["action"]
    if action not in MOVES or not (key == "lead" or key.isdigit()):
        raise web.HTTPNotFound()
    part = None if key == "lead" else int(key)
    data = await form(request)
    h = c.handling
    try:
        v = data.get("version", "")
        if not v.isdigit():
            raise InvalidInput([FieldError("version", REQUIRED)])
        version = int(v)
        if action == "delegate":
            agency = data.get("agency_id", "")
            if not agency.isdigit():
                raise InvalidInput([FieldError("agency_id", REQUIRED)])
            await h.delegate(
                actor,
                ticket.id,
                version,
                int(agency),
                _deadline(request, data.get("deadline_at", "")),
                data.get("note") or None,
                part_id=part,
            )
        elif part is None:
            raise web.HTTPNotFound()
        elif action == "accept":
            await h.accept(actor, ticket.id, version, part)
        elif action == "answer":
            await h.answer(actor, ticket.id, version, part, data.get("result", ""))
        elif action == "send_back":
            await h.send_back(actor, ticket.id, version, part, data.get("reason", ""))
        elif action == "adopt":
            await h.adopt(actor, ticket.id, version, part, data.get("result") or None)
        elif action == "withdraw":
            await h.withdraw(actor, ticket.id, version, part, data.get("note") or None)
        else:
            await h.move_deadline(
                actor,
                ticket.id,
                version,
                part,
                _deadline(request, data.get("deadline_at", "")),
                data.get("reason", ""),
            )
    except InvalidInput as e:
        request[FAILED] = {
            "part": key,
            "action": action,
            "errors": field_errors(request, e.errors),
            "values": dict(data),
        }
        # the ticket page, with this move's errors in its form (imported here: the
        # ticket views show this module's values)
        from panel.views.tickets import show_ticket

        page = await show_ticket(request)
        page.set_status(422)
        return page
    raise flash_redirect(f"/tickets/{ticket.code}", _("Saved."))


def routes() -> list[web.RouteDef]:
    return [web.post("/tickets/{code}/parts/{part}/{action}", part_move)]

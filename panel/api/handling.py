"""A ticket's agencies in the JSON API: its parts, delegation down the tree, the parts' moves.

The same moves as the ticket page's (:mod:`panel.views.handling`), through
:class:`tickets.handling.service.AssignmentService`; every answer is the ticket's parts
as they are after the move, with the ticket's new ``version``.  The co-handling
agencies are set when forwarding (``co_agency_ids`` of ``forward`` and ``approve``).
The operations are declared with the others in :mod:`panel.api.operations`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from panel.api.schemas import AgencyRef, Id, Note, Said, UTCTime, Version, _Body
from panel.api.views import read_json
from panel.keys import ACTOR
from panel.security import require
from panel.views.common import ctx, visible_ticket
from tickets.handling.models import Assignment
from tickets.models import Ticket
from tickets.schemas import validate

ALL = ("agent", "supervisor", "admin", "agency")


class DelegateIn(_Body):
    version: Version
    agency_id: Annotated[Id, Field(description="A sub-agency of the part's agency.")]
    deadline_at: Annotated[
        datetime | None,
        Field(
            description="ISO 8601 (without an offset: local time); at the latest the "
            "part's own deadline, which it is when left out."
        ),
    ] = None
    note: Note = None


class PartAnswerIn(_Body):
    version: Version
    result: Annotated[Said, Field(description="The agency's answer for its part.")]


class PartSendBackIn(_Body):
    version: Version
    reason: Annotated[Said, Field(description="Why the agency returns its part.")]


class AdoptIn(_Body):
    version: Version
    result: Annotated[
        Note,
        Field(description="The answer to give; left out, the sub-agency's answer as it is."),
    ] = None


class WithdrawIn(_Body):
    version: Version
    note: Note = None


class PartAcceptIn(_Body):
    version: Version


class PartDeadlineIn(_Body):
    version: Version
    deadline_at: Annotated[
        datetime,
        Field(
            description="ISO 8601 (without an offset: local time); in the future, at the "
            "latest the giver's own deadline (the delegating part's, or the lead's for a "
            "co-handling agency), and no earlier than a deadline given below the part."
        ),
    ]
    reason: Annotated[Said, Field(description="Why the deadline moves.")]


class PartOut(BaseModel):
    id: int | None = Field(description="The part's id; null for the lead's (the ticket's).")
    role: Annotated[str, Field(json_schema_extra={"enum": ["lead", "co", "delegated"]})]
    agency: AgencyRef | None
    from_agency: AgencyRef | None = Field(description="The agency that delegated it.")
    parent_id: int | None = Field(description="The part it was delegated from (null: the lead's).")
    status: str
    deadline_at: UTCTime | None
    answer: str | None
    return_reason: str | None
    end_reason: str | None = Field(
        default=None,
        description="A part closed with its ticket (status `closed`): the closing note.",
    )
    moves: list[str] = Field(description="The moves the caller may make on it now.")


class PartList(BaseModel):
    ticket: str
    version: int = Field(description="The ticket's version, to send with the next move.")
    items: list[PartOut]


async def _parts(request: web.Request, code: str) -> PartList:
    c = ctx(request)
    ticket = await c.ticket_queries.get_by_code(code)
    names = {a.id: a.name for a in await c.agencies.list(include_inactive=True)}

    def ref(agency_id: int | None) -> dict[str, Any] | None:
        return {"id": agency_id, "name": names.get(agency_id, "")} if agency_id else None

    items: list[dict[str, Any]] = []

    def walk(views: list[Any]) -> None:
        for v in views:
            row: Assignment | None = v.row
            items.append(
                {
                    "id": row.id if row else None,
                    "role": v.role,
                    "agency": ref(v.agency_id),
                    "from_agency": ref(row.from_agency_id) if row else None,
                    "parent_id": row.parent_id if row else None,
                    "status": v.status,
                    "deadline_at": v.deadline_at,
                    "answer": v.answer,
                    "return_reason": row.return_reason if row else ticket.return_reason,
                    "end_reason": row.end_reason if row else None,
                    "moves": v.moves,
                }
            )
            walk(v.children)

    walk(await c.handling.tree(request[ACTOR], ticket))
    return PartList.model_validate(
        {"ticket": ticket.code, "version": ticket.version, "items": items}
    )


def _json(model: BaseModel) -> web.Response:
    return web.Response(text=model.model_dump_json(), content_type="application/json")


def _part_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _answer(request: web.Request, ticket: Ticket) -> web.Response:
    return _json(await _parts(request, ticket.code))


@require(*ALL)
async def ticket_parts(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    return await _answer(request, ticket)


async def _delegate(request: web.Request, part_id: int | None) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(DelegateIn, await read_json(request))
    deadline = body.deadline_at
    if deadline is not None and deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=ctx(request).settings.tz)
    await ctx(request).handling.delegate(
        request[ACTOR],
        ticket.id,
        body.version,
        body.agency_id,
        deadline,
        body.note,
        part_id=part_id,
    )
    return await _answer(request, ticket)


@require("agency")
async def delegate_lead(request: web.Request) -> web.StreamResponse:
    return await _delegate(request, None)


@require("agency")
async def delegate_part(request: web.Request) -> web.StreamResponse:
    return await _delegate(request, _part_id(request))


@require("agency")
async def accept_part(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(PartAcceptIn, await read_json(request))
    await ctx(request).handling.accept(request[ACTOR], ticket.id, body.version, _part_id(request))
    return await _answer(request, ticket)


@require("agency")
async def answer_part(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(PartAnswerIn, await read_json(request))
    await ctx(request).handling.answer(
        request[ACTOR], ticket.id, body.version, _part_id(request), body.result
    )
    return await _answer(request, ticket)


@require("agency")
async def send_back_part(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(PartSendBackIn, await read_json(request))
    await ctx(request).handling.send_back(
        request[ACTOR], ticket.id, body.version, _part_id(request), body.reason
    )
    return await _answer(request, ticket)


@require("agency")
async def adopt_part(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(AdoptIn, await read_json(request))
    await ctx(request).handling.adopt(
        request[ACTOR], ticket.id, body.version, _part_id(request), body.result
    )
    return await _answer(request, ticket)


@require("agency")
async def withdraw_part(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(WithdrawIn, await read_json(request))
    await ctx(request).handling.withdraw(
        request[ACTOR], ticket.id, body.version, _part_id(request), body.note
    )
    return await _answer(request, ticket)


@require("agency", "supervisor", "admin")
async def move_part_deadline(request: web.Request) -> web.StreamResponse:
    """Whoever gave the part moves its deadline: the delegating agency a delegation's,
    the supervisors a co-handling agency's."""
    ticket = await visible_ticket(request)
    body = validate(PartDeadlineIn, await read_json(request))
    deadline = body.deadline_at
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=ctx(request).settings.tz)
    await ctx(request).handling.move_deadline(
        request[ACTOR], ticket.id, body.version, _part_id(request), deadline, body.reason
    )
    return await _answer(request, ticket)

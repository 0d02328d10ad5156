"""The JSON API under ``/api/v1``: every panel action, for scripts and other front ends.

``OPERATIONS`` at the end declares each operation once (method, path, handler, body and answer
models); both the routes and the OpenAPI document (``/api/openapi.json``, built by
:mod:`panel.openapi`) are made from it, so they cannot drift apart.

Authentication is the panel's: a bearer token from ``POST /api/v1/session``, or the session
cookie with the ``X-CSRF-Token`` header on unsafe methods (checked by the auth middleware).
Each handler declares its roles with ``@require``, as the HTML views do; the services enforce
the finer rules (which agency, which status, whose ticket) and their errors become JSON answers
in ``errors_middleware``.  Handlers call the same services, and reuse the HTML views' helpers
(``_filter``, ``_ticket``, ``_pause``), so a rule has one home.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from accounts.exceptions import AccountInvalid, AccountLocked, SignInFailed
from accounts.models import Role, User
from callcenter.presence import PAUSE_REASONS
from panel.keys import ACTOR, BEARER, GETTEXT, SESSION, USER
from panel.openapi import Operation, Param, build_document, docs_page
from panel.security import PUBLIC, json_error, require
from panel.sessions import COOKIE
from panel.views.agent import _pause, agent_snapshot
from panel.views.common import ctx
from panel.views.tickets import _filter, _ticket
from tickets.agencies import AgencyNode
from tickets.exceptions import INVALID, REQUIRED, FieldError, InvalidInput
from tickets.models import Agency, AgencyKind, Channel, Domain, Status, Ticket, TicketEvent
from tickets.schemas import AgencyIn, TicketCreate, TicketUpdate, validate
from tickets.service import MAX_PER_PAGE, event_details

PREFIX = "/api/v1"
ALL = ("agent", "supervisor", "admin", "agency")
STAFF = ("agent", "supervisor", "admin")
LEADS = ("supervisor", "admin")
DEFAULT_PER_PAGE = 50


# -- request bodies -------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown keys are refused, not dropped: a typo must not look as if it had worked.
    model_config = ConfigDict(extra="forbid")


Version = Annotated[
    int,
    Field(strict=True, ge=1, description="The version last read; 409 if it changed since."),
]
Id = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
Note = Annotated[str | None, Field(description="Free text, at most 5000 characters.")]


class SessionIn(_Body):
    username: Annotated[str, Field(max_length=64)]
    password: Annotated[str, Field(max_length=256)]


class PauseIn(_Body):
    reason: Annotated[str, Field(json_schema_extra={"enum": list(PAUSE_REASONS)})]


class TicketCreateIn(TicketCreate):
    """A new report; ``call_id`` links it to the live call (the agent's screen-pop)."""

    call_id: Id | None = None


class TicketPatchIn(TicketUpdate):
    """Only the fields given change; ``version`` is the one last read."""

    version: Version


class ForwardIn(_Body):
    version: Version
    agency_id: Id
    note: Note = None


class ApproveIn(_Body):
    version: Version
    agency_id: Annotated[
        Id | None, Field(description="Forward at once to this agency (else the pre-filled one).")
    ] = None
    note: Note = None


class AcceptIn(_Body):
    version: Version


class AnswerIn(_Body):
    version: Version
    result: Annotated[str, Field(description="The agency's result, told to the citizen.")]


class SendBackIn(_Body):
    version: Version
    reason: Annotated[str, Field(description="Why the agency returns the ticket.")]


class MeetingIn(_Body):
    version: Version
    meeting_at: Annotated[
        datetime,
        Field(description="ISO 8601; without an offset it is local time (settings timezone)."),
    ]
    meeting_place: Annotated[str, Field(description="At most 300 characters.")]


class CloseIn(_Body):
    version: Version
    note: Note = None
    letter: Annotated[
        str | None, Field(description="The thank-you letter (level 5 proposals only).")
    ] = None


class CommentIn(_Body):
    note: Annotated[str, Field(description="At most 5000 characters.")]


class AgencyPatchIn(_Body):
    """Only the fields given change; ``active`` false deactivates, true reactivates."""

    version: Version
    parent_id: Id | None = None
    kind: AgencyKind | None = None
    code: str | None = None
    name: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    active: bool | None = None


RoleName = Annotated[str, Field(json_schema_extra={"enum": [r.value for r in Role]})]
Language = Annotated[str, Field(json_schema_extra={"enum": ["vi", "en"]})]


class UserCreateIn(_Body):
    username: str
    display_name: str
    role: RoleName
    password: str
    extension: Annotated[str | None, Field(description="Required for an agent.")] = None
    agency_id: Annotated[Id | None, Field(description="Required for an agency officer.")] = None
    language: Language | None = None


class UserPatchIn(_Body):
    display_name: str | None = None
    role: RoleName | None = None
    extension: str | None = None
    agency_id: Id | None = None
    language: Language | None = None
    active: bool | None = None


class PasswordIn(_Body):
    password: str


# -- answers --------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UTCTime = Annotated[datetime, AfterValidator(_utc)]


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: RoleName
    extension: str | None
    agency_id: int | None
    language: str
    active: bool
    locked_until: UTCTime | None
    last_login_at: UTCTime | None
    created_at: UTCTime
    password_changed_at: UTCTime


class UserList(BaseModel):
    items: list[UserOut]


class SessionOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    csrf: str = Field(description="For the X-CSRF-Token header if the token rides in a cookie.")
    expires_in: int = Field(description="Seconds of inactivity before the session ends.")
    user: UserOut


class MeOut(BaseModel):
    user: UserOut
    csrf: str = Field(description="The session's CSRF token (X-CSRF-Token header).")


class AgentStateOut(BaseModel):
    extension: str | None
    state: dict[str, Any] | None = Field(description="Live state (free, talking, paused, ...).")
    pop: dict[str, Any] | None = Field(description="The screen-pop of the call now ringing.")


class PauseOut(BaseModel):
    paused: bool
    reason: str | None


class AgencyRef(BaseModel):
    id: int
    name: str


class TicketOut(BaseModel):
    id: int
    code: str
    status: Annotated[str, Field(json_schema_extra={"enum": [s.value for s in Status]})]
    level: int
    domain: Annotated[str, Field(json_schema_extra={"enum": [d.value for d in Domain]})]
    topic: str
    channel: Annotated[str, Field(json_schema_extra={"enum": [c.value for c in Channel]})]
    citizen_phone: str | None
    citizen_name: str | None
    citizen_address: str | None
    description: str
    guidance: str | None
    agency: AgencyRef | None
    approved_by: int | None
    forwarded_at: UTCTime | None
    deadline_at: UTCTime | None
    overdue: bool = Field(description="The deadline has passed and the ticket is still open.")
    escalated_at: UTCTime | None
    escalations: int
    result: str | None
    return_reason: str | None
    meeting_at: UTCTime | None
    meeting_place: str | None
    letter: str | None
    closing_note: str | None
    created_by: int | None
    created_at: UTCTime
    updated_at: UTCTime
    closed_at: UTCTime | None
    version: int
    call_id: int | None


# Columns copied as they are (the rest is computed).
_TICKET_COLUMNS = tuple(n for n in TicketOut.model_fields if n not in ("agency", "overdue"))


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    page: int
    per_page: int


class TicketList(BaseModel):
    items: list[TicketOut]


class EventOut(BaseModel):
    id: int
    at: UTCTime
    actor_id: int | None
    actor_name: str
    action: str
    from_status: str | None
    to_status: str | None
    details: dict[str, Any]


class History(BaseModel):
    items: list[EventOut]


class AgencyOut(BaseModel):
    id: int
    parent_id: int | None
    kind: Annotated[str, Field(json_schema_extra={"enum": [k.value for k in AgencyKind]})]
    code: str
    name: str
    contact_name: str | None
    phone: str | None
    email: str | None
    address: str | None
    active: bool
    created_at: UTCTime
    updated_at: UTCTime
    version: int


class AgencyTreeNode(AgencyOut):
    children: list[AgencyTreeNode] = Field(
        default_factory=list, description="Sub-agencies (always empty with flat=1)."
    )


class AgencyList(BaseModel):
    items: list[AgencyTreeNode]


def _json(model: BaseModel, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers=headers or None,
    )


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut.model_validate(agency, from_attributes=True)


def _tree_out(node: AgencyNode) -> AgencyTreeNode:
    fields = agency_out(node.agency).model_dump()
    return AgencyTreeNode(**fields, children=[_tree_out(c) for c in node.children])


def ticket_out(ticket: Ticket, agency_names: dict[int, str], now: datetime) -> TicketOut:
    data: dict[str, Any] = {name: getattr(ticket, name) for name in _TICKET_COLUMNS}
    agency_id = ticket.agency_id
    data["agency"] = (
        {"id": agency_id, "name": agency_names.get(agency_id, "")} if agency_id else None
    )
    # As the ticket page shows it: any open ticket past its deadline.
    data["overdue"] = bool(
        ticket.deadline_at and ticket.status != Status.CLOSED and ticket.deadline_at < now
    )
    return TicketOut.model_validate(data)


def event_out(event: TicketEvent) -> EventOut:
    return EventOut(
        id=event.id,
        at=event.at,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=event.action,
        from_status=event.from_status,
        to_status=event.to_status,
        details=event_details(event),
    )


async def _agency_names(request: web.Request) -> dict[int, str]:
    return {a.id: a.name for a in await ctx(request).agencies.list(include_inactive=True)}


async def _one_ticket(request: web.Request, ticket: Ticket) -> TicketOut:
    c = ctx(request)
    names: dict[int, str] = {}
    if ticket.agency_id is not None:
        names[ticket.agency_id] = (await c.agencies.get(ticket.agency_id)).name
    return ticket_out(ticket, names, c.clock.now())


# -- reading bodies -------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


async def read_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object: 400 if it is not one, 415 if not sent as JSON, 413 if too big.

    With ``optional`` an empty body reads as ``{}``.
    """
    if not request.body_exists:
        if optional:
            return {}
        raise json_error(400, "the body must be a JSON object")
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise web.HTTPUnsupportedMediaType(
            text=json.dumps({"error": "send the body as JSON (Content-Type: application/json)"}),
            content_type="application/json",
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        raise web.HTTPRequestEntityTooLarge(
            limit,
            text=json.dumps({"error": "the body is too large", "max_bytes": limit}),
            content_type="application/json",
        ) from None
    if not raw.strip() and optional:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise json_error(400, "the body is not UTF-8 text") from None
    except RecursionError:
        raise json_error(400, "the body is nested too deeply") from None
    except ValueError as e:
        raise json_error(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise json_error(400, "the body must be a JSON object")
    return data


def _pop_version(data: dict[str, Any]) -> int:
    version = data.pop("version", None)
    if version is None:
        raise InvalidInput.one("version", REQUIRED)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput.one("version", INVALID)
    return version


def _page_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        _ = request[GETTEXT]
        raise json_error(
            422,
            "invalid input",
            fields={name: _("must be a whole number from {min} to {max}", min=1, max=maximum)},
        )
    return int(raw)


# -- session ----------------------------------------------------------------------------


@require(PUBLIC)
async def create_session(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    body = validate(SessionIn, await read_json(request))
    try:
        user = await c.accounts.authenticate(body.username, body.password)
    except AccountLocked as e:
        seconds = max(1, math.ceil((e.until - c.clock.now()).total_seconds()))
        minutes = max(1, int((e.until - c.clock.now()).total_seconds() // 60) + 1)
        exc = json_error(
            429,
            _("Too many failed sign-ins. Try again in {minutes} minutes.", minutes=minutes),
            locked_until=_utc(e.until).isoformat().replace("+00:00", "Z"),
        )
        exc.headers["Retry-After"] = str(seconds)
        raise exc from None
    except SignInFailed:
        raise json_error(401, _("Wrong user name or password.")) from None
    session = await c.sessions.create(user.id, user.language)
    return _json(
        SessionOut(
            token=session.token,
            csrf=session.csrf,
            expires_in=c.sessions.ttl,
            user=user_out(user),
        )
    )


@require(*ALL)
async def delete_session(request: web.Request) -> web.StreamResponse:
    await ctx(request).sessions.delete(request[SESSION].token)
    response = web.Response(status=204)
    if not request[BEARER]:
        response.del_cookie(COOKIE, path="/")
    return response


@require(*ALL)
async def me(request: web.Request) -> web.StreamResponse:
    return _json(MeOut(user=user_out(request[USER]), csrf=request[SESSION].csrf))


# -- the agent's own state --------------------------------------------------------------


@require("agent")
async def agent_state(request: web.Request) -> web.StreamResponse:
    state, pop = await agent_snapshot(request)
    return _json(AgentStateOut(extension=request[ACTOR].extension, state=state, pop=pop))


async def _pause_or_resume(request: web.Request, reason: str | None) -> web.StreamResponse:
    problem = await _pause(request, reason)
    if problem is None:
        return _json(PauseOut(paused=reason is not None, reason=reason))
    if problem.status == 422:
        raise json_error(422, "invalid input", fields={"reason": problem.message})
    raise json_error(problem.status, problem.message)


@require("agent")
async def agent_pause(request: web.Request) -> web.StreamResponse:
    body = validate(PauseIn, await read_json(request))
    return await _pause_or_resume(request, body.reason)


@require("agent")
async def agent_resume(request: web.Request) -> web.StreamResponse:
    await read_json(request, optional=True)
    return await _pause_or_resume(request, None)


# -- tickets ------------------------------------------------------------------------------


@require(*STAFF)
async def list_tickets(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    f, _shown = _filter(request)
    call_id = request.query.get("call_id", "")
    if call_id.isascii() and call_id.isdigit():
        f.call_id = int(call_id)
    page = _page_param(request, "page", 1, 10**6)
    per_page = _page_param(request, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    rows, total = await c.tickets.search(f, page=page, per_page=per_page)
    names = await _agency_names(request) if rows else {}
    now = c.clock.now()
    return _json(
        TicketPage(
            items=[ticket_out(t, names, now) for t in rows],
            total=total,
            page=page,
            per_page=per_page,
        )
    )


@require(*STAFF)
async def create_ticket(request: web.Request) -> web.StreamResponse:
    data = await read_json(request)
    call_id = data.pop("call_id", None)
    if call_id is not None and (
        isinstance(call_id, bool) or not isinstance(call_id, int) or call_id < 1
    ):
        raise InvalidInput.one("call_id", INVALID)
    ticket = await ctx(request).tickets.create(request[ACTOR], data, call_id=call_id)
    return _json(
        await _one_ticket(request, ticket), 201, Location=f"{PREFIX}/tickets/{ticket.code}"
    )


@require(*ALL)
async def get_ticket(request: web.Request) -> web.StreamResponse:
    return _json(await _one_ticket(request, await _ticket(request)))


@require(*STAFF)
async def update_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    data = await read_json(request)
    version = _pop_version(data)
    ticket = await ctx(request).tickets.update(request[ACTOR], ticket.id, version, data)
    return _json(await _one_ticket(request, ticket))


@require(*ALL)
async def ticket_history(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    events = await ctx(request).tickets.history(ticket.id)
    return _json(History(items=[event_out(e) for e in events]))


@require(*LEADS)
async def forward_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(ForwardIn, await read_json(request))
    ticket = await ctx(request).tickets.forward(
        request[ACTOR], ticket.id, body.version, body.agency_id, body.note
    )
    return _json(await _one_ticket(request, ticket))


@require(*LEADS)
async def approve_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(ApproveIn, await read_json(request))
    ticket = await ctx(request).tickets.approve(
        request[ACTOR], ticket.id, body.version, body.agency_id, body.note
    )
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def accept_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(AcceptIn, await read_json(request))
    ticket = await ctx(request).tickets.accept(request[ACTOR], ticket.id, body.version)
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def answer_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(AnswerIn, await read_json(request))
    ticket = await ctx(request).tickets.answer(request[ACTOR], ticket.id, body.version, body.result)
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def send_back_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(SendBackIn, await read_json(request))
    ticket = await ctx(request).tickets.send_back(
        request[ACTOR], ticket.id, body.version, body.reason
    )
    return _json(await _one_ticket(request, ticket))


# The service names the meeting's arguments ``at`` and ``place``; the API's fields are
# named as the ticket's columns.
_MEETING_FIELDS = {"at": "meeting_at", "place": "meeting_place"}


@require(*LEADS)
async def schedule_meeting(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(MeetingIn, await read_json(request))
    at = body.meeting_at
    if at.tzinfo is None:
        at = at.replace(tzinfo=ctx(request).settings.tz)
    try:
        ticket = await ctx(request).tickets.schedule_meeting(
            request[ACTOR], ticket.id, body.version, at, body.meeting_place
        )
    except InvalidInput as e:
        raise InvalidInput(
            [
                FieldError(_MEETING_FIELDS.get(err.field, err.field), err.message, err.params)
                for err in e.errors
            ]
        ) from None
    return _json(await _one_ticket(request, ticket))


@require(*STAFF)
async def close_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(CloseIn, await read_json(request))
    ticket = await ctx(request).tickets.close(
        request[ACTOR], ticket.id, body.version, body.note, body.letter
    )
    return _json(await _one_ticket(request, ticket))


@require(*ALL)
async def comment_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await _ticket(request)
    body = validate(CommentIn, await read_json(request))
    event = await ctx(request).tickets.comment(request[ACTOR], ticket.id, body.note)
    return _json(event_out(event), 201)


@require("agency")
async def inbox(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    closed = request.query.get("closed") == "1"
    rows = await c.tickets.inbox(request[ACTOR], include_closed=closed)
    names = await _agency_names(request) if rows else {}
    now = c.clock.now()
    return _json(TicketList(items=[ticket_out(t, names, now) for t in rows]))


# -- agencies ---------------------------------------------------------------------------


@require(*STAFF)
async def list_agencies(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    inactive = request.query.get("include_inactive") == "1"
    if request.query.get("flat") == "1":
        flat = await c.agencies.list(include_inactive=inactive)
        items = [AgencyTreeNode(**agency_out(a).model_dump()) for a in flat]
    else:
        items = [_tree_out(n) for n in await c.agencies.tree(include_inactive=inactive)]
    return _json(AgencyList(items=items))


@require("admin")
async def create_agency(request: web.Request) -> web.StreamResponse:
    agency = await ctx(request).agencies.create(request[ACTOR], await read_json(request))
    return _json(agency_out(agency), 201, Location=f"{PREFIX}/agencies/{agency.id}")


@require(*STAFF)
async def get_agency(request: web.Request) -> web.StreamResponse:
    return _json(agency_out(await ctx(request).agencies.get(int(request.match_info["id"]))))


@require("admin")
async def update_agency(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    actor = request[ACTOR]
    agency_id = int(request.match_info["id"])
    body = validate(AgencyPatchIn, await read_json(request))
    fields = body.model_dump(exclude_unset=True, exclude={"version", "active"})
    agency = await c.agencies.update(actor, agency_id, body.version, fields)
    if body.active is not None and body.active != agency.active:
        switch = c.agencies.reactivate if body.active else c.agencies.deactivate
        agency = await switch(actor, agency_id, agency.version)
    return _json(agency_out(agency))


# -- accounts ---------------------------------------------------------------------------


@require("admin")
async def list_users(request: web.Request) -> web.StreamResponse:
    users = await ctx(request).accounts.list_users()
    return _json(UserList(items=[user_out(u) for u in users]))


@require("admin")
async def create_user(request: web.Request) -> web.StreamResponse:
    body = validate(UserCreateIn, await read_json(request))
    user = await ctx(request).accounts.create_user(
        request[ACTOR], body.model_dump(exclude_none=True)
    )
    return _json(user_out(user), 201, Location=f"{PREFIX}/users/{user.id}")


@require("admin")
async def update_user(request: web.Request) -> web.StreamResponse:
    actor = request[ACTOR]
    user_id = int(request.match_info["id"])
    body = validate(UserPatchIn, await read_json(request))
    fields = body.model_dump(exclude_unset=True)
    # As on the users page: an admin cannot lock themself out of administration.
    if user_id == actor.id:
        if fields.get("active") is False:
            raise AccountInvalid({"active": ("you cannot remove your own admin access", {})})
        if "role" in fields and fields["role"] != "admin":
            raise AccountInvalid({"role": ("you cannot remove your own admin access", {})})
    user = await ctx(request).accounts.update_user(actor, user_id, fields)
    return _json(user_out(user))


@require("admin")
async def set_user_password(request: web.Request) -> web.StreamResponse:
    body = validate(PasswordIn, await read_json(request))
    await ctx(request).accounts.set_password(
        request[ACTOR], int(request.match_info["id"]), body.password
    )
    return web.Response(status=204)


@require("admin")
async def unlock_user(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    user_id = int(request.match_info["id"])
    await read_json(request, optional=True)
    await c.accounts.get(user_id)  # 404 for an unknown id
    await c.accounts.unlock(request[ACTOR], user_id)
    return _json(user_out(await c.accounts.get(user_id)))


# -- the operations, declared once ------------------------------------------------------

_P = PREFIX
_INT = {"type": "integer", "minimum": 1}
_FLAG = {"type": "string", "enum": ["1"]}
TICKET_QUERY = (
    Param(
        "status",
        {"type": "array", "items": {"type": "string", "enum": [s.value for s in Status]}},
        "Repeat for several statuses.",
    ),
    Param("level", {"type": "integer", "minimum": 1, "maximum": 5}),
    Param("domain", {"type": "string", "enum": [d.value for d in Domain]}),
    Param("topic", {"type": "string", "maxLength": 32}),
    Param("agency_id", _INT),
    Param("created_by", _INT, "The creating user's id."),
    Param("call_id", _INT, "Tickets created from this call."),
    Param("overdue", _FLAG, "Only tickets past their deadline."),
    Param("created_from", {"type": "string", "format": "date"}, "Local day, included."),
    Param("created_to", {"type": "string", "format": "date"}, "Local day, included."),
    Param(
        "q",
        {"type": "string", "maxLength": 200},
        "Text in code, phone, name, address or description.",
    ),
    Param("page", {"type": "integer", "minimum": 1, "default": 1}),
    Param(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
    ),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        path=f"{_P}/session",
        handler=create_session,
        summary="Sign in",
        answer="A bearer token and the user.",
        tag="session",
        body=SessionIn,
        returns=SessionOut,
        errors=(401, 429),
    ),
    Operation(
        method="DELETE",
        path=f"{_P}/session",
        handler=delete_session,
        summary="Sign out (end this session)",
        answer="Signed out.",
        tag="session",
        status=204,
    ),
    Operation(
        method="GET",
        path=f"{_P}/me",
        handler=me,
        summary="Who is signed in",
        answer="The user.",
        tag="session",
        returns=MeOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/agent/state",
        handler=agent_state,
        summary="The agent's live state and screen-pop",
        answer="State and pop (null when none).",
        tag="agent",
        returns=AgentStateOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/agent/pause",
        handler=agent_pause,
        summary="Pause taking calls",
        answer="Paused.",
        tag="agent",
        body=PauseIn,
        returns=PauseOut,
        errors=(409, 503),
    ),
    Operation(
        method="POST",
        path=f"{_P}/agent/resume",
        handler=agent_resume,
        summary="Resume taking calls",
        answer="Resumed.",
        tag="agent",
        returns=PauseOut,
        errors=(400, 409, 503),
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets",
        handler=list_tickets,
        summary="Search tickets",
        answer="One page, newest first.",
        tag="tickets",
        returns=TicketPage,
        query=TICKET_QUERY,
        errors=(422,),
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets",
        handler=create_ticket,
        summary="Create a ticket",
        answer="The new ticket.",
        tag="tickets",
        status=201,
        body=TicketCreateIn,
        returns=TicketOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}",
        handler=get_ticket,
        summary="One ticket",
        answer="The ticket.",
        tag="tickets",
        returns=TicketOut,
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/tickets/{{code}}",
        handler=update_ticket,
        summary="Correct a ticket",
        answer="The ticket as changed.",
        tag="tickets",
        body=TicketPatchIn,
        returns=TicketOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/tickets/{{code}}/history",
        handler=ticket_history,
        summary="A ticket's history",
        answer="The events, oldest first.",
        tag="tickets",
        returns=History,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/forward",
        handler=forward_ticket,
        summary="Forward to an agency",
        answer="The ticket, forwarded.",
        tag="tickets",
        body=ForwardIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/approve",
        handler=approve_ticket,
        summary="Approve a level-3 ticket (and forward it)",
        answer="The ticket, approved.",
        tag="tickets",
        body=ApproveIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/accept",
        handler=accept_ticket,
        summary="Accept (the agency)",
        answer="The ticket, accepted.",
        tag="tickets",
        body=AcceptIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/answer",
        handler=answer_ticket,
        summary="Report the result (the agency)",
        answer="The ticket, answered.",
        tag="tickets",
        body=AnswerIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/send_back",
        handler=send_back_ticket,
        summary="Send back with a reason (the agency)",
        answer="The ticket, returned.",
        tag="tickets",
        body=SendBackIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/schedule_meeting",
        handler=schedule_meeting,
        summary="Set the date and place of a level-4 meeting",
        answer="The ticket, scheduled.",
        tag="tickets",
        body=MeetingIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/close",
        handler=close_ticket,
        summary="Close a ticket",
        answer="The ticket, closed.",
        tag="tickets",
        body=CloseIn,
        returns=TicketOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/tickets/{{code}}/comment",
        handler=comment_ticket,
        summary="Add a note to the history",
        answer="The history event.",
        tag="tickets",
        status=201,
        body=CommentIn,
        returns=EventOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/inbox",
        handler=inbox,
        summary="The agency's tickets",
        answer="Most urgent deadline first.",
        tag="tickets",
        returns=TicketList,
        query=(Param("closed", _FLAG, "Include closed ones."),),
    ),
    Operation(
        method="GET",
        path=f"{_P}/agencies",
        handler=list_agencies,
        summary="The agency directory",
        answer="A tree (or a flat list with flat=1).",
        tag="agencies",
        returns=AgencyList,
        query=(
            Param("flat", _FLAG, "A flat list, by kind then name."),
            Param("include_inactive", _FLAG, "Include deactivated agencies."),
        ),
    ),
    Operation(
        method="POST",
        path=f"{_P}/agencies",
        handler=create_agency,
        summary="Add an agency",
        answer="The new agency.",
        tag="agencies",
        status=201,
        body=AgencyIn,
        returns=AgencyOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/agencies/{{id}}",
        handler=get_agency,
        summary="One agency",
        answer="The agency.",
        tag="agencies",
        returns=AgencyOut,
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/agencies/{{id}}",
        handler=update_agency,
        summary="Change or (de)activate an agency",
        answer="The agency as changed.",
        tag="agencies",
        body=AgencyPatchIn,
        returns=AgencyOut,
    ),
    Operation(
        method="GET",
        path=f"{_P}/users",
        handler=list_users,
        summary="All accounts",
        answer="The accounts.",
        tag="users",
        returns=UserList,
    ),
    Operation(
        method="POST",
        path=f"{_P}/users",
        handler=create_user,
        summary="Create an account",
        answer="The new account.",
        tag="users",
        status=201,
        body=UserCreateIn,
        returns=UserOut,
    ),
    Operation(
        method="PATCH",
        path=f"{_P}/users/{{id}}",
        handler=update_user,
        summary="Change an account",
        answer="The account as changed.",
        tag="users",
        body=UserPatchIn,
        returns=UserOut,
    ),
    Operation(
        method="POST",
        path=f"{_P}/users/{{id}}/password",
        handler=set_user_password,
        summary="Set an account's password",
        answer="Password set.",
        tag="users",
        status=204,
        body=PasswordIn,
    ),
    Operation(
        method="POST",
        path=f"{_P}/users/{{id}}/unlock",
        handler=unlock_user,
        summary="Unlock after failed sign-ins",
        answer="The account.",
        tag="users",
        returns=UserOut,
        errors=(400,),
    ),
)


# -- the document -----------------------------------------------------------------------


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once: it depends only on the code)."""
    return build_document(
        OPERATIONS,
        title="Hotline panel API",
        version="1",
        description="Every action of the hotline's web panel, as JSON. Sign in with "
        "POST /api/v1/session and send the token as `Authorization: Bearer <token>`.",
    )


@require(PUBLIC)
async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(document())


@require(PUBLIC)
async def openapi_docs(request: web.Request) -> web.StreamResponse:
    return web.Response(text=docs_page(document()), content_type="text/html")


def routes() -> list[web.RouteDef]:
    return [
        *(web.route(op.method, op.route_path, op.handler) for op in OPERATIONS),
        web.get("/api/openapi.json", openapi_json),
        web.get("/api/docs", openapi_docs),
    ]

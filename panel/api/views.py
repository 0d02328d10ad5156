"""The JSON API's handlers: every panel action, for scripts and other front ends.

Authentication is the panel's: a bearer token from ``POST /api/v1/session``, or the session
cookie with the ``X-CSRF-Token`` header on unsafe methods (checked by the auth middleware).
Each handler declares its roles with ``@require``, as the HTML views do; the services enforce
the finer rules (which agency, which status, whose ticket) and their errors become JSON answers
in ``errors_middleware``.  Handlers read their bodies with :func:`read_json` and the models of
:mod:`panel.api.schemas`, call the same services as the HTML views, and share those views'
helpers (``ticket_filter``, ``visible_ticket``, ``pause_or_resume``), so a rule has one home.
The routes are made in :mod:`panel.api.operations`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from accounts.exceptions import (
    AccountDisabled,
    AccountInvalid,
    AccountLocked,
    AddressBlocked,
    CodeRejected,
    SecondFactorRequired,
    SignInFailed,
)
from callcenter.blocklist import state_of
from callcenter.models import BlockedNumber, CallTransfer, SpyMode
from panel.api.schemas import (
    AcceptIn,
    AgencyList,
    AgencyPatchIn,
    AgencyTreeNode,
    AgentStateOut,
    AnswerIn,
    ApproveIn,
    BlockCandidateList,
    BlockCandidateOut,
    BlockIn,
    BlockList,
    BlockOut,
    CallIn,
    CallOut,
    CloseIn,
    CommentIn,
    ForwardIn,
    History,
    MeetingIn,
    MeOut,
    PasswordIn,
    PauseIn,
    PauseOut,
    ReopenIn,
    SendBackIn,
    SessionIn,
    SessionOut,
    SuperviseIn,
    SupervisionOut,
    TicketList,
    TicketOut,
    TicketPage,
    TransferIn,
    TransferList,
    TransferOut,
    TransferTargetList,
    TransferTargetOut,
    UserCreateIn,
    UserList,
    UserPatchIn,
    WrapupIn,
    WrapupOut,
    agency_out,
    as_utc,
    co_deadlines_of,
    event_out,
    ticket_out,
    tree_out,
    user_out,
)
from panel.keys import ACTOR, BEARER, GETTEXT, SESSION, USER
from panel.security import PUBLIC, client_address, json_error, require
from panel.sessions import COOKIE
from panel.views.agent import WrapupProblem, agent_snapshot, pause_or_resume, set_wrapup
from panel.views.blocklist import BlockProblem, add_block, lift_block
from panel.views.calls import CALLERS, CallProblem, call_citizen
from panel.views.common import ctx, history_for, shown_tickets, ticket_filter, visible_ticket
from panel.views.supervision import SuperviseProblem, start_supervision
from panel.views.transfers import (
    TransferProblem,
    end_consultation,
    transfer_call,
    transfer_targets,
)
from tickets.confidential import seen_by
from tickets.exceptions import INVALID, REQUIRED, FieldError, InvalidInput
from tickets.models import Ticket
from tickets.queries import MAX_PER_PAGE
from tickets.schemas import validate

PREFIX = "/api/v1"
ALL = ("agent", "supervisor", "admin", "agency")
# who reads tickets: the oversight role too, which never writes (tickets.confidential)
READERS = (*ALL, "oversight")
STAFF = ("agent", "supervisor", "admin")
LEADS = ("supervisor", "admin")
DEFAULT_PER_PAGE = 50


def _json(model: BaseModel, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers=headers or None,
    )


async def _agency_names(request: web.Request) -> dict[int, str]:
    return {a.id: a.name for a in await ctx(request).agencies.list(include_inactive=True)}


async def _one_ticket(request: web.Request, ticket: Ticket) -> TicketOut:
    c = ctx(request)
    names: dict[int, str] = {}
    if ticket.agency_id is not None:
        names[ticket.agency_id] = (await c.agencies.get(ticket.agency_id)).name
    # as the actor may read it (a write's answer too): an agency without the citizen's
    # consent reads a pseudonym
    return ticket_out(seen_by(request[ACTOR], ticket), names, c.clock.now())


# -- reading bodies -------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


async def read_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object: 400 if it is not one, 415 if not sent as JSON, 413 if too big.

    With ``optional`` an empty body reads as ``{}``.  Parsed once per request (the
    contract checks it before the handler reads it); each caller gets its own copy.
    """
    parsed = request.get(PARSED_BODY)
    if parsed is not None:
        return dict(parsed)
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
    request[PARSED_BODY] = data
    return dict(data)


# the request's body as read_json parsed it
PARSED_BODY = web.RequestKey("parsed_body", dict)

# the last page a list answers
MAX_PAGE = 10**6


def whole_number(value: Any) -> int | None:
    """A JSON number with no fraction as an int (3 and 3.0 alike, as JSON Schema's
    "integer"); None for anything else (true, "3", 3.5)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _pop_version(data: dict[str, Any]) -> int:
    version = data.pop("version", None)
    if version is None:
        raise InvalidInput.one("version", REQUIRED)
    number = whole_number(version)
    if number is None or number < 1:
        raise InvalidInput.one("version", INVALID)
    return number


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
    address = client_address(request, c.settings.panel.trusted_proxies)
    try:
        user = await c.accounts.authenticate(body.username, body.password, address, body.otp)
    except SecondFactorRequired:
        raise json_error(
            401,
            _("Two-step sign-in is on for this account: send the app's code in “otp”."),
            field="otp",
        ) from None
    except CodeRejected:
        raise json_error(401, _("Wrong or already used code in “otp”."), field="otp") from None
    except AddressBlocked as e:
        seconds = max(1, math.ceil((e.until - c.clock.now()).total_seconds()))
        exc = json_error(
            429,
            _(
                "Too many failed sign-ins from this computer. Try again in {minutes} minutes.",
                minutes=max(1, math.ceil(seconds / 60)),
            ),
            blocked_until=as_utc(e.until).isoformat().replace("+00:00", "Z"),
        )
        exc.headers["Retry-After"] = str(seconds)
        raise exc from None
    except AccountLocked as e:
        seconds = max(1, math.ceil((e.until - c.clock.now()).total_seconds()))
        minutes = max(1, math.ceil(seconds / 60))
        exc = json_error(
            429,
            _("Too many failed sign-ins. Try again in {minutes} minutes.", minutes=minutes),
            locked_until=as_utc(e.until).isoformat().replace("+00:00", "Z"),
        )
        exc.headers["Retry-After"] = str(seconds)
        raise exc from None
    except SignInFailed:
        raise json_error(401, _("Wrong user name or password.")) from None
    except AccountDisabled:
        raise json_error(
            403, _("This account has been deactivated. Ask an administrator.")
        ) from None
    session = await c.sessions.create(user.id, user.language)
    return _json(
        SessionOut(
            token=session.token,
            csrf=session.csrf,
            expires_in=c.sessions.ttl,
            user=user_out(user),
        )
    )


@require(*READERS)
async def delete_session(request: web.Request) -> web.StreamResponse:
    await ctx(request).sessions.delete(request[SESSION].token)
    response = web.Response(status=204)
    if not request[BEARER]:
        response.del_cookie(COOKIE, path="/")
    return response


@require(*READERS)
async def me(request: web.Request) -> web.StreamResponse:
    return _json(MeOut(user=user_out(request[USER]), csrf=request[SESSION].csrf))


# -- the agent's own state --------------------------------------------------------------


@require("agent")
async def agent_state(request: web.Request) -> web.StreamResponse:
    state, pop = await agent_snapshot(request)
    return _json(AgentStateOut(extension=request[ACTOR].extension, state=state, pop=pop))


async def _pause_answer(request: web.Request, reason: str | None) -> web.StreamResponse:
    problem = await pause_or_resume(request, reason)
    if problem is None:
        return _json(PauseOut(paused=reason is not None, reason=reason))
    if problem.status == 422:
        raise json_error(422, "invalid input", fields={"reason": problem.message})
    raise json_error(problem.status, problem.message)


@require("agent")
async def agent_pause(request: web.Request) -> web.StreamResponse:
    body = validate(PauseIn, await read_json(request))
    return await _pause_answer(request, body.reason)


@require("agent")
async def agent_resume(request: web.Request) -> web.StreamResponse:
    await read_json(request, optional=True)
    return await _pause_answer(request, None)


# -- calls ----------------------------------------------------------------------------------


@require("agent", "supervisor", "admin")
async def set_call_wrapup(request: web.Request) -> web.StreamResponse:
    body = validate(WrapupIn, await read_json(request))
    done = await set_wrapup(request, int(request.match_info["id"]), body.wrapup_code)
    if isinstance(done, WrapupProblem):
        if done.status == 422:
            raise json_error(422, "invalid input", fields={"wrapup_code": done.message})
        raise json_error(done.status, done.message)
    code = ctx(request).settings.wrapup.code(done.wrapup_code or "")
    assert code is not None and done.wrapup_by is not None and done.wrapup_at is not None
    return _json(
        WrapupOut(
            call_id=done.id,
            wrapup_code=code.id,
            content=code.content,
            wrapup_by=done.wrapup_by,
            wrapup_at=done.wrapup_at,
        )
    )


# -- supervisors in agents' calls ----------------------------------------------------------


@require("supervisor", "admin")
async def supervise_agent(request: web.Request) -> web.StreamResponse:
    body = validate(SuperviseIn, await read_json(request))
    started = await start_supervision(request, request.match_info["extension"], SpyMode(body.mode))
    if isinstance(started, SuperviseProblem):
        raise json_error(started.status, started.message, reason=started.reason)
    return _json(
        SupervisionOut(
            id=started.id,
            mode=started.mode.value,
            agent_extension=started.agent_extension,
            supervisor_extension=started.supervisor_extension,
            call_uniqueid=started.call_uniqueid,
        ),
        status=202,
    )


# -- the blocked-numbers list ----------------------------------------------------------------


def _block_out(row: BlockedNumber, now: datetime, calls: int = 0) -> BlockOut:
    return BlockOut(
        id=row.id,
        number=row.number,
        state=state_of(row, now).value,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        removed_by=row.removed_by,
        removed_at=row.removed_at,
        calls=calls,
    )


def _block_problem(problem: BlockProblem) -> web.HTTPException:
    if problem.status == 422 and problem.field:
        return json_error(422, "invalid input", fields={problem.field: problem.message})
    if problem.field:
        return json_error(problem.status, problem.message, fields={problem.field: problem.message})
    return json_error(problem.status, problem.message)


@require(*LEADS)
async def list_blocks(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    now = c.clock.now()
    calls = await c.blocklist.blocked_calls()
    rows = await c.blocklist.history()
    return _json(BlockList(items=[_block_out(r, now, calls.get(r.id, 0)) for r in rows]))


@require(*LEADS)
async def block_candidates(request: web.Request) -> web.StreamResponse:
    found = await ctx(request).blocklist.candidates()
    items = [
        BlockCandidateOut(number=c.number, calls=c.calls, codes=list(c.codes), last_at=c.last_at)
        for c in found
    ]
    return _json(BlockCandidateList(items=items))


@require(*LEADS)
async def create_block(request: web.Request) -> web.StreamResponse:
    body = validate(BlockIn, await read_json(request))
    done = await add_block(request, body.number, body.reason, body.days)
    if isinstance(done, BlockProblem):
        raise _block_problem(done)
    return _json(_block_out(done, ctx(request).clock.now()), status=201)


@require(*LEADS)
async def lift_number_block(request: web.Request) -> web.StreamResponse:
    await read_json(request, optional=True)
    c = ctx(request)
    done = await lift_block(request, int(request.match_info["id"]))
    if isinstance(done, BlockProblem):
        raise _block_problem(done)
    calls = (await c.blocklist.blocked_calls()).get(done.id, 0)
    return _json(_block_out(done, c.clock.now(), calls))


# -- transfers of the live call ----------------------------------------------------------


def _transfer_out(row: CallTransfer) -> TransferOut:
    return TransferOut(
        id=row.id,
        call_id=row.call_id,
        kind=row.kind,
        target=f"{row.target_kind}:{row.target}",
        target_label=row.target_label,
        number=row.number,
        from_extension=row.from_extension,
        by=row.username,
        note=row.note,
        requested_at=row.requested_at,
        done_at=row.done_at,
        result=row.result,
    )


@require("agent", "supervisor", "admin")
async def list_transfer_targets(request: web.Request) -> web.StreamResponse:
    items = [
        TransferTargetOut(id=t.id, kind=t.kind, label=t.label, number=t.number)
        for t in await transfer_targets(request)
    ]
    return _json(TransferTargetList(items=items))


@require("agent", "supervisor", "admin")
async def transfer_live_call(request: web.Request) -> web.StreamResponse:
    body = validate(TransferIn, await read_json(request))
    done = await transfer_call(
        request,
        int(request.match_info["id"]),
        body.target,
        body.note,
        body.draft,
        attended=body.kind == "attended",
    )
    if isinstance(done, TransferProblem):
        if done.field:
            raise json_error(
                done.status, "invalid input", reason=done.reason, fields={done.field: done.message}
            )
        raise json_error(done.status, done.message, reason=done.reason)
    return _json(_transfer_out(done), status=201)


async def _end_consultation(request: web.Request, action: str) -> web.StreamResponse:
    await read_json(request, optional=True)
    done = await end_consultation(request, int(request.match_info["id"]), action)
    if isinstance(done, TransferProblem):
        raise json_error(done.status, done.message, reason=done.reason)
    return _json(_transfer_out(done))


@require("agent", "supervisor", "admin")
async def complete_transfer(request: web.Request) -> web.StreamResponse:
    return await _end_consultation(request, "complete")


@require("agent", "supervisor", "admin")
async def cancel_transfer(request: web.Request) -> web.StreamResponse:
    return await _end_consultation(request, "cancel")


@require("agent", "supervisor", "admin")
async def call_transfers(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    call = await c.calls.by_id(int(request.match_info["id"]))
    actor = request[ACTOR]
    rows = await c.transfers.chain(call.id) if call is not None and c.transfers else []
    # an agent sees the chain of the calls they had a part in
    if call is None or (
        actor.role == "agent"
        and call.agent_extension != actor.extension
        and all(r.from_extension != actor.extension for r in rows)
    ):
        raise json_error(404, "no such call")
    return _json(TransferList(items=[_transfer_out(r) for r in rows]))


# -- tickets ------------------------------------------------------------------------------


@require(*STAFF, "oversight")
async def list_tickets(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    f, _shown = ticket_filter(request)
    call_id = request.query.get("call_id", "")
    if call_id.isascii() and call_id.isdigit():
        f.call_id = int(call_id)
    page = _page_param(request, "page", 1, MAX_PAGE)
    per_page = _page_param(request, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    rows, total = await c.ticket_queries.search(
        f, actor=request[ACTOR], page=page, per_page=per_page
    )
    rows = await shown_tickets(request, rows)
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
    if call_id is not None:
        call_id = whole_number(call_id)
        if call_id is None or call_id < 1:
            raise InvalidInput.one("call_id", INVALID)
    ticket = await ctx(request).tickets.create(request[ACTOR], data, call_id=call_id)
    return _json(
        await _one_ticket(request, ticket), 201, Location=f"{PREFIX}/tickets/{ticket.code}"
    )


@require(*READERS)
async def get_ticket(request: web.Request) -> web.StreamResponse:
    return _json(await _one_ticket(request, await visible_ticket(request)))


@require(*CALLERS)
async def call_ticket_citizen(request: web.Request) -> web.StreamResponse:
    """Call the ticket's citizen from the caller's own phone (panel.views.calls)."""
    validate(CallIn, await read_json(request, optional=True))
    ticket = await visible_ticket(request)
    try:
        placed = await call_citizen(request, ticket)
    except CallProblem as p:
        if p.field is not None:
            raise json_error(
                p.status, p.message, detail=p.reason, fields={p.field: p.message}
            ) from None
        if p.status == 409:
            raise json_error(409, p.message, detail=p.reason) from None
        raise json_error(p.status, p.message) from None
    call = placed.call
    return _json(
        CallOut(
            id=call.id,
            uniqueid=call.uniqueid,
            ticket=ticket.code,
            number=call.caller_number or "",
            caller_id=call.hotline_number,
            extension=call.agent_extension or "",
            started_at=as_utc(call.started_at),
            repeated=placed.repeated,
        ),
        status=202,
    )


@require(*STAFF)
async def update_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    data = await read_json(request)
    version = _pop_version(data)
    ticket = await ctx(request).tickets.update(request[ACTOR], ticket.id, version, data)
    return _json(await _one_ticket(request, ticket))


@require(*READERS)
async def ticket_history(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    events = await history_for(request, ticket)
    return _json(History(items=[event_out(e) for e in events]))


@require(*LEADS)
async def forward_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(ForwardIn, await read_json(request))
    ticket = await ctx(request).tickets.forward(
        request[ACTOR],
        ticket.id,
        body.version,
        body.agency_id,
        body.note,
        co_agency_ids=body.co_agency_ids,
        co_deadlines=co_deadlines_of(body.co_deadlines, ctx(request).settings.tz),
    )
    return _json(await _one_ticket(request, ticket))


@require(*LEADS)
async def approve_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(ApproveIn, await read_json(request))
    ticket = await ctx(request).tickets.approve(
        request[ACTOR],
        ticket.id,
        body.version,
        body.agency_id,
        body.note,
        co_agency_ids=body.co_agency_ids,
        co_deadlines=co_deadlines_of(body.co_deadlines, ctx(request).settings.tz),
    )
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def accept_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(AcceptIn, await read_json(request))
    ticket = await ctx(request).tickets.accept(request[ACTOR], ticket.id, body.version)
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def answer_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(AnswerIn, await read_json(request))
    ticket = await ctx(request).tickets.answer(request[ACTOR], ticket.id, body.version, body.result)
    return _json(await _one_ticket(request, ticket))


@require("agency")
async def send_back_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
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
    ticket = await visible_ticket(request)
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
    ticket = await visible_ticket(request)
    body = validate(CloseIn, await read_json(request))
    ticket = await ctx(request).tickets.close(
        request[ACTOR], ticket.id, body.version, body.note, body.letter
    )
    return _json(await _one_ticket(request, ticket))


@require(*STAFF)
async def reopen_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(ReopenIn, await read_json(request))
    ticket = await ctx(request).tickets.reopen(request[ACTOR], ticket.id, body.version, body.reason)
    return _json(await _one_ticket(request, ticket))


@require(*ALL)
async def comment_ticket(request: web.Request) -> web.StreamResponse:
    ticket = await visible_ticket(request)
    body = validate(CommentIn, await read_json(request))
    event = await ctx(request).tickets.comment(request[ACTOR], ticket.id, body.note)
    return _json(event_out(event), 201)


@require("agency")
async def inbox(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    closed = request.query.get("closed") == "1"
    rows = await shown_tickets(
        request, await c.ticket_queries.inbox(request[ACTOR], include_closed=closed)
    )
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
        items = [tree_out(n) for n in await c.agencies.tree(include_inactive=inactive)]
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

"""The agent's workspace: own state, pause/resume, the live screen-pop over a WebSocket,
and "my tickets that need me" (answered or sent back by the agency, also told live)."""

from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

from aiohttp import WSMsgType, web

from callcenter.exceptions import CallNotFound, UnknownWrapupCode, WrapupRefused
from callcenter.models import Call
from callcenter.pause import PAUSE_REASONS, AgentNotInQueue
from callcenter.presence import POP_TTL
from inbox.service import inbox_topic
from panel.keys import ACTOR, GETTEXT, LANG
from panel.security import require
from panel.views.common import ctx, flash_redirect, form, render, shown_tickets, ticket_form_values
from panel.views.inbox import desk_teams
from panel.views.transfers import target_label, transfer_targets
from tickets.notify import user_topic
from tickets.numbers import format_number
from tickets.queries import TicketFilter
from tickets.workflow import NEEDS_CREATOR

log = logging.getLogger(__name__)


async def call_tickets(request: web.Request, call_id: int) -> list[dict[str, Any]]:
    """The tickets already made on one call, oldest first, as the pop names them."""
    rows, _total = await ctx(request).ticket_queries.search(
        TicketFilter(call_id=call_id), actor=request[ACTOR], page=1, per_page=20
    )
    return [
        {
            "code": t.code,
            "number": format_number(t.number),
            "status": t.status,
            "created_at": t.created_at.isoformat(),
        }
        for t in reversed(rows)
    ]


async def agent_snapshot(request: web.Request) -> tuple[dict | None, dict | None]:
    """The agent's state and pop as kept on the bus; the pop names the tickets made
    on its call so far (the pop itself is written by callcenter.presence, which
    knows nothing of tickets)."""
    ext = request[ACTOR].extension
    if not ext:
        return None, None
    kept = await ctx(request).bus.kept_many([f"state.{ext}", f"pop.{ext}"])
    pop = kept.get(f"pop.{ext}")
    if pop and isinstance(pop.get("call_id"), int):
        pop["call_tickets"] = await call_tickets(request, pop["call_id"])
        # the record is the truth: a code set from another tab or through the API
        call = await ctx(request).calls.by_id(pop["call_id"])
        pop["wrapup_code"] = call.wrapup_code if call else None
    return kept.get(f"state.{ext}"), pop


def wrapup_codes(request: web.Request) -> list[dict[str, Any]]:
    """The wrap-up codes in the reader's language, in the configured order."""
    lang = request.get(LANG, "vi")
    return [
        {"id": w.id, "label": w.label.get(lang), "content": w.content}
        for w in ctx(request).settings.wrapup.codes
    ]


class WrapupProblem(NamedTuple):
    """Why a wrap-up code was not set: the HTTP status it means, and the message."""

    status: int  # 404 no such call of yours, 409 not now, 422 unknown code
    message: str


async def set_wrapup(request: web.Request, call_id: int, code: str) -> Call | WrapupProblem:
    """Set the wrap-up code of call ``call_id`` for the signed-in user, and show it on
    every page of the agent whose pop is that call; the record, or the problem."""
    _ = request[GETTEXT]
    c = ctx(request)
    actor = request[ACTOR]
    supervisor = actor.role in ("supervisor", "admin")
    try:
        call = await c.wrapup.set_code(
            call_id,
            code,
            by=actor.name,
            extension=None if supervisor else actor.extension,
            supervisor=supervisor,
        )
    except UnknownWrapupCode:
        return WrapupProblem(422, _("Choose one of the wrap-up codes."))
    except CallNotFound:
        return WrapupProblem(404, _("No such call of yours."))
    except WrapupRefused as e:
        messages = {
            "not_answered": _("This call was not answered: it takes no wrap-up code."),
            "set_by_other": _("A supervisor has set this call's code: ask them to change it."),
            "too_late": _(
                "The time to set this call's code is over: ask a supervisor to change it."
            ),
        }
        return WrapupProblem(409, messages[e.reason])
    ext = call.agent_extension
    if ext:
        pop = await c.bus.kept(f"pop.{ext}")
        if pop and pop.get("call_id") == call.id and pop.get("wrapup_code") != call.wrapup_code:
            pop["wrapup_code"] = call.wrapup_code
            await c.bus.publish_kept(f"agent.{ext}", f"pop.{ext}", pop, POP_TTL)
    return call


async def tell_call_tickets(request: web.Request, call_id: int) -> None:
    """After a ticket is made on a call: every page of the agent names it in the pop."""
    ext = request[ACTOR].extension
    if request[ACTOR].role != "agent" or not ext:
        return
    tickets = await call_tickets(request, call_id)
    await ctx(request).bus.publish(
        f"agent.{ext}", {"type": "call_tickets", "call_id": call_id, "tickets": tickets}
    )


async def workspace_values(request: web.Request) -> dict[str, Any]:
    """What the workspace shows beside the ticket form: the live state and pop,
    the agent's latest tickets and those the agency has put back on their desk
    (answered, or sent back). The form's own error page shows the same."""
    state, pop = await agent_snapshot(request)
    c = ctx(request)
    mine, needing = [], []
    if request[ACTOR].id is not None:
        mine, _total = await c.ticket_queries.search(
            TicketFilter(created_by=request[ACTOR].id), actor=request[ACTOR], page=1, per_page=10
        )
        needing, _total = await c.ticket_queries.search(
            TicketFilter(created_by=request[ACTOR].id, status=NEEDS_CREATOR),
            actor=request[ACTOR],
            page=1,
            per_page=50,
        )
        mine = await shown_tickets(request, mine)
        needing = await shown_tickets(request, needing)
    return {
        "state": state,
        "pop": pop,
        "pop_json": json.dumps(pop, ensure_ascii=False) if pop else "",
        "reasons": PAUSE_REASONS,
        "wrapup_codes": wrapup_codes(request),
        "consulting": (
            await c.transfers.consulting(request[ACTOR].extension) if c.transfers else None
        ),
        "transfer_targets": [
            {"id": t.id, "kind": t.kind, "label": target_label(request, t)}
            for t in await transfer_targets(request)
        ],
        "mine": mine,
        "needing": needing,
    }


@require("agent")
async def workspace(request: web.Request) -> web.StreamResponse:
    return render(
        request,
        "agent.html",
        **await workspace_values(request),
        **await ticket_form_values(request),
        errors={},
        values={},
    )


class PauseProblem(NamedTuple):
    """Why a pause or resume did not happen: the HTTP status it means, and the message."""

    status: int  # 422 bad reason, 409 not possible now, 503 no telephone system
    message: str


async def pause_or_resume(request: web.Request, reason: str | None) -> PauseProblem | None:
    """Pause (reason given) or resume; the problem, or None."""
    _ = request[GETTEXT]
    c = ctx(request)
    ext = request[ACTOR].extension
    if c.control is None:
        return PauseProblem(
            503,
            _("Pausing is not available: the panel has no connection to the telephone system."),
        )
    if reason is not None and reason not in PAUSE_REASONS:
        return PauseProblem(422, _("Choose a reason for the pause."))
    if reason is None:
        state = await c.bus.kept(f"state.{ext}")
        if state and state.get("paused") and state.get("reason") not in PAUSE_REASONS:
            return PauseProblem(409, _("Your shift has ended: you cannot resume taking calls."))
        if ext and await c.wrapup.pending(ext) is not None:
            return PauseProblem(
                409, _("Choose the wrap-up code of your last call before taking the next one.")
            )
    try:
        if reason is None:
            await c.control.resume(ext)
        else:
            await c.control.pause(ext, reason)
    except AgentNotInQueue:
        return PauseProblem(409, _("You are not in a queue now (outside your shift?)."))
    except (ConnectionError, TimeoutError, OSError) as e:
        log.warning("pause/resume of %s failed: %s", ext, e)
        return PauseProblem(503, _("The telephone system did not answer. Try again."))
    return None


@require("agent")
async def pause(request: web.Request) -> web.StreamResponse:
    data = await form(request)
    problem = await pause_or_resume(request, data.get("reason", ""))
    raise flash_redirect("/agent", problem.message if problem else None)


@require("agent")
async def resume(request: web.Request) -> web.StreamResponse:
    problem = await pause_or_resume(request, None)
    raise flash_redirect("/agent", problem.message if problem else None)


@require("agent")
async def wrapup(request: web.Request) -> web.StreamResponse:
    """The workspace's code picker: set the code of the call on screen."""
    data = await form(request)
    _ = request[GETTEXT]
    raw = (data.get("call_id") or "").strip()
    if not raw.isdigit() or len(raw) > 12:
        raise flash_redirect("/agent", _("No such call of yours."))
    done = await set_wrapup(request, int(raw), (data.get("code") or "").strip())
    if isinstance(done, WrapupProblem):
        raise flash_redirect("/agent", done.message)
    raise flash_redirect("/agent", None)


@require("agent", "supervisor", "admin", "agency")
async def websocket(request: web.Request) -> web.StreamResponse:
    """Live messages: an agent gets their pop and state; supervisors all states and alerts."""
    c = ctx(request)
    actor = request[ACTOR]
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    if actor.id is not None and actor.role != "agency":
        # their tickets answered or sent back by the agency (tickets/notify.py)
        c.hub.join(user_topic(actor.id), ws, request.transport)
    for team in desk_teams(c.settings, actor):
        c.hub.join(inbox_topic(team), ws, request.transport)
    if actor.role == "agent" and actor.extension:
        c.hub.join(f"agent.{actor.extension}", ws, request.transport)
        state, pop = await agent_snapshot(request)
        # what was live before this socket existed (page reload, second tab)
        # the server's time, so the page's call timer does not depend on the PC's clock
        hello = {"type": "hello", "state": state, "pop": pop, "now": c.clock.now().timestamp()}
        await ws.send_str(json.dumps(hello))
    elif actor.role in ("supervisor", "admin"):
        c.hub.join("alerts", ws, request.transport)
        # live queues and congestion (/board reads the rest)
        c.hub.join("board", ws, request.transport)
        await ws.send_str(json.dumps({"type": "hello"}))
    elif actor.role == "agency" and actor.agency_id:
        c.hub.join(f"agency.{actor.agency_id}", ws, request.transport)
        await ws.send_str(json.dumps({"type": "hello"}))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str('{"type":"pong"}')
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        c.hub.leave(ws)
    return ws


def routes() -> list[web.RouteDef]:
    return [
        web.get("/agent", workspace),
        web.post("/agent/pause", pause),
        web.post("/agent/resume", resume),
        web.post("/agent/wrapup", wrapup),
        web.get("/ws", websocket),
    ]

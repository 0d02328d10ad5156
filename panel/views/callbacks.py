"""Panel pages: the callback list agents work in order, and the voice messages.

Agents see their team's callbacks, first joined first, with "call now" on the
next one (the dialler, woken over the bus, then rings their phone and the
citizen, and the callback pops up in their workspace) and a form to
record a try made by hand; supervisors and admins see every team's and may
cancel.  Below, the callers who gave up and have not been reached since
(:mod:`callcenter.abandoned`, the same list the handover report shows), each
with "call back" (an agent's own phone rings first, as with "call now") and
"no need" with a reason.  Voice messages play in a plain <audio> served by id, after the same
access check, and are turned into a callback or marked handled.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from callcenter.abandoned import REASON_MAX, NotInList
from callcenter.callbacks import MANUAL_RESULTS, VOICEMAIL_DIR, wake_dialler
from callcenter.exceptions import CallbackClosed, CallbackNotFound, VoiceMessageNotFound
from callcenter.models import Result, Status
from panel.keys import ACTOR, GETTEXT
from panel.security import require
from panel.views.common import ctx, flash_redirect, form, render

log = logging.getLogger(__name__)

STAFF = ("agent", "supervisor", "admin")


def _team_of(request: web.Request) -> str | None:
    """The agent's team (None for supervisors and admins: they see every team)."""
    actor = request[ACTOR]
    if actor.role != "agent":
        return None
    agent = next((a for a in ctx(request).settings.agents if a.extension == actor.extension), None)
    # an agent account without a configured extension sees no team's list
    return agent.team if agent else "-"


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None


@require(*STAFF)
async def page(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    team = _team_of(request)
    open_ = await c.callbacks.open_list(team)
    next_id = next((cb.id for cb in open_ if cb.status == Status.PENDING), None)
    return render(
        request,
        "callbacks.html",
        callbacks=open_,
        closed=await c.callbacks.closed_list(team, limit=30),
        voice=await c.callbacks.voice_messages(team),
        abandoned=await c.abandoned.waiting(team),
        next_id=next_id,
        results=MANUAL_RESULTS,
        team_names={t.id: t.name for t in c.settings.teams},
        now=c.clock.now(),
        max_attempts=c.settings.queues.overflow.callback_attempts,
    )


async def _own(request: web.Request, callback_id: int) -> None:
    """Agents act only on their team's callbacks."""
    team = _team_of(request)
    try:
        cb = await ctx(request).callbacks.get(callback_id)
    except CallbackNotFound:
        raise web.HTTPNotFound() from None
    if team is not None and cb.team_id != team:
        raise web.HTTPForbidden()


@require("agent")
async def call_now(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    callback_id = _id(request)
    await _own(request, callback_id)
    pending = [
        cb for cb in await c.callbacks.open_list(_team_of(request)) if cb.status == "pending"
    ]
    if not pending or pending[0].id != callback_id:
        raise flash_redirect("/callbacks", _("Callbacks are worked in order: take the next one."))
    extension = request[ACTOR].extension or ""
    try:
        await c.callbacks.call_now(callback_id, extension)
    except CallbackClosed:
        raise flash_redirect("/callbacks", _("This callback is no longer waiting.")) from None
    # the dialler may run in another process: it hears this on the bus, not at its next poll
    await wake_dialler(c.bus, callback_id, extension)
    # to the workspace, where the callback pops up next to the ticket form
    raise flash_redirect("/agent", _("Your phone is ringing: answer it to call the citizen back."))


@require(*STAFF)
async def outcome(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    callback_id = _id(request)
    await _own(request, callback_id)
    data = await form(request)
    try:
        result = Result(data.get("result", ""))
    except ValueError:
        result = None
    if result not in MANUAL_RESULTS:
        raise flash_redirect("/callbacks", _("Outcome: choose how the call ended."))
    note = (data.get("note") or "").strip()[:1000] or None
    actor = request[ACTOR]
    try:
        await c.callbacks.record_outcome(callback_id, result, actor.name, actor.extension, note)
    except CallbackClosed:
        raise flash_redirect(
            "/callbacks", _("This callback is being dialled or has ended already.")
        ) from None
    raise flash_redirect("/callbacks", _("Outcome recorded."))


@require("supervisor", "admin")
async def cancel(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    data = await form(request)
    try:
        await c.callbacks.cancel(
            _id(request), request[ACTOR].name, (data.get("note") or "").strip()[:1000] or None
        )
    except CallbackNotFound:
        raise web.HTTPNotFound() from None
    except CallbackClosed:
        raise flash_redirect("/callbacks", _("This callback has ended already.")) from None
    raise flash_redirect("/callbacks", _("Callback cancelled."))


# the pages that show the list of callers who gave up, and so may be sent back to
BACK_TO = ("/callbacks", "/reports/handover")


@require(*STAFF)
async def abandoned_call(request: web.Request) -> web.StreamResponse:
    """Call back a caller who gave up: onto the callbacks list, an agent's phone first."""
    _ = request[GETTEXT]
    c = ctx(request)
    data = await form(request)
    back = data.get("back") if data.get("back") in BACK_TO else "/callbacks"
    actor = request[ACTOR]
    extension = actor.extension if actor.role == "agent" else None
    try:
        cb = await c.abandoned.call_back(
            data.get("number", ""), actor.name, extension, _team_of(request)
        )
    except NotInList:
        raise flash_redirect(back, _("This caller is no longer in the list.")) from None
    if extension:
        await wake_dialler(c.bus, cb.id, extension)
        raise flash_redirect(
            "/agent", _("Your phone is ringing: answer it to call the citizen back.")
        )
    raise flash_redirect(back, _("The caller was added to the callback list."))


@require(*STAFF)
async def abandoned_dismiss(request: web.Request) -> web.StreamResponse:
    """ "No need to call back", with the reason (kept, with who and when)."""
    _ = request[GETTEXT]
    c = ctx(request)
    data = await form(request)
    back = data.get("back") if data.get("back") in BACK_TO else "/callbacks"
    reason = (data.get("reason") or "").strip()[:REASON_MAX]
    if not reason:
        raise flash_redirect(back, _("No need: say why this caller needs no callback."))
    try:
        await c.abandoned.dismiss(
            data.get("number", ""), request[ACTOR].name, reason, _team_of(request)
        )
    except NotInList:
        raise flash_redirect(back, _("This caller is no longer in the list.")) from None
    raise flash_redirect(back, _("Marked: no callback needed."))


async def _voice(request: web.Request):  # type: ignore[no-untyped-def]
    team = _team_of(request)
    try:
        vm = await ctx(request).callbacks.voice_message_by_id(_id(request))
    except VoiceMessageNotFound:
        raise web.HTTPNotFound() from None
    if team is not None and vm.team_id not in (team, None):
        raise web.HTTPForbidden()
    return vm


def _servable(root: Path, path: Path) -> Path | None:
    """``path`` if it is a file under ``root`` (links resolved), else None."""
    real = path.resolve()
    return real if root.resolve() in real.parents and real.is_file() else None


@require(*STAFF)
async def voice_audio(request: web.Request) -> web.StreamResponse:
    vm = await _voice(request)
    root = ctx(request).settings.recordings_dir / VOICEMAIL_DIR
    # only files the overflow flow wrote, whatever the row says
    path = await asyncio.to_thread(_servable, root, Path(vm.path))
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, no-store"}
    )


@require(*STAFF)
async def voice_callback(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    vm = await _voice(request)
    data = await form(request)
    number = (data.get("number") or "").strip() or None
    try:
        await ctx(request).callbacks.voice_to_callback(vm.id, request[ACTOR].name, number)
    except ValueError:
        raise flash_redirect(
            "/callbacks", _("Number: type a phone number of 10 or 11 digits starting with 0.")
        ) from None
    raise flash_redirect("/callbacks", _("The caller was added to the callback list."))


@require(*STAFF)
async def voice_handled(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    vm = await _voice(request)
    await ctx(request).callbacks.voice_handled(vm.id, request[ACTOR].name)
    raise flash_redirect("/callbacks", _("Voice message marked handled."))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/callbacks", page),
        web.post("/callbacks/abandoned/call", abandoned_call),
        web.post("/callbacks/abandoned/dismiss", abandoned_dismiss),
        web.post("/callbacks/{id}/call", call_now),
        web.post("/callbacks/{id}/outcome", outcome),
        web.post("/callbacks/{id}/cancel", cancel),
        web.get("/callbacks/voice/{id}/audio", voice_audio),
        web.post("/callbacks/voice/{id}/callback", voice_callback),
        web.post("/callbacks/voice/{id}/handled", voice_handled),
    ]

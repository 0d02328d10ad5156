"""Panel pages: recorded calls, their replay and transcript, and the replay audit log.

Who may see what is decided by :func:`recordings.replay.can_replay` before
anything is read from disk; only what is served is written to the audit log
(a refused request leaves no ``play`` or ``download`` row).  Audio is found
from the call record by its id, never from a path the client sends.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import secrets
from datetime import timedelta
from typing import Any

from aiohttp import web

from accounts.identity import Actor
from callcenter.models import Call, Outcome
from panel.dates import parse_day
from panel.keys import ACTOR, GETTEXT, LANG
from panel.labels import path_words, step_words
from panel.security import forbidden, require
from panel.views import qa as qa_views
from panel.views.common import ctx, render
from recordings.audit import Access, AuditFilter
from recordings.replay import (
    BROWSER_FORMAT,
    BROWSER_MIME,
    CallFilter,
    can_replay,
    may_list,
    mmss,
    parse_duration,
    transcript_view,
)
from recordings.search import SearchHit, SearchQueryError

log = logging.getLogger(__name__)

PER_PAGE = 50
# One replay in a browser is many byte-range requests (every seek is one):
# they count as one replay of that call by that user within this window.
REPLAY_WINDOW = timedelta(minutes=10)
# a replay page's session, as the page hands it to its audio URL and reports
SESSION_RE = re.compile(r"[A-Za-z0-9_-]{8,32}")
MAX_RANGES = 50
FILTER_KEYS = (
    "from",
    "to",
    "hotline",
    "shift",
    "agent",
    "outcome",
    "min",
    "max",
    "ticket",
    "q",
)


def client_address(request: web.Request) -> str | None:
    """The client's address; through a reverse proxy on this machine, the one it names."""
    remote = request.remote
    forwarded = request.headers.get("X-Forwarded-For", "")
    if remote and forwarded:
        try:
            local = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            local = False
        if local:
            return f"{forwarded.split(',')[-1].strip()[:40]} via {remote}"
    return remote


def _filter(request: web.Request) -> tuple[CallFilter, dict[str, str], dict[str, str]]:
    """The list's filter from the query string, what to show back, and errors by field."""
    _ = request[GETTEXT]
    q = request.query
    shown = {k: q[k].strip()[:200] for k in FILTER_KEYS if q.get(k, "").strip()}
    errors: dict[str, str] = {}
    f = CallFilter()
    for key, attr in (("from", "date_from"), ("to", "date_to")):
        if key in shown:
            try:
                setattr(f, attr, parse_day(shown[key]))
            except ValueError:
                errors[key] = _("must be a date such as 25/11/2026")
    if "hotline" in shown:
        f.hotline = shown["hotline"]
    if "shift" in shown:
        f.shift = shown["shift"]
    if "agent" in shown:
        f.agent = shown["agent"]
    if shown.get("outcome") in {o.value for o in Outcome}:
        f.outcome = shown["outcome"]
    for key, attr in (("min", "min_seconds"), ("max", "max_seconds")):
        if key in shown:
            try:
                setattr(f, attr, parse_duration(shown[key]))
            except ValueError:
                errors[key] = _("must be seconds or m:ss")
    if shown.get("ticket") in ("yes", "no"):
        f.has_ticket = shown["ticket"] == "yes"
    actor: Actor = request[ACTOR]
    f.viewer = actor  # no call of a restricted ticket the actor may not see
    if actor.role == "agent":  # their own calls, whatever the query says
        f.only_extension = actor.extension or ""
        f.agent = None
        shown.pop("agent", None)
    return f, shown, errors


def _date_presets(request: web.Request) -> list[tuple[str, str, str]]:
    """(label, from, to) for the quick date links: today, yesterday, the last 7 days."""
    _ = request[GETTEXT]
    c = ctx(request)
    today = c.clock.now().astimezone(c.settings.tz).date()
    day = timedelta(days=1)
    return [
        (_("Today"), today.isoformat(), today.isoformat()),
        (_("Yesterday"), (today - day).isoformat(), (today - day).isoformat()),
        (_("Last 7 days"), (today - 6 * day).isoformat(), today.isoformat()),
    ]


@require("supervisor", "admin", "agent")
async def list_recordings(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    actor: Actor = request[ACTOR]
    if not may_list(actor, c.settings):
        raise forbidden(request)
    f, shown, errors = _filter(request)
    page = int(request.query["page"]) if request.query.get("page", "").isdigit() else 1
    page = max(1, min(page, 10_000))
    hits: dict[int, SearchHit] = {}
    if "q" in shown:
        try:
            f.call_ids = await c.transcripts.call_ids_matching(shown["q"])
            for hit in await c.transcripts.search(shown["q"], limit=500):
                hits.setdefault(hit.call_id, hit)
        except SearchQueryError:
            errors["q"] = _("type at least one word to search for")
    rows, total = await c.replay.list_calls(f, page=page, per_page=PER_PAGE)
    failed = await c.transcripts.failed_jobs(limit=50) if actor.role == "admin" else []
    return render(
        request,
        "recordings.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + PER_PAGE - 1) // PER_PAGE),
        query=shown,
        errors=errors,
        hits=hits,
        failed=failed,
        no_model=c.settings.vosk_model is None,
        outcomes=[o.value for o in Outcome],
        shifts=c.settings.shifts,
        hotlines=c.settings.hotlines,
        agents=c.settings.agents,
        shift_names={s.id: s.name for s in c.settings.shifts},
        mmss=mmss,
        presets=_date_presets(request),
    )


async def _call_for(request: web.Request) -> Call:
    """The call named in the URL, if the signed-in user may replay it (else 404 / 403)."""
    c = ctx(request)
    _ = request[GETTEXT]
    call = await c.replay.call(int(request.match_info["call_id"]))
    if call is None:
        raise web.HTTPNotFound(text=_("No such call."), content_type="text/plain")
    actor = request[ACTOR]
    # an agent hears and reads their own graded calls (quality grading), whatever
    # ``agents_replay_own`` says: they may dispute the grade
    graded_own = (
        getattr(actor, "role", None) == "agent"
        and call.agent_extension is not None
        and call.agent_extension == actor.extension
        and await c.qa.is_graded_for(call.id, actor.extension)
    )
    if (not can_replay(actor, call, c.settings) and not graded_own) or await c.replay.hidden_from(
        actor, call.id
    ):
        log.info(
            "refused recording of call %s to user %s", call.id, getattr(request[ACTOR], "id", None)
        )
        raise forbidden(request)
    return call


def _audio_state(request: web.Request, call: Call, has_audio: bool) -> dict[str, Any]:
    """Whether there is audio, and when there is none, why (retention or missing files)."""
    c = ctx(request)
    if has_audio:
        return {"audio": True, "removed_on": None, "missing": False}
    recorded = bool(call.recording_base or call.recording_caller)
    keep = c.settings.recordings.keep_audio_days
    removed_on = None
    if recorded and keep is not None:
        # the purge takes audio of calls that ended more than ``keep`` days ago
        due = (call.ended_at or call.started_at) + timedelta(days=keep)
        if due <= c.clock.now():
            removed_on = due
    return {"audio": False, "removed_on": removed_on, "missing": recorded and removed_on is None}


@require("supervisor", "admin", "agent")
async def replay_page(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    call = await _call_for(request)
    sources = await asyncio.to_thread(c.replay.sources, call)
    transcript = await c.transcripts.for_call(call.id)
    job = await c.transcripts.job(call.id)
    start_at = request.query.get("t", "")
    try:
        seek = max(0.0, float(start_at)) if start_at else 0.0
    except ValueError:
        seek = 0.0
    return render(
        request,
        "recordings_call.html",
        session=secrets.token_urlsafe(12),
        no_model=c.settings.vosk_model is None,
        call=call,
        tickets=await c.replay.ticket_codes(call.id),
        transfers=await c.transfers.chain(call.id) if c.transfers else [],
        segments=transcript_view(transcript.segments) if transcript else [],
        transcript=transcript,
        job=job,
        seek=seek,
        mmss=mmss,
        agent_names={a.extension: a.name for a in c.settings.agents},
        shift_names={s.id: s.name for s in c.settings.shifts},
        menu_path=path_words(
            call.ivr_path,
            call.hotline_number,
            step_words(c.settings, request[GETTEXT], request[LANG]),
        ),
        **_audio_state(request, call, bool(sources)),
        **await qa_views.replay_values(request, call.id, call.agent_extension),
    )


def _session(request: web.Request) -> str | None:
    """The replay page session a request names (``s``), if it is well formed."""
    s = request.query.get("s", "")
    return s if SESSION_RE.fullmatch(s) else None


async def _serve(request: web.Request, action: Access) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    call = await _call_for(request)
    try:
        path = await c.replay.browser_audio(call)
    except Exception:
        log.exception("could not convert the recording of call %s", call.id)
        raise web.HTTPInternalServerError(
            text=_("The recording could not be converted for the browser."),
            content_type="text/plain",
        ) from None
    if path is None:
        raise web.HTTPGone(
            text=_("The audio of this call is no longer available."), content_type="text/plain"
        )
    await c.audit.record(
        request[ACTOR],
        call.id,
        action,
        address=client_address(request),
        user_agent=request.headers.get("User-Agent"),
        unless_within=REPLAY_WINDOW if action == Access.PLAY else None,
        session=_session(request) if action == Access.PLAY else None,
    )
    headers = {"Content-Type": BROWSER_MIME}
    if action == Access.DOWNLOAD:
        when = call.started_at.astimezone(c.settings.tz).strftime("%Y%m%d-%H%M%S")
        headers["Content-Disposition"] = (
            f'attachment; filename="call-{call.id}-{when}.{BROWSER_FORMAT}"'
        )
    return web.FileResponse(path, headers=headers)


@require("supervisor", "admin", "agent")
async def audio(request: web.Request) -> web.StreamResponse:
    return await _serve(request, Access.PLAY)


@require("supervisor", "admin", "agent")
async def download(request: web.Request) -> web.StreamResponse:
    return await _serve(request, Access.DOWNLOAD)


@require("supervisor", "admin", "agent")
async def peaks(request: web.Request) -> web.StreamResponse:
    """The waveform as JSON, computed on the server: drawing it fetches no audio."""
    c = ctx(request)
    _ = request[GETTEXT]
    call = await _call_for(request)
    try:
        found = await c.replay.peaks(call)
    except Exception:
        log.exception("could not compute the waveform of call %s", call.id)
        raise web.HTTPInternalServerError(
            text=_("The waveform could not be computed."), content_type="text/plain"
        ) from None
    if found is None:
        raise web.HTTPGone(
            text=_("The audio of this call is no longer available."), content_type="text/plain"
        )
    return web.json_response(found, headers={"Cache-Control": "private, max-age=300"})


def heard_text(ranges: object) -> str | None:
    """``[[0, 12.3], [30, 45]]`` → ``"0:00–0:12, 0:30–0:45"``; None when not such a list."""
    if not isinstance(ranges, list) or not ranges or len(ranges) > MAX_RANGES:
        return None
    parts = []
    for r in ranges:
        if not (isinstance(r, list) and len(r) == 2):
            return None
        start, end = r
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in (start, end)):
            return None
        if not 0 <= start <= end <= 86_400:
            return None
        parts.append(f"{mmss(start)}–{mmss(end)}")
    return ", ".join(parts)


@require("supervisor", "admin", "agent")
async def heard(request: web.Request) -> web.StreamResponse:
    """What a replay page session played: ``{"s": session, "ranges": [[from, to], ...]}``.

    Sent by the page on pause, at the end and when it is left; a row is
    written when the ranges grew since that session's last report.
    """
    c = ctx(request)
    call = await _call_for(request)
    try:
        body = await request.json()
    except ValueError:
        body = None
    session = body.get("s") if isinstance(body, dict) else None
    text = heard_text(body.get("ranges")) if isinstance(body, dict) else None
    if not isinstance(session, str) or not SESSION_RE.fullmatch(session) or text is None:
        raise web.HTTPBadRequest(text="expected {s, ranges: [[from, to], ...]}")
    await c.audit.record(
        request[ACTOR],
        call.id,
        Access.HEARD,
        address=client_address(request),
        user_agent=request.headers.get("User-Agent"),
        session=session,
        heard=text,
    )
    return web.Response(status=204)


@require("admin")
async def audit_log(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    q = request.query
    f = AuditFilter()
    shown: dict[str, str] = {}
    if q.get("call", "").strip().isdigit():
        f.call_id = int(q["call"].strip())
        shown["call"] = str(f.call_id)
    if q.get("user", "").isdigit():
        f.user_id = int(q["user"])
        shown["user"] = q["user"]
    if q.get("action") in {a.value for a in Access}:
        f.action = q["action"]
        shown["action"] = q["action"]
    page = int(q["page"]) if q.get("page", "").isdigit() else 1
    page = max(1, min(page, 10_000))
    rows, total = await c.audit.search(f, page=page, per_page=PER_PAGE)
    return render(
        request,
        "recordings_audit.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + PER_PAGE - 1) // PER_PAGE),
        query=shown,
        users=await c.accounts.list_users(),
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/recordings", list_recordings),
        web.get("/recordings/audit", audit_log),
        web.get(r"/recordings/{call_id:\d{1,12}}", replay_page),
        web.get(r"/recordings/{call_id:\d{1,12}}/audio", audio),
        web.get(r"/recordings/{call_id:\d{1,12}}/download", download),
        web.get(r"/recordings/{call_id:\d{1,12}}/peaks", peaks),
        web.post(r"/recordings/{call_id:\d{1,12}}/heard", heard),
    ]

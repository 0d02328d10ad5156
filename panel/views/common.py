"""Helpers shared by the views (HTML and JSON): rendering, forms, redirects with a flash
message, and the ticket a request names and the ticket list's filter, read from the query."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlparse

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from core.web import client_address
from panel.context import PanelContext
from panel.dates import parse_day
from panel.i18n import LANGUAGES
from panel.keys import ACTOR, FLASH_USED, GETTEXT, LANG, SESSION
from panel.labels import field_label, pop_words
from tickets import workflow
from tickets.audit import View
from tickets.confidential import attachments_seen_by, history_seen_by, restricted, seen_by
from tickets.exceptions import InvalidCode, TicketNotFound
from tickets.models import AgencyKind, Attachment, Channel, Domain, Status, Ticket, TicketEvent
from tickets.queries import TicketFilter

CTX = web.AppKey("ctx", PanelContext)


def ctx(request: web.Request) -> PanelContext:
    return request.app[CTX]


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {**base_context(request), **values}, status=status
    )


async def form(request: web.Request) -> MultiDictProxy[str]:
    data = await request.post()
    return MultiDictProxy(MultiDict((k, v) for k, v in data.items() if isinstance(v, str)))


def form_dict(data: MultiDictProxy[str], *fields: str) -> dict[str, str]:
    return {f: data[f] for f in fields if f in data}


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths after sign-in (no open redirect)."""
    if not target:
        return default
    parts = urlparse(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def flash_redirect(location: str, message: str | None = None) -> web.HTTPSeeOther:
    exc = web.HTTPSeeOther(location)
    if message:
        exc.set_cookie("hotline_flash", message[:300], max_age=30, httponly=True, samesite="Lax")
    return exc


def home_for(role: str) -> str:
    return {"agent": "/agent", "agency": "/inbox"}.get(role, "/tickets")


async def ticket_form_values(request: web.Request) -> dict[str, Any]:
    """What the ticket form offers: topics, agencies, channels, domains."""
    c = ctx(request)
    agencies = await c.agencies.list()
    return {
        "topics": c.settings.tickets.topics,
        "agencies": agencies,
        "channels": list(Channel),
        "domains": list(Domain),
        # the district a report is about: one of the directory's, or typed
        "districts": [a for a in agencies if a.kind == AgencyKind.DISTRICT],
    }


async def visible_ticket(request: web.Request, how: View | None = None) -> Ticket:
    """The ticket named by the ``{code}`` of the path as the actor may read it
    (:func:`tickets.confidential.seen_by`): 404 if none, 403 if the actor may not see it.
    Showing a restricted one is written in the ticket views audit log (``how``: the page
    or the API, by the path, unless given)."""
    try:
        ticket = await ctx(request).ticket_queries.get_by_code(request.match_info["code"])
    except InvalidCode:
        raise TicketNotFound(ticket=request.match_info["code"]) from None
    if not await ctx(request).ticket_queries.can_see(request[ACTOR], ticket):
        raise PermissionError("ticket of another agency, or restricted")
    api = request.path.startswith("/api/")
    await audit_views(request, [ticket], how or (View.API if api else View.PAGE))
    return seen_by(request[ACTOR], ticket)


async def shown_tickets(request: web.Request, rows: list[Ticket]) -> list[Ticket]:
    """A list's rows (already narrowed by ``visible_to``) as the actor may read them; the
    restricted ones among them written in the ticket views audit log."""
    await audit_views(request, rows, View.LIST)
    return [seen_by(request[ACTOR], t) for t in rows]


async def audit_views(request: web.Request, tickets: list[Ticket], how: View) -> None:
    """Write the restricted ones of ``tickets`` as shown to the actor now."""
    c = ctx(request)
    ids = [t.id for t in tickets if restricted(t, c.settings.tickets)]
    if ids:
        await c.ticket_views.record(
            request[ACTOR],
            ids,
            how,
            address=client_address(request, c.settings.panel.trusted_proxies),
            user_agent=request.headers.get("User-Agent"),
        )


async def attachments_for(request: web.Request, ticket: Ticket) -> tuple[list[Attachment], int]:
    """The ticket's files the actor may see (tickets.confidential: without the citizen's
    consent an agency sees the files staff and officers attached, not the citizen's own),
    and how many are kept from them."""
    rows = await ctx(request).ticket_queries.attachments(ticket.id)
    shown = attachments_seen_by(request[ACTOR], ticket, rows)
    return shown, len(rows) - len(shown)


async def history_for(request: web.Request, ticket: Ticket) -> list[TicketEvent]:
    """The ticket's history as the actor may read it (tickets.confidential)."""
    events = await ctx(request).ticket_queries.history(ticket.id)
    return history_seen_by(request[ACTOR], ticket, events)


def ticket_filter(request: web.Request) -> tuple[TicketFilter, dict[str, str]]:
    """The ticket list's filter from the query string (what cannot be read is left out),
    and the query as given, to show it back."""
    q = request.query
    f = TicketFilter()
    if q.getall("status", []):
        f.status = [s for s in q.getall("status") if s in {x.value for x in Status}] or None
    for key in ("level", "agency_id", "created_by"):
        if q.get(key, "").isdigit():
            setattr(f, key, int(q[key]))
    if q.get("domain") in {d.value for d in Domain}:
        f.domain = q["domain"]
    if q.get("topic"):
        f.topic = q["topic"][:32]
    if q.get("overdue") == "1":
        f.overdue = True
    if q.get("flagged") == "1":
        f.flagged = True
    for key in ("created_from", "created_to"):
        try:
            if q.get(key):
                setattr(f, key, parse_day(q[key]))
        except ValueError:
            pass
    if q.get("q"):
        f.q = q["q"][:200]
    if q.get("extension") == "open":
        f.extension_open = True  # agencies' extension requests to decide (tickets.review)
    if q.get("needs") == "me" and request[ACTOR].role in workflow.LEADS:
        # what waits on the supervisors, reopened reports among it
        f.status = [s.value for s in workflow.NEEDS_SUPERVISOR]
    return f, {k: v for k, v in q.items()}


def base_context(request: web.Request) -> dict[str, Any]:
    """What every page template gets: the user, CSRF token, language, names.

    ``field_label(name)`` is a form field's label; ``pop_words()`` the words of
    the screen-pop's identifiers (only the agent's page asks for them).
    """
    c = request.app[CTX]
    flash = request.cookies.get("hotline_flash")
    if flash:
        request[FLASH_USED] = True
    session = request.get(SESSION)
    lang = request.get(LANG, "vi")
    _ = request[GETTEXT]
    return {
        "_": _,
        "field_label": partial(field_label, _),
        "pop_words": partial(pop_words, c.settings, _, lang),
        "actor": request.get(ACTOR),
        "csrf": session.csrf if session else "",
        "lang": lang,
        "languages": LANGUAGES,
        "flash": flash,
        "path": request.path_qs,
        "topic_names": {t.id: t.name.get(lang) for t in c.settings.tickets.topics},
        "hotline_names": {h.number: h.name for h in c.settings.hotlines},
        "agents_replay_own": c.settings.recordings.agents_replay_own,
    }

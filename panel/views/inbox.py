"""The SMS and email desk: the messages in waiting on a team's desk (SMS, mail, and
the voice messages callers left in the overflow), and what an agent does with one
(claim, turn into a ticket, attach to a ticket, reply, a callback for a voice
message, no content).  A mail shows its subject, its HTML as sanitised when it was
stored (:mod:`mail.parse`: no script, style, image or form survives; the page's CSP
holds besides) and its attachments, served by id as downloads.  Agents work their
team's desk (only those the team names in ``sms_desk``, when it names any);
supervisors and admins every desk.  The page reloads its list when the bus says a
message arrived or moved (``inbox.<team>``, joined by the panel's WebSocket).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from accounts.identity import Actor
from core.settings import Settings
from inbox.exceptions import InboxError, MessageNotFound, MessageTaken, NotSendable
from inbox.models import Message
from inbox.service import InboxService
from panel.keys import ACTOR, GETTEXT
from panel.security import require
from panel.views.common import audit_views, ctx, flash_redirect, form, render
from sms.coding import size
from tickets.attachments import path_of
from tickets.audit import View
from tickets.confidential import is_cleared
from tickets.exceptions import InvalidCode, InvalidInput, TicketError, TicketNotFound

log = logging.getLogger(__name__)

STAFF = ("agent", "supervisor", "admin")


def desk_teams(settings: Settings, actor: Actor) -> list[str]:
    """The teams whose desks ``actor`` works: an agent's own, everyone's for leads."""
    if actor.role in ("supervisor", "admin"):
        return [t.id for t in settings.teams]
    if actor.role == "agent" and actor.extension:
        teams = {t.id: t for t in settings.teams}
        return [
            a.team
            for a in settings.agents
            if a.extension == actor.extension
            and a.team in teams
            and (not teams[a.team].sms_desk or actor.extension in teams[a.team].sms_desk)
        ]
    return []


def _inbox(request: web.Request) -> InboxService:
    inbox = ctx(request).inbox
    if inbox is None:
        raise web.HTTPNotFound(text="the inbox is not configured")
    return inbox


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    return int(raw)


async def shown_messages(
    request: web.Request, messages: Sequence[Message], how: View
) -> list[Message]:
    """``messages`` as the actor may read them: a message of a restricted ticket (its
    own, or the one it answers) only to those cleared for that ticket
    (:func:`tickets.confidential.is_cleared`), the others left out; those shown written
    in the ticket views audit log, as the ticket itself would be."""
    c = ctx(request)
    of = await _inbox(request).tickets_of(messages)
    if not of:
        return list(messages)
    tickets = await c.ticket_queries.by_ids(of.values())
    actor = request[ACTOR]
    hidden = {i for i, t in tickets.items() if not is_cleared(actor, t, c.settings.tickets)}
    shown = [m for m in messages if of.get(m.id) not in hidden]
    seen = {of[m.id] for m in shown if m.id in of and of[m.id] in tickets}
    await audit_views(request, [tickets[i] for i in sorted(seen)], how)
    return shown


async def visible_message(request: web.Request, message_id: int, how: View) -> Message:
    """The message, if it is on one of the actor's desks and of no ticket withheld from
    them (:func:`shown_messages`); else MessageNotFound, as if there were none."""
    msg = await _inbox(request).get(message_id)
    if msg.team not in desk_teams(ctx(request).settings, request[ACTOR]) and msg.team is not None:
        raise MessageNotFound(message_id)
    if not await shown_messages(request, [msg], how):
        raise MessageNotFound(message_id)
    return msg


async def _visible(request: web.Request, message_id: int) -> Message:
    try:
        return await visible_message(request, message_id, View.PAGE)
    except MessageNotFound:
        raise web.HTTPNotFound() from None


@require(*STAFF)
async def desk(request: web.Request) -> web.Response:
    c = ctx(request)
    teams = desk_teams(c.settings, request[ACTOR])
    if request[ACTOR].role == "agent" and not teams:
        raise web.HTTPForbidden(text="the SMS desk is not yours (teams.sms_desk)")
    rows = await shown_messages(request, await _inbox(request).desk(teams), View.LIST)
    done = await _inbox(request).desk(teams, open_only=False, limit=30)
    done = await shown_messages(
        request, [m for m in done if m.state not in ("new", "claimed")], View.LIST
    )
    return render(
        request,
        "messages.html",
        rows=rows,
        done=done,
        emails=await _inbox(request).emails([m.id for m in (*rows, *done)]),
        said=await _inbox(request).transcripts([*rows, *done]),
        team_names={t.id: t.name for t in c.settings.teams},
    )


@require(*STAFF)
async def message(request: web.Request) -> web.Response:
    c = ctx(request)
    msg = await _visible(request, _id(request))
    ticket = await c.ticket_queries.get(msg.ticket_id) if msg.ticket_id else None
    inbox = _inbox(request)
    thread = await shown_messages(request, await inbox.conversation(msg.id), View.PAGE)
    voice = await inbox.voice_of(msg)
    return render(
        request,
        "message.html",
        m=msg,
        voice=voice,
        said=(await inbox.transcripts([msg])).get(msg.id),
        earlier=(
            await c.ticket_queries.for_phone(msg.citizen, actor=request[ACTOR], limit=10)
            if msg.citizen and msg.channel != "email"
            else []
        ),
        ticket_code=ticket.code if ticket else None,
        thread=thread,
        emails=await inbox.emails([t.id for t in thread]),
        files={t.id: await inbox.files(t.id) for t in thread if t.channel == "email"},
        topics=c.settings.tickets.topics,
        max_parts=c.settings.sms.max_parts,
    )


@require(*STAFF)
async def act(request: web.Request) -> web.Response:
    """One of the desk's actions on a message (the form's ``action``)."""
    message_id = _id(request)
    await _visible(request, message_id)
    data = await form(request)
    actor = request[ACTOR]
    inbox = _inbox(request)
    _ = request[GETTEXT]
    action = data.get("action", "")
    here = f"/messages/{message_id}"
    try:
        if action == "claim":
            await inbox.claim(actor, message_id)
            raise flash_redirect(here, _("The message is yours."))
        if action == "no_content":
            await inbox.no_content(actor, message_id)
            raise flash_redirect("/messages", _("Marked as no content."))
        if action == "attach":
            await inbox.attach(actor, message_id, data.get("ticket", ""))
            raise flash_redirect("/messages", _("Attached to the ticket."))
        if action == "ticket":
            fields = ("domain", "topic", "level", "description", "guidance", "citizen_name")
            values = {k: data[k] for k in fields if data.get(k, "").strip()}
            _msg, ticket = await inbox.to_ticket(actor, message_id, values)
            raise flash_redirect(
                f"/tickets/{ticket.code}", _("Ticket created; the citizen is sent its code.")
            )
        if action == "callback":
            await inbox.callback(actor, message_id, (data.get("number") or "").strip() or None)
            raise flash_redirect(here, _("The caller was added to the callback list."))
        if action == "reply":
            sent = await inbox.reply(actor, message_id, data.get("text", ""))
            note = (
                _("Reply sent.")
                if sent.state != "failed"
                else _("Reply not sent: %(why)s") % {"why": sent.error or "?"}
            )
            raise flash_redirect(here, note)
    except MessageTaken:
        raise flash_redirect(here, _("Someone else has this message, or it is decided.")) from None
    except NotSendable as e:
        raise flash_redirect(here, f"{_('Reply not sent: %(why)s') % {'why': e}}") from None
    except (TicketNotFound, InvalidCode):
        raise flash_redirect(here, _("No ticket with this code or number.")) from None
    except InvalidInput as e:
        # the msgid outside an f-string, where the extractor sees it
        raise flash_redirect(here, _("The ticket was not created:") + f" {e}") from None
    except (InboxError, TicketError) as e:
        raise flash_redirect(here, str(e)) from None
    raise web.HTTPBadRequest(
        text="action: one of claim, no_content, attach, ticket, reply, callback"
    )


@require(*STAFF)
async def parts(request: web.Request) -> web.Response:
    """How many SMS parts a text takes, and in which coding (asked as the agent types)."""
    text = request.query.get("text", "")[:1600]
    sz = size(text)
    return web.json_response(
        {"coding": sz.coding, "units": sz.units, "parts": sz.parts, "per_part": sz.per_part}
    )


@require(*STAFF)
async def message_file(request: web.Request) -> web.StreamResponse:
    """A mail's attachment, by its id, always as a download (never shown inline)."""
    msg = await _visible(request, _id(request))
    wanted = request.match_info["file"]
    found = next((a for a in await _inbox(request).files(msg.id) if a.id == wanted), None)
    if found is None:
        raise web.HTTPNotFound(text="no such attachment", content_type="text/plain")
    path = path_of(ctx(request).settings, found.id)
    if not path.is_file():
        log.error("attachment %s of message %d: its file is missing", found.id, msg.id)
        raise web.HTTPNotFound(text="the file is missing", content_type="text/plain")
    name = (found.original_name or found.id).replace('"', "")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": found.content_type,
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/messages", desk),
        web.get("/messages/parts", parts),
        web.get("/messages/{id}/files/{file}", message_file),
        web.get("/messages/{id}", message),
        web.post("/messages/{id}", act),
    ]

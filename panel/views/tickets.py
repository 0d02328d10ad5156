"""Tickets in the panel: creation from the live call, the lists, one ticket and its actions."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from accounts.identity import Actor
from accounts.models import Role
from panel.dates import parse_moment
from panel.keys import ACTOR, GETTEXT
from panel.security import field_errors, require
from panel.views.agent import tell_call_tickets, workspace_values
from panel.views.calls import ticket_calls
from panel.views.common import (
    attachments_for,
    ctx,
    flash_redirect,
    form,
    form_dict,
    history_for,
    render,
    shown_tickets,
    ticket_filter,
    ticket_form_values,
    visible_ticket,
)
from panel.views.handling import co_agency_ids, co_deadlines, handling_values
from panel.views.review import ACTIONS as REVIEW_ACTIONS
from panel.views.review import (
    EXTENSIONS,
    attach_file,
    disposition,
    review_action,
    review_values,
)
from recordings.replay import can_read_transcript, can_replay, mmss, transcript_view
from tickets import workflow
from tickets.attachments import path_of
from tickets.audit import View
from tickets.confidential import restricted, sees_attachment, sees_identity
from tickets.exceptions import (
    SECOND_FOR_CALL,
    UNKNOWN,
    FieldError,
    InvalidCode,
    InvalidInput,
    TicketNotFound,
    VersionConflict,
)
from tickets.models import Attachment, Status, Ticket
from tickets.numbers import format_number
from tickets.publication import is_published

log = logging.getLogger(__name__)

STAFF = ("agent", "supervisor", "admin")
ALL = ("agent", "supervisor", "admin", "agency")
# who reads tickets: the oversight role too, which never writes (tickets.confidential)
READERS = (*ALL, "oversight")
TICKET_FIELDS = (
    "channel",
    "citizen_phone",
    "citizen_name",
    "citizen_address",
    "domain",
    "topic",
    "level",
    "description",
    "guidance",
    "agency_id",
    "reporter_email",
    "district",
    "publish_consent",
    "identity_consent",
)
PER_PAGE = 50


def actions_for(actor: Actor, ticket: Ticket) -> tuple[str, ...]:
    """The workflow's buttons on the ticket page: what the service would accept now."""
    return tuple(a for a in workflow.available(actor, ticket) if a != "update")


def can_edit(actor: Actor, ticket: Ticket) -> bool:
    """Whether the page offers the edit form."""
    return workflow.allows("update", actor, ticket)


def publication_values(request: web.Request, ticket: Ticket) -> dict[str, Any]:
    """Whether the public portal shows the ticket, and may the actor withhold or release it."""
    return {
        "published": is_published(ticket, ctx(request).settings.tickets),
        "restricted": restricted(ticket, ctx(request).settings.tickets),
        "may_withhold": workflow.may_withhold(request[ACTOR]),
        # the oversight role reads, never writes: no comment box
        "may_comment": request[ACTOR].role != Role.OVERSIGHT,
        # an agency reads a pseudonym unless the citizen agreed (tickets.confidential)
        "identity_shown": sees_identity(request[ACTOR], ticket),
    }


@require(*STAFF)
async def new_ticket(request: web.Request) -> web.StreamResponse:
    values = {"channel": request.query.get("channel", "phone")}
    return render(
        request, "ticket_new.html", errors={}, values=values, **await ticket_form_values(request)
    )


@require(*STAFF)
async def create_ticket(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    data = await form(request)
    values = form_dict(data, *TICKET_FIELDS)
    if data.get("kb_article_id"):
        # the article picked from the knowledge-base search (the workspace)
        values["kb_article_id"] = data["kb_article_id"]
    call_id = None
    if data.get("call_id", "").isdigit():
        call_id = int(data["call_id"])
    try:
        # a second ticket on the same call only when the agent confirmed it
        ticket = await c.tickets.create(
            request[ACTOR],
            dict(values),
            call_id=call_id,
            first_for_call=data.get("second_for_call") != "1",
        )
    except InvalidInput as e:
        errors = field_errors(request, e.errors)
        page = "agent.html" if data.get("from") == "agent" else "ticket_new.html"
        extra: dict[str, Any] = {}
        if page == "agent.html":
            extra = await workspace_values(request)
        return render(
            request,
            page,
            status=422,
            second_asked=any(f.message == SECOND_FOR_CALL for f in e.errors),
            errors=errors,
            values={
                **values,
                "call_id": data.get("call_id", ""),
                "second_for_call": data.get("second_for_call", ""),
                "repeat_of": data.get("repeat_of", ""),
            },
            **extra,
            **await ticket_form_values(request),
        )
    if call_id is not None:
        await tell_call_tickets(request, call_id)
    created = _(
        "Ticket {code} created, number {number}. Read the number to the citizen.",
        code=ticket.code,
        number=format_number(ticket.number),
    )
    earlier = data.get("repeat_of", "").strip()
    if earlier:
        # the earlier report the agent picked among the suggestions (repeats.js)
        try:
            target = await repeat_target(request, earlier)
            await c.repeats.link(request[ACTOR], ticket.id, ticket.version, target.id)
        except (InvalidInput, VersionConflict) as e:
            log.info("ticket %s created, not linked to %s: %s", ticket.code, earlier, e)
            # created all the same: its page offers the suggestions again
            raise flash_redirect(
                f"/tickets/{ticket.code}",
                created + " " + _("It could not be linked to {code}.", code=earlier),
            ) from None
    # from the workspace, back to the workspace: the next call pops there
    raise flash_redirect(
        "/agent" if data.get("from") == "agent" else f"/tickets/{ticket.code}", created
    )


async def repeat_target(request: web.Request, text: str) -> Ticket:
    """The earlier report named by its code or number; InvalidInput on ``repeat_of``."""
    try:
        return await ctx(request).ticket_queries.get_by_code(text)
    except (TicketNotFound, InvalidCode, InvalidInput):
        raise InvalidInput([FieldError("repeat_of", UNKNOWN)]) from None


async def repeat_values(request: web.Request, ticket: Ticket) -> dict[str, Any]:
    """The ticket page's repeat reports: its group, and earlier reports to link it to."""
    c = ctx(request)
    actor = request[ACTOR]
    if actor.role not in STAFF:
        return {"group": None, "suggestions": [], "may_link": False}
    group = None
    if ticket.repeat_of is not None or ticket.repeats:
        lead, members = await c.repeats.group(ticket, actor)
        group = {"lead": lead, "members": members, "reports": len(members) + 1}
    linkable = workflow.may_link(actor, ticket)
    suggestions = []
    if linkable and ticket.repeat_of is None:
        suggestions = await c.repeats.similar_to(actor, ticket)
    return {"group": group, "suggestions": suggestions, "may_link": linkable}


@require(*STAFF, "oversight")
async def list_tickets(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    f, shown = ticket_filter(request)
    page = int(request.query["page"]) if request.query.get("page", "").isdigit() else 1
    errors: dict[str, str] = {}
    try:
        rows, total = await c.ticket_queries.search(
            f, actor=request[ACTOR], page=max(1, page), per_page=PER_PAGE
        )
        rows = await shown_tickets(request, rows)
    except InvalidInput as e:  # a tracking code with a wrong check symbol: said so, by the box
        rows, total = [], 0
        errors = field_errors(request, e.errors)
    users = {u.id: u for u in await c.accounts.list_users()}
    return render(
        request,
        "tickets.html",
        status=422 if errors else 200,
        errors=errors,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + PER_PAGE - 1) // PER_PAGE),
        query=shown,
        statuses=list(Status),
        users=users,
        agency_names={a.id: a.name for a in await c.agencies.list(include_inactive=True)},
        **await ticket_form_values(request),
    )


@require(*READERS)
async def show_ticket(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    ticket = await visible_ticket(request)
    history = await history_for(request, ticket)
    call = await c.calls.by_id(ticket.call_id) if ticket.call_id else None
    agencies = await c.agencies.list(include_inactive=True)
    # the call's transcript, for those who may read it (supervisors, admins, its agent)
    transcript = None
    if call is not None and can_read_transcript(request[ACTOR], call, c.settings):
        found = await c.transcripts.for_call(call.id)
        if found is not None:
            transcript = {
                "segments": transcript_view(found.segments),
                "replay": can_replay(request[ACTOR], call, c.settings),
                "mmss": mmss,
            }
    attachments, attachments_kept = await attachments_for(request, ticket)
    return render(
        request,
        "ticket.html",
        t=ticket,
        # the knowledge-base article a level-1 answer came from (staff read it)
        kb_article=await c.kb.get(ticket.kb_article_id) if ticket.kb_article_id else None,
        attachments=attachments,
        attachments_kept=attachments_kept,
        history=history,
        call=call,
        transcript=transcript,
        actions=actions_for(request[ACTOR], ticket),
        editable=can_edit(request[ACTOR], ticket),
        **publication_values(request, ticket),
        agency_names={a.id: a.name for a in agencies},
        overdue=bool(
            ticket.deadline_at
            and ticket.status != Status.CLOSED
            and ticket.deadline_at < c.clock.now()
        ),
        errors={},
        values={},
        **await repeat_values(request, ticket),
        **await review_values(request, ticket),
        **await ticket_calls(request, ticket),
        **await handling_values(request, ticket),
        **await ticket_form_values(request),
    )


@require(*READERS)
async def ticket_attachment(request: web.Request) -> web.StreamResponse:
    """A file of a ticket, to whoever may see the ticket and the file (a citizen's own
    file: those who see who reported it, tickets.confidential): with the type found by
    its content when it came in (never guessed from a name), and nosniff; an image
    inline, anything else (a PDF) as a download."""
    ticket = await visible_ticket(request, View.FILE)
    found = await ticket_file(request, ticket)
    if found is None:
        raise web.HTTPNotFound(text="no such attachment", content_type="text/plain")
    return file_response(request, ticket, found)


async def ticket_file(request: web.Request, ticket: Ticket) -> Attachment | None:
    """The ticket's file named by ``{attachment}`` if the actor may see it (a file kept
    from the actor is not told apart from one that does not exist)."""
    wanted = request.match_info["attachment"]
    found = next(
        (a for a in await ctx(request).ticket_queries.attachments(ticket.id) if a.id == wanted),
        None,
    )
    if found is None or not sees_attachment(request[ACTOR], ticket, found):
        return None
    return found


def file_response(request: web.Request, ticket: Ticket, found: Attachment) -> web.StreamResponse:
    """The file's bytes, with its stored type, nosniff and a safe name."""
    path = path_of(ctx(request).settings, found.id)
    name = f"{ticket.code}-{found.id[:8]}.{EXTENSIONS.get(found.content_type, 'bin')}"
    if not path.is_file():
        log.error("attachment %s of ticket %s: its file is missing", found.id, ticket.code)
        raise web.HTTPNotFound(text="the file is missing", content_type="text/plain")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": found.content_type,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'{disposition(found.content_type)}; filename="{name}"',
            "Cache-Control": "private, no-store",
        },
    )


def _version(data: Any) -> int:
    v = data.get("version", "")
    if not v.isdigit():
        raise InvalidInput([_field_error("version", "is required")])
    return int(v)


def _field_error(field: str, message: str) -> Any:
    from tickets.exceptions import FieldError

    return FieldError(field, message, {})


@require(*ALL)
async def ticket_action(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    ticket = await visible_ticket(request)
    action = request.match_info["action"]
    data = await form(request)
    actor = request[ACTOR]
    s = c.tickets
    try:
        if action == "comment":
            if not data.get("note", "").strip():
                raise InvalidInput([_field_error("note", "is required")])
            await s.comment(actor, ticket.id, data["note"])
        elif action == "edit":
            fields = form_dict(data, *TICKET_FIELDS)
            fields.pop("channel", None)
            for consent in ("publish_consent", "identity_consent"):
                if consent in data:
                    # a hidden "0" before the checkbox: unticking it is a change too
                    fields[consent] = data.getall(consent)[-1]
            await s.update(actor, ticket.id, _version(data), fields)
        elif action == "forward":
            await s.forward(
                actor,
                ticket.id,
                _version(data),
                _agency(data),
                data.get("note"),
                co_agency_ids=co_agency_ids(data),
                co_deadlines=co_deadlines(request, data),
            )
        elif action == "approve":
            agency = _agency(data) if data.get("agency_id") else None
            await s.approve(
                actor,
                ticket.id,
                _version(data),
                agency,
                data.get("note"),
                co_agency_ids=co_agency_ids(data),
                co_deadlines=co_deadlines(request, data),
            )
        elif action == "accept":
            await s.accept(actor, ticket.id, _version(data))
        elif action == "answer":
            await s.answer(actor, ticket.id, _version(data), data.get("result", ""))
        elif action == "send_back":
            await s.send_back(actor, ticket.id, _version(data), data.get("reason", ""))
        elif action == "schedule_meeting":
            await s.schedule_meeting(
                actor,
                ticket.id,
                _version(data),
                _local_dt(request, data, "meeting_at"),
                data.get("meeting_place", ""),
            )
        elif action == "link":
            target = await repeat_target(request, data.get("repeat_of", "").strip())
            await c.repeats.link(actor, ticket.id, _version(data), target.id)
        elif action == "unlink":
            await c.repeats.unlink(actor, ticket.id, _version(data))
        elif action in REVIEW_ACTIONS:
            await review_action(request, ticket, action, data, _version(data))
        elif action == "reopen":
            await s.reopen(actor, ticket.id, _version(data), data.get("reason", ""))
        elif action in ("withhold", "release"):
            await s.set_withheld(
                actor, ticket.id, _version(data), action == "withhold", data.get("note") or None
            )
        elif action == "close":
            await s.close(
                actor,
                ticket.id,
                _version(data),
                data.get("note") or None,
                data.get("letter") or None,
            )
        else:
            raise web.HTTPNotFound()
    except InvalidInput as e:
        return await ticket_page_with_errors(request, ticket, action, e, dict(data))
    raise flash_redirect(f"/tickets/{ticket.code}", _("Saved."))


async def ticket_page_with_errors(
    request: web.Request, ticket: Ticket, action: str, e: InvalidInput, values: dict[str, str]
) -> web.StreamResponse:
    """The ticket page again (422), the refused form's fields marked and its text kept."""
    c = ctx(request)
    actor = request[ACTOR]
    errors = field_errors(request, e.errors)
    history = await history_for(request, ticket)
    attachments, attachments_kept = await attachments_for(request, ticket)
    return render(
        request,
        "ticket.html",
        status=422,
        t=ticket,
        kb_article=await c.kb.get(ticket.kb_article_id) if ticket.kb_article_id else None,
        attachments=attachments,
        attachments_kept=attachments_kept,
        history=history,
        call=await c.calls.by_id(ticket.call_id) if ticket.call_id else None,
        actions=actions_for(actor, ticket),
        editable=can_edit(actor, ticket),
        **publication_values(request, ticket),
        agency_names={a.id: a.name for a in await c.agencies.list(include_inactive=True)},
        overdue=False,
        errors=errors,
        failed_action=action,
        values=values,
        **await repeat_values(request, ticket),
        **await review_values(request, ticket),
        **await ticket_calls(request, ticket),
        **await handling_values(request, ticket),
        **await ticket_form_values(request),
    )


def _agency(data: Any) -> int:
    v = data.get("agency_id", "")
    if not v.isdigit():
        raise InvalidInput([_field_error("agency_id", "is required")])
    return int(v)


def _local_dt(request: web.Request, data: Any, field: str) -> datetime:
    raw = data.get(field, "")
    try:
        moment = parse_moment(raw)
    except ValueError:
        raise InvalidInput(
            [_field_error(field, "must be a date and time such as 25/11/2026 14:30")]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ctx(request).settings.tz)
    return moment


@require("agency")
async def inbox(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    closed = request.query.get("closed") == "1"
    rows = await c.ticket_queries.inbox(request[ACTOR], include_closed=closed)
    rows = await shown_tickets(request, rows)
    return render(request, "inbox.html", rows=rows, closed=closed, now=c.clock.now())


def routes() -> list[web.RouteDef]:
    return [
        web.get("/tickets", list_tickets),
        web.get("/tickets/new", new_ticket),
        web.post("/tickets", create_ticket),
        web.get("/tickets/{code}", show_ticket),
        web.get("/tickets/{code}/attachments/{attachment}", ticket_attachment),
        # before the actions' route, which would take "attachments" for an action
        web.post("/tickets/{code}/attachments", attach_file),
        web.post("/tickets/{code}/{action}", ticket_action),
        web.get("/inbox", inbox),
    ]


__all__ = ["routes", "Role"]

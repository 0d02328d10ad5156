"""Confidentiality: which reports are restricted, who is cleared for them, and when an
agency learns who reported.

A report is **restricted** when its domain is one of ``tickets.confidential.domains``
(Party building by default) or its topic one of ``tickets.confidential.topics``
(complaints and denunciations, corruption).  That one rule (:func:`restricted` on a
loaded ticket, :func:`restricted_clause` in SQL; a test checks that they agree) keeps
such a report off the public side (:mod:`tickets.publication`) and, inside, away from
everyone not cleared for it (:func:`cleared_for`, which
:func:`tickets.queries.visible_to` adds to who sees what).  Cleared are:

- the system's own steps (escalation, the command line: no signed-in person);
- the accounts named in ``readers`` (the Party Committee desk's supervisors);
- the agent who created the report (they took the call);
- the officers of the agencies in ``agencies`` (the Party Committee Office), for the
  reports forwarded to them as any agency;
- the oversight role (the Inspection Committee), which reads every report or only the
  restricted ones (``oversight_scope``), and writes nothing.

**The reporter's identity** (name, phone, email, address) is the hotline's: its agents,
supervisors and admins, and the oversight role, see it.  An agency sees it only when
the citizen agreed (``identity_consent``, asked on the call or on the web form);
otherwise :func:`seen_by` gives it a copy of the ticket where the name is a stable
pseudonym ("Công dân #3FA9C2", from the ticket's id) and the rest is empty, and
:func:`details_seen_by` blanks the same fields in the history.  A citizen's own files
(the photos of the web form, a mail's attachments: ``added_by`` empty) can show who they
are too, so without consent the agency sees only the files staff and officers attached
(:func:`attachments_seen_by`).

Some history lines are the hotline's own business (:data:`STAFF_ONLY_EVENTS`: a refused
reclassification names the restricted topic the supervisors had in mind): agencies do not
read them (:func:`history_seen_by`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, false, not_, or_, select, true

from accounts.identity import Actor
from accounts.models import Role
from core.settings import TicketSettings
from tickets.models import Agency, Attachment, Ticket, TicketEvent

#: The ticket's columns that say who reported it.
IDENTITY = ("citizen_name", "citizen_phone", "citizen_address", "reporter_email")
#: What a withheld identity field reads as in the history.
WITHHELD = "***"
#: The pseudonym's word, by language (Vietnamese first).
CITIZEN_WORD = {"vi": "Công dân", "en": "Citizen"}
HOTLINE_STAFF = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
#: The history lines an agency never reads: a reclassification into a restricted domain
#: or topic refused because an agency not cleared for it holds the report (it would tell
#: that agency what the supervisors suspect: tickets.service.TicketService.update).
RESTRICTION_REFUSED = "restriction_refused"
STAFF_ONLY_EVENTS = frozenset({RESTRICTION_REFUSED})


def restricted(ticket: Ticket, settings: TicketSettings) -> bool:
    """Of a restricted domain or topic (whatever the citizen chose)."""
    return restricted_as(ticket.domain, ticket.topic, settings)


def restricted_as(domain: str, topic: str, settings: TicketSettings) -> bool:
    """Whether a report of ``domain`` and ``topic`` is restricted (before it exists)."""
    c = settings.confidential
    return str(domain) in c.domains or topic in c.topics


def cleared_agency(agency: Agency, settings: TicketSettings) -> bool:
    """Whether a restricted report may go to ``agency`` (its officers could read it)."""
    return agency.code in settings.confidential.agencies


def restricted_clause(settings: TicketSettings) -> ColumnElement[bool]:
    """:func:`restricted` as a condition on ``Ticket``."""
    c = settings.confidential
    clauses: list[ColumnElement[bool]] = []
    if c.domains:
        clauses.append(Ticket.domain.in_(list(c.domains)))
    if c.topics:
        clauses.append(Ticket.topic.in_(list(c.topics)))
    return or_(*clauses) if clauses else false()


def is_system(actor: Actor) -> bool:
    """The application's own steps (escalation, the survey, the command line)."""
    return actor.id is None and actor.role == Role.ADMIN


def cleared_for(actor: Actor, settings: TicketSettings) -> ColumnElement[bool]:
    """The tickets confidentiality lets ``actor`` see (the rest of who sees what is
    :func:`tickets.queries.visible_to`'s): every unrestricted one, and the restricted
    ones the actor is cleared for (see the module's docstring)."""
    c = settings.confidential
    if is_system(actor):
        return true()
    if actor.role == Role.OVERSIGHT:
        return true() if c.oversight_scope == "all" else restricted_clause(settings)
    open_ = not_(restricted_clause(settings))
    if actor.role in HOTLINE_STAFF:
        if actor.username is not None and actor.username.lower() in c.readers:
            return true()
        if actor.id is None:  # the web form, Open311, the screen-pop: nobody's own
            return open_
        return or_(open_, Ticket.created_by == actor.id)
    if actor.role == Role.AGENCY and actor.agency_id is not None and c.agencies:
        office = (
            select(Agency.id)
            .where(Agency.id == actor.agency_id, Agency.code.in_(c.agencies))
            .exists()
        )
        return or_(open_, office)
    return open_


def is_cleared(actor: Actor, ticket: Ticket, settings: TicketSettings) -> bool:
    """:func:`cleared_for` decided on a loaded ticket, for every role but the agencies
    (whose clearance is their agency's code: asked of the database).  A test checks that
    the two agree."""
    c = settings.confidential
    if actor.role == Role.AGENCY:
        raise ValueError("an agency officer's clearance is asked of the database")
    if is_system(actor):
        return True
    if actor.role == Role.OVERSIGHT:
        return c.oversight_scope == "all" or restricted(ticket, settings)
    if not restricted(ticket, settings):
        return True
    named = actor.username is not None and actor.username.lower() in c.readers
    return named or (actor.id is not None and ticket.created_by == actor.id)


def sees_identity(actor: Actor, ticket: Ticket) -> bool:
    """Whether the actor sees who reported the ticket (see the module's docstring)."""
    if actor.role in HOTLINE_STAFF or actor.role == Role.OVERSIGHT:
        return True
    return bool(ticket.identity_consent)


def pseudonym(ticket_id: int, language: str = "vi") -> str:
    """The name an agency reads instead of the citizen's: the same for a ticket every
    time, and telling nothing of the citizen (only of the ticket's id)."""
    tag = hashlib.sha256(f"hotline-ticket-{ticket_id}".encode()).hexdigest()[:6].upper()
    return f"{CITIZEN_WORD.get(language, CITIZEN_WORD['vi'])} #{tag}"


def seen_by(actor: Actor, ticket: Ticket) -> Ticket:
    """The ticket as ``actor`` may read it: itself, or a detached copy with the identity
    withheld (never added to a session, so it is never written)."""
    if sees_identity(actor, ticket):
        return ticket
    copy = Ticket(**{col.key: getattr(ticket, col.key) for col in Ticket.__table__.columns})
    copy.citizen_name = pseudonym(ticket.id, actor.language)
    copy.citizen_phone = None
    copy.citizen_address = None
    copy.reporter_email = None
    copy.search_text = ""
    return copy


def details_seen_by(actor: Actor, ticket: Ticket, details: dict[str, Any]) -> dict[str, Any]:
    """A history line's details as ``actor`` may read them: the identity fields
    blanked (an edit's ``[old, new]`` both) when the actor does not see it."""
    if sees_identity(actor, ticket):
        return details
    shown: dict[str, Any] = {}
    for key, value in details.items():
        if key in IDENTITY:
            value = [WITHHELD, WITHHELD] if isinstance(value, list) else WITHHELD
        shown[key] = value
    return shown


def sees_attachment(actor: Actor, ticket: Ticket, attachment: Attachment) -> bool:
    """Whether the actor may see one of the ticket's files: a file staff or an officer
    attached (``added_by``) whoever may see the ticket; the citizen's own (a photo of the
    web form, a mail's attachment) only those who see who reported it."""
    return attachment.added_by is not None or sees_identity(actor, ticket)


def attachments_seen_by(
    actor: Actor, ticket: Ticket, attachments: Sequence[Attachment]
) -> list[Attachment]:
    """The ticket's files the actor may see (:func:`sees_attachment`), in their order."""
    return [a for a in attachments if sees_attachment(actor, ticket, a)]


def history_seen_by(
    actor: Actor, ticket: Ticket, events: Sequence[TicketEvent]
) -> list[TicketEvent]:
    """A ticket's history as ``actor`` may read it: without the hotline's own lines
    (:data:`STAFF_ONLY_EVENTS`) for an agency, and :func:`details_seen_by` on each line,
    on detached copies."""
    if actor.role == Role.AGENCY:
        events = [e for e in events if e.action not in STAFF_ONLY_EVENTS]
    if sees_identity(actor, ticket):
        return list(events)
    shown = []
    for event in events:
        copy = TicketEvent(
            **{col.key: getattr(event, col.key) for col in TicketEvent.__table__.columns}
        )
        details = details_seen_by(actor, ticket, json.loads(event.details or "{}"))
        copy.details = json.dumps(details, ensure_ascii=False, sort_keys=True)
        shown.append(copy)
    return shown

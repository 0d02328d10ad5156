"""What of a ticket the public may ever see: the one rule for the portal and Open311.

A report is published only when all of these hold:

- it is completed (closed, with the agency's result or a closing note): reports
  still in transfer are never shown;
- the citizen agreed to publication (asked on the call or on the web form);
- no admin withheld it;
- it is not of the Party-building domain and its topic is not one of
  ``tickets.never_public_topics`` (denunciations, corruption by default).

:func:`published` is the SQL form for lists, :func:`is_published` the same test
on a loaded ticket; a test checks that they agree.  What of a published report
may be shown (never the citizen's name, phone, email or address, nor the staff
who handled it) is :data:`PUBLIC_FIELDS`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_

from core.settings import TicketSettings
from tickets.models import Domain, Status, Ticket

#: The columns a public page or Open311 may show of a published report.
PUBLIC_FIELDS = (
    "number",
    "channel",
    "domain",
    "topic",
    "level",
    "district",
    "description",
    "status",
    "agency_id",
    "result",
    "created_at",
    "forwarded_at",
    "closed_at",
)


def restricted(ticket: Ticket, settings: TicketSettings) -> bool:
    """Of a domain or topic that is never published, whatever the citizen chose."""
    return ticket.domain == Domain.PARTY or ticket.topic in settings.never_public_topics


def is_published(ticket: Ticket, settings: TicketSettings) -> bool:
    return (
        ticket.status == Status.CLOSED
        and bool(ticket.publish_consent)
        and not ticket.withheld
        and not restricted(ticket, settings)
    )


def published(settings: TicketSettings) -> ColumnElement[bool]:
    """The WHERE clause of :func:`is_published`."""
    clauses = [
        Ticket.status == Status.CLOSED.value,
        Ticket.publish_consent.is_(True),
        Ticket.withheld.is_(False),
        Ticket.domain != Domain.PARTY.value,
    ]
    if settings.never_public_topics:
        clauses.append(Ticket.topic.not_in(settings.never_public_topics))
    return and_(*clauses)

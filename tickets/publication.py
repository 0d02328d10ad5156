"""What of a ticket the public may ever see: the one rule for the portal and Open311.

A report is published only when all of these hold:

- it is completed (closed, with the agency's result or a closing note): reports
  still in transfer are never shown;
- the citizen agreed to publication (asked on the call or on the web form);
- no admin withheld it;
- it is not restricted (:mod:`tickets.confidential`: the Party-building domain,
  denunciations and corruption by default).

:func:`published` is the SQL form for lists, :func:`is_published` the same test
on a loaded ticket; a test checks that they agree.  What of a published report
may be shown (never the citizen's name, phone, email or address, nor the staff
who handled it) is :data:`PUBLIC_FIELDS`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, not_

from core.settings import TicketSettings
from tickets.confidential import restricted, restricted_clause
from tickets.models import Status, Ticket

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


def is_published(ticket: Ticket, settings: TicketSettings) -> bool:
    return (
        ticket.status == Status.CLOSED
        and bool(ticket.publish_consent)
        and not ticket.withheld
        and not restricted(ticket, settings)
    )


def published(settings: TicketSettings) -> ColumnElement[bool]:
    """The WHERE clause of :func:`is_published`."""
    return and_(
        Ticket.status == Status.CLOSED.value,
        Ticket.publish_consent.is_(True),
        Ticket.withheld.is_(False),
        not_(restricted_clause(settings)),
    )

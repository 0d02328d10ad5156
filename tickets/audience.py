"""Who may hear of a ticket: where an alert about it may be published or mailed.

An alert names its ticket (the code, the topic, the agency).  Sent to someone who may not
see the ticket, it tells what confidentiality keeps (:mod:`tickets.confidential`), so
every alert about one ticket is addressed here, with the rule the lists and the pages use
(:func:`tickets.queries.visible_to`):

- **supervisors and admins**: an unrestricted ticket goes on their shared topic
  ``alerts``, as ever; a restricted one only on the own topic (``user.<id>``, which the
  panel's hub passes to that user's pages) of each active supervisor or admin cleared for
  it (named in ``tickets.confidential.readers``);
- **agencies**: an agency's topic ``agency.<id>``, or its email, only when its officers
  see the ticket (:meth:`Audience.agencies_seeing`: ``visible_to`` for an officer of that
  agency): a restricted report's alert never reaches a parent agency or a co-agency that
  is not cleared for it.

The overdue watch (:mod:`tickets.alerts`), the reminders (:mod:`tickets.review.reminders`),
the review's and the repeats' alerts, and the agencies' emails (:mod:`notify.planner`)
use it; the daily digest, mailed to addresses rather than accounts, leaves restricted
reports out and counts them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select

from accounts.identity import Actor
from accounts.models import Role, User
from core.bus import Bus
from core.db import Database
from core.settings import Settings
from tickets.confidential import is_cleared, restricted
from tickets.models import Ticket
from tickets.notify import user_topic
from tickets.queries import visible_to

log = logging.getLogger(__name__)

#: The supervisors' and admins' shared topic (panel/hub.py).
ALERTS = "alerts"
LEADS = (Role.SUPERVISOR, Role.ADMIN)


def agency_topic(agency_id: int) -> str:
    """The bus topic of one agency's officers' pages (panel/hub.py)."""
    return f"agency.{agency_id}"


def officer_of(agency_id: int) -> Actor:
    """Any officer of the agency, as the visibility rule sees them."""
    return Actor(id=None, name=f"agency {agency_id}", role=Role.AGENCY, agency_id=agency_id)


class Audience:
    """Addresses alerts about one ticket to those who may see it (module docstring)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def staff_topics(self, ticket: Ticket) -> list[str]:
        """Where the supervisors and admins hear of the ticket: ``alerts``, or for a
        restricted one each cleared account's own topic (none: no one is told)."""
        settings = self.settings.tickets
        if not restricted(ticket, settings):
            return [ALERTS]
        named = sorted(settings.confidential.readers)
        if not named:
            return []
        async with self.db.session() as s:
            users = (
                await s.scalars(
                    select(User).where(
                        User.active.is_(True),
                        User.role.in_([r.value for r in LEADS]),
                        func.lower(User.username).in_(named),
                    )
                )
            ).all()
        return [
            user_topic(u.id)
            for u in sorted(users, key=lambda u: u.id)
            if is_cleared(Actor.of(u), ticket, settings)
        ]

    async def agencies_seeing(self, ticket_id: int, agency_ids: Iterable[int | None]) -> list[int]:
        """Those of ``agency_ids`` whose officers see the ticket now, in their order."""
        wanted = [a for a in dict.fromkeys(agency_ids) if a is not None]
        if not wanted:
            return []
        settings = self.settings.tickets
        seeing = []
        async with self.db.session() as s:
            for agency_id in wanted:
                found = await s.scalar(
                    select(Ticket.id).where(
                        Ticket.id == ticket_id, visible_to(officer_of(agency_id), settings)
                    )
                )
                if found is not None:
                    seeing.append(agency_id)
        return seeing

    async def topics(
        self, ticket: Ticket, *, staff: bool = True, agencies: Sequence[int | None] = ()
    ) -> list[str]:
        """Every topic an alert about ``ticket`` goes to: the staff's (``staff``) and those
        of ``agencies`` that see it."""
        found = await self.staff_topics(ticket) if staff else []
        found += [agency_topic(a) for a in await self.agencies_seeing(ticket.id, agencies)]
        return found

    async def publish(
        self,
        bus: Bus,
        ticket: Ticket,
        message: dict[str, Any],
        *,
        staff: bool = True,
        agencies: Sequence[int | None] = (),
    ) -> list[str]:
        """Publish ``message`` to :meth:`topics`; returns the topics it went to."""
        topics = await self.topics(ticket, staff=staff, agencies=agencies)
        for topic in topics:
            await bus.publish(topic, message)
        if restricted(ticket, self.settings.tickets):
            log.info(
                "ticket %s is restricted: its %s alert went only to %s",
                ticket.code,
                message.get("type"),
                ", ".join(topics) or "no one cleared",
            )
        return topics

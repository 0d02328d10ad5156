"""Reminders before a deadline: the agency's officers hear of it ahead of time.

``[tickets] remind_before_hours`` before a ticket's deadline, while the ticket is with
its agency (FORWARDED, ACCEPTED), one reminder is published on the agency's bus topic
(``agency.<id>``, panel/hub.py passes it to its officers' pages), if its officers may see
the ticket (:mod:`tickets.audience`).  A closed ticket has none: nor have the parts
closed with it (tickets.handling).  The overdue watch
(:class:`tickets.alerts.OverdueWatch`) runs :meth:`DeadlineReminders.check` on its own
schedule, after escalating what is overdue.

Once per deadline: a :class:`~tickets.review.models.DeadlineReminder` row, unique per
ticket and deadline, is committed before the reminder is published, so a restart (or a
second process running the same check) never sends it twice; a deadline moved by an
extension is a new deadline and is reminded again.  Committing first means a crash
between the commit and the publish loses that one reminder rather than repeating it:
the ticket page and the officers' inbox still show the deadline.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from tickets.audience import Audience
from tickets.models import WITH_AGENCY, Agency, Ticket
from tickets.review.models import DeadlineReminder

log = logging.getLogger(__name__)


class DeadlineReminders:
    """Sends each due reminder once (see the module's docstring)."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, bus: Bus) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.audience = Audience(db, settings)

    @property
    def before(self) -> timedelta | None:
        hours = self.settings.tickets.remind_before_hours
        return timedelta(hours=hours) if hours else None

    async def due(self, now: datetime) -> list[tuple[Ticket, str]]:
        """Tickets whose reminder is due now and not yet sent, with their agency's name."""
        before = self.before
        if before is None:
            return []
        sent = (
            select(DeadlineReminder.id)
            .where(
                DeadlineReminder.ticket_id == Ticket.id,
                DeadlineReminder.deadline_at == Ticket.deadline_at,
            )
            .exists()
        )
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Ticket, Agency.name)
                    .join(Agency, Agency.id == Ticket.agency_id)
                    .where(
                        and_(
                            Ticket.status.in_([st.value for st in WITH_AGENCY]),
                            Ticket.deadline_at > now,
                            Ticket.deadline_at <= now + before,
                            ~sent,
                        )
                    )
                    .order_by(Ticket.deadline_at, Ticket.id)
                )
            ).all()
        return [(t, name) for t, name in rows]

    async def check(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Send the reminders due now; returns what was published."""
        now = now or self.clock.now()
        sent: list[dict[str, Any]] = []
        for ticket, agency_name in await self.due(now):
            assert ticket.deadline_at is not None and ticket.agency_id is not None
            try:
                async with self.db.session() as s:
                    s.add(
                        DeadlineReminder(
                            ticket_id=ticket.id,
                            deadline_at=ticket.deadline_at,
                            agency_id=ticket.agency_id,
                            sent_at=now,
                        )
                    )
            except IntegrityError:
                continue  # another process sent this one meanwhile
            message = {
                "type": "deadline_soon",
                "code": ticket.code,
                "status": ticket.status,
                "deadline_at": ticket.deadline_at.isoformat(),
                "hours_left": round((ticket.deadline_at - now).total_seconds() / 3600, 1),
                "agency_id": ticket.agency_id,
                "agency": agency_name,
            }
            log.info(
                "ticket %s: reminded %s of its deadline %s",
                ticket.code,
                agency_name,
                ticket.deadline_at,
            )
            # to the agency's officers if they may see it (tickets.audience)
            if await self.audience.publish(
                self.bus, ticket, message, staff=False, agencies=[ticket.agency_id]
            ):
                sent.append(message)
        return sent

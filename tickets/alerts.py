"""The overdue watch: escalates tickets past their deadline and alerts people at once.

Every ``tickets.overdue_check_seconds`` it asks the service to escalate what
is overdue, then publishes one alert per ticket on the bus: to supervisors
(``alerts``), to the agency that holds it and to its parent agency
(``agency.<id>``), whose officers see escalated tickets of their children.  An overdue
part of a ticket with several agencies (tickets.handling: a co-handling agency's, a
delegation's) is alerted the same way, to its agency and to the agency that delegated it.
Then, with ``reminders`` given, it sends the reminders due before a deadline
(:mod:`tickets.review.reminders`: once per deadline, stored).
The ``on_escalated`` hooks hear of them too (the emails to both agencies).

Each alert goes only to those who may see its ticket (:mod:`tickets.audience`): a
restricted report's alert reaches the supervisors cleared for it on their own topics
rather than ``alerts``, and never an agency (a parent, a co-agency) that is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.bus import Bus
from core.clock import Clock
from tickets.agencies import AgencyService
from tickets.audience import Audience
from tickets.exceptions import AgencyNotFound
from tickets.handling.service import AssignmentService
from tickets.models import Agency, Ticket
from tickets.review.reminders import DeadlineReminders
from tickets.service import TicketService

log = logging.getLogger(__name__)


class OverdueWatch:
    def __init__(
        self,
        tickets: TicketService,
        agencies: AgencyService,
        bus: Bus,
        clock: Clock,
        interval: float,
        parts: AssignmentService | None = None,
        reminders: DeadlineReminders | None = None,
    ) -> None:
        self.tickets = tickets
        self.parts = parts
        self.agencies = agencies
        self.bus = bus
        self.clock = clock
        self.interval = interval
        self.reminders = reminders
        self.audience = Audience(tickets.db, tickets.settings)
        self._task: asyncio.Task[None] | None = None
        # called with the tickets escalated in a round, after the alerts (the agency
        # and its parent agency are told by email: notify.planner)
        self.on_escalated: list[Callable[[list[Ticket]], Awaitable[object]]] = []

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="overdue-watch")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
                if self.reminders is not None:
                    await self.reminders.check(self.clock.now())
            except Exception:  # noqa: BLE001 - a database hiccup must not end the watch
                log.exception("overdue check failed; trying again in %s s", self.interval)
            await asyncio.sleep(self.interval)

    async def check(self) -> list[Ticket]:
        """Escalate and announce what is overdue now; returns the tickets escalated."""
        escalated = await self.tickets.escalate_overdue(self.clock.now())
        for t in escalated:
            agency: Agency | None = None
            if t.agency_id:
                with contextlib.suppress(AgencyNotFound):
                    agency = await self.agencies.get(t.agency_id)
            alert = {
                "type": "overdue",
                "code": t.code,
                "level": t.level,
                "status": t.status,
                "deadline_at": t.deadline_at.isoformat() if t.deadline_at else None,
                "agency_id": t.agency_id,
                "agency": agency.name if agency else None,
                "escalations": t.escalations,
            }
            log.warning(
                "ticket %s overdue (deadline %s, agency %s): escalated",
                t.code,
                alert["deadline_at"],
                alert["agency"],
            )
            await self.audience.publish(
                self.bus, t, alert, agencies=[t.agency_id, agency.parent_id if agency else None]
            )
        if self.parts is not None:
            await self._parts_overdue()
        if escalated:
            for hook in self.on_escalated:
                try:
                    await hook(escalated)
                except Exception:  # noqa: BLE001 - escalated and alerted; the email is extra
                    log.exception("telling of %d escalated tickets failed", len(escalated))
        return escalated

    async def _parts_overdue(self) -> None:
        assert self.parts is not None
        for part, t in await self.parts.escalate_overdue(self.clock.now()):
            name = None
            with contextlib.suppress(AgencyNotFound):
                name = (await self.agencies.get(part.agency_id)).name
            alert = {
                "type": "overdue",
                "code": t.code,
                "level": t.level,
                "status": part.status,
                "deadline_at": part.deadline_at.isoformat() if part.deadline_at else None,
                "agency_id": part.agency_id,
                "agency": name,
                "part": part.id,
                "role": part.role,
            }
            await self.audience.publish(
                self.bus, t, alert, agencies=[part.agency_id, part.from_agency_id]
            )

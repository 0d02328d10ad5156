"""The overdue watch: escalates tickets past their deadline and alerts people at once.

Every ``tickets.overdue_check_seconds`` it asks the service to escalate what
is overdue, then publishes one alert per ticket on the bus: to supervisors
(``alerts``), to the agency that holds it and to its parent agency
(``agency.<id>``), whose officers see escalated tickets of their children.
The ``on_escalated`` hooks hear of them too (the emails to both agencies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from core.bus import Bus
from core.clock import Clock
from tickets.agencies import AgencyService
from tickets.exceptions import AgencyNotFound
from tickets.models import Agency, Ticket
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
    ) -> None:
        self.tickets = tickets
        self.agencies = agencies
        self.bus = bus
        self.clock = clock
        self.interval = interval
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
            await self.bus.publish("alerts", alert)
            if t.agency_id:
                await self.bus.publish(f"agency.{t.agency_id}", alert)
            if agency and agency.parent_id:
                await self.bus.publish(f"agency.{agency.parent_id}", alert)
        if escalated:
            for hook in self.on_escalated:
                try:
                    await hook(escalated)
                except Exception:  # noqa: BLE001 - escalated and alerted; the email is extra
                    log.exception("telling of %d escalated tickets failed", len(escalated))
        return escalated

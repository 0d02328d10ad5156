"""Telling the agent who created a ticket that it is back on their desk.

When the agency answers a ticket or sends it back (:data:`tickets.workflow.NEEDS_CREATOR`),
:class:`~tickets.service.TicketService` calls its ``on_creator_needed`` hooks after the
commit; :class:`CreatorNotice` is the one the composition root installs.  It publishes on
the bus topic ``user.<id>`` of the creator; the panel's hub passes it to every open page of
that user (panel/hub.py), where panel.js shows it and keeps it until it is read.  Missed
notices are not lost: the agent's workspace lists "my tickets that need me" from the
tickets' statuses, not from these messages.
"""

from __future__ import annotations

import logging

from core.bus import Bus
from tickets.models import Ticket

log = logging.getLogger(__name__)


def user_topic(user_id: int) -> str:
    """The bus topic of one signed-in user's pages."""
    return f"user.{user_id}"


class CreatorNotice:
    """Publishes ``{"type": "ticket", ...}`` to the ticket's creator."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def __call__(self, ticket: Ticket, action: str) -> None:
        if ticket.created_by is None:
            return
        await self.bus.publish(
            user_topic(ticket.created_by),
            {
                "type": "ticket",
                "action": str(action),
                "code": ticket.code,
                "status": ticket.status,
            },
        )
        log.info("told user %s: ticket %s %s", ticket.created_by, ticket.code, action)

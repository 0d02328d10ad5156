"""Small writes of the review records made inside another action's transaction.

:mod:`tickets.service` calls :func:`withdraw_extension` when the agency answers or sends
a ticket back: an open extension request goes with the ticket leaving the agency (it
imports this module, which imports only tables, so there is no cycle).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.review.models import DeadlineExtension, ExtensionState


async def withdraw_extension(s: AsyncSession, ticket_id: int, now: datetime) -> bool:
    """Mark the ticket's open extension request withdrawn; whether there was one."""
    result = await s.execute(
        update(DeadlineExtension)
        .where(
            DeadlineExtension.ticket_id == ticket_id,
            DeadlineExtension.state == ExtensionState.OPEN.value,
        )
        .values(state=ExtensionState.WITHDRAWN.value, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]

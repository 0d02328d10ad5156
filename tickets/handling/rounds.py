"""What the ticket's own moves do to its other agencies' parts, inside the move's transaction.

:class:`tickets.service.TicketService` calls these with its session, before it writes the
ticket under its version check, so a part changes exactly when the ticket's move commits:

- :func:`set_co_agencies` when a supervisor forwards (or approves and forwards): the
  co-handling agencies are set to the list given; a kept one keeps its part, a removed
  one's open part (and what it delegated) is withdrawn, a new one gets a part with the
  lead's deadline;
- :func:`lead_answers` when the lead agency answers: refused while a co-handling agency
  has not answered (the lead combines their answers into its own), and the lead's own
  open delegations end (adopted, or overtaken by the lead's answer).

The functions here only read and write rows; the history line is the ticket move's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.exceptions import CO_PENDING, INACTIVE, LEAD_AS_CO, UNKNOWN, InvalidInput
from tickets.handling.models import OPEN, Assignment, Role, State
from tickets.models import Agency, Ticket

CO_FIELD = "co_agency_ids"


async def parts(s: AsyncSession, ticket_id: int) -> list[Assignment]:
    """Every part of the ticket besides the lead's, oldest first."""
    rows = await s.scalars(
        select(Assignment)
        .where(Assignment.ticket_id == ticket_id)
        .order_by(Assignment.created_at, Assignment.id)
    )
    return list(rows.all())


def open_co(rows: Sequence[Assignment]) -> dict[int, Assignment]:
    """The co-handling agencies' open parts, by agency."""
    return {
        r.agency_id: r
        for r in rows
        if r.role == Role.CO and r.status in (State.FORWARDED, State.ACCEPTED)
    }


def subtree(rows: Sequence[Assignment], root: int | None, from_agency: int | None) -> list[int]:
    """The ids of the delegations below a part: the row ``root``, or the lead's part
    (``root`` None and ``from_agency`` the lead agency), the part itself excluded."""
    below: list[int] = []
    frontier = [
        r.id
        for r in rows
        if r.role == Role.DELEGATED
        and r.parent_id == root
        and (root is not None or r.from_agency_id == from_agency)
    ]
    while frontier:
        below.extend(frontier)
        frontier = [r.id for r in rows if r.parent_id in frontier]
    return below


async def withdraw(s: AsyncSession, ids: Sequence[int], now: datetime) -> list[int]:
    """End the open parts among ``ids``; returns those ended."""
    if not ids:
        return []
    open_ids = list(
        (
            await s.scalars(
                select(Assignment.id).where(
                    Assignment.id.in_(ids), Assignment.status.in_([st.value for st in OPEN])
                )
            )
        ).all()
    )
    if open_ids:
        await s.execute(
            update(Assignment)
            .where(Assignment.id.in_(open_ids), Assignment.status.in_([st.value for st in OPEN]))
            .values(status=State.WITHDRAWN.value, ended_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return open_ids


async def set_co_agencies(
    s: AsyncSession,
    actor_id: int | None,
    ticket: Ticket,
    agency_ids: Sequence[int] | None,
    lead: int,
    deadline: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """Make the ticket's co-handling agencies exactly ``agency_ids`` (None: unchanged).

    Refused on ``co_agency_ids``: an unknown or inactive agency, or the lead itself.  A
    lead other than the previous one does not inherit the previous lead's delegations:
    they are withdrawn.  Returns the history details of the change (none if nothing
    changed).
    """
    rows = await parts(s, ticket.id)
    details: dict[str, Any] = {}
    if ticket.agency_id is not None and ticket.agency_id != lead:
        ended = await withdraw(s, subtree(rows, None, ticket.agency_id), now)
        if ended:
            details["withdrawn"] = ended
    if agency_ids is None:
        return details
    wanted = list(dict.fromkeys(int(a) for a in agency_ids))
    if lead in wanted:
        raise InvalidInput.one(CO_FIELD, LEAD_AS_CO)
    for agency_id in wanted:
        agency = await s.get(Agency, agency_id)
        if agency is None:
            raise InvalidInput.one(CO_FIELD, UNKNOWN)
        if not agency.active:
            raise InvalidInput.one(CO_FIELD, INACTIVE)
    current = open_co(rows)
    removed = [a for a in current if a not in wanted]
    added = [a for a in wanted if a not in current]
    ended = []
    for agency_id in removed:
        part = current[agency_id]
        ended += await withdraw(s, [part.id, *subtree(rows, part.id, None)], now)
    for agency_id in added:
        s.add(
            Assignment(
                ticket_id=ticket.id,
                agency_id=agency_id,
                role=Role.CO.value,
                parent_id=None,
                from_agency_id=None,
                deadline_at=deadline,
                status=State.FORWARDED.value,
                created_by=actor_id,
                created_at=now,
                updated_at=now,
            )
        )
    if added or removed:
        details["co_agencies"] = [sorted(current), sorted(wanted)]
        if ended:
            details["withdrawn"] = sorted({*details.get("withdrawn", []), *ended})
    return details


async def lead_answers(
    s: AsyncSession,
    ticket: Ticket,
    adopted: int | None,
    now: datetime,
) -> dict[str, Any]:
    """Check and record what the lead's answer ends; returns its history details.

    Refused (``result``, CO_PENDING naming the agencies) while a co-handling agency's
    part is open: the lead's answer is the combined one.  ``adopted`` is the lead's
    delegation whose answer the lead made its own (checked by the caller); the lead's
    other open delegations are withdrawn.
    """
    rows = await parts(s, ticket.id)
    waiting = open_co(rows)
    if waiting:
        names = []
        for agency_id in waiting:
            agency = await s.get(Agency, agency_id)
            names.append(agency.name if agency else str(agency_id))
        raise InvalidInput.one("result", CO_PENDING, agencies=", ".join(sorted(names)))
    details: dict[str, Any] = {}
    combined = [r.id for r in rows if r.role == Role.CO and r.status == State.ANSWERED]
    if combined:
        details["combined"] = combined
    below = subtree(rows, None, ticket.agency_id)
    if adopted is not None:
        await s.execute(
            update(Assignment)
            .where(Assignment.id == adopted)
            .values(status=State.ADOPTED.value, ended_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        details["adopted"] = adopted
    ended = await withdraw(s, [i for i in below if i != adopted], now)
    if ended:
        details["withdrawn"] = ended
    return details

"""What the ticket's own moves do to its other agencies' parts, inside the move's transaction.

:class:`tickets.service.TicketService` calls these with its session, before it writes the
ticket under its version check, so a part changes exactly when the ticket's move commits:

- :func:`set_co_agencies` when a supervisor forwards (or approves and forwards): the
  co-handling agencies are set to the list given; a kept one keeps its part, a removed
  one's open part (and what it delegated) is withdrawn, a new one gets a part with its
  own deadline as the supervisor set it (by default the lead's);
- :func:`lead_answers` when the lead agency answers: refused while a co-handling agency
  has not answered (the lead combines their answers into its own), and the lead's own
  open delegations end (adopted, or overtaken by the lead's answer);
- :func:`close_parts` when the ticket is closed: every part still open is closed with it,
  with the closing note as its reason (no reminder or overdue alert follows: both look
  only at open parts of tickets with their agencies);
- :func:`open_holders` when a ticket is reclassified: the agencies holding it now.

The functions here only read and write rows; the history line is the ticket move's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tickets.exceptions import (
    BEYOND_LEAD,
    CO_PENDING,
    IN_PAST,
    INACTIVE,
    LEAD_AS_CO,
    NEEDS_TIME_ZONE,
    NOT_CLEARED,
    NOT_CO,
    UNKNOWN,
    FieldError,
    InvalidInput,
)
from tickets.handling.models import OPEN, Assignment, Role, State
from tickets.models import WITH_AGENCY, Agency, Ticket

CO_FIELD = "co_agency_ids"
#: A co-handling agency's own deadline is refused by ``co_deadlines.<agency id>``.
CO_DEADLINES = "co_deadlines"


def deadline_field(agency_id: int) -> str:
    return f"{CO_DEADLINES}.{agency_id}"


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


def check_co_deadlines(
    deadlines: Mapping[int, datetime] | None,
    co: Sequence[int],
    lead_deadline: datetime | None,
    now: datetime,
    local: Callable[[datetime], str],
) -> dict[int, datetime]:
    """The co-handling agencies' own deadlines as the supervisor set them, in UTC.

    Each is refused by its field (``co_deadlines.<agency id>``, every one at once): for an
    agency that is not one of ``co``, without a time zone, not in the future, or later
    than the lead's deadline (``local`` writes it as the reader's clock shows it).
    """
    if not deadlines:
        return {}
    errors: list[FieldError] = []
    checked: dict[int, datetime] = {}
    for agency_id, moment in deadlines.items():
        name = deadline_field(agency_id)
        if agency_id not in co:
            errors.append(FieldError(name, NOT_CO))
        elif not isinstance(moment, datetime) or moment.utcoffset() is None:
            errors.append(FieldError(name, NEEDS_TIME_ZONE))
        elif moment.astimezone(UTC) <= now:
            errors.append(FieldError(name, IN_PAST))
        elif lead_deadline is not None and moment.astimezone(UTC) > lead_deadline:
            errors.append(FieldError(name, BEYOND_LEAD, {"deadline": local(lead_deadline)}))
        else:
            checked[agency_id] = moment.astimezone(UTC)
    if errors:
        raise InvalidInput(errors)
    return checked


async def set_co_agencies(
    s: AsyncSession,
    actor_id: int | None,
    ticket: Ticket,
    agency_ids: Sequence[int] | None,
    lead: int,
    deadline: datetime | None,
    now: datetime,
    *,
    deadlines: Mapping[int, datetime] | None = None,
    cleared: Callable[[Agency], bool] = lambda agency: True,
    local: Callable[[datetime], str] = lambda moment: moment.isoformat(),
) -> dict[str, Any]:
    """Make the ticket's co-handling agencies exactly ``agency_ids`` (None: unchanged).

    Refused on ``co_agency_ids``: an unknown or inactive agency, the lead itself, or (a
    restricted report: ``cleared`` says no) an agency not cleared for restricted reports.
    ``deadlines`` are the co-agencies' own deadlines (:func:`check_co_deadlines`): a new
    part gets its own or the lead's ``deadline``; a kept one its own if given (else it
    keeps the one it had).  A lead other than the previous one does not inherit the
    previous lead's delegations: they are withdrawn.  Returns the history details of
    the change (none if nothing changed).
    """
    rows = await parts(s, ticket.id)
    details: dict[str, Any] = {}
    if ticket.agency_id is not None and ticket.agency_id != lead:
        ended = await withdraw(s, subtree(rows, None, ticket.agency_id), now)
        if ended:
            details["withdrawn"] = ended
    current = open_co(rows)
    wanted = (
        list(current) if agency_ids is None else list(dict.fromkeys(int(a) for a in agency_ids))
    )
    if agency_ids is not None:
        if lead in wanted:
            raise InvalidInput.one(CO_FIELD, LEAD_AS_CO)
        for agency_id in wanted:
            agency = await s.get(Agency, agency_id)
            if agency is None:
                raise InvalidInput.one(CO_FIELD, UNKNOWN)
            if not agency.active:
                raise InvalidInput.one(CO_FIELD, INACTIVE)
            if not cleared(agency):
                raise InvalidInput.one(CO_FIELD, NOT_CLEARED)
    own = check_co_deadlines(deadlines, wanted, deadline, now, local)
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
                deadline_at=own.get(agency_id, deadline),
                status=State.FORWARDED.value,
                created_by=actor_id,
                created_at=now,
                updated_at=now,
            )
        )
    for agency_id, moment in own.items():
        kept = current.get(agency_id)
        if kept is not None and kept.deadline_at != moment:
            await s.execute(
                update(Assignment)
                .where(Assignment.id == kept.id)
                .values(deadline_at=moment, updated_at=now)
                .execution_options(synchronize_session=False)
            )
    if own:
        details[CO_DEADLINES] = {str(a): moment for a, moment in sorted(own.items())}
    if added or removed:
        details["co_agencies"] = [sorted(current), sorted(wanted)]
        if ended:
            details["withdrawn"] = sorted({*details.get("withdrawn", []), *ended})
    return details


async def close_parts(
    s: AsyncSession, ticket_id: int, reason: str | None, now: datetime
) -> list[int]:
    """Close every part of the ticket still open (the ticket is being closed), with
    ``reason`` (the closing note); returns their ids, for the closing's history line."""
    ids = [r.id for r in await parts(s, ticket_id) if r.status in OPEN]
    if ids:
        await s.execute(
            update(Assignment)
            .where(Assignment.id.in_(ids), Assignment.status.in_([st.value for st in OPEN]))
            .values(status=State.CLOSED.value, end_reason=reason, ended_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


async def open_holders(s: AsyncSession, ticket: Ticket) -> list[Agency]:
    """The agencies that hold the ticket now: the lead while the ticket is with it, and
    the agency of every open part (co-handling, delegated)."""
    ids = [r.agency_id for r in await parts(s, ticket.id) if r.status in OPEN]
    if ticket.agency_id is not None and ticket.status in WITH_AGENCY:
        ids.insert(0, ticket.agency_id)
    found = []
    for agency_id in dict.fromkeys(ids):
        agency = await s.get(Agency, agency_id)
        if agency is not None:
            found.append(agency)
    return found


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

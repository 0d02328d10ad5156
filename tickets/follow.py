"""What a citizen may hear of their reports by phone (the IVR's ``follow`` action).

Two reads, each in its own short session:

- :meth:`FollowQueries.open_reports`: the caller's open reports found by caller ID,
  newest first, at most a few, and how many there are in all;
- :meth:`FollowQueries.by_number`: any report by its 10-digit tracking number, as
  keyed on the phone (a wrong check digit is refused before any look-up).

Both answer with :class:`Followed`, which holds what may be said to whoever has the
number or the phone: never the citizen's name, phone or address, which it does not
even carry.  The caller ID is normalised as for the agent's screen-pop
(:meth:`tickets.queries.TicketQueries.for_phone`), so both find the same tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select

from core.db import Database
from tickets.exceptions import TicketNotFound
from tickets.models import OPEN_STATUSES, Agency, Ticket
from tickets.numbers import parse_number
from tickets.schemas import normalize_phone

_OPEN = [s.value for s in OPEN_STATUSES]


@dataclass(frozen=True)
class Followed:
    """One report as the citizen hears it: no personal data."""

    number: str  # 10 digits
    topic: str  # the topic's id (settings.tickets.topics)
    status: str  # tickets.models.Status value
    level: int
    created_at: datetime
    # the agency's name once the report was sent to it (never a pre-filled one)
    agency: str | None
    deadline_at: datetime | None
    meeting_at: datetime | None
    result: str | None  # the agency's answer


@dataclass(frozen=True)
class OpenReports:
    reports: list[Followed]  # newest first, at most the limit asked
    total: int  # all the caller's open reports


def caller_phone(number: str | None) -> str | None:
    """The caller ID as tickets store phone numbers, or None when it cannot be one."""
    try:
        return normalize_phone(number)
    except ValueError:  # PydanticCustomError: not a phone number
        return None


def _select() -> Select[Ticket, str]:
    return select(Ticket, Agency.name).outerjoin(Agency, Agency.id == Ticket.agency_id)


def _followed(ticket: Ticket, agency: str | None) -> Followed:
    return Followed(
        number=ticket.number,
        topic=ticket.topic,
        status=ticket.status,
        level=ticket.level,
        created_at=ticket.created_at,
        agency=agency if ticket.forwarded_at is not None else None,
        deadline_at=ticket.deadline_at,
        meeting_at=ticket.meeting_at,
        result=ticket.result,
    )


class FollowQueries:
    """Reads for the IVR's report follow-up."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open_reports(self, phone: str | None, limit: int) -> OpenReports:
        """The open reports made from ``phone`` (a caller ID), newest first, at most ``limit``.

        No caller ID, or one that is not a phone number: none.
        """
        number = caller_phone(phone)
        if number is None:
            return OpenReports([], 0)
        mine = (Ticket.citizen_phone == number, Ticket.status.in_(_OPEN))
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(Ticket).where(*mine))
            rows = await s.execute(
                _select()
                .where(*mine)
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(max(1, limit))
            )
            reports = [_followed(t, name) for t, name in rows.all()]
        return OpenReports(reports, total or 0)

    async def by_number(self, raw: str) -> Followed:
        """The report with tracking number ``raw`` (as keyed), open or closed.

        InvalidCode when ``raw`` cannot be a number (wrong check digit, length, a
        symbol): nothing is looked up; TicketNotFound when no report has it.
        """
        number = parse_number(raw)
        async with self.db.session() as s:
            row = (await s.execute(_select().where(Ticket.number == number))).first()
        if row is None:
            raise TicketNotFound(number)
        return _followed(row[0], row[1])

    async def by_id(self, ticket_id: int) -> Followed:
        """The report with this id (the result call names it); TicketNotFound if none."""
        async with self.db.session() as s:
            row = (await s.execute(_select().where(Ticket.id == ticket_id))).first()
        if row is None:
            raise TicketNotFound(ticket_id)
        return _followed(row[0], row[1])

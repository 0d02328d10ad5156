"""The status page's look-up: a tracking number and a proof that it is the citizen's.

The citizen gives the tracking number read out to them (10 digits with a
check digit; the older letter code works too) and either the last three
digits of the phone number on the report or the email they gave.  What comes
back (:class:`StatusView`) is what the citizen may read of their own report:
its status, the dates and names of its steps (received, forwarded to which
agency, answered, closed ...), the deadline and the agency's result; never a
name, phone, email or address, the citizen's or a staff member's, nor the
staff's internal notes.  Any mismatch is the one :class:`NoMatch`, and so is a
restricted report (tickets.confidential: Party building, denunciations, corruption),
which never leaves the system by the public side: its citizen follows it by phone.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, and_, bindparam, select

from core.clock import Clock
from core.db import Database
from core.settings import Settings
from public.exceptions import (
    BAD_CHARACTER,
    CHECK,
    NOT_A_NUMBER,
    NOT_TEXT,
    REQUIRED,
    TOO_LONG,
    WRONG_CHECK_DIGIT,
    BadInput,
    NoMatch,
)
from tickets.agencies import AgencyService
from tickets.confidential import restricted
from tickets.exceptions import InvalidCode, InvalidInput
from tickets.models import OPEN_STATUSES, Status, Ticket, TicketEvent
from tickets.numbers import format_number, number_like
from tickets.queries import TicketQueries

NUMBER_MAX = 40
CHECK_MAX = 200
_SPACES = re.compile(r"\s+")

# History lines the citizen sees, by the action they record (tickets.service.Action);
# the others (edits, comments, withholding) are the staff's.
STEPS = {
    "created": "received",
    "approved": "approved",
    "forwarded": "forwarded",
    "accepted": "accepted",
    "answered": "answered",
    "returned": "reassigned",
    "meeting_scheduled": "meeting_scheduled",
    "escalated": "escalated",
    "closed": "closed",
}
# Steps named with the agency that has the report.
WITH_AGENCY = ("forwarded", "accepted", "answered")


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str  # a value of STEPS
    agency: str | None = None  # the agency's name, for WITH_AGENCY steps


@dataclass(frozen=True)
class StatusView:
    number: str  # grouped, as read out
    status: str
    topic: str
    level: int
    created_at: datetime
    deadline_at: datetime | None
    closed_at: datetime | None
    agency: str | None
    result: str | None
    steps: list[Step] = field(default_factory=list)


def text_field(name: str, value: Any, max_len: int) -> str:
    """A required text field, stripped: BadInput naming ``name`` otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadInput(name, REQUIRED)
    if not isinstance(value, str):
        raise BadInput(name, NOT_TEXT)
    text = value.strip()
    if len(text) > max_len:
        raise BadInput(name, TOO_LONG, max=max_len)
    if "\x00" in text:
        raise BadInput(name, BAD_CHARACTER)
    return text


def _last_digits(phone: str | None) -> str | None:
    digits = "".join(c for c in phone or "" if c.isascii() and c.isdigit())
    return digits[-3:] if len(digits) >= 3 else None


# What the look-up reads of the ticket: the proof (phone, email) and what the page shows.
_TICKET = (
    Ticket.number,
    Ticket.status,
    Ticket.topic,
    Ticket.domain,
    Ticket.level,
    Ticket.created_at,
    Ticket.deadline_at,
    Ticket.closed_at,
    Ticket.agency_id,
    Ticket.result,
    Ticket.guidance,
    Ticket.citizen_phone,
    Ticket.reporter_email,
)
# ... and of its history, the lines the citizen sees (STEPS) only.
_EVENT = (
    TicketEvent.action,
    TicketEvent.from_status,
    TicketEvent.to_status,
    TicketEvent.details,
    TicketEvent.at,
)


def _lookup(column: Any) -> Select[Any]:
    """The look-up's one query: the ticket whose ``column`` is ``:key``, joined with its
    public history lines, oldest first (built once: a look-up only binds the key)."""
    return (
        select(*_TICKET, *_EVENT)
        .select_from(Ticket)
        .outerjoin(
            TicketEvent,
            and_(TicketEvent.ticket_id == Ticket.id, TicketEvent.action.in_(list(STEPS))),
        )
        .where(column == bindparam("key"))
        .order_by(TicketEvent.at, TicketEvent.id)
    )


_LOOKUPS = {"number": _lookup(Ticket.number), "code": _lookup(Ticket.code)}


class Event(Protocol):
    """What :func:`steps` reads of a history line (a TicketEvent, or a row of one)."""

    @property
    def action(self) -> str: ...
    @property
    def from_status(self) -> str | None: ...
    @property
    def to_status(self) -> str | None: ...
    @property
    def details(self) -> str | None: ...
    @property
    def at(self) -> datetime: ...


class StatusLookup:
    def __init__(
        self, db: Database, settings: Settings, agencies: AgencyService, clock: Clock
    ) -> None:
        self.db = db
        self.settings = settings
        self.agencies = agencies
        self.queries = TicketQueries(db, settings, clock)

    @staticmethod
    def check_input(number: Any, check: Any) -> tuple[str, str]:
        """Both fields present, of a sane size and shape (before any look-up or count)."""
        number_text = text_field("number", number, NUMBER_MAX)
        check_text = _SPACES.sub("", text_field("check", check, CHECK_MAX))
        if "@" not in check_text and not (
            len(check_text) == 3 and check_text.isascii() and check_text.isdigit()
        ):
            raise BadInput("check", CHECK)
        return number_text, check_text

    async def find(self, number: str, check: str) -> StatusView:
        """The report with tracking ``number`` if ``check`` proves it is the caller's.

        BadInput on ``number`` when it cannot be a tracking number (a typo the
        check digit caught); :class:`NoMatch` for everything else.

        One query reads the ticket and its public history lines together (a
        look-up is the public side's busiest request); the agencies' names
        come from the directory the AgencyService keeps for a few seconds.
        """
        number, check = self.check_input(number, check)
        try:
            column, key = self.queries.code_key(number)
        except InvalidInput:
            raw = number_like(number) or number
            raise BadInput("number", WRONG_CHECK_DIGIT, number=format_number(raw)) from None
        except InvalidCode:
            raise BadInput("number", NOT_A_NUMBER) from None
        statement = _LOOKUPS[column]
        rows = await self.db.read(lambda conn: conn.execute(statement, {"key": key}).all())
        if (
            not rows
            or restricted(rows[0], self.settings.tickets)
            or not self._proves(rows[0], check)
        ):
            raise NoMatch()
        history = [row for row in rows if row.action is not None]
        return self._view(rows[0], history, (await self.agencies.directory()).names)

    @staticmethod
    def _proves(ticket: Any, check: str) -> bool:
        """Whether ``check`` (the last 3 phone digits or the email) is the ticket's."""
        if "@" in check:
            given = (ticket.reporter_email or "").strip().casefold()
            return bool(given) and hmac.compare_digest(given.encode(), check.casefold().encode())
        last = _last_digits(ticket.citizen_phone)
        return last is not None and hmac.compare_digest(last, check)

    @staticmethod
    def _view(ticket: Any, history: Sequence[Event], names: dict[int, str]) -> StatusView:
        return StatusView(
            number=format_number(ticket.number),
            status=ticket.status,
            topic=ticket.topic,
            level=ticket.level,
            created_at=ticket.created_at,
            deadline_at=ticket.deadline_at if ticket.status in OPEN_STATUSES else None,
            closed_at=ticket.closed_at,
            agency=names.get(ticket.agency_id) if ticket.agency_id else None,
            # the agency's answer; for a question answered on the call, what the agent said
            result=ticket.result or (ticket.guidance if ticket.level == 1 else None),
            steps=steps(history, names),
        )


def steps(history: Sequence[Event], names: dict[int, str]) -> list[Step]:
    """The history's public steps, oldest first, the agency named where one has the report.

    A creation or an approval that sent the report straight to an agency is
    also its "forwarded" step; a creation that closed it (a question answered
    on the call) also its "closed" step.
    """
    out: list[Step] = []
    agency: int | None = None
    for e in history:
        kind = STEPS.get(e.action)
        if kind is None:
            continue
        moved_to = _agency_in(e)
        if moved_to is not None:
            agency = moved_to
        kinds = [kind]
        if kind != "forwarded" and e.to_status == Status.FORWARDED != e.from_status:
            kinds.append("forwarded")
        if kind != "closed" and e.to_status == Status.CLOSED != e.from_status:
            kinds.append("closed")
        for k in kinds:
            named = names.get(agency) if k in WITH_AGENCY and agency is not None else None
            out.append(Step(e.at, k, named))
    return out


def _agency_in(event: Event) -> int | None:
    """The agency an event gave the report to (its details' "agency"), if any."""
    try:
        details = json.loads(event.details or "{}")
    except ValueError:
        return None
    target = details.get("agency") if isinstance(details, dict) else None
    if isinstance(target, list) and target:
        target = target[-1]
    return target if isinstance(target, int) and not isinstance(target, bool) else None

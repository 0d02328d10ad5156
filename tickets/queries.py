"""Reading citizens' reports: one ticket, its history, the lists, the inbox, who sees what.

The writes are :mod:`tickets.service`'s; this side only reads, each method in its own short
session.  Who may see a ticket is written once, as a condition on ``Ticket``
(:func:`visible_to`): the lists, the search, the inbox and the screen-pop select with it and
:meth:`TicketQueries.can_see` asks the database with it, so a list and the single ticket
cannot disagree.  It holds the restricted reports' clearance too (:mod:`tickets.confidential`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock, local_midnight
from core.db import Database
from core.settings import Settings, TicketSettings
from core.text import fold_phrase
from tickets.codes import code_like, parse_code
from tickets.confidential import cleared_for, is_cleared
from tickets.exceptions import (
    CODE_CHECK,
    NUMBER_CHECK,
    Forbidden,
    InvalidCode,
    InvalidInput,
    TicketNotFound,
)
from tickets.handling.models import Assignment, State
from tickets.models import DEADLINE_STATUSES, Agency, Attachment, Status, Ticket, TicketEvent
from tickets.numbers import format_number, number_like, parse_number
from tickets.schemas import normalize_phone
from tickets.workflow import STAFF

MAX_PER_PAGE = 200


@dataclass
class TicketFilter:
    """What the ticket list is narrowed to; None (or empty) means "any"."""

    status: Sequence[str] | None = None
    level: int | None = None
    domain: str | None = None
    topic: str | None = None
    agency_id: int | None = None
    # True: deadline passed while still due; False: everything else.
    overdue: bool | None = None
    # Local days (settings.timezone), both ends included.
    created_from: date | None = None
    created_to: date | None = None
    created_by: int | None = None
    # Free text, matched literally in code, citizen phone, name, address, description,
    # whatever the case and accents.
    q: str | None = None
    call_id: int | None = None
    # True: groups of repeat reports flagged for level 3 and not yet answered
    # (tickets.repeats); the supervisors' list marks them
    flagged: bool | None = None
    # True: an extension request of the agency waits for a supervisor (tickets.review)
    extension_open: bool | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sees_every_ticket(actor: Actor) -> bool:
    return actor.role in STAFF or actor.role == Role.OVERSIGHT


def visible_to(actor: Actor, settings: TicketSettings) -> ColumnElement[bool]:
    """Who may see a ticket, as a condition on ``Ticket``.

    Staff (and the oversight role) see every ticket; an agency officer those forwarded to
    their agency, the escalated ones of its direct sub-agencies, and those in which their
    agency has a part (a co-handling agency, a delegation: tickets.handling; a withdrawn
    part is no longer theirs).  The agency that delegated sees the ticket through its own
    part.  A ticket only pre-filled with an agency (level 3 awaiting approval, a meeting)
    has not been sent: no agency sees it.  Of the restricted ones, only those the actor
    is cleared for (:func:`tickets.confidential.cleared_for`).
    """
    return and_(_assigned(actor), cleared_for(actor, settings))


def _assigned(actor: Actor) -> ColumnElement[bool]:
    if sees_every_ticket(actor):
        return true()
    if actor.role != Role.AGENCY or actor.agency_id is None:
        return false()
    children = select(Agency.id).where(Agency.parent_id == actor.agency_id)
    with_part = select(Assignment.ticket_id).where(
        Assignment.agency_id == actor.agency_id, Assignment.status != State.WITHDRAWN.value
    )
    return and_(
        Ticket.forwarded_at.is_not(None),
        or_(
            Ticket.agency_id == actor.agency_id,
            and_(Ticket.agency_id.in_(children), Ticket.escalated_at.is_not(None)),
            Ticket.id.in_(with_part),
        ),
    )


def flagged_for_level3() -> ColumnElement[bool]:
    """A group of repeat reports flagged for level 3 (tickets.repeats.flag) whose ticket is
    still below level 3 and not answered: what the supervisors are to look at."""
    return and_(
        Ticket.repeat_flagged_at.is_not(None),
        Ticket.level < 3,
        Ticket.status.not_in([Status.ANSWERED.value, Status.CLOSED.value]),
    )


async def is_visible(
    s: AsyncSession, actor: Actor, ticket_id: int, settings: TicketSettings
) -> bool:
    """Whether the actor may see the ticket, asked in the session ``s``."""
    found = await s.scalar(
        select(Ticket.id).where(Ticket.id == ticket_id, visible_to(actor, settings))
    )
    return found is not None


async def load_ticket(s: AsyncSession, ticket_id: int) -> Ticket:
    """The ticket, or TicketNotFound."""
    ticket = await s.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


class TicketQueries:
    """Citizens' reports as the panel and the screen-pop read them."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def get(self, ticket_id: int) -> Ticket:
        """The ticket, or TicketNotFound (visibility is checked with ``can_see``)."""
        async with self.db.session() as s:
            return await load_ticket(s, ticket_id)

    async def by_ids(self, ticket_ids: Iterable[int]) -> dict[int, Ticket]:
        """The tickets with these ids that exist (visibility is checked by the caller)."""
        wanted = sorted(set(ticket_ids))
        if not wanted:
            return {}
        async with self.db.session() as s:
            rows = await s.scalars(select(Ticket).where(Ticket.id.in_(wanted)))
            return {t.id: t for t in rows.all()}

    async def get_by_code(self, text: str) -> Ticket:
        """The ticket with the tracking code or number in ``text`` (as typed or read out).

        InvalidInput (on ``code``, NUMBER_CHECK) if ``text`` is a ticket number whose
        check digit is wrong, InvalidCode if it cannot be a code or a number (so a
        typo is caught before a look-up), TicketNotFound if nobody has it.
        """
        column, key = self.code_key(text)
        async with self.db.session() as s:
            ticket = await s.scalar(select(Ticket).where(getattr(Ticket, column) == key))
        if ticket is None:
            raise TicketNotFound(key)
        return ticket

    def code_key(self, text: str) -> tuple[Literal["number", "code"], str]:
        """Which column finds the ticket with the code or number in ``text``, and the
        value to find there: InvalidInput or InvalidCode as ``get_by_code``."""
        by_number = number_like(text)
        if by_number is not None:
            return "number", self._valid_number(by_number, "code")
        return "code", parse_code(text)

    @staticmethod
    def _valid_number(raw: str, field: str) -> str:
        """``raw`` (10 digits) if its check digit is right, else InvalidInput on ``field``."""
        try:
            return parse_number(raw)
        except InvalidCode as e:
            raise InvalidInput.one(field, NUMBER_CHECK, number=format_number(raw)) from e

    async def attachments(self, ticket_id: int) -> list[Attachment]:
        """The files citizens sent with the ticket (photos), oldest first."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Attachment)
                .where(Attachment.ticket_id == ticket_id)
                .order_by(Attachment.created_at, Attachment.id)
            )
            return list(rows.all())

    async def history(self, ticket_id: int) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        async with self.db.session() as s:
            await load_ticket(s, ticket_id)
            rows = await s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id)
                .order_by(TicketEvent.at, TicketEvent.id)
            )
            return list(rows.all())

    async def search(
        self, filters: TicketFilter, *, actor: Actor, page: int = 1, per_page: int = 50
    ) -> tuple[list[Ticket], int]:
        """One page of the tickets ``actor`` may see matching ``filters``, newest first, and
        the total count.

        InvalidInput (on ``q``) when the search text is a tracking code with a wrong
        check symbol (see :meth:`_text_match`).
        """
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = max(1, page)
        conditions = [*self._conditions(filters), visible_to(actor, self.settings.tickets)]
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(Ticket).where(*conditions))
            rows = await s.scalars(
                select(Ticket)
                .where(*conditions)
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return list(rows.all()), total or 0

    async def for_phone(self, phone: str | None, *, actor: Actor, limit: int = 10) -> list[Ticket]:
        """The caller's earlier tickets ``actor`` may see, newest first (for the agent's
        screen-pop)."""
        try:
            number = normalize_phone(phone)
        except ValueError:  # PydanticCustomError: not a phone number, so no tickets
            return []
        if number is None:
            return []
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Ticket)
                .where(Ticket.citizen_phone == number, visible_to(actor, self.settings.tickets))
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(max(1, limit))
            )
            return list(rows.all())

    async def inbox(self, actor: Actor, *, include_closed: bool = False) -> list[Ticket]:
        """An agency officer's tickets (:func:`visible_to`): those forwarded to their
        agency, those they have a part in, and the escalated ones of its direct
        sub-agencies.  Most urgent deadline first."""
        if actor.role != Role.AGENCY or actor.agency_id is None:
            raise Forbidden("inbox", actor.role)
        condition = visible_to(actor, self.settings.tickets)
        if not include_closed:
            condition = and_(condition, Ticket.status != Status.CLOSED.value)
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Ticket)
                .where(condition)
                # Portable "NULLS LAST": tickets without a deadline come after.
                .order_by(Ticket.deadline_at.is_(None), Ticket.deadline_at, Ticket.id)
            )
            return list(rows.all())

    async def can_see(self, actor: Actor, ticket: Ticket) -> bool:
        """Whether the actor may see the ticket (:func:`visible_to`); staff and the oversight
        role without a query."""
        if sees_every_ticket(actor):
            return is_cleared(actor, ticket, self.settings.tickets)
        async with self.db.session() as s:
            return await is_visible(s, actor, ticket.id, self.settings.tickets)

    # -- helpers ----------------------------------------------------------------

    def _conditions(self, f: TicketFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if f.status:
            conditions.append(Ticket.status.in_([str(st) for st in f.status]))
        if f.level is not None:
            conditions.append(Ticket.level == f.level)
        if f.domain:
            conditions.append(Ticket.domain == str(f.domain))
        if f.topic:
            conditions.append(Ticket.topic == f.topic)
        if f.agency_id is not None:
            # the lead, or an agency with a part (co-handling, delegated: tickets.handling)
            with_part = select(Assignment.ticket_id).where(
                Assignment.agency_id == f.agency_id, Assignment.status != State.WITHDRAWN.value
            )
            conditions.append(or_(Ticket.agency_id == f.agency_id, Ticket.id.in_(with_part)))
        if f.created_by is not None:
            conditions.append(Ticket.created_by == f.created_by)
        if f.call_id is not None:
            conditions.append(Ticket.call_id == f.call_id)
        if f.flagged is not None:
            conditions.append(flagged_for_level3() if f.flagged else not_(flagged_for_level3()))
        if f.overdue is not None:
            overdue = and_(
                Ticket.status.in_([st.value for st in DEADLINE_STATUSES]),
                # Explicit, so that NOT(overdue) is true rather than NULL without a deadline.
                Ticket.deadline_at.is_not(None),
                Ticket.deadline_at < self.clock.now(),
            )
            conditions.append(overdue if f.overdue else not_(overdue))
        if f.extension_open is not None:
            asked = Ticket.extension_until.is_not(None)
            conditions.append(asked if f.extension_open else not_(asked))
        # day bounds in UTC: SQLite compares the stored text
        tz = self.settings.tz
        if f.created_from is not None:
            start = local_midnight(f.created_from, tz).astimezone(UTC)
            conditions.append(Ticket.created_at >= start)
        if f.created_to is not None:
            end = local_midnight(f.created_to + timedelta(days=1), tz).astimezone(UTC)
            conditions.append(Ticket.created_at < end)
        if f.q and f.q.strip():
            conditions.append(self._text_match(f.q.strip()))
        return conditions

    def _text_match(self, q: str) -> ColumnElement[bool]:
        """Tickets whose code, phone, citizen's name, address or report holds ``q``.

        Case and accents do not matter: ``search_text`` holds those columns folded
        (:func:`tickets.models.search_text`) and ``q`` is folded the same way, so
        "nguyen huu canh" finds "Nguyễn Hữu Cảnh" and "Đường" finds "duong".
        A query shaped like a tracking code whose check symbol is wrong, or like a
        ticket number whose check digit is wrong, is refused (InvalidInput on ``q``,
        naming it) rather than answered with no ticket or someone else's.
        """
        raw_number = number_like(q)
        if raw_number is not None:
            return Ticket.number == self._valid_number(raw_number, "q")
        pattern = f"%{_escape_like(fold_phrase(q))}%"
        matches: list[ColumnElement[bool]] = [Ticket.search_text.like(pattern, escape="\\")]
        # A code or a phone number as people type them ("k7m 4qx8", "090 123 4567").
        try:
            matches.append(Ticket.code == parse_code(q))
        except InvalidCode as e:
            code = code_like(q)
            if code is not None:
                raise InvalidInput.one("q", CODE_CHECK, code=code) from e
        try:
            number = normalize_phone(q)
        except ValueError:
            number = None
        if number and number != q:
            matches.append(Ticket.citizen_phone.like(f"%{_escape_like(number)}%", escape="\\"))
        return or_(*matches)

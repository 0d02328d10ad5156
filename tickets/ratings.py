"""Citizens' satisfaction ratings: recorded once per call, 1 to 5.

The phone survey (agi.survey) records one after an agent's call (``after_call``) or after
the call that tells the citizen the result (``result_call``); the web pages record
``web`` ones.  A rating is kept with what the reports group it by, as it was when given:
the agent who handled the call (from the call's record; for the result call, which has
no agent, the one who took the report), the ticket's agency, topic and level.
Recording is idempotent per call: the survey reached twice for one call (a retried AGI,
a caller who keys again) keeps the first answer.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.models import Call
from core.clock import Clock
from core.db import Database
from tickets.exceptions import NOT_ALLOWED, REQUIRED, UNKNOWN, InvalidInput
from tickets.models import Rating, RatingSource, Ticket

log = logging.getLogger(__name__)

RATINGS = range(1, 6)
# A rating this low is the citizen's dissatisfaction: the survey offers a reopening.
DISSATISFIED = 2


def check_rating(value: object) -> int:
    """The rating as an int from 1 to 5, or InvalidInput on ``rating``."""
    if isinstance(value, bool):
        raise InvalidInput.one("rating", NOT_ALLOWED)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value not in RATINGS:
        raise InvalidInput.one("rating", NOT_ALLOWED)
    return value


def check_source(value: object) -> RatingSource:
    try:
        return RatingSource(str(value))
    except ValueError:
        raise InvalidInput.one("source", NOT_ALLOWED) from None


class RatingService:
    """Records satisfaction ratings and finds the ticket a call made."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        rating: object,
        source: object,
        *,
        call_id: int | None = None,
        ticket_id: int | None = None,
        at: datetime | None = None,
    ) -> tuple[Rating, bool]:
        """Store one rating; returns it and whether it is new.

        ``rating`` must be 1 to 5 and ``source`` one of :class:`RatingSource` (else
        InvalidInput naming the field); a rating after a hotline call needs its
        ``call_id``, one after the result call its ``ticket_id`` (that call, placed
        from outside the call records, may have none).  Without ``ticket_id`` the
        ticket is the one the call made (the first linked to it), if any.  A call
        already rated keeps its first rating: that one is returned, with False.
        """
        value = check_rating(rating)
        kind = check_source(source)
        if kind is RatingSource.AFTER_CALL and call_id is None:
            raise InvalidInput.one("call_id", REQUIRED)
        if kind is RatingSource.RESULT_CALL and call_id is None and ticket_id is None:
            raise InvalidInput.one("ticket_id", REQUIRED)
        if call_id is not None:
            earlier = await self.for_call(call_id)
            if earlier is not None:
                return earlier, False
        try:
            async with self.db.session() as s:
                made = await self._insert(s, value, kind, call_id, ticket_id, at)
        except IntegrityError:
            # the same call rated at the same moment by another writer: theirs stands
            if call_id is None:
                raise
            earlier = await self.for_call(call_id)
            if earlier is None:
                raise
            return earlier, False
        log.info(
            "rating %d (%s) for call %s, ticket %s", value, kind.value, call_id, made.ticket_id
        )
        return made, True

    async def _insert(
        self,
        s: AsyncSession,
        value: int,
        kind: RatingSource,
        call_id: int | None,
        ticket_id: int | None,
        at: datetime | None,
    ) -> Rating:
        call = None
        if call_id is not None:
            call = await s.get(Call, call_id)
            if call is None:
                raise InvalidInput.one("call_id", UNKNOWN)
        ticket = None
        if ticket_id is not None:
            ticket = await s.get(Ticket, ticket_id)
            if ticket is None:
                raise InvalidInput.one("ticket_id", UNKNOWN)
        elif call_id is not None:
            ticket = await s.scalar(
                select(Ticket).where(Ticket.call_id == call_id).order_by(Ticket.id).limit(1)
            )
        agent = call
        if (
            kind is RatingSource.RESULT_CALL
            and (call is None or call.agent_extension is None)
            and ticket is not None
            and ticket.call_id is not None
        ):
            # the result call has no agent: the rating is the handling of the report,
            # kept with the agent who took it (the call the report was made on)
            agent = await s.get(Call, ticket.call_id)
        made = Rating(
            ticket_id=ticket.id if ticket else None,
            call_id=call_id,
            rating=value,
            source=kind.value,
            at=at or self.clock.now(),
            agent_extension=agent.agent_extension if agent else None,
            agent_name=agent.agent_name if agent else None,
            agency_id=ticket.agency_id if ticket else None,
            topic=ticket.topic if ticket else None,
            level=ticket.level if ticket else None,
        )
        s.add(made)
        await s.flush()
        await s.refresh(made)
        return made

    async def for_call(self, call_id: int) -> Rating | None:
        """The rating given for a call, if any."""
        async with self.db.session() as s:
            return await s.scalar(select(Rating).where(Rating.call_id == call_id))

    async def tickets_of_call(self, call_id: int) -> list[Ticket]:
        """The tickets made on a call, newest first."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Ticket).where(Ticket.call_id == call_id).order_by(Ticket.id.desc())
            )
            return list(rows)

    async def tickets_by_id(self, ids: list[int]) -> list[Ticket]:
        """The tickets of these ids that exist, in the order asked."""
        async with self.db.session() as s:
            found = {t.id: t for t in await s.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
        return [found[i] for i in ids if i in found]

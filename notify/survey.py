"""The SMS survey's replies: a 1-5 from the number within ``notify.survey_days`` of
the survey SMS is its rating; after a 1 or 2 the citizen is offered "reply 9 to
reopen", and a 9 reopens the report (:meth:`tickets.service.TicketService.reopen`,
as the phone survey does, ``via="sms_survey"``).

:meth:`SurveyReplies.__call__` is an inbox responder: the inbox stores every SMS first
(nothing is lost), then asks it; a reply it took is attached to the survey's ticket
instead of waiting on a desk.  Each step moves the survey's row with a conditional
UPDATE, so a reply delivered twice rates once and reopens once.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import select, update

from accounts.identity import CITIZEN
from core.clock import Clock
from core.db import Database
from inbox.models import Message, MessageChannel
from notify.models import Kind, NotifyChannel, SmsSurvey, SurveyState
from notify.planner import Planner, Target
from tickets.exceptions import TicketError, VersionConflict
from tickets.models import Ticket
from tickets.ratings import DISSATISFIED, RatingService
from tickets.service import TicketService

log = logging.getLogger(__name__)

# "2", " 2 ", "2." — one digit and nothing else that means something
_REPLY = re.compile(r"^\s*([1-59])\s*[.!]?\s*$")
REOPEN_KEY = "9"


class SurveyReplies:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        planner: Planner,
        ratings: RatingService,
        tickets: TicketService,
    ) -> None:
        self.db = db
        self.clock = clock
        self.planner = planner
        self.ratings = ratings
        self.tickets = tickets

    async def __call__(self, msg: Message) -> int | None:
        """The ticket a survey reply was about, once taken; None when it is no reply."""
        if msg.channel != MessageChannel.SMS or not self.planner.conf.enabled:
            return None
        m = _REPLY.match(msg.body or "")
        if m is None:
            return None
        key = m.group(1)
        now = self.clock.now()
        async with self.db.session() as s:
            survey = await s.scalar(
                select(SmsSurvey)
                .where(
                    SmsSurvey.number == msg.citizen,
                    SmsSurvey.state.in_([SurveyState.WAITING, SurveyState.LOW]),
                    SmsSurvey.expires_at.is_not(None),
                    SmsSurvey.expires_at > now,
                )
                .order_by(SmsSurvey.id.desc())
                .limit(1)
            )
        if survey is None:
            return None
        if key == REOPEN_KEY:
            if survey.state != SurveyState.LOW:
                return None
            return await self._reopen(survey)
        if survey.state != SurveyState.WAITING:
            return None
        return await self._rate(survey, int(key))

    async def _move(self, survey_id: int, before: str, **values: object) -> bool:
        async with self.db.session() as s:
            result = await s.execute(
                update(SmsSurvey)
                .where(SmsSurvey.id == survey_id, SmsSurvey.state == before)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def _rate(self, survey: SmsSurvey, rating: int) -> int | None:
        now = self.clock.now()
        low = rating <= DISSATISFIED
        state = SurveyState.LOW if low else SurveyState.RATED
        if not await self._move(
            survey.id, SurveyState.WAITING, state=state, rating=rating, answered_at=now
        ):
            return None  # the same reply delivered twice: rated once
        made, _new = await self.ratings.record(rating, "sms", ticket_id=survey.ticket_id, at=now)
        async with self.db.session() as s:
            await s.execute(
                update(SmsSurvey).where(SmsSurvey.id == survey.id).values(rating_id=made.id)
            )
        log.info("SMS survey %d: ticket %d rated %d", survey.id, survey.ticket_id, rating)
        await self._answer(Kind.SURVEY_LOW if low else Kind.SURVEY_THANKS, survey)
        return survey.ticket_id

    async def _reopen(self, survey: SmsSurvey) -> int | None:
        if not await self._move(survey.id, SurveyState.LOW, state=SurveyState.REOPENED):
            return None
        reason = f"SMS survey: rated {survey.rating}, replied {REOPEN_KEY} to reopen"
        for _attempt in range(3):
            ticket = await self._ticket(survey.ticket_id)
            try:
                await self.tickets.reopen(
                    CITIZEN,
                    ticket.id,
                    ticket.version,
                    reason,
                    via="sms_survey",
                    rating=survey.rating,
                )
                break
            except VersionConflict:
                continue  # written meanwhile (a result call's line): read it again
            except TicketError as e:
                # not reopenable now (reopened already, or back with an agency): the
                # reply stays attached to the ticket for the supervisors to read
                log.warning("SMS survey %d: ticket %d not reopened: %s", survey.id, ticket.id, e)
                return survey.ticket_id
        await self._answer(Kind.REOPENED, survey)
        return survey.ticket_id

    async def _ticket(self, ticket_id: int) -> Ticket:
        async with self.db.session() as s:
            ticket = await s.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket

    async def _answer(self, kind: Kind, survey: SmsSurvey) -> None:
        ticket = await self._ticket(survey.ticket_id)
        text = self.planner.citizen_text(kind, ticket)
        now = self.clock.now()
        async with self.db.session() as s:
            await self.planner.add(
                s,
                dedupe=f"{kind}:{ticket.id}:{survey.round}:{survey.number}",
                kind=kind,
                target=Target(NotifyChannel.SMS, survey.number),
                body=text,
                now=now,
                ticket_id=ticket.id,
            )
        self.planner.wake()

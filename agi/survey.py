"""The satisfaction survey by phone: rate 1 to 5, and reopen the report on a low rating.

The dialplan calls ``AGI(agi://host:port/survey,<ticket id or empty>,<kind>)`` where kind
is ``after_call`` (the caller stayed on the line after the agent hung up: the hotline's
``survey_after_call``, Queue()'s option ``c``) or ``result_call`` (the call that tells the
citizen the result of their report; it names the ticket).  The steps:

1. "Please rate 1 to 5" (``survey_rate``, in the channel's language, which the IVR set);
   a wrong key or silence is answered and asked once more, then the survey ends quietly;
2. the rating is stored for the call (:class:`tickets.ratings.RatingService`: once per
   call, with the agent and the ticket's agency);
3. a rating of 1 or 2 on a call that made a report now answered or closed (the ticket
   named, else the one linked to the call) offers "press 9 to reopen" and, on 9, reopens
   it as the citizen (``accounts.identity.CITIZEN``) with the rating in its history;
4. thanks, and ``HOTLINE_SURVEY`` says how it ended (``rated``, ``reopened``,
   ``no_rating``), for the dialplan's log.

A hang-up at any step ends the survey with what was stored so far; a database fault is
logged and the caller still hears the thanks (the survey is a courtesy, never a trap).
"""

from __future__ import annotations

import logging

from accounts.identity import CITIZEN
from agi.protocol import AGIHangup, AGISession
from callcenter.service import CallService
from core.clock import Clock
from core.settings import Settings
from dialplan.prompts import prompt_path
from tickets.exceptions import InvalidTransition, VersionConflict
from tickets.models import REOPENABLE, RatingSource, Ticket
from tickets.ratings import DISSATISFIED, RatingService
from tickets.service import TicketService

log = logging.getLogger(__name__)

KINDS = (RatingSource.AFTER_CALL.value, RatingSource.RESULT_CALL.value)
RATING_KEYS = "12345"
REOPEN_KEY = "9"
# how often the rating is asked when the key was wrong or none came
ASKS = 2


class Survey:
    """The ``survey`` FastAGI route."""

    def __init__(
        self,
        settings: Settings,
        calls: CallService,
        ratings: RatingService,
        tickets: TicketService,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.ratings = ratings
        self.tickets = tickets
        self.clock = clock

    def _prompt(self, prompt_id: str, language: str) -> str:
        return prompt_path(self.settings, prompt_id, language)

    @property
    def _timeout_ms(self) -> int:
        return int(self.settings.ivr.input_timeout_seconds * 1000)

    async def handle(self, agi: AGISession) -> None:
        args = agi.args + ["", ""]
        ticket_raw, kind = args[0].strip(), args[1].strip()
        uniqueid = agi.env.get("agi_uniqueid", "")
        language = agi.env.get("agi_language", "vi")
        language = language if language in ("vi", "en") else "vi"
        if kind not in KINDS or (ticket_raw and not ticket_raw.isdigit()):
            log.error(
                "survey called with ticket %r, kind %r (channel %s)", ticket_raw, kind, uniqueid
            )
            return
        ticket_id = int(ticket_raw) if ticket_raw else None
        try:
            call = await self.calls.get(uniqueid) if uniqueid else None
        except Exception:
            log.exception("survey: could not read the record of call %s", uniqueid)
            call = None
        if call is None and kind == RatingSource.AFTER_CALL:
            log.warning("survey after call %s: no record of the call; not asked", uniqueid)
            return
        try:
            rating = await self._ask(agi, language)
            if rating is None:
                await agi.set_variable("HOTLINE_SURVEY", "no_rating")
                await agi.stream_file(self._prompt("goodbye", language))
                return
            try:
                await self.ratings.record(
                    rating, kind, call_id=call.id if call else None, ticket_id=ticket_id
                )
            except Exception:
                log.exception("could not store rating %d of call %s", rating, uniqueid)
            outcome = "rated"
            if rating <= DISSATISFIED:
                ticket = await self._reopenable(ticket_id, call.id if call else None)
                if ticket is not None and await self._offer(agi, language):
                    if await self._reopen(ticket, rating, kind):
                        outcome = "reopened"
            await agi.set_variable("HOTLINE_SURVEY", outcome)
            final = "survey_reopened" if outcome == "reopened" else "survey_thanks"
            await agi.stream_file(self._prompt(final, language))
        except AGIHangup:
            log.debug("caller %s hung up in the survey", uniqueid)

    async def _ask(self, agi: AGISession, language: str) -> int | None:
        """The caller's rating, or None after a wrong key or silence twice."""
        for attempt in range(ASKS):
            key = (await agi.get_data(self._prompt("survey_rate", language), self._timeout_ms, 1))[
                :1
            ]
            if key and key in RATING_KEYS:
                return int(key)
            if attempt + 1 < ASKS:
                await agi.stream_file(self._prompt("invalid" if key else "no_input", language))
        return None

    async def _offer(self, agi: AGISession, language: str) -> bool:
        key = await agi.get_data(self._prompt("survey_reopen_offer", language), self._timeout_ms, 1)
        return key[:1] == REOPEN_KEY

    async def _reopenable(self, ticket_id: int | None, call_id: int | None) -> Ticket | None:
        """The report to offer reopening: the one named, else the newest the call made; only
        if it is answered or closed."""
        try:
            if ticket_id is not None:
                found = [await self._ticket(ticket_id)]
            elif call_id is not None:
                found = await self.ratings.tickets_of_call(call_id)
            else:
                return None
        except Exception:
            log.exception("survey: could not read the tickets of call %s", call_id)
            return None
        return next((t for t in found if t is not None and t.status in REOPENABLE), None)

    async def _ticket(self, ticket_id: int) -> Ticket | None:
        tickets = await self.ratings.tickets_by_id([ticket_id])
        return tickets[0] if tickets else None

    async def _reopen(self, ticket: Ticket, rating: int, kind: str) -> bool:
        reason = f"The citizen rated the handling {rating} of 5 in the phone survey ({kind})."
        for _ in range(2):
            try:
                await self.tickets.reopen(
                    CITIZEN, ticket.id, ticket.version, reason, via="survey", rating=rating
                )
                return True
            except VersionConflict:
                # changed since read (an agent's note, a close): read again and retry once
                fresh = await self._ticket(ticket.id)
                if fresh is None or fresh.status not in REOPENABLE:
                    return False
                ticket = fresh
            except InvalidTransition:
                return False  # reopened meanwhile by someone else
            except Exception:  # noqa: BLE001 - an unforeseen refusal, the database gone
                # the caller is thanked all the same; the log says what went wrong
                log.exception("survey could not reopen ticket %s", ticket.code)
                return False
        return False

"""Result calls: the citizen hears the result of their report by phone.

Follow a result call:

1. the agency records its answer (:meth:`tickets.service.TicketService.answer`); for a
   level-2 or level-3 report with the citizen's phone, :func:`add_call` writes a
   :class:`~tickets.models.ResultCall` in the same transaction (one per result: a
   second answer after a reopening is a new round, so a new call), due at once;
2. after the commit the service's ``on_result_recorded`` hooks publish on the bus topic
   :data:`WAKE_TOPIC`, which wakes :class:`tickets.result_dialler.ResultCallDialler`
   in whichever process it runs;
3. within the allowed hours (``result_calls.hours``, :func:`in_hours`) the dialler
   claims the call (:meth:`ResultCallService.claim`: one try, its call record opened),
   never two at once to the same number, and originates the citizen's number over the
   trunk into the dialplan's ``hotline-result-call`` context;
4. answered (:meth:`ResultCallService.answered`): the context records the call
   (MixMonitor), ``agi/result_call.py`` reads the result, then the satisfaction
   survey (``agi/survey.py``) rates it and may reopen the report; the hang-up handler's
   ``UserEvent`` ends it (:meth:`ResultCallService.ended`);
5. busy, no answer, a failure (:meth:`ResultCallService.not_answered`): tried again
   after ``retry_minutes`` (:func:`after_try`), up to ``max_attempts``.

Each try is a line of the ticket's history (action ``result_call``: the try's result,
its number and the tries allowed, and the call record that holds the recording).
Everything is in the database: after a restart, tries left ringing go back to the list
(:meth:`ResultCallService.recover`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.models import Call, Outcome, Result, call_to_change
from callcenter.recording_files import base_for, side_files
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import LANGUAGES, ResultCalls, Settings
from tickets.models import ResultCall, ResultCallState, Ticket, TicketEvent

log = logging.getLogger(__name__)

# The bus topic that wakes the dialler (a result recorded in any process).
WAKE_TOPIC = "result_calls.wake"
# The history line of each try (tickets.service.Action.RESULT_CALL).
HISTORY_ACTION = "result_call"
# Levels whose citizen is told the result (DOMAIN.md: "again when the unit reports").
LEVELS = (2, 3)
# What a try that was not answered is called, as the ticket's history says it.
HEARD = {
    Result.CONNECTED: "answered",
    Result.NO_ANSWER: "no_answer",
    Result.BUSY: "busy",
    Result.FAILED: "failed",
}

_DIALLABLE = re.compile(r"^\+?\d{3,20}$")


# -- the schedule: pure functions --------------------------------------------------
def in_hours(window: tuple[time, time], at: time) -> bool:
    """Whether the local time ``at`` is within the window (which may cross midnight)."""
    start, end = window
    if start < end:
        return start <= at < end
    return at >= start or at < end


def next_allowed(moment: datetime, window: tuple[time, time], tz: ZoneInfo) -> datetime:
    """``moment`` if it is within the allowed hours, else the next start of them (UTC)."""
    local = moment.astimezone(tz)
    if in_hours(window, local.time()):
        return moment
    start = local.replace(hour=window[0].hour, minute=window[0].minute, second=0, microsecond=0)
    if start <= local:
        start += timedelta(days=1)
    return start.astimezone(UTC)


@dataclass(frozen=True)
class NextStep:
    """What follows a try: the state, when the next try is due, the final result."""

    state: ResultCallState
    next_at: datetime | None
    result: Result


def after_try(result: Result, attempts: int, policy: ResultCalls, now: datetime) -> NextStep:
    """The call after try number ``attempts`` ended with ``result``.

    Answered: the result is being read (``talking``).  Otherwise tried again after
    ``retry_minutes``, unless that was the last try allowed: then done, unreachable.
    """
    if result == Result.CONNECTED:
        return NextStep(ResultCallState.TALKING, None, result)
    if attempts >= policy.max_attempts:
        return NextStep(ResultCallState.DONE, None, Result.UNREACHABLE)
    return NextStep(ResultCallState.PENDING, now + timedelta(minutes=policy.retry_minutes), result)


def diallable(phone: str | None) -> str | None:
    """The citizen's phone as the trunk dials it, or None when it cannot be called."""
    if not phone:
        return None
    number = re.sub(r"[\s().-]", "", phone)
    return number if _DIALLABLE.fullmatch(number) else None


# -- made with the answer ----------------------------------------------------------
async def add_call(
    s: AsyncSession, settings: Settings, ticket: Ticket, now: datetime
) -> ResultCall | None:
    """In the answer's transaction: the call that will tell the citizen, if one is due.

    None when result calls are off, the report is not level 2 or 3, it has no phone
    that can be dialled, or this result (the ticket's round) has its call already.
    """
    if not settings.result_calls.enabled or ticket.level not in LEVELS:
        return None
    number = diallable(ticket.citizen_phone)
    if number is None:
        log.info("ticket %s answered: no phone to call the citizen back on", ticket.code)
        return None
    round_ = ticket.reopens or 0
    made = await s.scalar(
        select(ResultCall.id).where(ResultCall.ticket_id == ticket.id, ResultCall.round == round_)
    )
    if made is not None:
        return None
    call = await s.get(Call, ticket.call_id) if ticket.call_id else None
    hotline = settings.hotline(call.hotline_number) if call and call.hotline_number else None
    hotline = hotline or settings.hotlines[0]
    language = call.language if call and call.language in LANGUAGES else hotline.language
    job = ResultCall(
        ticket_id=ticket.id,
        round=round_,
        number=number,
        language=language,
        hotline_number=hotline.number,
        state=ResultCallState.PENDING.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    s.add(job)
    await s.flush()
    log.info("ticket %s answered: result call %s to %s", ticket.code, job.id, number)
    return job


async def wake_dialler(bus: Bus, ticket_id: int) -> None:
    """Tell the dialler, in whichever process it runs, that a result was recorded."""
    await bus.publish(WAKE_TOPIC, {"ticket_id": ticket_id})


def waker(bus: Bus) -> Callable[[Ticket], Awaitable[None]]:
    """A ``TicketService.on_result_recorded`` hook that wakes the dialler."""

    async def wake(ticket: Ticket) -> None:
        await wake_dialler(bus, ticket.id)

    return wake


# -- the service ---------------------------------------------------------------------
@dataclass(frozen=True)
class Due:
    """A result call the dialler may try now."""

    id: int
    ticket_id: int
    number: str


@dataclass(frozen=True)
class Claimed:
    """A try just claimed: what the dialler originates it with."""

    id: int
    ticket_id: int
    number: str
    language: str
    hotline_number: str | None
    attempt: int
    uniqueid: str
    recording_base: str


class ResultCallService:
    """Writes result calls and their tries; one short session each."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # called with the call record's id when an answered try was recorded, after
        # the commit (the transcription pipeline queues it)
        self.on_recorded_call_ended: list[Callable[[int], Awaitable[None]]] = []

    @property
    def policy(self) -> ResultCalls:
        return self.settings.result_calls

    def allowed_now(self) -> bool:
        """Whether citizens may be called now (the allowed hours, local time)."""
        local = self.clock.now().astimezone(self.settings.tz).time()
        return in_hours(self.policy.window(), local)

    async def due(self, limit: int = 20) -> list[Due]:
        """Pending calls whose time has come, oldest first, none to a number in a call now."""
        now = self.clock.now()
        busy = select(ResultCall.number).where(
            ResultCall.state.in_([ResultCallState.DIALLING.value, ResultCallState.TALKING.value])
        )
        async with self.db.session() as s:
            rows = (
                await s.scalars(
                    select(ResultCall)
                    .where(
                        ResultCall.state == ResultCallState.PENDING.value,
                        ResultCall.next_attempt_at <= now,
                        ResultCall.number.not_in(busy),
                    )
                    .order_by(ResultCall.next_attempt_at, ResultCall.id)
                    .limit(limit)
                )
            ).all()
        return [Due(r.id, r.ticket_id, r.number) for r in rows]

    async def claim(self, job_id: int, uniqueid: str) -> Claimed | None:
        """Take a pending call for one try; None if it is not pending any more.

        The try's call record is opened here, before the phone rings, so the survey
        finds it by the channel's id.
        """
        now = self.clock.now()
        base = str(base_for(self.settings.recordings_dir, self.settings.tz, now, uniqueid))
        async with self.db.session() as s:
            taken = await s.execute(
                update(ResultCall)
                .where(
                    ResultCall.id == job_id,
                    ResultCall.state == ResultCallState.PENDING.value,
                )
                .values(
                    state=ResultCallState.DIALLING.value,
                    attempts=ResultCall.attempts + 1,
                    uniqueid=uniqueid,
                    updated_at=now,
                )
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]
                return None
            job = await s.get(ResultCall, job_id)
            assert job is not None
            ticket = await s.get(Ticket, job.ticket_id)
            s.add(
                Call(
                    uniqueid=uniqueid,
                    linkedid=uniqueid,
                    hotline_number=job.hotline_number,
                    caller_number=job.number,
                    language=job.language,
                    ivr_path=f"result_call:{ticket.code if ticket else job.ticket_id}",
                    ivr_choice="result_call",
                    route_source="result_call",
                    started_at=now,
                    outcome=Outcome.RESULT_CALL,
                )
            )
            return Claimed(
                job.id,
                job.ticket_id,
                job.number,
                job.language,
                job.hotline_number,
                job.attempts,
                uniqueid,
                base,
            )

    async def answered(self, uniqueid: str, recording_base: str | None) -> bool:
        """The citizen picked up: the result is being read.  False if already known."""
        now = self.clock.now()
        async with self.db.session() as s:
            job = await self._by_uniqueid(s, uniqueid, lock=True)
            if job is None or job.state != ResultCallState.DIALLING:
                return False
            job.state = ResultCallState.TALKING.value
            job.last_result = Result.CONNECTED.value
            job.updated_at = now
            call = await s.scalar(call_to_change(uniqueid))
            if call is not None:
                call.answered_at = call.answered_at or now
                call.recording_base = recording_base
                call.recording_caller, call.recording_agent = side_files(recording_base)
                job.call_id = call.id
            await self._history(s, job, Result.CONNECTED, now)
        log.info("result call %s (ticket %s): answered", job.id, job.ticket_id)
        return True

    async def not_answered(
        self, uniqueid: str, result: Result, detail: str | None = None
    ) -> ResultCall | None:
        """The try ended before anyone answered: try again later, or give up."""
        now = self.clock.now()
        async with self.db.session() as s:
            job = await self._by_uniqueid(s, uniqueid, lock=True)
            if job is None or job.state != ResultCallState.DIALLING:
                return None
            step = after_try(result, job.attempts, self.policy, now)
            job.state, job.last_result, job.updated_at = step.state.value, result.value, now
            if step.next_at is not None:
                job.next_attempt_at = step.next_at
            if step.state == ResultCallState.DONE:
                job.ended_at = now
            call = await s.scalar(call_to_change(uniqueid))
            if call is not None and call.ended_at is None:
                call.ended_at = now
                call.end_reason = f"result_call_{result.value}"
            await self._history(s, job, result, now, detail=detail, final=step.result)
        log.info(
            "result call %s (ticket %s) try %d: %s (%s)",
            job.id,
            job.ticket_id,
            job.attempts,
            result.value,
            detail or "",
        )
        return job

    async def ended(self, uniqueid: str, heard: str | None, survey: str | None) -> bool:
        """The answered call is over (the dialplan's hang-up report); False if unknown."""
        now = self.clock.now()
        recorded = None
        async with self.db.session() as s:
            job = await self._by_uniqueid(s, uniqueid, lock=True)
            if job is None or job.state not in (ResultCallState.DIALLING, ResultCallState.TALKING):
                return False
            if job.state == ResultCallState.DIALLING:
                # the report overtook the originate's answer (a very short call)
                await self._history(s, job, Result.CONNECTED, now)
            job.state, job.last_result = ResultCallState.DONE.value, Result.CONNECTED.value
            job.updated_at = job.ended_at = now
            call = await s.scalar(call_to_change(uniqueid))
            if call is not None:
                job.call_id = call.id
                call.answered_at = call.answered_at or now
                call.ended_at = call.ended_at or now
                call.talk_seconds = int((now - call.answered_at).total_seconds())
                call.end_reason = f"result_call:{heard or 'not_heard'}:{survey or 'no_survey'}"
                recorded = call.id if call.recording_base else None
        log.info("result call %s ended: %s, survey %s", job.id, heard, survey)
        if recorded is not None:
            for hook in self.on_recorded_call_ended:
                await hook(recorded)
        return True

    async def recover(self) -> int:
        """After a restart: tries left ringing go back to the list (not counted), calls
        left talking are done (they were answered)."""
        now = self.clock.now()
        async with self.db.session() as s:
            stuck = (
                await s.scalars(
                    select(ResultCall).where(
                        ResultCall.state.in_(
                            [ResultCallState.DIALLING.value, ResultCallState.TALKING.value]
                        )
                    )
                )
            ).all()
            for job in stuck:
                call = await s.scalar(select(Call).where(Call.uniqueid == job.uniqueid))
                if call is not None and call.ended_at is None:
                    call.ended_at, call.end_reason = now, "result_call_interrupted"
                if job.state == ResultCallState.TALKING:
                    job.state, job.ended_at = ResultCallState.DONE.value, now
                else:
                    job.state, job.next_attempt_at = ResultCallState.PENDING.value, now
                    job.attempts = max(0, job.attempts - 1)
                job.updated_at = now
            return len(stuck)

    async def open_tries(self, started_before: datetime) -> list[str]:
        """Channel ids of tries still ringing or talking, last changed before a time."""
        async with self.db.session() as s:
            q = select(ResultCall.uniqueid).where(
                ResultCall.state.in_(
                    [ResultCallState.DIALLING.value, ResultCallState.TALKING.value]
                ),
                ResultCall.updated_at < started_before,
            )
            return [u for u in (await s.scalars(q)).all() if u]

    async def state_of(self, uniqueid: str) -> str | None:
        async with self.db.session() as s:
            job = await self._by_uniqueid(s, uniqueid)
            return job.state if job else None

    async def get(self, job_id: int) -> ResultCall | None:
        async with self.db.session() as s:
            return await s.get(ResultCall, job_id)

    async def for_ticket(self, ticket_id: int) -> list[ResultCall]:
        """The ticket's result calls, oldest first."""
        async with self.db.session() as s:
            q = select(ResultCall).where(ResultCall.ticket_id == ticket_id).order_by(ResultCall.id)
            return list((await s.scalars(q)).all())

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    async def _by_uniqueid(
        s: AsyncSession, uniqueid: str, *, lock: bool = False
    ) -> ResultCall | None:
        """The try placed on channel ``uniqueid``; ``lock`` to change it (and its call):
        the originate's answer and the dialplan's report of a short call come side by
        side, and neither may write over the other from an older read."""
        q = select(ResultCall).where(ResultCall.uniqueid == uniqueid)
        return await s.scalar(q.with_for_update() if lock else q)

    async def _history(
        self,
        s: AsyncSession,
        job: ResultCall,
        result: Result,
        now: datetime,
        *,
        detail: str | None = None,
        final: Result | None = None,
    ) -> None:
        """One line of the ticket's history for the try: "answered (try 1 of 3)"."""
        status = await s.scalar(select(Ticket.status).where(Ticket.id == job.ticket_id))
        details: dict[str, Any] = {
            "call_result": HEARD.get(result, result.value),
            "attempt": job.attempts,
            "attempts": self.policy.max_attempts,
        }
        if result == Result.CONNECTED and job.call_id is not None:
            details["call_id"] = job.call_id
        if final == Result.UNREACHABLE:
            details["unreachable"] = True
        if detail:
            details["detail"] = detail
        s.add(
            TicketEvent(
                ticket_id=job.ticket_id,
                at=now,
                actor_id=None,
                actor_name="system",
                action=HISTORY_ACTION,
                from_status=status,
                to_status=status,
                details=json.dumps(details, ensure_ascii=False, sort_keys=True),
            )
        )

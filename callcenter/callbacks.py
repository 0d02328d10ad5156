"""Callbacks and voice messages: what a waiting caller may choose instead of waiting.

Follow a callback: the caller presses 1 in the queue (or at the final offer)
-> ``agi/overflow.py`` confirms the number -> :meth:`CallbackService.request`
writes a :class:`~callcenter.models.Callback` that keeps the caller's place
(``queued_at`` is when they first joined the queue) ->
:class:`~callcenter.dialler.CallbackDialler` waits for a free agent of the
callback's team, originates the agent's phone over AMI into the dialplan's
``hotline-callback`` context, which records (MixMonitor) and dials the
citizen over the trunk -> the context's hang-up handler reports the dial
status (a ``UserEvent``) -> :meth:`CallbackService.finish_attempt` records the
attempt, completes its call record, and retries after
``callback_retry_minutes`` up to ``callback_attempts`` times.

The agent sees the callback as they see a queue call: each attempt gets its
call record when it starts (:meth:`CallbackService.start_attempt`), and the
dialler has :class:`~callcenter.presence.Presence` pop it on the agent's
screen (the citizen's number, their wait, the try, the voice message, their
earlier tickets) with the ticket form linked to that record; the pop ends
with the call.  "Call now" in the panel (maybe another process) wakes the
dialler at once through the bus topic :data:`WAKE_TOPIC`.

A voice message is recorded by the overflow flow (Record() into
``<recordings_dir>/voicemail/<yyyy>/<mm>/<dd>/<uniqueid>.wav``) and kept as a
:class:`~callcenter.models.VoiceMessage` linked to its call; an agent replays
it in the panel and turns it into a callback or marks it handled.

Everything the dialler knows is in the database: after a crash, attempts left
"dialling" are put back in the list (:meth:`CallbackService.recover`).

This module is the service that writes callbacks, their attempts and voice
messages; their tables are in :mod:`callcenter.models`, its errors in
:mod:`callcenter.exceptions`, and the dialler that works the list over AMI in
:mod:`callcenter.dialler`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.exceptions import CallbackClosed, CallbackNotFound, VoiceMessageNotFound
from callcenter.models import (
    OPEN_OUTCOMES,
    Call,
    Callback,
    CallbackAttempt,
    Outcome,
    Result,
    Status,
    VoiceMessage,
    VoiceStatus,
    call_to_change,
)
from callcenter.presence import CallbackInfo
from callcenter.recording_files import base_for, side_files
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.phones import national_form
from core.settings import Overflow, Settings

log = logging.getLogger(__name__)

VOICEMAIL_DIR = "voicemail"
# The bus topic that wakes the dialler ("call now" in any panel process).
WAKE_TOPIC = "callbacks.wake"

# What an agent may record by hand (the outcome form).
MANUAL_RESULTS = (Result.CONNECTED, Result.NO_ANSWER, Result.BUSY, Result.FAILED)

_NUMBER = re.compile(r"^(?:0\d{8,10}|84\d{8,10})$")


def valid_callback_number(digits: str) -> str | None:
    """A number typed on the keypad, if it can be a Vietnamese phone number.

    Ten or eleven digits starting with 0 (mobiles and landlines with their
    area code), or the same with 84 instead of the 0; anything else (too
    short, a star, a stray key) is refused and the caller asked again.
    """
    d = digits.strip().rstrip("#")
    if not _NUMBER.fullmatch(d):
        return None
    return national_form(d)


@dataclass(frozen=True)
class Due:
    """A callback the dialler may try now."""

    id: int
    team_id: str
    number: str
    queued_at: datetime
    hotline_number: str | None
    language: str
    assigned_extension: str | None
    attempts: int


@dataclass(frozen=True)
class Started:
    """An attempt just claimed, with what the agent's screen-pop tells about it."""

    attempt_id: int
    call_id: int  # the attempt's call record, open from the first ring
    info: CallbackInfo


async def wake_dialler(bus: Bus, callback_id: int, extension: str | None) -> None:
    """Tell the dialler, in whichever process it runs, to look at the list now."""
    await bus.publish(WAKE_TOPIC, {"callback_id": callback_id, "extension": extension})


# -- the service -----------------------------------------------------------
class CallbackService:
    """Writes callbacks, their attempts and voice messages; one short session each."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # called with the call record's id when a callback was talked and
        # recorded (the transcription pipeline queues it), after the commit
        self.on_recorded_call_ended: list[Callable[[int], Awaitable[None]]] = []
        # called with the voice message's id once it is stored (the desks' inbox takes
        # it in; the transcription pipeline queues its call), after the commit
        self.on_voice_message: list[Callable[[VoiceMessage], Awaitable[None]]] = []

    @property
    def policy(self) -> Overflow:
        return self.settings.queues.overflow

    async def note_overflow(
        self, uniqueid: str, step: str, *, end_reason: str | None = None
    ) -> None:
        """Add an overflow step (``offer:silence``, ``callback``...) to the call's IVR path."""
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(uniqueid))
            if call is None:
                return
            call.ivr_path = f"{call.ivr_path} > {step}" if call.ivr_path else step
            if end_reason is not None:
                call.end_reason = end_reason

    async def request(
        self,
        *,
        uniqueid: str,
        number: str,
        number_source: str,
        language: str,
        joined_at: datetime | None,
        team_id: str | None = None,
        hotline_number: str | None = None,
    ) -> Callback:
        """The caller chose a callback: they keep their place (``joined_at``).

        Idempotent per call: a second request from the same call returns the first.
        """
        now = self.clock.now()
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(uniqueid))
            if call is not None:
                existing = await session.scalar(
                    select(Callback).where(
                        Callback.call_id == call.id, Callback.number_source != "voice_message"
                    )
                )
                if existing is not None:
                    return existing
                team = call.team_id or team_id
                joined = (
                    call.queued_at
                    if joined_at is None
                    else min(joined_at, call.queued_at or joined_at)
                )
            else:
                team, joined = team_id, joined_at
            hotline = (call.hotline_number if call else None) or hotline_number
            if team is None and hotline:
                h = self.settings.hotline(hotline)
                team = h.team if h else None
            cb = Callback(
                call_id=call.id if call else None,
                hotline_number=hotline,
                team_id=team or self.settings.hotlines[0].team,
                queue=call.queue if call else None,
                language=language,
                number=number,
                number_source=number_source,
                queued_at=joined or now,
                requested_at=now,
                status=Status.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
            session.add(cb)
            if call is not None:
                if call.outcome in (*OPEN_OUTCOMES, Outcome.ABANDONED, Outcome.TIMEOUT):
                    call.outcome = Outcome.CALLBACK
                call.end_reason = "callback_requested"
            await session.flush()
            log.info("callback %s for %s requested (call %s)", cb.id, number, uniqueid)
            return cb

    async def voice_message(
        self,
        *,
        uniqueid: str,
        path: str,
        seconds: float | None,
        language: str,
        caller_number: str | None = None,
        hotline_number: str | None = None,
    ) -> VoiceMessage:
        """Keep a recorded voice message and close its call as such (idempotent per call)."""
        now = self.clock.now()
        async with self.db.session() as session:
            existing = await session.scalar(
                select(VoiceMessage).where(VoiceMessage.uniqueid == uniqueid)
            )
            if existing is not None:
                return existing
            call = await session.scalar(call_to_change(uniqueid))
            hotline = (call.hotline_number if call else None) or hotline_number
            team = call.team_id if call else None
            if team is None and hotline:
                h = self.settings.hotline(hotline)
                team = h.team if h else None
            vm = VoiceMessage(
                call_id=call.id if call else None,
                uniqueid=uniqueid,
                hotline_number=hotline,
                team_id=team,
                caller_number=(call.caller_number if call else None) or caller_number,
                language=language,
                path=path,
                seconds=seconds,
                recorded_at=now,
                status=VoiceStatus.NEW,
            )
            session.add(vm)
            if call is not None:
                if call.outcome in (*OPEN_OUTCOMES, Outcome.ABANDONED, Outcome.TIMEOUT):
                    call.outcome = Outcome.VOICEMAIL
                call.end_reason = "voice_message"
            await session.flush()
        for hook in self.on_voice_message:
            try:
                await hook(vm)
            except Exception:  # noqa: BLE001 - the message is kept; the others catch up
                log.exception("voice message %s: a hook failed", vm.id)
        return vm

    async def add(
        self,
        *,
        number: str,
        number_source: str,
        queued_at: datetime,
        team_id: str | None,
        hotline_number: str | None,
        language: str,
        by: str,
    ) -> Callback:
        """A callback someone in the panel decided on (a caller who gave up), in the
        list at the place of ``queued_at``."""
        now = self.clock.now()
        if team_id is None and hotline_number:
            h = self.settings.hotline(hotline_number)
            team_id = h.team if h else None
        async with self.db.session() as session:
            cb = Callback(
                hotline_number=hotline_number,
                team_id=team_id or self.settings.hotlines[0].team,
                language=language,
                number=number,
                number_source=number_source,
                queued_at=queued_at,
                requested_at=now,
                status=Status.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
            session.add(cb)
            await session.flush()
            log.info("callback %s for %s added by %s (%s)", cb.id, number, by, number_source)
            return cb

    # -- the list --------------------------------------------------------
    async def due(self, limit: int = 20) -> list[Due]:
        """Pending callbacks whose time has come, first-joined first."""
        now = self.clock.now()
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    select(Callback)
                    .where(Callback.status == Status.PENDING, Callback.next_attempt_at <= now)
                    .order_by(Callback.queued_at, Callback.id)
                    .limit(limit)
                )
            ).all()
        return [
            Due(
                c.id,
                c.team_id,
                c.number,
                c.queued_at,
                c.hotline_number,
                c.language,
                c.assigned_extension,
                c.attempts,
            )
            for c in rows
        ]

    async def open_list(self, team_id: str | None = None) -> list[Callback]:
        """Callbacks not ended, in the order they are worked (first joined first)."""
        async with self.db.session() as session:
            q = select(Callback).where(Callback.status != Status.DONE)
            if team_id:
                q = q.where(Callback.team_id == team_id)
            return list((await session.scalars(q.order_by(Callback.queued_at, Callback.id))).all())

    async def closed_list(self, team_id: str | None = None, limit: int = 50) -> list[Callback]:
        async with self.db.session() as session:
            q = select(Callback).where(Callback.status == Status.DONE)
            if team_id:
                q = q.where(Callback.team_id == team_id)
            q = q.order_by(Callback.closed_at.desc(), Callback.id.desc()).limit(limit)
            return list((await session.scalars(q)).all())

    async def get(self, callback_id: int) -> Callback:
        async with self.db.session() as session:
            cb = await session.get(Callback, callback_id)
        if cb is None:
            raise CallbackNotFound(callback_id)
        return cb

    async def attempts_of(self, callback_id: int) -> list[CallbackAttempt]:
        async with self.db.session() as session:
            q = (
                select(CallbackAttempt)
                .where(CallbackAttempt.callback_id == callback_id)
                .order_by(CallbackAttempt.id)
            )
            return list((await session.scalars(q)).all())

    # -- attempts ----------------------------------------------------------
    async def start_attempt(
        self, callback_id: int, extension: str, uniqueid: str
    ) -> Started | None:
        """Claim a pending callback for one attempt; None if someone else got it first.

        The attempt's call record is opened here, before the agent's phone
        rings, so that a ticket can be linked to it during the call.
        """
        now = self.clock.now()
        async with self.db.session() as session:
            claimed = await session.execute(
                update(Callback)
                .where(Callback.id == callback_id, Callback.status == Status.PENDING)
                .values(
                    status=Status.DIALLING,
                    attempts=Callback.attempts + 1,
                    agent_extension=extension,
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            cb = await session.get(Callback, callback_id)
            assert cb is not None
            attempt = CallbackAttempt(
                callback_id=callback_id,
                number=cb.attempts,
                agent_extension=extension,
                uniqueid=uniqueid,
                started_at=now,
            )
            session.add(attempt)
            call = self._attempt_call(cb, attempt)
            session.add(call)
            await session.flush()
            origin = await session.get(Call, cb.call_id) if cb.call_id else None
            vm = await session.scalar(select(VoiceMessage).where(VoiceMessage.callback_id == cb.id))
            info = CallbackInfo(
                callback_id=cb.id,
                requested_at=cb.requested_at,
                queued_at=cb.queued_at,
                attempt=attempt.number,
                attempts=max(self.policy.callback_attempts, attempt.number),
                number_source=cb.number_source,
                ivr_path=origin.ivr_path if origin else None,
                voice_message_id=vm.id if vm else None,
                voice_message_seconds=vm.seconds if vm else None,
            )
            return Started(attempt.id, call.id, info)

    def _attempt_call(self, cb: Callback, attempt: CallbackAttempt) -> Call:
        """The call record of one attempt, from its first ring.

        Its outcome stays ``callback`` (the citizen still waits for one) until
        the citizen answers: a try nobody answered is no answered call.
        """
        agent = next(
            (a for a in self.settings.agents if a.extension == attempt.agent_extension), None
        )
        return Call(
            uniqueid=attempt.uniqueid,
            linkedid=attempt.uniqueid,
            hotline_number=cb.hotline_number,
            caller_number=cb.number,
            language=cb.language,
            ivr_path=f"callback:{cb.id}",
            ivr_choice="callback",
            route_source="callback",
            team_id=cb.team_id,
            queue=cb.queue,
            agent_extension=attempt.agent_extension,
            agent_name=agent.name if agent else None,
            started_at=attempt.started_at,
            outcome=Outcome.CALLBACK,
        )

    async def finish_attempt(
        self,
        uniqueid: str,
        result: Result,
        *,
        detail: str | None = None,
        talk_seconds: int | None = None,
        recording_base: str | None = None,
    ) -> Callback | None:
        """Record how an attempt ended and what comes next (idempotent per attempt)."""
        cb, recorded = await self._finish_attempt(
            uniqueid,
            result,
            detail=detail,
            talk_seconds=talk_seconds,
            recording_base=recording_base,
        )
        if recorded is not None:
            for hook in self.on_recorded_call_ended:
                await hook(recorded)
        return cb

    async def _finish_attempt(
        self,
        uniqueid: str,
        result: Result,
        *,
        detail: str | None,
        talk_seconds: int | None,
        recording_base: str | None,
    ) -> tuple[Callback | None, int | None]:
        now = self.clock.now()
        policy = self.policy
        async with self.db.session() as session:
            attempt = await session.scalar(
                select(CallbackAttempt).where(CallbackAttempt.uniqueid == uniqueid)
            )
            if attempt is None or attempt.result is not None:
                return None, None
            cb = await session.get(Callback, attempt.callback_id)
            assert cb is not None
            attempt.result, attempt.ended_at, attempt.detail = result, now, detail
            cb.last_result = result
            # the record tells what happened on the line, whatever became of the callback
            call = await self._end_call(
                session, cb, attempt, result, now, talk_seconds, recording_base
            )
            recorded = None
            if result == Result.CONNECTED and call is not None:
                cb.result_call_id = call.id
                recorded = call.id if call.recording_base else None
            if cb.status != Status.DIALLING:
                return cb, recorded  # cancelled meanwhile: the attempt is recorded, nothing more
            if result == Result.CONNECTED:
                self._close(cb, Result.CONNECTED, now, by=None)
            elif result == Result.AGENT_MISSED:
                cb.attempts -= 1  # the citizen was never dialled
                cb.status = Status.PENDING
                cb.next_attempt_at = now + timedelta(seconds=30)
                cb.assigned_extension = None
            elif cb.attempts >= policy.callback_attempts:
                self._close(cb, Result.UNREACHABLE, now, by=None)
            else:
                cb.status = Status.PENDING
                cb.next_attempt_at = now + timedelta(minutes=policy.callback_retry_minutes)
                cb.assigned_extension = None
            await session.flush()
            log.info("callback %s attempt %s: %s (%s)", cb.id, attempt.number, result, cb.status)
            return cb, recorded

    async def _end_call(
        self,
        session: AsyncSession,
        cb: Callback,
        attempt: CallbackAttempt,
        result: Result,
        now: datetime,
        talk_seconds: int | None,
        recording_base: str | None,
    ) -> Call | None:
        """Close the attempt's call record: answered (with its recordings) when the
        citizen talked, else ended as the try it was.

        When the agent's phone did not take the call, the citizen was never
        dialled: the record goes, unless a ticket was linked to it meanwhile
        (then it stays, as a call that did not happen).
        """
        call = await session.scalar(call_to_change(attempt.uniqueid))
        if call is None:
            if result != Result.CONNECTED:
                return None
            # an attempt started before its record was opened at the first ring
            call = self._attempt_call(cb, attempt)
            session.add(call)
        if call.ended_at is not None and call.outcome != Outcome.CALLBACK:
            return call  # completed already
        if result == Result.AGENT_MISSED and await self._drop_call(session, call):
            return None
        call.ended_at = now
        if result == Result.CONNECTED:
            rec_in, rec_out = side_files(recording_base)
            call.answered_at = now - timedelta(seconds=talk_seconds or 0)
            call.talk_seconds = talk_seconds
            call.hold_seconds = int((attempt.started_at - cb.queued_at).total_seconds())
            call.outcome = Outcome.ANSWERED
            call.end_reason = "callback"
            call.recording_base = recording_base
            call.recording_caller, call.recording_agent = rec_in, rec_out
        else:
            call.end_reason = f"callback_{result}"
        await session.flush()
        return call

    @staticmethod
    async def _drop_call(session: AsyncSession, call: Call) -> bool:
        """Delete a record nothing refers to; False if something does (a ticket)."""
        try:
            async with session.begin_nested():
                await session.delete(call)
                await session.flush()
        except IntegrityError:
            await session.refresh(call)  # the savepoint's rollback expired it
            return False
        return True

    @staticmethod
    def _close(cb: Callback, outcome: Result, now: datetime, by: str | None) -> None:
        cb.status, cb.outcome, cb.closed_at, cb.closed_by = Status.DONE, outcome, now, by
        cb.assigned_extension = None

    async def recover(self) -> int:
        """After a restart: attempts left "dialling" go back to the list (not counted)."""
        now = self.clock.now()
        async with self.db.session() as session:
            stuck = (
                await session.scalars(select(Callback).where(Callback.status == Status.DIALLING))
            ).all()
            for cb in stuck:
                open_attempts = (
                    await session.scalars(
                        select(CallbackAttempt).where(
                            CallbackAttempt.callback_id == cb.id, CallbackAttempt.result.is_(None)
                        )
                    )
                ).all()
                for a in open_attempts:
                    a.result, a.ended_at, a.detail = Result.FAILED, now, "interrupted"
                # their records end too (kept: a ticket may hang off one)
                await session.execute(
                    update(Call)
                    .where(
                        Call.uniqueid.in_([a.uniqueid for a in open_attempts if a.uniqueid]),
                        Call.ended_at.is_(None),
                    )
                    .values(ended_at=now, end_reason="callback_interrupted")
                )
                cb.status, cb.next_attempt_at = Status.PENDING, now
                cb.attempts = max(0, cb.attempts - 1)
            return len(stuck)

    async def open_attempts(self, started_before: datetime) -> list[str]:
        """Channel ids of attempts still waiting for their report, started before a time."""
        async with self.db.session() as session:
            q = select(CallbackAttempt.uniqueid).where(
                CallbackAttempt.result.is_(None),
                CallbackAttempt.uniqueid.is_not(None),
                CallbackAttempt.started_at < started_before,
            )
            return [u for u in (await session.scalars(q)).all() if u]

    # -- the panel's actions -----------------------------------------------
    async def call_now(self, callback_id: int, extension: str) -> Callback:
        """An agent takes this callback: the next attempt rings their phone, now."""
        async with self.db.session() as session:
            cb = await session.get(Callback, callback_id)
            if cb is None:
                raise CallbackNotFound(callback_id)
            if cb.status != Status.PENDING:
                raise CallbackClosed(callback_id, cb.status)
            cb.assigned_extension = extension
            cb.next_attempt_at = self.clock.now()
            return cb

    async def cancel(self, callback_id: int, by: str, note: str | None = None) -> Callback:
        async with self.db.session() as session:
            cb = await session.get(Callback, callback_id)
            if cb is None:
                raise CallbackNotFound(callback_id)
            if cb.status == Status.DONE:
                raise CallbackClosed(callback_id, cb.status)
            self._close(cb, Result.CANCELLED, self.clock.now(), by=by)
            cb.note = note or cb.note
            return cb

    async def record_outcome(
        self, callback_id: int, result: Result, by: str, extension: str | None, note: str | None
    ) -> Callback:
        """An agent records a try made by hand (or corrects the system's)."""
        if result not in MANUAL_RESULTS:
            raise ValueError(
                f"outcome: {result!r} is not one of {[r.value for r in MANUAL_RESULTS]}"
            )
        now = self.clock.now()
        async with self.db.session() as session:
            cb = await session.get(Callback, callback_id)
            if cb is None:
                raise CallbackNotFound(callback_id)
            if cb.status == Status.DONE:
                raise CallbackClosed(callback_id, cb.status)
            if cb.status == Status.DIALLING:
                raise CallbackClosed(callback_id, cb.status)
            cb.attempts += 1
            session.add(
                CallbackAttempt(
                    callback_id=cb.id,
                    number=cb.attempts,
                    agent_extension=extension,
                    started_at=now,
                    ended_at=now,
                    result=result,
                    detail="recorded by hand",
                    by=by,
                )
            )
            cb.last_result, cb.note = result, note or cb.note
            if result == Result.CONNECTED:
                self._close(cb, Result.CONNECTED, now, by=by)
            elif cb.attempts >= self.policy.callback_attempts:
                self._close(cb, Result.UNREACHABLE, now, by=by)
            else:
                cb.next_attempt_at = now + timedelta(minutes=self.policy.callback_retry_minutes)
                cb.assigned_extension = None
            return cb

    # -- voice messages ----------------------------------------------------
    async def voice_messages(
        self, team_id: str | None = None, *, include_done: bool = False, limit: int = 100
    ) -> list[VoiceMessage]:
        async with self.db.session() as session:
            q = select(VoiceMessage)
            if not include_done:
                q = q.where(VoiceMessage.status == VoiceStatus.NEW)
            if team_id:
                q = q.where(or_(VoiceMessage.team_id == team_id, VoiceMessage.team_id.is_(None)))
            q = q.order_by(VoiceMessage.recorded_at, VoiceMessage.id).limit(limit)
            return list((await session.scalars(q)).all())

    async def voice_message_by_id(self, message_id: int) -> VoiceMessage:
        async with self.db.session() as session:
            vm = await session.get(VoiceMessage, message_id)
        if vm is None:
            raise VoiceMessageNotFound(message_id)
        return vm

    async def voice_handled(self, message_id: int, by: str) -> VoiceMessage:
        async with self.db.session() as session:
            vm = await session.get(VoiceMessage, message_id)
            if vm is None:
                raise VoiceMessageNotFound(message_id)
            if vm.status == VoiceStatus.NEW:
                vm.status, vm.handled_by, vm.handled_at = VoiceStatus.HANDLED, by, self.clock.now()
            return vm

    async def voice_to_callback(
        self, message_id: int, by: str, number: str | None = None
    ) -> Callback:
        """Turn a voice message into a callback to the caller (or to ``number``)."""
        async with self.db.session() as session:
            vm = await session.get(VoiceMessage, message_id)
            if vm is None:
                raise VoiceMessageNotFound(message_id)
            if vm.callback_id is not None:
                cb = await session.get(Callback, vm.callback_id)
                assert cb is not None
                return cb
            target = valid_callback_number(number) if number else vm.caller_number
            if not target:
                raise ValueError("number: the caller sent no number; type the one to call")
            now = self.clock.now()
            call = await session.get(Call, vm.call_id) if vm.call_id else None
            h = self.settings.hotline(vm.hotline_number) if vm.hotline_number else None
            cb = Callback(
                call_id=vm.call_id,
                hotline_number=vm.hotline_number,
                team_id=vm.team_id or (h.team if h else self.settings.hotlines[0].team),
                queue=call.queue if call else None,
                language=vm.language,
                number=target,
                number_source="voice_message",
                queued_at=(call.queued_at if call and call.queued_at else vm.recorded_at),
                requested_at=now,
                status=Status.PENDING,
                attempts=0,
                next_attempt_at=now,
            )
            session.add(cb)
            await session.flush()
            vm.callback_id = cb.id
            vm.status, vm.handled_by, vm.handled_at = VoiceStatus.CALLBACK, by, now
            return cb


def voicemail_path(settings: Settings, at: datetime, uniqueid: str) -> str:
    """Where the voice message of call ``uniqueid`` is recorded (with .wav)."""
    base = base_for(settings.recordings_dir / VOICEMAIL_DIR, settings.tz, at, uniqueid)
    return f"{base}.wav"

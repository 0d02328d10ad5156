"""The diallers: the callback list, and the calls agents place from tickets, over AMI.

:class:`CallbackDialler` takes the due callbacks that
:class:`~callcenter.callbacks.CallbackService` keeps, asks Asterisk who is
free and who still waits (QueueStatus, read by :class:`QueueSnapshot`),
originates the agent's phone into the dialplan's ``hotline-callback`` context
(which records and dials the citizen over the trunk), and turns the context's
hang-up report (a ``UserEvent``, hence :data:`CALLBACK_EVENTS`) into the
attempt's result (:func:`result_of_dial`).  The whole story of a callback,
from the caller's key to the last try, is told in :mod:`callcenter.callbacks`.

:class:`OutboundDialler` dials the calls agents place from a ticket page
("call the citizen") along the same path (:func:`callcenter.originate.originate`, a sibling
``hotline-outbound`` context rendered from the same template macro); their
story is told in :mod:`callcenter.outbound`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from callcenter.callbacks import WAKE_TOPIC, CallbackService, Due, Started
from callcenter.live import QueueStatus, read_queue_status
from callcenter.models import Result
from callcenter.originate import originate
from callcenter.outbound import DIAL_TOPIC, OutboundService, dial_request
from callcenter.presence import Presence
from callcenter.recording_files import base_for
from callcenter.shifts import on_duty_queue
from core.ami import AMIClient, AMIError, Event, header_int
from core.bus import Bus
from core.clock import Clock
from core.lifecycle import cancel_and_wait
from core.settings import Settings

log = logging.getLogger(__name__)

# The dialplan context the agent's phone is originated into (dialplan template).
DIAL_CONTEXT = "hotline-callback"
# The UserEvent its hang-up handler sends with the dial status.
RESULT_EVENT = "HotlineCallback"
# The same, for the calls agents place from a ticket (callcenter.outbound).
OUTBOUND_CONTEXT = "hotline-outbound"
OUTBOUND_EVENT = "HotlineOutbound"
CALLBACK_EVENTS = ("UserEvent",)

# Dial()'s DIALSTATUS -> the attempt's result.
_DIAL_STATUS = {
    "ANSWER": Result.CONNECTED,
    "NOANSWER": Result.NO_ANSWER,
    "BUSY": Result.BUSY,
    "CONGESTION": Result.FAILED,
    "CHANUNAVAIL": Result.FAILED,
    "INVALIDARGS": Result.FAILED,
    # the agent hung up before the citizen answered
    "CANCEL": Result.NO_ANSWER,
}


def result_of_dial(status: str | None) -> Result:
    return _DIAL_STATUS.get((status or "").upper(), Result.FAILED)


async def tell(screen: Coroutine[Any, Any, None]) -> None:
    """Update an agent's screen; a failure there (Redis) must not stop the call."""
    try:
        await screen
    except Exception:
        log.exception("screen-pop of a dialled call failed")


@dataclass
class QueueSnapshot:
    """What one QueueStatus answer says about agents and waiting callers, as the
    dialler decides on it (callcenter.live parses the answer)."""

    # queue -> [(last call epoch, extension)] of members free now
    free: dict[str, list[tuple[float, str]]]
    # extensions in a call or ringing, in any queue
    busy: set[str]
    # queue -> when each caller still waiting joined it
    waiting: dict[str, list[datetime]]
    now: datetime

    @classmethod
    def of(cls, status: QueueStatus, now: datetime) -> QueueSnapshot:
        free: dict[str, list[tuple[float, str]]] = {}
        busy: set[str] = set()
        waiting: dict[str, list[datetime]] = {}
        for entry in status.entries:
            waiting.setdefault(entry.queue, []).append(now - timedelta(seconds=entry.wait))
        for m in status.members:
            if not m.extension:
                continue
            if m.busy:
                busy.add(m.extension)
            elif m.device == "free" and not m.paused:
                free.setdefault(m.queue, []).append((float(m.last_call), m.extension))
        return cls(free, busy, waiting, now)

    @classmethod
    def parse(cls, events: list[Event], now: datetime) -> QueueSnapshot:
        return cls.of(QueueStatus.parse(events), now)

    def free_agent(self, queue: str, taken: set[str], wrapup_seconds: int) -> str | None:
        """The member of ``queue`` free the longest (past their wrap-up), not taken."""
        epoch = self.now.timestamp()
        ready = [
            (last, ext)
            for last, ext in self.free.get(queue, [])
            if ext not in taken and ext not in self.busy and last + wrapup_seconds <= epoch
        ]
        return min(ready)[1] if ready else None


class CallbackDialler:
    """Works the callback list: a free agent of the right team, then the citizen.

    Polls the list every ``interval`` seconds, and at once when woken: by the
    end of an attempt, or by "call now" in a panel (a message on the bus
    topic :data:`WAKE_TOPIC`, which the dialler's own subscription hears,
    whichever process the panel runs in).  A callback is dialled only when an
    agent of its team on duty is free (not paused, not in a call, past
    wrap-up: Asterisk's QueueStatus is the judge), and only if no caller
    still waiting in that team's queue joined before it did (the queue serves
    those first, so every caller keeps their place).  An agent who pressed
    "call now" gets the callback as soon as their phone is not busy.  With
    ``presence``, the agent rung gets the callback's screen-pop.
    """

    def __init__(
        self,
        service: CallbackService,
        settings: Settings,
        ami: AMIClient,
        clock: Clock,
        *,
        interval: float = 5.0,
        presence: Presence | None = None,
        bus: Bus | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.ami = ami
        self.clock = clock
        self.interval = interval
        self.presence = presence
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        # the wake-up subscription ("call now"); without a bus, only the poll
        self.bus = bus
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        # agent extension -> attempt channel id, while we ring them
        self.busy_agents: dict[str, str] = {}
        # attempt channel id -> its recording base, until the dialplan reports
        self._bases: dict[str, str] = {}

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(CALLBACK_EVENTS, self.on_user_event)
        ami.on_login(self._on_login)

    async def _on_login(self) -> None:
        await self.find_lost()

    async def find_lost(self) -> int:
        """After an AMI (re)login: attempts whose channel is gone and whose report was
        missed while disconnected end as failed (and are retried), never stuck."""
        events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        live = {
            e.get("Uniqueid")
            for e in (events if isinstance(events, list) else [])
            if e.get("Event") == "CoreShowChannel"
        }
        # an attempt just started may not have its channel yet
        recent = self.clock.now() - timedelta(seconds=self.settings.queues.ring_seconds + 30)
        lost = 0
        for uid in await self.service.open_attempts(recent):
            if uid in live:
                continue
            await self.service.finish_attempt(uid, Result.FAILED, detail="lost: no report")
            await self._release(uid, "ended", result=Result.FAILED)
            lost += 1
        if lost:
            log.warning("callbacks: %d attempt(s) ended without a report; retried later", lost)
        return lost

    async def start(self) -> None:
        recovered = await self.service.recover()
        if recovered:
            log.warning("callbacks: %d attempt(s) interrupted by a restart put back", recovered)
        if self.bus is not None:
            self._listener = asyncio.create_task(self._listen(self.bus), name="callback-wake")
        self._task = asyncio.create_task(self._run(), name="callback-dialler")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._listener, *self._calls) if t is not None]
        for t in tasks:
            t.cancel()
        if self.bus is not None and self._listener is not None:
            # a pub/sub read may not give way to the cancellation: end it for certain
            await self.bus.stop_listening(self._listener)
        await cancel_and_wait(tasks, "callback dialler")

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self, bus: Bus) -> None:
        """Wake the dialler for every message on :data:`WAKE_TOPIC`."""
        async for _topic, data in bus.listen([WAKE_TOPIC], self.listening):
            log.debug("callback dialler woken: %s", data)
            self.wake()

    async def _run(self) -> None:
        while True:
            # cleared before the round, not after: a wake-up that arrives
            # while it runs (a "call now" just after the list was read) is
            # kept for the next round instead of waiting for the poll
            self._wake.clear()
            try:
                if self.ami.connected:
                    await self.tick()
            except AMIError as e:
                log.warning("callback dialler postponed: %s", e)
            except Exception:
                log.exception("callback dialler round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass

    async def tick(self) -> int:
        """One round over the due callbacks; returns how many were dialled."""
        due = await self.service.due()
        if not due:
            return 0
        # Asterisk itself says who is free and who waits: the live state on
        # the bus may lag a pause by an event or a resync.
        snapshot = QueueSnapshot.of(await read_queue_status(self.ami), self.clock.now())
        dialled = 0
        taken: set[str] = set(self.busy_agents)
        wrapup = self.settings.queues.wrapup_seconds
        for cb in due:
            queue, _shift = on_duty_queue(self.settings, cb.team_id, self.clock.now())
            if cb.assigned_extension:
                ext: str | None = cb.assigned_extension
                if ext in taken or ext in snapshot.busy:
                    continue
            else:
                if any(joined < cb.queued_at for joined in snapshot.waiting.get(queue, [])):
                    continue  # someone still in the queue was there first
                ext = snapshot.free_agent(queue, taken, wrapup)
            if ext is None:
                continue
            taken.add(ext)
            uid = f"cb-{cb.id}-{uuid.uuid4().hex[:10]}"
            started = await self.service.start_attempt(cb.id, ext, uid)
            if started is None:
                continue
            self.busy_agents[ext] = uid
            task = asyncio.create_task(self._dial(cb, ext, uid, started), name=f"callback-{cb.id}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            dialled += 1
        return dialled

    async def _dial(self, cb: Due, extension: str, uid: str, started: Started) -> None:
        """Ring the agent (their screen pops); the dialplan then dials the citizen and reports."""
        s = self.settings
        base = str(base_for(s.recordings_dir, s.tz, self.clock.now(), uid))
        hotline = s.hotline(cb.hotline_number) if cb.hotline_number else None
        shown = hotline.number if hotline else s.hotlines[0].number
        variables = [
            f"HOTLINE_CALLBACK={cb.id}",
            f"HOTLINE_CALLBACK_NUMBER={cb.number}",
            f"HOTLINE_CALLBACK_FROM={shown}",
            f"HOTLINE_CALLBACK_RECORDING={base}",
            f"CHANNEL(language)={cb.language}",
        ]
        if self.presence is not None:
            await tell(self.presence.callback_called(extension, uid, started.info))
        try:
            originated = await originate(
                self.ami,
                channel=f"PJSIP/{extension}",
                context=DIAL_CONTEXT,
                uniqueid=uid,
                ring_seconds=s.queues.ring_seconds,
                caller_id=f'"{cb.number}" <{cb.number}>',
                variables=variables,
            )
            if not originated.answered:
                log.info(
                    "callback %s: agent %s did not take it (reason %s)",
                    cb.id,
                    extension,
                    originated.reason,
                )
                await self.service.finish_attempt(
                    uid, Result.AGENT_MISSED, detail=f"agent:{originated.reason or ''}"
                )
            else:
                # the result comes with the dialplan's UserEvent; keep the base for it
                self._bases[uid] = base
                if self.presence is not None and self.busy_agents.get(extension) == uid:
                    await tell(self.presence.callback_phase(extension, uid, "talking"))
                return
        except AMIError as e:
            log.warning("callback %s: originate to %s failed: %s", cb.id, extension, e)
            await self.service.finish_attempt(uid, Result.AGENT_MISSED, detail="originate failed")
        except asyncio.CancelledError:
            raise
        await self._release(uid, "missed")
        self.wake()

    async def on_user_event(self, e: Event) -> None:
        """The dialplan's report: ``UserEvent: HotlineCallback`` with the dial status."""
        if e.get("UserEvent") != RESULT_EVENT:
            return
        uid = e.get("Uniqueid") or ""
        status = e.get("DialStatus") or ""
        result = result_of_dial(status)
        talk = header_int(e.get("Answered"))
        base = self._bases.pop(uid, None) or e.get("Recording") or None
        await self.service.finish_attempt(
            uid,
            result,
            detail=f"dial:{status or 'none'}",
            talk_seconds=talk,
            recording_base=base if result == Result.CONNECTED else None,
        )
        await self._release(uid, "ended", result=result)
        self.wake()

    async def _release(self, uid: str, phase: str, **extra: Any) -> None:
        """The attempt ``uid`` is over: its agent is free again, their pop ends."""
        for ext, u in list(self.busy_agents.items()):
            if u != uid:
                continue
            self.busy_agents.pop(ext, None)
            if self.presence is not None:
                await tell(self.presence.callback_phase(ext, uid, phase, **extra))


class OutboundDialler:
    """Dials the calls agents place from tickets (:mod:`callcenter.outbound`).

    Hears the panel's requests on the bus (:data:`~callcenter.outbound.DIAL_TOPIC`,
    whichever process took the click), rings the agent's phone into the dialplan's
    ``hotline-outbound`` context (the callbacks' record-and-dial path) with the
    screen-pop "calling the citizen", and turns the context's hang-up report
    (``UserEvent: HotlineOutbound``) into the record's end.  After an AMI
    (re)login, calls whose channel is gone and whose report was missed end as lost.
    """

    def __init__(
        self,
        service: OutboundService,
        settings: Settings,
        ami: AMIClient,
        clock: Clock,
        bus: Bus,
        *,
        presence: Presence | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.ami = ami
        self.clock = clock
        self.bus = bus
        self.presence = presence
        self.listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        # channel id -> (agent extension, recording base), until the dialplan reports
        self._open: dict[str, tuple[str, str]] = {}

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(CALLBACK_EVENTS, self.on_user_event)
        ami.on_login(self._on_login)

    async def _on_login(self) -> None:
        await self.find_lost()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="outbound-requests")

    async def stop(self) -> None:
        tasks = [t for t in (self._listener, *self._calls) if t is not None]
        for t in tasks:
            t.cancel()
        if self._listener is not None:
            await self.bus.stop_listening(self._listener)
        await cancel_and_wait(tasks, "outbound dialler")

    async def _listen(self) -> None:
        async for _topic, data in self.bus.listen([DIAL_TOPIC], self.listening):
            try:
                request = dial_request(json.loads(data))
            except ValueError:
                request = None
            if request is None:
                log.warning("outbound: a request that is not one: %.200s", data)
                continue
            task = asyncio.create_task(self.dial(request), name=f"outbound-{request['uniqueid']}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def dial(self, request: dict[str, str]) -> None:
        """Ring the agent (their screen says "calling the citizen"); the dialplan then
        dials the citizen, recorded, and reports."""
        s = self.settings
        uid, ext, number = request["uniqueid"], request["extension"], request["number"]
        base = str(base_for(s.recordings_dir, s.tz, self.clock.now(), uid))
        variables = [
            f"HOTLINE_OUTBOUND={request['ticket_code']}",
            f"HOTLINE_OUTBOUND_NUMBER={number}",
            f"HOTLINE_OUTBOUND_FROM={request['shown']}",
            f"HOTLINE_OUTBOUND_RECORDING={base}",
            f"CHANNEL(language)={request.get('language') or 'vi'}",
        ]
        self._open[uid] = (ext, base)
        if self.presence is not None:
            await tell(self.presence.outbound_called(ext, uid, request["ticket_code"]))
        try:
            originated = await originate(
                self.ami,
                channel=f"PJSIP/{ext}",
                context=OUTBOUND_CONTEXT,
                uniqueid=uid,
                ring_seconds=s.queues.ring_seconds,
                caller_id=f'"{number}" <{number}>',
                variables=variables,
            )
            if originated.answered:
                if self.presence is not None and uid in self._open:
                    await tell(self.presence.callback_phase(ext, uid, "talking"))
                return  # the result comes with the dialplan's UserEvent
            reason = f"agent:{originated.reason or ''}"
        except AMIError as e:
            log.warning("outbound %s: originate to %s failed: %s", uid, ext, e)
            reason = "originate failed"
        except asyncio.CancelledError:
            raise
        self._open.pop(uid, None)
        await self.service.finish(uid, Result.AGENT_MISSED, detail=reason)
        if self.presence is not None:
            await tell(self.presence.callback_phase(ext, uid, "missed"))

    async def on_user_event(self, e: Event) -> None:
        """The dialplan's report: ``UserEvent: HotlineOutbound`` with the dial status."""
        if e.get("UserEvent") != OUTBOUND_EVENT:
            return
        uid = e.get("Uniqueid") or ""
        status = e.get("DialStatus") or ""
        result = result_of_dial(status)
        ext, base = self._open.pop(uid, (None, e.get("Recording") or ""))
        call = await self.service.finish(
            uid,
            result,
            detail=f"dial:{status or 'none'}",
            talk_seconds=header_int(e.get("Answered")),
            recording_base=(base or None) if result == Result.CONNECTED else None,
        )
        ext = ext or (call.agent_extension if call else None)
        if ext and self.presence is not None:
            await tell(self.presence.callback_phase(ext, uid, "ended", result=result))

    async def find_lost(self) -> int:
        """After an AMI (re)login: calls whose channel is gone, with no report, end as lost."""
        events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        live = {
            e.get("Uniqueid")
            for e in (events if isinstance(events, list) else [])
            if e.get("Event") == "CoreShowChannel"
        }
        # a call just placed may not have its channel yet
        recent = self.clock.now() - timedelta(seconds=self.settings.queues.ring_seconds + 30)
        lost = 0
        for uid in await self.service.open_calls(recent):
            if uid in live:
                continue
            ext, _base = self._open.pop(uid, (None, ""))
            call = await self.service.finish(uid, Result.FAILED, detail="lost: no report")
            ext = ext or (call.agent_extension if call else None)
            if ext and self.presence is not None:
                await tell(self.presence.callback_phase(ext, uid, "ended", result=Result.FAILED))
            lost += 1
        if lost:
            log.warning("outbound: %d call(s) ended without a report", lost)
        return lost

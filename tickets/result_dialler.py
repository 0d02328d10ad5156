"""The result-call dialler: rings citizens with the result of their report, over AMI.

:class:`ResultCallDialler` takes the due calls :class:`~tickets.result_calls.ResultCallService`
keeps, within the allowed hours only and never two at once to the same number, and
originates the citizen's number over the trunk (:func:`callcenter.originate.originate`)
into the dialplan's ``hotline-result-call`` context, which records the call, reads the
result (``agi/result_call.py``) and runs the survey.  The Originate's answer says
whether the citizen picked up; the context's hang-up report (``UserEvent:
HotlineResultCall``, hence :data:`RESULT_CALL_EVENTS`) ends an answered call.  The whole
story is told in :mod:`tickets.result_calls`.

It looks at the list every ``result_calls.sweep_seconds`` (retries, the morning after a
night's results, calls left by a restart) and at once when woken: a result recorded in
any process publishes on :data:`~tickets.result_calls.WAKE_TOPIC`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from callcenter.models import Result
from callcenter.originate import originate
from core.ami import AMIClient, AMIError, Event
from core.bus import Bus
from core.clock import Clock
from core.lifecycle import cancel_and_wait
from core.settings import Settings
from tickets.models import ResultCallState
from tickets.result_calls import WAKE_TOPIC, Claimed, ResultCallService

log = logging.getLogger(__name__)

# The dialplan context the citizen's channel runs once answered (dialplan template).
DIAL_CONTEXT = "hotline-result-call"
# The UserEvent its hang-up handler sends.
RESULT_EVENT = "HotlineResultCall"
RESULT_CALL_EVENTS = ("UserEvent",)


class ResultCallDialler:
    """Works the result-call list; see the module docstring."""

    def __init__(
        self,
        service: ResultCallService,
        settings: Settings,
        ami: AMIClient,
        clock: Clock,
        *,
        bus: Bus | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.ami = ami
        self.clock = clock
        self.interval = settings.result_calls.sweep_seconds
        self.bus = bus
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.listening = asyncio.Event()
        # number -> channel id of the try ringing or talking to it now
        self.ringing: dict[str, str] = {}

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(RESULT_CALL_EVENTS, self.on_user_event)
        ami.on_login(self._on_login)

    async def _on_login(self) -> None:
        await self.find_lost()

    async def start(self) -> None:
        recovered = await self.service.recover()
        if recovered:
            log.warning("result calls: %d try(ies) interrupted by a restart put back", recovered)
        if self.bus is not None:
            self._listener = asyncio.create_task(self._listen(self.bus), name="result-call-wake")
        self._task = asyncio.create_task(self._run(), name="result-call-dialler")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._listener, *self._calls) if t is not None]
        for t in tasks:
            t.cancel()
        if self.bus is not None and self._listener is not None:
            await self.bus.stop_listening(self._listener)
        await cancel_and_wait(tasks, "result-call dialler")

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self, bus: Bus) -> None:
        async for _topic, data in bus.listen([WAKE_TOPIC], self.listening):
            log.debug("result-call dialler woken: %s", data)
            self.wake()

    async def _run(self) -> None:
        while True:
            # cleared before the round: a result recorded while it runs is kept for the next
            self._wake.clear()
            try:
                if self.ami.connected:
                    await self.tick()
            except AMIError as e:
                log.warning("result-call dialler postponed: %s", e)
            except Exception:
                log.exception("result-call dialler round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass

    async def tick(self) -> int:
        """One round over the due calls; returns how many were dialled."""
        if not self.settings.result_calls.enabled or not self.service.allowed_now():
            return 0
        dialled = 0
        for due in await self.service.due():
            if due.number in self.ringing:
                continue  # never two calls at once to one citizen
            uid = f"rc-{due.id}-{uuid.uuid4().hex[:10]}"
            claimed = await self.service.claim(due.id, uid)
            if claimed is None:
                continue
            self.ringing[claimed.number] = uid
            task = asyncio.create_task(self._dial(claimed), name=f"result-call-{due.id}")
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            dialled += 1
        return dialled

    async def _dial(self, c: Claimed) -> None:
        """Ring the citizen; answered, the dialplan takes over until its hang-up report."""
        s = self.settings
        hotline = s.hotline(c.hotline_number) if c.hotline_number else None
        hotline = hotline or s.hotlines[0]
        log.info("result call %s (ticket %s): try %d to %s", c.id, c.ticket_id, c.attempt, c.number)
        try:
            originated = await originate(
                self.ami,
                channel=f"PJSIP/{c.number}@{s.trunk.name}",
                context=DIAL_CONTEXT,
                uniqueid=c.uniqueid,
                ring_seconds=s.result_calls.ring_seconds,
                caller_id=f'"{hotline.name}" <{hotline.number}>',
                variables=[
                    f"HOTLINE_RESULT_CALL={c.id}",
                    f"HOTLINE_RESULT_TICKET={c.ticket_id}",
                    f"HOTLINE_RESULT_RECORDING={c.recording_base}",
                    f"CHANNEL(language)={c.language}",
                ],
            )
        except AMIError as e:
            log.warning("result call %s: originate failed: %s", c.id, e)
            await self.service.not_answered(c.uniqueid, Result.FAILED, "originate failed")
            self._release(c.uniqueid)
            return
        if originated.answered:
            await self.service.answered(c.uniqueid, c.recording_base)
            return  # the number stays taken until the hang-up report
        await self.service.not_answered(
            c.uniqueid, originated.result, f"reason:{originated.reason or ''}"
        )
        self._release(c.uniqueid)

    async def on_user_event(self, e: Event) -> None:
        """The dialplan's report at hang-up: ``UserEvent: HotlineResultCall``."""
        if e.get("UserEvent") != RESULT_EVENT:
            return
        uid = e.get("Uniqueid") or ""
        await self.service.ended(uid, e.get("Heard") or None, e.get("Survey") or None)
        self._release(uid)
        self.wake()

    async def find_lost(self) -> int:
        """After an AMI (re)login: tries whose channel is gone and whose report was missed
        end (ringing ones are tried again), never stuck."""
        events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        live = {
            e.get("Uniqueid")
            for e in (events if isinstance(events, list) else [])
            if e.get("Event") == "CoreShowChannel"
        }
        recent = self.clock.now() - timedelta(seconds=self.settings.result_calls.ring_seconds + 30)
        lost = 0
        for uid in await self.service.open_tries(recent):
            if uid in live:
                continue
            if await self.service.state_of(uid) == ResultCallState.TALKING:
                await self.service.ended(uid, None, None)
            elif uid in self.ringing.values():
                continue  # its originate is still waiting for Asterisk's answer
            else:
                await self.service.not_answered(uid, Result.FAILED, "lost: no report")
            self._release(uid)
            lost += 1
        if lost:
            log.warning("result calls: %d try(ies) ended without a report", lost)
        return lost

    def _release(self, uid: str) -> None:
        for number, u in list(self.ringing.items()):
            if u == uid:
                self.ringing.pop(number, None)

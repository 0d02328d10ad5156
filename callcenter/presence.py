"""The screen-pop: what an agent sees of the call that rings their phone.

Follow a call: ``AgentCalled`` (the queue rings an agent) -> :meth:`Presence.on_called`
builds the pop from the call record and the caller's history -> the bus
(``agent.<ext>`` topic, and a kept copy for page reloads) -> the panel's
WebSocket.  ``AgentConnect`` and ``AgentComplete`` move it on (talking,
ended: it stays for the ticket); a ring not answered or a caller who gave up
takes it off the screen.

The pop has its own lane of AMI events (``core.ami``): it never waits behind
the call records' or the queue statistics' writes.  So it keeps what it
needs from other events itself: the time each caller joined the queue (from
``QueueCallerJoin``), and which agent has which call on screen.  Within the
lane each agent's events are handled in their order, but one agent's pop
waiting for its reads does not hold up another agent's (:meth:`Presence.subscribe`).

What a pop reads is read ahead.  The caller's earlier calls and tickets
start when the call reaches the IVR (:meth:`Presence.prefetch`, called by
the IVR with the caller ID, seconds before the queue:
``callcenter/pophistory.py``); the call record, which the IVR completes on
the way to the queue, when the caller joins it.  In a busy hour the caller
waits and the pop is ready long before it is needed; when an agent is free
the ring follows the join within milliseconds and only the record's read is
left to wait for.  A second agent rung for the same caller gets the same
reads.  The agents' states are not kept here: :class:`callcenter.live.LiveState`
owns them.

A callback call pops the same way: the callback dialler
(``callcenter/dialler.py``) rings the agent and calls :meth:`Presence.callback_called`
with what the agent needs to know about the callback, then
:meth:`Presence.callback_phase` as the call goes on and ends.  A call the agent
places from a ticket ("call the citizen") pops as :meth:`Presence.outbound_called`.
A call another agent transferred (``HOTLINE_TRANSFER`` on the caller's channel,
:mod:`callcenter.transfers`) pops with what that agent wrote (``transfer``).  So
does one handed to an agent's own extension, not through a queue (the panel's
``agent:<ext>``, ``##<ext>`` on a phone): the dialplan's UserEvents of the leg
(:data:`~callcenter.transfers.LEG_EVENTS`) ring, answer and end its pop.

Handlers hold no SQL: the call record comes from :class:`CallService`, the
caller's earlier tickets from a function the composition root injects (the
tickets domain sits above this one).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from callcenter.live import LiveState
from callcenter.models import Call
from callcenter.pophistory import CallerHistory, History
from callcenter.service import CallFacts, CallService, sanitize_caller
from callcenter.shifts import extension_of
from callcenter.transfers import LEG_ANSWERED, LEG_EVENTS, LEG_RING
from callcenter.transfers import POP_KEY as TRANSFER_KEY
from core.ami import AMIClient, Event, chan_vars, event_time
from core.bus import Bus
from core.clock import Clock
from core.lifecycle import cancel_and_wait
from core.settings import Settings

log = logging.getLogger(__name__)

POP_EVENTS = (
    "QueueCallerJoin",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentDump",
    "AgentConnect",
    "AgentComplete",
    "QueueCallerAbandon",
    "UserEvent",
)

# How long a pop is kept without news (a crashed app must not leave a call on
# an agent's screen for ever).
POP_TTL = 4 * 3600
# join times remembered for calls still to be answered (the oldest are dropped)
MAX_JOINS = 5000

HistoryFn = Callable[[str | None], Awaitable[list[dict[str, Any]]]]
Handler = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class Reads:
    """What a pop reads from the database: the call record and the caller's history."""

    call: Call | CallFacts | None  # the IVR's facts in memory, or the record
    number: str | None
    earlier_calls: list[dict[str, Any]]
    tickets: list[dict[str, Any]]


async def _nothing() -> list[dict[str, Any]]:
    return []


@dataclass(frozen=True)
class CallbackInfo:
    """What a callback's pop says besides the call itself (the dialler fills it in)."""

    callback_id: int
    requested_at: datetime  # when the citizen asked (or the voice message became a callback)
    queued_at: datetime  # when they first joined the queue: their place, and the wait shown
    attempt: int  # this try's number, 1 for the first
    attempts: int  # how many tries there are in all
    number_source: str  # caller_id, typed, voice_message
    ivr_path: str | None = None  # what they chose in the menu on the call that asked
    voice_message_id: int | None = None
    voice_message_seconds: float | None = None

    def as_pop(self) -> dict[str, Any]:
        voice = None
        if self.voice_message_id is not None:
            voice = {
                "id": self.voice_message_id,
                # the panel's own route: plays after its usual access check
                "url": f"/callbacks/voice/{self.voice_message_id}/audio",
                "seconds": self.voice_message_seconds,
            }
        return {
            "id": self.callback_id,
            "requested_at": self.requested_at.isoformat(),
            "attempt": self.attempt,
            "attempts": self.attempts,
            "number_source": self.number_source,
            "voice_message": voice,
        }


class Presence:
    """Puts each agent's screen-pop on the bus; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        calls: CallService,
        settings: Settings,
        clock: Clock,
        history: HistoryFn | None = None,
        live: LiveState | None = None,
        phone_key: Callable[[str], str | None] | None = None,
    ) -> None:
        self.bus = bus
        self.calls = calls
        self.settings = settings
        self.clock = clock
        self.history = history
        self.live = live
        self.joined: OrderedDict[str, datetime] = OrderedDict()  # uniqueid -> joined the queue
        self.on_screen: dict[str, str] = {}  # extension -> the uniqueid of their pop
        # uniqueid -> the reads of its pop, started when the caller joined the queue
        self.reads: OrderedDict[str, asyncio.Task[Reads]] = OrderedDict()
        # the caller's history, read from the moment the call reached the IVR
        self.caller_history = CallerHistory(
            self._read_history, **({"phone_key": phone_key} if phone_key else {})
        )
        # extension -> the last of that agent's pop events being handled
        self._turns: dict[str, asyncio.Task[None]] = {}

    def subscribe(self, ami: AMIClient) -> None:
        """The pop's lane; an agent's events wait only for that agent's earlier ones."""

        def pop(names: list[str], handler: Handler) -> None:
            # these handlers only note the event and start the agent's task:
            # run as the event is read, not a turn of the loop later
            ami.subscribe(names, handler, lane="pop", immediate=True)

        pop(["QueueCallerJoin"], self.on_join)
        pop(["AgentCalled"], self.in_turn(self.on_called))
        pop(["AgentRingNoAnswer", "AgentDump"], self.in_turn(self.on_ring_over))
        pop(["AgentConnect"], self.in_turn(self.on_connect))
        pop(["AgentComplete"], self.in_turn(self.on_complete))
        pop(["QueueCallerAbandon"], self.on_abandon_in_turn)
        pop(["UserEvent"], self.on_transfer_leg)

    # -- each agent's events in order, agents side by side ---------------
    def in_turn(self, handler: Handler) -> Handler:
        """``handler`` run after the same agent's earlier events, without holding up
        the lane: the next agent's ring is not kept waiting by this pop's reads."""

        async def hand_over(e: Event) -> None:
            ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
            if not ext:
                return
            uniqueid = e.get("Uniqueid")
            if e.get("Event") == "AgentCalled" and uniqueid:
                # on their screen from now: an abandon heard before the pop is
                # built takes it off after it is shown
                self.on_screen[ext] = uniqueid
            elif not uniqueid and ext in self.on_screen:
                # the call on their screen now, not the one a later ring puts there
                e = Event({**dict(e), "Uniqueid": self.on_screen[ext]})
            self._queue_turn(ext, handler, e)

        hand_over.__qualname__ = f"in_turn({getattr(handler, '__qualname__', handler)})"
        return hand_over

    async def on_abandon_in_turn(self, e: Event) -> None:
        """The caller gave up: off the screens that show it, each in its agent's turn."""
        uniqueid = e.get("Uniqueid")
        if not uniqueid:
            return
        self._done_with(uniqueid)
        for ext in [x for x, u in self.on_screen.items() if u == uniqueid]:
            self._queue_turn(ext, partial(self._missed, ext, uniqueid), e)

    async def on_transfer_leg(self, e: Event) -> None:
        """A transfer rings an agent's own phone (:data:`LEG_EVENTS`): their pop, in
        their turn, as a queue's ring would give it."""
        name = e.get("UserEvent")
        if name not in LEG_EVENTS:
            return
        ext, uniqueid = e.get("Target") or "", e.get("Call") or ""
        if not uniqueid or not any(a.extension == ext for a in self.settings.agents):
            return  # a supervisor's desk phone, an agency, an emergency desk: no screen
        if name == LEG_RING:
            self.on_screen[ext] = uniqueid
            self._queue_turn(ext, self.transfer_called, e)
        else:
            phase = "talking" if name == LEG_ANSWERED else "over"
            self._queue_turn(ext, partial(self._transfer_phase, ext, uniqueid, phase), e)

    async def _missed(self, ext: str, uniqueid: str, _e: Event) -> None:
        await self._pop_phase(ext, uniqueid, "missed")

    def _queue_turn(self, ext: str, handler: Callable[[Event], Awaitable[None]], e: Event) -> None:
        before = self._turns.get(ext)
        task = asyncio.create_task(self._turn(before, handler, e), name=f"pop-{ext}")
        self._turns[ext] = task
        task.add_done_callback(partial(self._turn_over, ext))

    @staticmethod
    async def _turn(
        before: asyncio.Task[None] | None, handler: Callable[[Event], Awaitable[None]], e: Event
    ) -> None:
        if before is not None:
            await asyncio.wait({before})  # its failure is its own (logged there)
        try:
            await handler(e)
        except Exception:
            log.exception(
                "screen-pop handler %s failed on %s (uniqueid %s)",
                getattr(handler, "__qualname__", handler),
                e.get("Event"),
                e.get("Uniqueid"),
            )

    def _turn_over(self, ext: str, task: asyncio.Task[None]) -> None:
        if self._turns.get(ext) is task:
            del self._turns[ext]

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # -- the screen-pop -------------------------------------------------
    def prefetch(self, uniqueid: str, number: str | None) -> None:
        """The call reached the IVR: start reading the caller's history for its pop."""
        self.caller_history.warm(uniqueid, number)

    def tickets_changed(self, phone: str | None) -> None:
        """A ticket of ``phone`` was written: a pop must not show what was read before."""
        self.caller_history.phone_changed(phone)

    async def on_join(self, e: Event) -> None:
        uniqueid = e.get("Uniqueid")
        if not uniqueid:
            return
        self.joined[uniqueid] = event_time(e, self.clock)
        self.joined.move_to_end(uniqueid)
        while len(self.joined) > MAX_JOINS:
            self.joined.popitem(last=False)
        number = sanitize_caller(e.get("CallerIDNum"), None).number
        self._start_reads(uniqueid, number)

    def _start_reads(self, uniqueid: str, number: str | None) -> asyncio.Task[Reads]:
        task = self.reads.get(uniqueid)
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            # none yet, or a read that failed (the database was away): read again
            task = asyncio.create_task(self._read(uniqueid, number), name=f"pop-reads-{uniqueid}")
            self.reads[uniqueid] = task
            while len(self.reads) > MAX_JOINS:
                _, old = self.reads.popitem(last=False)
                old.cancel()
        return task

    def _done_with(self, uniqueid: str) -> None:
        self.joined.pop(uniqueid, None)
        self.caller_history.done(uniqueid)
        task = self.reads.pop(uniqueid, None)
        if task is not None and not task.done():
            task.cancel()

    async def _read(self, uniqueid: str, number: str | None) -> Reads:
        """The call record, and the caller's history (read ahead when the IVR had it)."""
        if number:  # the history need not wait for the record
            self.caller_history.warm(uniqueid, number)
        # what the IVR of this process wrote is at hand; else the record is read
        call = self.calls.facts(uniqueid) or await self.calls.get(uniqueid)
        number = (call.caller_number if call else None) or number
        if not number:
            return Reads(call, number, [], [])
        earlier, tickets = await self.caller_history.get(uniqueid, number)
        return Reads(call, number, earlier, tickets)

    async def _read_history(self, number: str, uniqueid: str) -> History:
        """The caller's earlier calls (this one left out) and tickets, side by side."""
        earlier, tickets = await asyncio.gather(
            self.calls.earlier_calls(number, before=uniqueid),
            self.history(number) if self.history else _nothing(),
        )
        return earlier, tickets

    async def stop(self) -> None:
        h = self.caller_history
        log.info(
            "screen-pop: %d histories read ahead were used, %d read at the ring", h.hits, h.misses
        )
        turns = list(self._turns.values())
        if turns:  # the last pops go out (each is a few reads and a publish)
            await asyncio.wait(turns, timeout=5)
        tasks = [*self.reads.values(), *self._turns.values()]
        self.reads.clear()
        await cancel_and_wait(tasks, "presence")
        await self.caller_history.stop()

    async def on_called(self, e: Event) -> None:
        received = self._now()
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        uniqueid = e.get("Uniqueid")
        if not ext or not uniqueid:
            return
        v = chan_vars(e)
        caller = sanitize_caller(e.get("CallerIDNum"), e.get("CallerIDName"))
        task = self._start_reads(uniqueid, caller.number)
        try:
            reads = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current and current.cancelling()):
                return  # the caller gave up (or another agent answered) meanwhile
            raise
        call = reads.call
        pop = self._pop(
            uniqueid,
            reads,
            name=caller.name,
            hotline_number=v.get("HOTLINE_NUMBER") or None,
            queue=e.get("Queue"),
            route_source=v.get("HOTLINE_ROUTE_SOURCE") or "agi",
            # this lane's own join time: the record's may not be written yet
            queued_at=self.joined.get(uniqueid) or (call.queued_at if call else None),
        )
        pop.update(event_at=received, ami_timestamp=float(e.get("Timestamp") or 0) or None)
        if v.get("HOTLINE_TRANSFER"):
            # handed on by another agent: what they wrote comes with the call
            pop["transfer"] = await self._transfer_note(uniqueid)
        await self._show_pop(ext, uniqueid, pop)

    async def transfer_called(self, e: Event) -> None:
        """A transfer rings an agent's extension (``agent:<ext>``, ``##<ext>``): the pop
        of the call, with what the agent who handed it on wrote (as into a queue)."""
        received = self._now()
        ext, uniqueid = e.get("Target") or "", e.get("Call") or ""
        at = event_time(e, self.clock)
        if self.live is not None:
            self.live.agent_call(ext, uniqueid, "ringing", at)
        reads = await self._read(uniqueid, None)
        call = reads.call
        pop = self._pop(
            uniqueid,
            reads,
            name=None,
            hotline_number=None,
            queue=call.queue if call else None,
            route_source="agi",
            queued_at=None,
        )
        pop.update(event_at=received, ami_timestamp=float(e.get("Timestamp") or 0) or None)
        asked = e.get("Transfer") or ""
        if asked:  # the panel's transfer: its note, unless a later transfer's is kept
            note = await self._transfer_note(uniqueid)
            pop["transfer"] = note if note and str(note.get("id")) == asked else None
        await self._show_pop(ext, uniqueid, pop)

    async def _transfer_phase(self, ext: str, uniqueid: str, phase: str, e: Event) -> None:
        """The leg to an agent's extension was answered (``talking``), or is ``over``:
        ended once talked, off the screen when it only rang."""
        at = event_time(e, self.clock)
        if phase == "talking":
            if self.live is not None:
                self.live.agent_call(ext, uniqueid, "talking", at)
            await self._pop_phase(
                ext, uniqueid, "talking", only_from=("ringing",), answered_at=at.timestamp()
            )
            return
        pop = await self.bus.kept(f"pop.{ext}")
        rang_only = (
            pop is not None and pop.get("uniqueid") == uniqueid and pop.get("phase") == "ringing"
        )
        if self.live is not None:
            self.live.agent_call(ext, uniqueid, "missed" if rang_only else "ended", at)
        if rang_only:
            await self._pop_phase(ext, uniqueid, "missed")
        else:
            await self._pop_phase(ext, uniqueid, "ended", ended_at=at.timestamp())

    async def _transfer_note(self, uniqueid: str) -> dict[str, Any] | None:
        try:
            return await self.bus.kept(TRANSFER_KEY.format(uniqueid=uniqueid))
        except Exception:  # noqa: BLE001 - Redis away: the pop goes out without it
            log.exception("screen-pop: the transfer note of %s was not read", uniqueid)
            return None

    async def callback_called(self, ext: str, uniqueid: str, callback: CallbackInfo) -> None:
        """The callback dialler rings ``ext``: the pop of a queue call, marked as a callback.

        ``uniqueid`` is the attempt's channel id, which is also its call
        record's: the ticket form links to that record, as for a queue call.
        """
        received = self._now()
        if self.live is not None:
            self.live.agent_call(ext, uniqueid, "ringing", self.clock.now())
        reads = await self._read(uniqueid, None)
        pop = self._pop(
            uniqueid,
            reads,
            name=None,
            hotline_number=None,
            queue=reads.call.queue if reads.call else None,
            route_source="callback",
            queued_at=callback.queued_at,
        )
        # what they chose in the menu on the call that asked, not the callback's own path
        pop.update(
            kind="callback",
            callback=callback.as_pop(),
            ivr_path=callback.ivr_path or "",
            queued_at=callback.queued_at.isoformat(),
            event_at=received,
        )
        await self._show_pop(ext, uniqueid, pop)

    async def outbound_called(self, ext: str, uniqueid: str, ticket_code: str) -> None:
        """The agent called the citizen from ticket ``ticket_code``: their phone rings
        first, and their screen says so ("calling the citizen") until the call ends.

        Not a queue call: no queue, no wait; the live state shows the agent
        ringing, then talking, as their phone is.
        """
        received = self._now()
        if self.live is not None:
            self.live.agent_call(ext, uniqueid, "ringing", self.clock.now())
        reads = await self._read(uniqueid, None)
        pop = self._pop(
            uniqueid,
            reads,
            name=None,
            hotline_number=None,
            queue=None,
            route_source="outbound",
            queued_at=None,
        )
        pop.update(kind="outbound", outbound={"ticket": ticket_code}, event_at=received)
        await self._show_pop(ext, uniqueid, pop)

    async def callback_phase(self, ext: str, uniqueid: str, phase: str, **extra: Any) -> None:
        """A callback's (or an outbound call's) pop moves on as a queue call's does:
        ``talking`` once the agent answered, ``ended`` at hang-up (it stays for the
        ticket), ``missed`` when the agent's phone did not take it (off the screen)."""
        now = self.clock.now()
        if phase == "talking":
            # the phone's own device events say the same a moment later, if
            # the agent is in a queue at all ("call now" outside a shift)
            if self.live is not None:
                self.live.agent_call(ext, uniqueid, "talking", now)
            await self._pop_phase(
                ext, uniqueid, "talking", only_from=("ringing",), answered_at=now.timestamp(),
                **extra,
            )  # fmt: skip
            return
        if self.live is not None:
            self.live.agent_call(ext, uniqueid, "ended" if phase == "ended" else "missed", now)
        if phase == "ended":
            extra["ended_at"] = now.timestamp()
        await self._pop_phase(ext, uniqueid, phase, **extra)

    def _pop(
        self,
        uniqueid: str,
        reads: Reads,
        *,
        name: str | None,
        hotline_number: str | None,
        queue: str | None,
        route_source: str,
        queued_at: datetime | None,
    ) -> dict[str, Any]:
        """The screen-pop of one call: the record first, then what the event said."""
        call, number = reads.call, reads.number
        hotline_number = (call.hotline_number if call else None) or hotline_number
        hotline = self.settings.hotline(hotline_number) if hotline_number else None
        waited = None
        if queued_at is not None:
            waited = max(0, round((self.clock.now() - queued_at).total_seconds()))
        return {
            "type": "pop",
            "kind": "queue",
            "uniqueid": uniqueid,
            "call_id": call.id if call else None,
            "caller": number,
            "caller_name": (call.caller_name if call else None) or name,
            "hotline": hotline_number,
            "hotline_name": hotline.name if hotline else None,
            "queue": queue,
            "language": call.language if call else None,
            "ivr_path": call.ivr_path if call else "",
            "ivr_choice": call.ivr_choice if call else None,
            "route_source": (call.route_source if call else None) or route_source,
            "waited": waited,
            "queued_at": queued_at.isoformat() if queued_at else None,
            "phase": "ringing",
            "earlier_calls": reads.earlier_calls,
            "tickets": reads.tickets,
            "event_at": None,
            "ami_timestamp": None,
            "sent": None,
        }

    async def _show_pop(self, ext: str, uniqueid: str, pop: dict[str, Any]) -> None:
        """Put ``pop`` on the agent's screen (kept for a reload)."""
        self.on_screen[ext] = uniqueid
        pop["sent"] = self._now()
        await self.bus.publish_kept(f"agent.{ext}", f"pop.{ext}", pop, POP_TTL)

    async def _pop_phase(
        self,
        ext: str,
        uniqueid: str,
        phase: str,
        *,
        only_from: tuple[str, ...] | None = None,
        **extra: Any,
    ) -> None:
        if phase in ("missed", "ended") and self.on_screen.get(ext) == uniqueid:
            del self.on_screen[ext]
        pop = await self.bus.kept(f"pop.{ext}")
        if not pop or pop.get("uniqueid") != uniqueid:
            return
        if only_from is not None and pop.get("phase") not in only_from:
            return  # a later phase is there already (its report overtook this one)
        if phase == "missed":
            # rang but went elsewhere (or the caller left): off this agent's screen
            await self.bus.forget(f"pop.{ext}")
            await self.bus.publish(f"agent.{ext}", {"type": "pop_gone", "uniqueid": uniqueid})
            return
        pop.update(phase=phase, sent=self._now(), **extra)
        await self.bus.publish_kept(f"agent.{ext}", f"pop.{ext}", pop, POP_TTL)

    async def on_ring_over(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        uniqueid = e.get("Uniqueid")
        if ext and uniqueid:
            await self._pop_phase(ext, uniqueid, "missed")

    async def on_abandon(self, e: Event) -> None:
        uniqueid = e.get("Uniqueid")
        if not uniqueid:
            return
        self._done_with(uniqueid)
        for ext in [x for x, u in self.on_screen.items() if u == uniqueid]:
            await self._pop_phase(ext, uniqueid, "missed")

    async def on_connect(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        uniqueid = e.get("Uniqueid")
        if not ext or not uniqueid:
            return
        self._done_with(uniqueid)
        self.on_screen[ext] = uniqueid
        await self._pop_phase(ext, uniqueid, "talking", answered_at=self._now())

    async def on_complete(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        if not ext:
            return
        # Asterisk leaves the Uniqueid out when the caller is gone already
        uniqueid = e.get("Uniqueid") or self.on_screen.get(ext)
        if uniqueid:
            await self._pop_phase(ext, uniqueid, "ended", ended_at=self._now())

"""Agents' live state and the screen-pop, from Asterisk's queue events.

Follow a call: ``AgentCalled`` (the queue rings an agent) -> :meth:`Presence.on_called`
builds the pop from the call record and the caller's history -> the bus
(``agent.<ext>`` topic, and a kept copy for page reloads) -> the panel's
WebSocket.  Agent states (free, ringing, talking, paused with a reason,
wrap-up, offline) come from the same events and from ``QueueMemberStatus``.

A callback call pops the same way: the callback dialler
(``callcenter/dialler.py``) rings the agent and calls :meth:`Presence.callback_called`
with what the agent needs to know about the callback, then
:meth:`Presence.callback_phase` as the call goes on and ends.

Handlers hold no SQL: the call record comes from :class:`CallService`, the
caller's earlier tickets from a function the composition root injects (the
tickets domain sits above this one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from callcenter.models import Call
from callcenter.service import CallService, sanitize_caller
from callcenter.shifts import extension_of
from core.ami import AMIClient, Event, chan_vars
from core.bus import Bus
from core.clock import Clock
from core.settings import Settings

log = logging.getLogger(__name__)

PRESENCE_EVENTS = (
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "AgentDump",
    "QueueCallerAbandon",
    "QueueMemberStatus",
    "QueueMemberPause",
    "QueueMemberAdded",
    "QueueMemberRemoved",
)

# How long a pop and a state are kept without news (a crashed app must not
# leave a call on an agent's screen for ever).
POP_TTL = 4 * 3600
STATE_TTL = 24 * 3600

# Pause reasons an agent may choose; the shift scheduler's own reason is not
# among them, so an agent cannot resume themself out of a shift's end.
PAUSE_REASONS = ("break", "meal", "training", "paperwork", "technical", "toilet")

# Asterisk device states (AST_DEVICE_*) as QueueMemberStatus reports them.
_DEVICE = {
    "0": "unknown",
    "1": "free",
    "2": "talking",
    "3": "talking",
    "4": "offline",
    "5": "offline",
    "6": "ringing",
    "7": "ringing",
    "8": "talking",
}

HistoryFn = Callable[[str | None], Awaitable[list[dict[str, Any]]]]


@dataclass
class AgentState:
    extension: str
    name: str = ""
    state: str = "offline"  # offline, free, ringing, talking, wrapup, paused, off_shift
    device: str = "unknown"
    paused: bool = False
    reason: str = ""
    queues: list[str] = field(default_factory=list)
    since: float = 0.0  # epoch seconds of the last state change
    wrapup_until: float = 0.0
    call: str | None = None  # the caller's uniqueid while ringing/talking

    def derive(self, now: float) -> str:
        if self.device in ("ringing", "talking"):
            return self.device
        if self.device == "offline":
            return "offline"
        if self.wrapup_until > now:
            return "wrapup"
        if not self.queues:
            return "off_shift"
        if self.paused:
            return "paused"
        return "free"


def epoch(moment: datetime) -> float:
    return moment.timestamp()


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
    """Keeps every agent's state and screen-pop on the bus."""

    def __init__(
        self,
        bus: Bus,
        calls: CallService,
        settings: Settings,
        clock: Clock,
        history: HistoryFn | None = None,
    ) -> None:
        self.bus = bus
        self.calls = calls
        self.settings = settings
        self.clock = clock
        self.history = history
        self.names = {a.extension: a.name for a in settings.agents}
        self.states: dict[str, AgentState] = {}
        self._wrapup_tasks: dict[str, asyncio.Task[None]] = {}

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(["AgentCalled"], self.on_called)
        ami.subscribe(["AgentRingNoAnswer", "AgentDump"], self.on_ring_over)
        ami.subscribe(["AgentConnect"], self.on_connect)
        ami.subscribe(["AgentComplete"], self.on_complete)
        ami.subscribe(["QueueCallerAbandon"], self.on_abandon)
        ami.subscribe(
            ["QueueMemberStatus", "QueueMemberPause", "QueueMemberAdded", "QueueMemberRemoved"],
            self.on_member,
        )
        ami.on_login(lambda: self.resync(ami))

    async def stop(self) -> None:
        tasks = list(self._wrapup_tasks.values())
        self._wrapup_tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- state ----------------------------------------------------------
    def _state(self, ext: str) -> AgentState:
        st = self.states.get(ext)
        if st is None:
            st = self.states[ext] = AgentState(extension=ext, name=self.names.get(ext, ext))
        return st

    async def _publish_state(self, st: AgentState) -> None:
        now = time.time()
        new = st.derive(now)
        if new != st.state:
            st.state, st.since = new, now
        payload = {"type": "state", **asdict(st), "sent": now}
        await self.bus.publish_kept(
            f"agent.{st.extension}", f"state.{st.extension}", payload, STATE_TTL
        )
        await self.bus.publish("agents", payload)

    async def resync(self, ami: AMIClient) -> None:
        """Rebuild every agent's state from QueueStatus (after each AMI login)."""
        try:
            events = await ami.action({"Action": "QueueStatus"}, as_list=True)
        except Exception as e:  # noqa: BLE001 - logged; the next events repair the state
            log.warning("presence: QueueStatus failed: %s", e)
            return
        fresh: dict[str, AgentState] = {}
        for e in events if isinstance(events, list) else []:
            if e.get("Event") != "QueueMember":
                continue
            ext = extension_of(e.get("Location") or e.get("StateInterface") or "")
            if not ext:
                continue
            st = fresh.get(ext) or AgentState(extension=ext, name=self.names.get(ext, ext))
            fresh[ext] = st
            st.queues.append(e.get("Queue", ""))
            st.device = _DEVICE.get(e.get("Status", "0"), "unknown")
            if e.get("InCall") == "1" and st.device == "free":
                st.device = "talking"
            if e.get("Paused") == "1":
                st.paused, st.reason = True, e.get("PausedReason") or ""
        for ext in self.names:
            st = fresh.get(ext) or AgentState(extension=ext, name=self.names[ext])
            old = self.states.get(ext)
            if old is not None:
                st.since, st.state, st.wrapup_until, st.call = (
                    old.since,
                    old.state,
                    old.wrapup_until,
                    old.call,
                )
            self.states[ext] = st
            await self._publish_state(st)

    async def on_member(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("StateInterface") or "")
        if not ext:
            return
        st = self._state(ext)
        queue = e.get("Queue", "")
        kind = e.get("Event")
        if kind == "QueueMemberRemoved":
            st.queues = [q for q in st.queues if q != queue]
        elif queue and queue not in st.queues:
            st.queues.append(queue)
        if "Status" in e:
            st.device = _DEVICE.get(e["Status"], "unknown")
        if "Paused" in e:
            st.paused = e["Paused"] == "1"
            st.reason = (e.get("PausedReason") or e.get("Reason") or "") if st.paused else ""
        await self._publish_state(st)

    # -- the screen-pop -------------------------------------------------
    async def on_called(self, e: Event) -> None:
        received = time.time()
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        uniqueid = e.get("Uniqueid")
        if not ext or not uniqueid:
            return
        v = chan_vars(e)
        caller = sanitize_caller(e.get("CallerIDNum"), e.get("CallerIDName"))
        call = await self.calls.get(uniqueid)
        pop = await self._pop(
            uniqueid,
            call,
            number=caller.number,
            name=caller.name,
            hotline_number=v.get("HOTLINE_NUMBER") or None,
            queue=e.get("Queue"),
            route_source=v.get("HOTLINE_ROUTE_SOURCE") or "agi",
            queued_at=call.queued_at if call else None,
        )
        pop.update(event_at=received, ami_timestamp=float(e.get("Timestamp") or 0) or None)
        await self._show_pop(ext, uniqueid, pop)

    async def callback_called(self, ext: str, uniqueid: str, callback: CallbackInfo) -> None:
        """The callback dialler rings ``ext``: the pop of a queue call, marked as a callback.

        ``uniqueid`` is the attempt's channel id, which is also its call
        record's: the ticket form links to that record, as for a queue call.
        """
        received = time.time()
        call = await self.calls.get(uniqueid)
        pop = await self._pop(
            uniqueid,
            call,
            number=None,
            name=None,
            hotline_number=None,
            queue=call.queue if call else None,
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

    async def callback_phase(self, ext: str, uniqueid: str, phase: str, **extra: Any) -> None:
        """A callback's pop moves on as a queue call's does: ``talking`` once the agent
        answered, ``ended`` at hang-up (it stays for the ticket), ``missed`` when the
        agent's phone did not take it (off the screen)."""
        st = self._state(ext)
        if phase == "talking":
            # the phone's own device events say the same a moment later, if
            # the agent is in a queue at all ("call now" outside a shift)
            st.device, st.call = "talking", uniqueid
            await self._pop_phase(
                ext, uniqueid, "talking", only_from=("ringing",), answered_at=time.time(), **extra
            )
        else:
            if st.call == uniqueid:
                st.call = None
                if st.device in ("ringing", "talking"):
                    st.device = "free"
            if phase == "ended":
                extra["ended_at"] = time.time()
            await self._pop_phase(ext, uniqueid, phase, **extra)
        await self._publish_state(st)

    async def _pop(
        self,
        uniqueid: str,
        call: Call | None,
        *,
        number: str | None,
        name: str | None,
        hotline_number: str | None,
        queue: str | None,
        route_source: str,
        queued_at: datetime | None,
    ) -> dict[str, Any]:
        """The screen-pop of one call: the record first, then what the event said."""
        hotline_number = (call.hotline_number if call else None) or hotline_number
        hotline = self.settings.hotline(hotline_number) if hotline_number else None
        waited = None
        if queued_at is not None:
            waited = max(0, round((self.clock.now() - queued_at).total_seconds()))
        number = (call.caller_number if call else None) or number
        earlier = await self.calls.earlier_calls(number, before=uniqueid) if number else []
        tickets = await self.history(number) if self.history and number else []
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
            "earlier_calls": earlier,
            "tickets": tickets,
            "event_at": None,
            "ami_timestamp": None,
            "sent": None,
        }

    async def _show_pop(self, ext: str, uniqueid: str, pop: dict[str, Any]) -> None:
        """Put ``pop`` on the agent's screen (kept for a reload) and mark them ringing."""
        st = self._state(ext)
        st.device, st.call = "ringing", uniqueid
        pop["sent"] = time.time()
        await self.bus.publish_kept(f"agent.{ext}", f"pop.{ext}", pop, POP_TTL)
        await self._publish_state(st)

    async def _pop_phase(
        self,
        ext: str,
        uniqueid: str,
        phase: str,
        *,
        only_from: tuple[str, ...] | None = None,
        **extra: Any,
    ) -> None:
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
        pop.update(phase=phase, sent=time.time(), **extra)
        await self.bus.publish_kept(f"agent.{ext}", f"pop.{ext}", pop, POP_TTL)

    async def on_ring_over(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        uniqueid = e.get("Uniqueid")
        if not ext or not uniqueid:
            return
        st = self._state(ext)
        if st.call == uniqueid:
            st.call = None
            if st.device == "ringing":
                st.device = "free"
        await self._pop_phase(ext, uniqueid, "missed")
        await self._publish_state(st)

    async def on_abandon(self, e: Event) -> None:
        uniqueid = e.get("Uniqueid")
        for st in list(self.states.values()):
            if uniqueid and st.call == uniqueid:
                st.call = None
                await self._pop_phase(st.extension, uniqueid, "missed")
                await self._publish_state(st)

    async def on_connect(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        uniqueid = e.get("Uniqueid")
        if not ext or not uniqueid:
            return
        st = self._state(ext)
        st.device, st.call = "talking", uniqueid
        await self._pop_phase(ext, uniqueid, "talking", answered_at=time.time())
        await self._publish_state(st)

    async def on_complete(self, e: Event) -> None:
        ext = extension_of(e.get("Interface") or e.get("MemberName") or "")
        if not ext:
            return
        st = self._state(ext)
        uniqueid = e.get("Uniqueid") or st.call
        st.call = None
        if st.device == "talking":
            st.device = "free"
        wrap = self.settings.queues.wrapup_seconds
        st.wrapup_until = time.time() + wrap
        if uniqueid:
            await self._pop_phase(ext, uniqueid, "ended", ended_at=time.time())
        await self._publish_state(st)
        if wrap:
            old = self._wrapup_tasks.pop(ext, None)
            if old:
                old.cancel()
            self._wrapup_tasks[ext] = asyncio.create_task(self._end_wrapup(st, wrap))

    async def _end_wrapup(self, st: AgentState, wait: float) -> None:
        await asyncio.sleep(wait + 0.05)
        self._wrapup_tasks.pop(st.extension, None)
        await self._publish_state(st)


class AgentControl:
    """Pause and resume an agent in every queue they are in (AMI QueuePause)."""

    def __init__(self, ami: AMIClient) -> None:
        self.ami = ami

    async def pause(self, extension: str, reason: str) -> None:
        if reason not in PAUSE_REASONS:
            raise ValueError(f"unknown pause reason {reason!r}")
        await self._pause(extension, True, reason)

    async def resume(self, extension: str) -> None:
        await self._pause(extension, False, "")

    async def _pause(self, extension: str, paused: bool, reason: str) -> None:
        action = {
            "Action": "QueuePause",
            "Interface": f"PJSIP/{extension}",
            "Paused": "true" if paused else "false",
        }
        if reason:
            action["Reason"] = reason
        reply = await self.ami.action(action, as_list=False)
        if reply is not None and str(reply.get("Response", "")).lower() == "error":
            raise AgentNotInQueue(extension, str(reply.get("Message", "")))


class AgentNotInQueue(Exception):
    def __init__(self, extension: str, message: str) -> None:
        self.extension = extension
        super().__init__(f"agent {extension} is in no queue: {message}")

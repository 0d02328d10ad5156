"""The live state of the call centre, with one owner: agents, queue members and
callers waiting, each with its state and since when.

Asterisk tells it in two ways, both read here and nowhere else:

- **events** (:meth:`LiveState.subscribe`): a caller joins or leaves a queue,
  the queue rings an agent, the agent answers or the call ends, a member is
  added, removed, paused or changes device state;
- **QueueStatus** (:func:`read_queue_status`, :meth:`QueueStatus.parse`): the
  whole picture, read after every AMI login (:meth:`LiveState.rebuild`).  The
  shift scheduler and the callback dialler ask for the same answer through the
  same parser when they must decide on what Asterisk says at that moment.

One device vocabulary (:data:`DEVICE`), one rule that derives a state
(:func:`derive`): an agent's state (``offline``, ``free``, ``ringing``,
``talking``, ``wrapup``, ``paused``, ``off_shift``) and the state of each of
their queue memberships on the board come from the same facts.  A pause is a
membership's (Asterisk pauses per queue): an agent is paused when every queue
they are in has them paused, and their reason is the first such queue's.

Changes are made in memory at once (the AMI dispatch must not wait) and a
writer task puts what changed into Redis in one pipeline: each agent's state
(kept as ``state.<ext>`` for a page opened later, published on
``agent.<ext>``) and each queue's board (a field of the ``queues:live`` hash,
published on ``board``).  Readers in any process use those
(:class:`queue_stats.live.LiveQueues` for the board, the panel for states).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callcenter.shifts import extension_of
from core.ami import AMIClient, Event, event_time, header_int
from core.bus import Bus
from core.clock import Clock
from core.lifecycle import cancel_and_wait
from core.retry import Outage

log = logging.getLogger(__name__)

BOARD_TOPIC = "board"
# how long an agent's state is kept without news (a crashed app must not leave it for ever)
STATE_TTL = 24 * 3600

# Asterisk device states (AST_DEVICE_*), as QueueMemberStatus and QueueStatus
# report them, in the one vocabulary every screen uses.  "unknown" (0) is
# shown as offline: nothing says the phone can be reached.
DEVICE = {
    "0": "offline",  # unknown
    "1": "free",  # not in use
    "2": "talking",  # in use
    "3": "talking",  # busy
    "4": "offline",  # invalid
    "5": "offline",  # unavailable (not registered)
    "6": "ringing",
    "7": "ringing",  # ringing and in use
    "8": "talking",  # on hold
}
AGENT_STATES = ("offline", "free", "ringing", "talking", "wrapup", "paused", "off_shift")
MEMBER_STATES = ("free", "ringing", "talking", "wrapup", "paused", "offline")

LIVE_EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberStatus",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "Hangup",
)


def device_of(status: Any, in_call: Any = None, default: str = "0") -> str:
    """The device word of an event's ``Status`` (and ``InCall``) headers."""
    device = DEVICE.get(str(status if status not in (None, "") else default), "offline")
    if str(in_call) == "1" and device == "free":
        device = "talking"
    return device


def derive(
    device: str, *, paused: bool, wrapup_until: datetime | None, now: datetime, in_queue: bool
) -> str:
    """The one rule: a phone in a call is that; an unreachable one offline; then
    wrap-up after a call, then off shift (in no queue), paused, or free."""
    if device in ("ringing", "talking", "offline"):
        return device
    if wrapup_until is not None and wrapup_until > now:
        return "wrapup"
    if not in_queue:
        return "off_shift"
    return "paused" if paused else "free"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# -- QueueStatus ------------------------------------------------------------
@dataclass(frozen=True)
class StatusMember:
    """A ``QueueMember`` of a QueueStatus answer."""

    queue: str
    interface: str  # the member's Location (PJSIP/1001)
    extension: str | None
    name: str
    device: str
    in_call: bool
    paused: bool
    reason: str
    last_call: int  # epoch seconds of their last call's end, 0 if none
    last_pause: int  # epoch seconds of their last pause, 0 if none

    @property
    def busy(self) -> bool:
        """In a call or ringing: a new call would not reach them."""
        return self.in_call or self.device in ("ringing", "talking")


@dataclass(frozen=True)
class StatusEntry:
    """A ``QueueEntry`` (a caller waiting) of a QueueStatus answer."""

    queue: str
    uniqueid: str  # "" if Asterisk left it out
    caller: str | None
    wait: int  # seconds waited so far
    position: int


@dataclass(frozen=True)
class QueueStatus:
    """What one QueueStatus answer says: callers waiting per queue, members, entries."""

    waiting: dict[str, int]
    members: tuple[StatusMember, ...]
    entries: tuple[StatusEntry, ...]

    @classmethod
    def parse(cls, events: Iterable[Any]) -> QueueStatus:
        waiting: dict[str, int] = {}
        members: list[StatusMember] = []
        entries: list[StatusEntry] = []
        for e in events:
            kind, queue = e.get("Event"), e.get("Queue") or ""
            if not queue:
                continue
            if kind == "QueueParams":
                waiting[queue] = header_int(e.get("Calls")) or 0
            elif kind == "QueueMember":
                location = e.get("Location") or e.get("Interface") or e.get("StateInterface") or ""
                paused = e.get("Paused") == "1"
                members.append(
                    StatusMember(
                        queue=queue,
                        interface=location,
                        extension=extension_of(e.get("StateInterface") or location),
                        name=e.get("Name") or e.get("MemberName") or "",
                        device=device_of(e.get("Status"), e.get("InCall")),
                        in_call=e.get("InCall") == "1",
                        paused=paused,
                        reason=(e.get("PausedReason") or "") if paused else "",
                        last_call=header_int(e.get("LastCall")) or 0,
                        last_pause=header_int(e.get("LastPause")) or 0,
                    )
                )
            elif kind == "QueueEntry":
                entries.append(
                    StatusEntry(
                        queue=queue,
                        uniqueid=e.get("Uniqueid") or "",
                        caller=_caller(e.get("CallerIDNum")),
                        wait=header_int(e.get("Wait")) or 0,
                        position=header_int(e.get("Position")) or 0,
                    )
                )
        return cls(waiting, tuple(members), tuple(entries))


async def read_queue_status(ami: AMIClient, timeout: float = 15) -> QueueStatus:
    """Ask Asterisk for the whole picture now."""
    events = await ami.action({"Action": "QueueStatus"}, as_list=True, timeout=timeout)
    return QueueStatus.parse(events if isinstance(events, list) else [])


# DEVICE_STATE()'s words (what Getvar answers), in the same vocabulary.
DEVICE_STATE_WORDS = {
    "UNKNOWN": "offline",
    "NOT_INUSE": "free",
    "INUSE": "talking",
    "BUSY": "talking",
    "INVALID": "offline",
    "UNAVAILABLE": "offline",
    "RINGING": "ringing",
    "RINGINUSE": "ringing",
    "ONHOLD": "talking",
}


def device_of_state(word: Any) -> str:
    """The device word of a ``DEVICE_STATE()`` value (anything unknown: offline)."""
    return DEVICE_STATE_WORDS.get(str(word or "").strip().upper(), "offline")


async def read_device(ami: AMIClient, extension: str, timeout: float = 5) -> str:
    """What Asterisk says of one agent's phone at this moment (``free``, ``ringing``,
    ``talking`` or ``offline``: not registered), whether or not they are in a queue.

    The live state knows queue members' phones only; a caller that must decide
    now (may this agent place a call?) asks Asterisk directly, as the callback
    dialler does with QueueStatus.
    """
    reply = await ami.action(
        {"Action": "Getvar", "Variable": f"DEVICE_STATE(PJSIP/{extension})"},
        as_list=False,
        timeout=timeout,
    )
    return device_of_state(reply.get("Value") if reply is not None else None)


# -- the state ----------------------------------------------------------------
@dataclass
class Membership:
    paused: bool = False
    reason: str | None = None
    state: str = "free"
    since: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))


@dataclass
class Agent:
    extension: str
    name: str
    device: str = "unknown"  # no news yet: neither free nor offline
    memberships: dict[str, Membership] = field(default_factory=dict)
    wrapup_until: datetime | None = None
    call: str | None = None  # the caller's uniqueid while ringing or talking
    state: str = "off_shift"
    since: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))

    @property
    def paused(self) -> bool:
        return bool(self.memberships) and all(m.paused for m in self.memberships.values())

    @property
    def reason(self) -> str:
        if not self.paused:
            return ""
        return next((m.reason or "" for _, m in sorted(self.memberships.items())), "")

    def as_dict(self) -> dict[str, Any]:
        """The state message the panel shows (``type: state``)."""
        return {
            "type": "state",
            "extension": self.extension,
            "name": self.name,
            "state": self.state,
            "device": self.device,
            "paused": self.paused,
            "reason": self.reason,
            "queues": sorted(self.memberships),
            "since": self.since.timestamp(),
            "wrapup_until": self.wrapup_until.timestamp() if self.wrapup_until else 0.0,
            "call": self.call,
        }


@dataclass
class Caller:
    uniqueid: str
    caller: str | None
    since: datetime
    position: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "uniqueid": self.uniqueid,
            "caller": self.caller,
            "since": iso(self.since),
            "position": self.position,
        }


@dataclass
class Queue:
    name: str
    waiting: dict[str, Caller] = field(default_factory=dict)


class LiveState:
    """The owner of the live state; see the module docstring."""

    def __init__(
        self,
        bus: Bus | None,
        clock: Clock,
        *,
        names: dict[str, str] | None = None,
        wrapup_seconds: float = 0,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.names = names or {}
        self.wrapup = timedelta(seconds=wrapup_seconds)
        self.agents: dict[str, Agent] = {
            ext: Agent(ext, name, since=clock.now()) for ext, name in self.names.items()
        }
        self.queues: dict[str, Queue] = {}
        self._dirty_agents: set[str] = set(self.agents)
        self._dirty_queues: set[str] = set()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._wrapups: dict[str, asyncio.Task[None]] = {}
        self._stopped = False
        self.writes = 0  # Redis round trips (for the benchmark)

    # -- wiring and lifecycle -------------------------------------------------
    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(LIVE_EVENTS, self.on_event, lane="live")
        ami.on_login(lambda: self.rebuild(ami))

    async def start(self) -> None:
        self._stopped = False
        self._writer = asyncio.create_task(self._write_loop(), name="live-state-writer")
        self._wake.set()

    async def stop(self) -> None:
        self._stopped = True
        tasks = [*self._wrapups.values(), *([self._writer] if self._writer else [])]
        self._wrapups.clear()
        self._wake.set()  # a writer that swallowed its cancel sees the flag and ends
        await cancel_and_wait(tasks, "live state")
        self._writer = None
        await self.flush(final=True)  # what changed last still reaches Redis

    # -- reading ----------------------------------------------------------------
    def agent(self, ext: str) -> Agent:
        a = self.agents.get(ext)
        if a is None:
            a = self.agents[ext] = Agent(ext, self.names.get(ext, ext), since=self.clock.now())
        return a

    def members_of(self, queue: str) -> list[Agent]:
        return sorted(
            (a for a in self.agents.values() if queue in a.memberships), key=lambda a: a.extension
        )

    def queue_view(self, name: str) -> dict[str, Any]:
        """One queue as the board shows it: callers waiting in order, members' states."""
        q = self.queues.get(name) or Queue(name)
        return {
            "waiting": [c.as_dict() for c in sorted(q.waiting.values(), key=lambda c: c.position)],
            "members": [
                {
                    "extension": a.extension,
                    "name": a.name,
                    "state": a.memberships[name].state,
                    "since": iso(a.memberships[name].since),
                    "reason": a.memberships[name].reason if a.memberships[name].paused else None,
                }
                for a in self.members_of(name)
            ],
        }

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per queue, for an operator: members by state, callers waiting and the
        longest wait in seconds (no caller numbers: this leaves the panel)."""
        now = self.clock.now()
        names = sorted({*self.queues, *(q for a in self.agents.values() for q in a.memberships)})
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            members = self.members_of(name)
            states = {s: 0 for s in MEMBER_STATES}
            for a in members:
                states[a.memberships[name].state] += 1
            waiting = list((self.queues.get(name) or Queue(name)).waiting.values())
            out[name] = {
                "members": len(members),
                **states,
                "waiting": len(waiting),
                "longest_wait": max(
                    (round((now - c.since).total_seconds()) for c in waiting), default=0
                ),
            }
        return out

    # -- events -------------------------------------------------------------------
    async def on_event(self, e: Event) -> None:
        """One AMI event, in Asterisk's order; memory only, never waits."""
        self.handle(e)

    def handle(self, e: Any) -> None:
        kind = str(e.get("Event", ""))
        queue, uniqueid = e.get("Queue") or "", e.get("Uniqueid") or ""
        ext = extension_of(
            e.get("Interface") or e.get("StateInterface") or e.get("MemberName") or ""
        )
        at = event_time(e, self.clock)
        if kind == "QueueCallerJoin" and queue and uniqueid:
            position = header_int(e.get("Position")) or 0
            self.caller_joined(queue, uniqueid, _caller(e.get("CallerIDNum")), position, at)
        elif kind in ("QueueCallerLeave", "QueueCallerAbandon") and queue and uniqueid:
            self.caller_left(queue, uniqueid)
            if kind == "QueueCallerAbandon":
                self._call_gone(uniqueid, at)
        elif kind == "Hangup" and uniqueid:
            self._call_gone(uniqueid, at)
            for q in list(self.queues.values()):
                if uniqueid in q.waiting:
                    self.caller_left(q.name, uniqueid)
        elif not ext:
            return
        elif kind == "AgentCalled":
            self.agent_call(ext, uniqueid or None, "ringing", at)
        elif kind == "AgentConnect":
            if queue and uniqueid:
                self.caller_left(queue, uniqueid)
            self.agent_call(ext, uniqueid or None, "talking", at)
        elif kind == "AgentComplete":
            self.member_completed(ext, at)
        elif kind in ("AgentRingNoAnswer", "AgentDump"):
            self.agent_call(ext, uniqueid or None, "missed", at)
        elif kind == "QueueMemberRemoved" and queue:
            self.member_removed(queue, ext, at)
        elif kind == "QueueMemberAdded" and queue:
            paused = e.get("Paused") == "1"
            reason = e.get("PausedReason") or e.get("Reason") or None
            self.member_added(queue, ext, device_of(e.get("Status"), e.get("InCall"), "1"),
                              paused, reason, at)  # fmt: skip
        elif kind in ("QueueMemberStatus", "QueueMemberPause") and queue:
            if "Status" in e:
                self.member_device(ext, device_of(e.get("Status"), e.get("InCall")), at)
            if "Paused" in e:
                reason = e.get("PausedReason") or e.get("Reason") or None
                self.member_paused(queue, ext, e.get("Paused") == "1", reason, at)

    # -- changes (synchronous and cheap) ---------------------------------------------
    def caller_joined(
        self, queue: str, uniqueid: str, caller: str | None, position: int, at: datetime
    ) -> None:
        q = self._queue(queue)
        q.waiting[uniqueid] = Caller(uniqueid, caller, at, position)
        self._queue_changed(queue)

    def caller_left(self, queue: str, uniqueid: str) -> None:
        q = self._queue(queue)
        gone = q.waiting.pop(uniqueid, None)
        if gone is not None:
            # the callers behind move up, as Asterisk moves them
            for c in q.waiting.values():
                if c.position > gone.position:
                    c.position -= 1
            self._queue_changed(queue)

    def member_added(
        self, queue: str, ext: str, device: str, paused: bool, reason: str | None, at: datetime
    ) -> None:
        a = self.agent(ext)
        a.device = device
        m = a.memberships.setdefault(queue, Membership(since=at))
        m.paused, m.reason = paused, (reason or None) if paused else None
        self._restate(a, at)

    def member_removed(self, queue: str, ext: str, at: datetime) -> None:
        a = self.agent(ext)
        if a.memberships.pop(queue, None) is not None:
            self._queue_changed(queue)
            self._restate(a, at)

    def member_paused(
        self, queue: str, ext: str, paused: bool, reason: str | None, at: datetime
    ) -> None:
        a = self.agent(ext)
        m = a.memberships.setdefault(queue, Membership(since=at))
        m.paused, m.reason = paused, (reason or None) if paused else None
        self._restate(a, at)

    def member_device(self, ext: str, device: str, at: datetime) -> None:
        a = self.agent(ext)
        a.device = device
        self._restate(a, at)

    def member_completed(self, ext: str, at: datetime) -> None:
        """A call ended: wrap-up for the configured time."""
        a = self.agent(ext)
        a.call = None
        if a.device in ("talking", "ringing"):
            a.device = "free"
        if self.wrapup:
            a.wrapup_until = at + self.wrapup
            self._end_wrapup_later(a)
        self._restate(a, at)

    def agent_call(self, ext: str, uniqueid: str | None, phase: str, at: datetime) -> None:
        """A call rings the agent's phone (``ringing``), is answered (``talking``),
        goes elsewhere without being answered (``missed``) or ends (``ended``).
        The callback dialler tells its calls this way; queue calls come as
        events.  The phone's own device events confirm it a moment later."""
        a = self.agent(ext)
        if phase in ("ringing", "talking"):
            a.device, a.call = phase, uniqueid or a.call
        elif uniqueid is None or a.call == uniqueid:
            a.call = None
            if a.device == "ringing" or (phase == "ended" and a.device == "talking"):
                a.device = "free"
        self._restate(a, at)

    def _call_gone(self, uniqueid: str, at: datetime) -> None:
        for a in self.agents.values():
            if a.call == uniqueid and a.device == "ringing":
                a.call, a.device = None, "free"
                self._restate(a, at)

    def _queue(self, name: str) -> Queue:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = Queue(name)
        return q

    def _restate(self, a: Agent, at: datetime | None = None) -> None:
        """Derive the agent's and each membership's state; mark what changed."""
        now = self.clock.now()
        state = derive(
            a.device,
            paused=a.paused,
            wrapup_until=a.wrapup_until,
            now=now,
            in_queue=bool(a.memberships),
        )
        if state != a.state:
            a.state, a.since = state, at or now
        for name, m in a.memberships.items():
            self._queue(name)
            mstate = derive(
                a.device, paused=m.paused, wrapup_until=a.wrapup_until, now=now, in_queue=True
            )
            if mstate != m.state:
                m.state, m.since = mstate, at or now
            self._queue_changed(name)
        self._dirty_agents.add(a.extension)
        self._wake.set()

    def _queue_changed(self, name: str) -> None:
        self._dirty_queues.add(name)
        self._wake.set()

    def _end_wrapup_later(self, a: Agent) -> None:
        old = self._wrapups.pop(a.extension, None)
        if old is not None:
            old.cancel()
        if self._stopped:
            return
        until = a.wrapup_until
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a unit test of the rules): the next change re-derives

        async def end() -> None:
            while until is not None and self.clock.now() < until:
                await self.clock.sleep_until(until)
            self._wrapups.pop(a.extension, None)
            self._restate(a, until)

        self._wrapups[a.extension] = loop.create_task(end(), name=f"wrapup-{a.extension}")

    # -- rebuild from Asterisk --------------------------------------------------------
    async def rebuild(self, ami: AMIClient) -> None:
        """Replace the whole state with what Asterisk says now (after every login)."""
        try:
            status = await read_queue_status(ami)
        except Exception as e:  # noqa: BLE001 - logged; the next events repair the state
            log.warning("live state: QueueStatus failed: %s", e)
            return
        self.load_status(status)

    def load_status(self, status: QueueStatus) -> None:
        now = self.clock.now()
        old_queues = set(self.queues)
        seen: dict[str, dict[str, Membership]] = {}
        devices: dict[str, str] = {}
        for sm in status.members:
            if not sm.extension:
                continue
            a = self.agent(sm.extension)
            prev = a.memberships.get(sm.queue)
            m = Membership(
                paused=sm.paused,
                reason=(sm.reason or None) if sm.paused else None,
                state=prev.state if prev else "",
                since=prev.since if prev else now,
            )
            if prev is None and sm.paused and sm.last_pause:
                m.since = datetime.fromtimestamp(sm.last_pause, UTC)
            seen.setdefault(sm.extension, {})[sm.queue] = m
            devices[sm.extension] = sm.device
        for ext, a in self.agents.items():
            a.memberships = seen.get(ext, {})
            if ext in devices:
                a.device = devices[ext]
            elif not a.memberships:
                a.device, a.call = "unknown", None
        fresh: dict[str, Queue] = {}
        for entry in status.entries:
            q = fresh.get(entry.queue) or fresh.setdefault(entry.queue, Queue(entry.queue))
            if not entry.uniqueid:
                continue
            q.waiting[entry.uniqueid] = Caller(
                entry.uniqueid,
                entry.caller,
                now - timedelta(seconds=entry.wait),
                entry.position or len(q.waiting) + 1,
            )
        for name in {*status.waiting, *(m.queue for m in status.members)}:
            fresh.setdefault(name, Queue(name))
        self.queues = fresh
        self._dirty_queues |= set(fresh) | old_queues
        for a in self.agents.values():
            self._restate(a)
        log.info(
            "live state rebuilt: %d queues, %d members, %d callers waiting",
            len(fresh),
            len(status.members),
            len(status.entries),
        )

    # -- Redis ------------------------------------------------------------------------
    @property
    def board_key(self) -> str:
        assert self.bus is not None
        return self.bus.key("queues", "live")

    async def flush(self, *, final: bool = False) -> None:
        """Write every changed agent and queue to Redis and publish them, in one round trip."""
        if self.bus is None or (self._stopped and not final):
            return
        if not self._dirty_agents and not self._dirty_queues:
            return
        agents, self._dirty_agents = self._dirty_agents, set()
        queues, self._dirty_queues = self._dirty_queues, set()
        try:
            await self._write(self.bus, agents, queues)
        except BaseException:
            # written again with the next flush, with whatever changed since
            self._dirty_agents |= agents
            self._dirty_queues |= queues
            raise
        self.writes += 1

    async def _write(self, bus: Bus, agents: set[str], queues: set[str]) -> None:
        sent = self.clock.now().timestamp()
        async with bus.redis.pipeline(transaction=False) as p:
            for ext in sorted(agents):
                payload = _dumps({**self.agents[ext].as_dict(), "sent": sent})
                p.set(bus.key("kept", f"state.{ext}"), payload, ex=STATE_TTL)
                p.publish(bus.key("topic", f"agent.{ext}"), payload)
            for name in sorted(queues):
                if name not in self.queues:
                    p.hdel(self.board_key, name)
                    continue
                view = self.queue_view(name)
                p.hset(self.board_key, name, _dumps(view))
                p.publish(
                    bus.key("topic", BOARD_TOPIC),
                    _dumps({"type": "queue", "queue": name, "state": view}),
                )
            await p.execute()

    async def _write_loop(self) -> None:
        outage = Outage("live state: Redis", cap=5, logger=log)
        while not self._stopped:
            await self._wake.wait()
            self._wake.clear()
            if self._stopped:
                return  # stop() makes the last write
            try:
                await self.flush()
            except Exception as e:  # noqa: BLE001 - Redis away: keep the state, retry soon
                await asyncio.sleep(outage.failed(e))
                self._wake.set()
            else:
                outage.ok()


def _caller(number: str | None) -> str | None:
    """The caller's number as the board shows it (none for an unknown one)."""
    return None if not number or number.lower() in ("<unknown>", "unknown") else number


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)

"""Live state of every queue, in Redis: callers waiting and members, each since when.

The application that hears Asterisk owns one :class:`LiveQueues`: the ingest
(:mod:`queue_stats.ingest`) tells it what happened, it changes its copy in
memory at once (cheap: the AMI dispatch must not wait) and a writer task puts
each changed queue into one Redis hash (``<prefix>:queues:live``, a field per
queue) and publishes it on the bus topic ``board`` in one pipeline.  Under a
burst of events the writer naturally writes each queue once per round trip
with its newest state.  Panel processes build their own ``LiveQueues`` on the
same bus and only read (:meth:`snapshot`, :meth:`queue`).

After a restart (or a Redis flush) :meth:`rebuild` asks Asterisk for the whole
picture (QueueStatus: QueueParams, QueueMember, QueueEntry).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callcenter.shifts import extension_of
from core.ami import AMIClient
from core.bus import Bus
from core.clock import Clock

log = logging.getLogger(__name__)

BOARD_TOPIC = "board"
MEMBER_STATES = ("free", "ringing", "talking", "wrapup", "paused", "unavailable")

# Asterisk device states (AST_DEVICE_*) as QueueMemberStatus / QueueMember report them.
DEVICE = {
    "0": "unavailable",  # unknown: treat as not reachable
    "1": "free",  # not in use
    "2": "talking",  # in use
    "3": "talking",  # busy
    "4": "unavailable",  # invalid
    "5": "unavailable",  # unavailable
    "6": "ringing",
    "7": "ringing",  # ringing and in use
    "8": "talking",  # on hold
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass
class Member:
    extension: str
    name: str
    device: str = "free"  # free, ringing, talking, unavailable (from the device state)
    paused: bool = False
    reason: str | None = None
    wrapup_until: datetime | None = None
    state: str = "free"
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def derive(self, now: datetime) -> str:
        if self.device in ("ringing", "talking", "unavailable"):
            return self.device
        if self.wrapup_until is not None and self.wrapup_until > now:
            return "wrapup"
        if self.paused:
            return "paused"
        return "free"

    def as_dict(self) -> dict[str, Any]:
        return {
            "extension": self.extension,
            "name": self.name,
            "state": self.state,
            "since": iso(self.since),
            "reason": self.reason if self.paused else None,
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
class QueueState:
    name: str
    waiting: dict[str, Caller] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "waiting": [
                c.as_dict() for c in sorted(self.waiting.values(), key=lambda c: c.position)
            ],
            "members": [
                m.as_dict() for m in sorted(self.members.values(), key=lambda m: m.extension)
            ],
        }


class LiveQueues:
    """Per-queue live state kept in Redis; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        *,
        names: dict[str, str] | None = None,
        wrapup_seconds: float = 0,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.names = names or {}
        self.wrapup = timedelta(seconds=wrapup_seconds)
        self.queues: dict[str, QueueState] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.writes = 0  # Redis round trips (for the benchmark)
        self._stopped = False

    @property
    def hash_key(self) -> str:
        return self.bus.key("queues", "live")

    # -- reading (any process) -------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        """Every queue's live state, as the board shows it."""
        raw = await self.bus.redis.hgetall(self.hash_key)
        queues = {name: json.loads(value) for name, value in sorted(raw.items())}
        return {"at": iso(self.clock.now()), "queues": queues}

    async def queue(self, name: str) -> dict[str, Any]:
        """One queue's live state (empty lists for a queue nobody has heard of)."""
        raw = await self.bus.redis.hget(self.hash_key, name)
        return json.loads(raw) if raw else {"waiting": [], "members": []}

    # -- lifecycle (the owning application) --------------------------------
    async def start(self) -> None:
        self._stopped = False
        self._writer = asyncio.create_task(self._write_loop(), name="queue-live-writer")

    async def stop(self) -> None:
        self._stopped = True  # a login hook still running must not reopen Redis after us
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._writer is not None:
            self._writer.cancel()
            try:
                await self._writer
            except asyncio.CancelledError:
                pass
            self._writer = None
        await self.flush(final=True)  # what changed last still reaches Redis

    async def flush(self, *, final: bool = False) -> None:
        """Write every changed queue to Redis and publish it, in one round trip."""
        if not self._dirty or (self._stopped and not final):
            return
        dirty, self._dirty = self._dirty, set()
        async with self.bus.redis.pipeline(transaction=False) as p:
            for name in sorted(dirty):
                q = self.queues.get(name)
                if q is None:
                    p.hdel(self.hash_key, name)
                    continue
                state = q.as_dict()
                p.hset(self.hash_key, name, json.dumps(state, ensure_ascii=False))
                p.publish(
                    self.bus.key("topic", BOARD_TOPIC),
                    json.dumps(
                        {"type": "queue", "queue": name, "state": state}, ensure_ascii=False
                    ),
                )
            await p.execute()
        self.writes += 1

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - Redis away: keep the state, retry soon
                log.exception("queue board: writing to Redis failed; retrying")
                await asyncio.sleep(1)
                self._wake.set()

    def _changed(self, queue: str) -> None:
        self._dirty.add(queue)
        self._wake.set()

    # -- changes (called by the ingest, synchronous and cheap) -------------
    def _queue(self, name: str) -> QueueState:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueState(name)
        return q

    def _member(self, q: QueueState, ext: str) -> Member:
        m = q.members.get(ext)
        if m is None:
            now = self.clock.now()
            m = q.members[ext] = Member(ext, self.names.get(ext, ext), since=now)
        return m

    def _restate(self, q: QueueState, m: Member, at: datetime | None = None) -> None:
        now = self.clock.now()
        new = m.derive(now)
        if new != m.state:
            m.state, m.since = new, at or now
        self._changed(q.name)

    def caller_joined(
        self, queue: str, uniqueid: str, caller: str | None, position: int, at: datetime
    ) -> None:
        q = self._queue(queue)
        q.waiting[uniqueid] = Caller(uniqueid, caller, at, position)
        self._changed(queue)

    def caller_left(self, queue: str, uniqueid: str) -> None:
        q = self._queue(queue)
        gone = q.waiting.pop(uniqueid, None)
        if gone is not None:
            # the callers behind move up, as Asterisk moves them
            for c in q.waiting.values():
                if c.position > gone.position:
                    c.position -= 1
        self._changed(queue)

    def member_device(self, queue: str, ext: str, device: str, at: datetime) -> None:
        q = self._queue(queue)
        m = self._member(q, ext)
        m.device = device
        self._restate(q, m, at)

    def member_paused(
        self, queue: str, ext: str, paused: bool, reason: str | None, at: datetime
    ) -> None:
        q = self._queue(queue)
        m = self._member(q, ext)
        m.paused, m.reason = paused, (reason or None) if paused else None
        self._restate(q, m, at)

    def member_added(
        self, queue: str, ext: str, device: str, paused: bool, reason: str | None, at: datetime
    ) -> None:
        q = self._queue(queue)
        m = self._member(q, ext)
        m.device, m.paused, m.reason = device, paused, (reason or None) if paused else None
        self._restate(q, m, at)

    def member_removed(self, queue: str, ext: str) -> None:
        q = self._queue(queue)
        if q.members.pop(ext, None) is not None:
            self._changed(queue)

    def member_completed(self, queue: str, ext: str, at: datetime) -> None:
        """A call ended: the member is in wrap-up for the configured time."""
        q = self._queue(queue)
        m = self._member(q, ext)
        if m.device in ("talking", "ringing"):
            m.device = "free"
        if self.wrapup:
            m.wrapup_until = at + self.wrapup
            self._schedule_restate(q, m)
        self._restate(q, m, at)

    def _schedule_restate(self, q: QueueState, m: Member) -> None:
        key = (q.name, m.extension)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        delay = (m.wrapup_until - self.clock.now()).total_seconds() if m.wrapup_until else 0
        loop = asyncio.get_running_loop()

        def end() -> None:
            self._timers.pop(key, None)
            self._restate(q, m, m.wrapup_until)

        self._timers[key] = loop.call_later(max(0.0, delay) + 0.01, end)

    # -- rebuild from Asterisk ---------------------------------------------
    async def rebuild(self, ami: AMIClient) -> None:
        """Replace the whole state with what Asterisk says now (QueueStatus)."""
        events = await ami.action({"Action": "QueueStatus"}, as_list=True, timeout=15)
        self.load_status(events if isinstance(events, list) else [])
        await self.flush()

    def load_status(self, events: list[Any]) -> None:
        """Apply a QueueStatus answer (its QueueParams, QueueMember, QueueEntry events)."""
        now = self.clock.now()
        old = self.queues
        fresh: dict[str, QueueState] = {}
        for e in events:
            kind = e.get("Event")
            name = e.get("Queue")
            if not name or kind not in ("QueueParams", "QueueMember", "QueueEntry"):
                continue
            q = fresh.get(name) or fresh.setdefault(name, QueueState(name))
            if kind == "QueueMember":
                ext = extension_of(e.get("StateInterface") or e.get("Location") or "")
                if not ext:
                    continue
                m = Member(ext, self.names.get(ext, ext), since=now)
                m.device = DEVICE.get(str(e.get("Status", "0")), "unavailable")
                if e.get("InCall") == "1" and m.device == "free":
                    m.device = "talking"
                m.paused = e.get("Paused") == "1"
                m.reason = (e.get("PausedReason") or None) if m.paused else None
                prev = old.get(name, QueueState(name)).members.get(ext)
                if prev is not None:
                    m.wrapup_until = prev.wrapup_until
                m.state = m.derive(now)
                if prev is not None and prev.state == m.state:
                    m.since = prev.since
                elif m.paused and _int(e.get("LastPause")):
                    m.since = datetime.fromtimestamp(int(e["LastPause"]), UTC)
                q.members[ext] = m
            elif kind == "QueueEntry":
                uniqueid = e.get("Uniqueid")
                if not uniqueid:
                    continue
                wait = _int(e.get("Wait")) or 0
                q.waiting[uniqueid] = Caller(
                    uniqueid,
                    e.get("CallerIDNum") or None,
                    now - timedelta(seconds=wait),
                    _int(e.get("Position")) or len(q.waiting) + 1,
                )
        gone = set(old) - set(fresh)
        self.queues = fresh
        self._dirty |= set(fresh) | gone
        self._wake.set()
        log.info(
            "queue board rebuilt: %d queues, %d callers waiting",
            len(fresh),
            sum(len(q.waiting) for q in fresh.values()),
        )


def _int(value: Any) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None

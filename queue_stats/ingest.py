"""Queue events from AMI into the live board (Redis) and the event table.

Follow an event: core.ami dispatches it -> :meth:`QueueIngest.on_event` turns
it into a row named as Asterisk's queue_log names it (:func:`event_key` makes
the AMI event and its queue_log line the same row) and into a change of
:class:`~queue_stats.live.LiveQueues` -> :class:`EventWriter` inserts the rows
in batches (one transaction per batch, duplicates of a key dropped by the
database).  Handlers only touch memory and a queue: the screen-pop, handled on
the same in-order dispatch, is never kept waiting by a database write.

What AMI does not say (why a caller left the queue without an agent: timeout,
empty queue) is taken from the ``QUEUESTATUS`` channel variable of the
caller's ``Hangup``; anything else (and everything that happened while the
application was down) comes from queue_log (:mod:`queue_stats.catchup`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.shifts import extension_of
from core.ami import AMIClient, Event, chan_vars
from core.clock import Clock
from core.db import Database
from queue_stats.live import DEVICE, LiveQueues
from queue_stats.models import QueueEvent

log = logging.getLogger(__name__)

INGEST_EVENTS = (
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

# Events about a member, not a call: their key carries the second they
# happened, and a copy within a second either side is the same event (AMI
# stamps it with its own clock reading, queue_log with another).
MEMBER_ROW_EVENTS = frozenset({"ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE"})

# QUEUESTATUS (set by Queue() when the caller leaves without an agent) -> queue_log's
# verb; a caller who hung up while waiting leaves it empty (ABANDON).
EXIT_BY_STATUS = {
    "TIMEOUT": "EXITWITHTIMEOUT",
    "LEAVEEMPTY": "EXITEMPTY",
    "LEAVEUNAVAIL": "EXITEMPTY",
}

# Calls remembered between join and hang-up; bounded, oldest forgotten first.
MAX_TRACKED_CALLS = 20_000


@dataclass(frozen=True)
class Row:
    """One queue_events row before it is written."""

    key: str
    at: datetime
    queue: str
    event: str
    uniqueid: str | None = None
    agent: str | None = None
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    data: dict[str, Any] | None = None

    def values(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "at": self.at,
            "queue": self.queue,
            "uniqueid": self.uniqueid,
            "agent": self.agent,
            "event": self.event,
            "wait_seconds": self.wait_seconds,
            "talk_seconds": self.talk_seconds,
            "data": json.dumps(self.data, ensure_ascii=False, sort_keys=True)
            if self.data
            else None,
        }


def event_key(
    event: str,
    queue: str,
    uniqueid: str | None,
    agent: str | None,
    at: datetime,
    ring_ms: int | None = None,
) -> str:
    """The idempotency key of one queue event, equal for its AMI event and its queue_log line.

    A call's events happen once per call, queue and agent, so their key holds
    no time (the AMI and queue_log clocks are read at different instants); an
    agent may be rung and not answer several times in one call, and each of
    those carries its own ring time in milliseconds, the same number in both.
    Member events have no call: the second they happened tells them apart.
    """
    if uniqueid:
        key = f"{uniqueid}|{queue}|{event}|{agent or ''}"
        if event == "RINGNOANSWER":
            key += f"|{ring_ms if ring_ms is not None else ''}"
        return key[:160]
    return f"-|{queue}|{event}|{agent or ''}|{int(at.timestamp())}"[:160]


def neighbour_keys(row: Row) -> tuple[str, str]:
    """A member event's key one second before and after (see MEMBER_ROW_EVENTS)."""
    base = int(row.at.timestamp())
    prefix = row.key.rsplit("|", 1)[0]
    return f"{prefix}|{base - 1}", f"{prefix}|{base + 1}"


def _int(value: Any) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class EventWriter:
    """Inserts rows in batches; each batch one transaction, duplicates dropped.

    A single task drains the queue: whatever arrived while the previous batch
    was written goes in the next (up to ``batch`` rows), so a quiet line
    writes each event at once and a burst writes few large transactions.
    """

    def __init__(self, db: Database, *, batch: int = 2000) -> None:
        self.db = db
        self.batch = batch
        self._queue: asyncio.Queue[Row] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # set while no batch is being written: stop() waits for it instead of
        # cancelling a write half-way (a cancelled SQLite write can leave its
        # connection, and the database's write lock, to the garbage collector)
        self._between = asyncio.Event()
        self._between.set()
        self._stopping = False
        self.written = 0  # rows inserted (duplicates not counted)
        self.batches = 0

    def put(self, row: Row) -> None:
        self._idle.clear()
        self._queue.put_nowait(row)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-event-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._between.wait(), 30)
            except TimeoutError:
                log.warning("queue events: a write still under way after 30 s is cancelled")
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while not self._queue.empty():
            rows = self._take()
            for attempt in range(3):
                try:
                    await self._write(rows)
                    break
                except (OperationalError, InterfaceError, OSError) as e:
                    # the database busy or away at stop: a few tries, then
                    # queue_log's catch-up at the next start writes them
                    if attempt == 2:
                        log.warning(
                            "queue events: %d rows not written at stop (%s); "
                            "the next start catches them up from queue_log",
                            len(rows),
                            e,
                        )
                    else:
                        await asyncio.sleep(0.5)
        self._idle.set()

    async def drained(self) -> None:
        """Return once every row put so far is in the database."""
        await self._idle.wait()

    def _take(self, first: Row | None = None) -> list[Row]:
        rows = [first] if first is not None else []
        while len(rows) < self.batch and not self._queue.empty():
            rows.append(self._queue.get_nowait())
        return rows

    async def _run(self) -> None:
        while not self._stopping:
            rows = self._take(await self._queue.get())
            self._between.clear()
            try:
                await self._write_batch(rows)
            finally:
                self._between.set()
            if self._queue.empty():
                self._idle.set()

    async def _write_batch(self, rows: list[Row]) -> None:
        while True:
            try:
                await self._write(rows)
                break
            except asyncio.CancelledError:
                # stopping: put the batch back so stop() writes it
                for r in rows:
                    self._queue.put_nowait(r)
                raise
            except (OperationalError, InterfaceError, OSError) as e:
                if self._stopping:  # stop() makes the last tries
                    for r in rows:
                        self._queue.put_nowait(r)
                    return
                # the database is away: keep the rows, try again
                log.warning("queue events: writing %d rows failed (%s); retrying", len(rows), e)
                await asyncio.sleep(1)
            except Exception:  # noqa: BLE001 - a row the database refuses
                log.exception("queue events: a batch of %d rows refused", len(rows))
                await self._write_one_by_one(rows)
                break

    async def _write_one_by_one(self, rows: list[Row]) -> None:
        """Write what the database accepts; log (and leave to queue_log's catch-up) the rest."""
        for r in rows:
            try:
                await self._write([r])
            except (OperationalError, InterfaceError, OSError):
                raise
            except Exception as e:  # noqa: BLE001 - logged with the row, never blocks the rest
                log.error("queue events: row %s refused: %s", r, e)

    async def _write(self, rows: list[Row]) -> int:
        if not rows:
            return 0
        async with self.db.session() as s:
            n = await insert_rows(s, rows)
        self.written += n
        self.batches += 1
        return n


async def insert_rows(s: AsyncSession, rows: Iterable[Row]) -> int:
    """Insert ``rows`` unless their key (or, for a member event, its neighbour) is there.

    Returns how many rows were new.
    """
    unique: dict[str, Row] = {}
    for r in rows:
        unique.setdefault(r.key, r)
    members = [r for r in unique.values() if r.event in MEMBER_ROW_EVENTS]
    postgres = s.get_bind().dialect.name == "postgresql"
    if members:
        near = sorted({k for r in members for k in neighbour_keys(r)})
        if postgres:  # one statement text whatever the number of keys
            found = set(await s.scalars(_PG_KEYS_IN, {"keys": near}))
        else:
            found = set(await s.scalars(select(QueueEvent.key).where(QueueEvent.key.in_(near))))
        for r in members:
            # in the table already, or met earlier in this batch
            if any(k in found for k in neighbour_keys(r)):
                unique.pop(r.key, None)
            else:
                found.add(r.key)
    if not unique:
        return 0
    values = [r.values() for r in unique.values()]
    conn = await s.connection()
    if postgres:
        # The whole batch as arrays in one statement of fixed text: psycopg
        # neither rebuilds nor re-parses a query thousands of rows long.
        arrays = {c: [v[c] for v in values] for c in _COLUMNS}
        return len((await conn.execute(_PG_INSERT, arrays)).all())
    # RETURNING counts what was new (executemany's rowcount does not), and
    # SQLAlchemy sends many rows per INSERT statement.
    stmt = (
        sqlite.insert(QueueEvent)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(QueueEvent.id)
    )
    return len((await conn.execute(stmt, values)).all())


_COLUMNS = {
    "key": "varchar",
    "at": "timestamptz",
    "queue": "varchar",
    "uniqueid": "varchar",
    "agent": "varchar",
    "event": "varchar",
    "wait_seconds": "integer",
    "talk_seconds": "integer",
    "data": "text",
}
_PG_INSERT = text(
    f"INSERT INTO queue_events ({', '.join(_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _COLUMNS.items())}) "
    "ON CONFLICT (key) DO NOTHING RETURNING id"
)
_PG_KEYS_IN = text("SELECT key FROM queue_events WHERE key = ANY(CAST(:keys AS varchar[]))")


@dataclass
class _Call:
    queue: str
    joined: datetime
    position: int
    caller: str | None
    left: datetime | None = None
    left_position: int | None = None
    answered: bool = False
    # QueueCallerAbandon: Asterisk sends it for a caller who hung up and for
    # one who reached the maximum wait; the Hangup's QUEUESTATUS tells which.
    gone: datetime | None = None
    gone_hold: int | None = None
    gone_position: int | None = None


class QueueIngest:
    """AMI queue events -> live board and event rows (see the module docstring)."""

    def __init__(self, live: LiveQueues, writer: EventWriter, clock: Clock) -> None:
        self.live = live
        self.writer = writer
        self.clock = clock
        self.calls: OrderedDict[str, _Call] = OrderedDict()
        self.events = 0
        self._handlers = {
            "queuecallerjoin": self._join,
            "queuecallerleave": self._leave,
            "queuecallerabandon": self._abandon,
            "agentcalled": self._called,
            "agentconnect": self._connect,
            "agentcomplete": self._complete,
            "agentringnoanswer": self._ring_no_answer,
            "agentdump": self._dump,
            "queuememberstatus": self._member_status,
            "queuememberadded": self._member_added,
            "queuememberremoved": self._member_removed,
            "queuememberpause": self._member_pause,
            "hangup": self._hangup,
        }

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(INGEST_EVENTS, self.on_event)

    async def on_event(self, e: Event) -> None:
        """One AMI event (the core.ami dispatch hands them over in order)."""
        self.handle(e)

    def handle(self, e: Any) -> None:
        """Synchronous and cheap: memory and a queue only."""
        handler = self._handlers.get(str(e.get("Event", "")).lower())
        if handler is not None:
            self.events += 1
            handler(e)

    # -- helpers -----------------------------------------------------------
    def at(self, e: Any) -> datetime:
        """When Asterisk says the event happened (manager.conf timestampevents)."""
        ts = e.get("Timestamp")
        if ts:
            try:
                return datetime.fromtimestamp(float(ts), UTC)
            except ValueError:
                pass
        return self.clock.now()

    def _row(
        self,
        event: str,
        e: Any,
        at: datetime,
        *,
        agent: str | None = None,
        wait: int | None = None,
        talk: int | None = None,
        ring_ms: int | None = None,
        data: dict[str, Any] | None = None,
        uniqueid: str | None = None,
        queue: str | None = None,
    ) -> None:
        q = queue or e.get("Queue") or ""
        u = uniqueid if uniqueid is not None else (e.get("Uniqueid") or None)
        if event in MEMBER_ROW_EVENTS:
            u = None
        self.writer.put(
            Row(
                key=event_key(event, q, u, agent, at, ring_ms),
                at=at,
                queue=q,
                event=event,
                uniqueid=u,
                agent=agent,
                wait_seconds=wait,
                talk_seconds=talk,
                data=data,
            )
        )

    @staticmethod
    def _agent(e: Any) -> str | None:
        return extension_of(
            e.get("Interface") or e.get("StateInterface") or e.get("MemberName") or ""
        )

    def _track(self, uniqueid: str, call: _Call) -> None:
        self.calls[uniqueid] = call
        self.calls.move_to_end(uniqueid)
        while len(self.calls) > MAX_TRACKED_CALLS:
            self.calls.popitem(last=False)

    # -- callers -------------------------------------------------------------
    def _join(self, e: Any) -> None:
        uniqueid, queue = e.get("Uniqueid"), e.get("Queue")
        if not uniqueid or not queue:
            return
        at = self.at(e)
        position = _int(e.get("Position")) or 0
        caller = e.get("CallerIDNum") or None
        if caller in ("<unknown>", "unknown"):
            caller = None
        self._track(uniqueid, _Call(queue, at, position, caller))
        self.live.caller_joined(queue, uniqueid, caller, position, at)
        self._row("JOIN", e, at, data={"position": position, "caller": caller})

    def _leave(self, e: Any) -> None:
        uniqueid, queue = e.get("Uniqueid"), e.get("Queue")
        if not uniqueid or not queue:
            return
        call = self.calls.get(uniqueid)
        if call is not None:
            call.left, call.left_position = self.at(e), _int(e.get("Position"))
        self.live.caller_left(queue, uniqueid)

    def _abandon(self, e: Any) -> None:
        uniqueid, queue = e.get("Uniqueid"), e.get("Queue")
        if not uniqueid or not queue:
            return
        at = self.at(e)
        hold = _int(e.get("HoldTime"))
        call = self.calls.get(uniqueid)
        if call is None:  # joined before this process started
            position = _int(e.get("OriginalPosition")) or _int(e.get("Position")) or 0
            call = _Call(queue, at - timedelta(seconds=hold or 0), position, None)
            self._track(uniqueid, call)
        call.gone, call.gone_hold, call.gone_position = at, hold, _int(e.get("Position"))
        self.live.caller_left(queue, uniqueid)

    def _hangup(self, e: Any) -> None:
        """The caller's channel is gone: say how they left the queue, if no agent took them."""
        uniqueid = e.get("Uniqueid")
        call = self.calls.pop(uniqueid, None) if uniqueid else None
        if call is None or call.answered:
            return
        status = chan_vars(e).get("QUEUESTATUS") or ""
        if call.gone is not None:
            verb = EXIT_BY_STATUS.get(status, "ABANDON")
            at, wait, position = call.gone, call.gone_hold, call.gone_position
        elif call.left is not None and status in EXIT_BY_STATUS:
            verb, at, position = EXIT_BY_STATUS[status], call.left, call.left_position
            wait = None
        else:
            return  # still queued somewhere, or a way out queue_log alone tells (catch-up)
        if wait is None:
            wait = max(0, int((at - call.joined).total_seconds()))
        self._row(
            verb,
            e,
            at,
            queue=call.queue,
            wait=wait,
            data={"position": position, "original_position": call.position},
        )
        self.live.caller_left(call.queue, uniqueid)

    # -- agents on calls ------------------------------------------------------
    def _called(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if agent and queue:
            self.live.member_device(queue, agent, "ringing", self.at(e))

    def _connect(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if not uniqueid or not queue:
            return
        call = self.calls.get(uniqueid)
        if call is not None:
            call.answered = True
        at = self.at(e)
        self.live.caller_left(queue, uniqueid)
        if agent:
            self.live.member_device(queue, agent, "talking", at)
        self._row(
            "CONNECT",
            e,
            at,
            agent=agent,
            wait=_int(e.get("HoldTime")),
            data={"ring_seconds": _int(e.get("RingTime"))},
        )

    def _complete(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if not uniqueid or not queue:
            return
        at = self.at(e)
        reason = str(e.get("Reason") or "").lower()
        verb = {"agent": "COMPLETEAGENT", "caller": "COMPLETECALLER"}.get(reason, "TRANSFER")
        if agent:
            self.live.member_completed(queue, agent, at)
        self._row(
            verb,
            e,
            at,
            agent=agent,
            wait=_int(e.get("HoldTime")),
            talk=_int(e.get("TalkTime")),
        )

    def _ring_no_answer(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if not uniqueid or not queue:
            return
        at = self.at(e)
        ring_ms = _int(e.get("RingTime"))
        if agent:
            self.live.member_device(queue, agent, "free", at)
        self._row("RINGNOANSWER", e, at, agent=agent, ring_ms=ring_ms, data={"ring_ms": ring_ms})

    def _dump(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if uniqueid and queue:
            self._row("AGENTDUMP", e, self.at(e), agent=agent)

    # -- members -------------------------------------------------------------
    def _member_status(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        at = self.at(e)
        device = DEVICE.get(str(e.get("Status", "0")), "unavailable")
        if e.get("InCall") == "1" and device == "free":
            device = "talking"
        self.live.member_device(queue, agent, device, at)
        if "Paused" in e:
            paused = e.get("Paused") == "1"
            self.live.member_paused(queue, agent, paused, e.get("PausedReason"), at)

    def _member_added(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        at = self.at(e)
        paused = e.get("Paused") == "1"
        device = DEVICE.get(str(e.get("Status", "1")), "unavailable")
        self.live.member_added(queue, agent, device, paused, e.get("PausedReason"), at)
        self._row("ADDMEMBER", e, at, agent=agent)

    def _member_removed(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        self.live.member_removed(queue, agent)
        self._row("REMOVEMEMBER", e, self.at(e), agent=agent)

    def _member_pause(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        at = self.at(e)
        paused = e.get("Paused") == "1"
        reason = e.get("PausedReason") or e.get("Reason") or None
        self.live.member_paused(queue, agent, paused, reason, at)
        self._row(
            "PAUSE" if paused else "UNPAUSE",
            e,
            at,
            agent=agent,
            data={"reason": reason} if paused and reason else None,
        )

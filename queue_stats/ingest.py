"""Queue events from AMI into the event table of the queue statistics.

Follow an event: core.ami dispatches it -> :meth:`QueueIngest.on_event` turns
it into a row named as Asterisk's queue_log names it
(:func:`~queue_stats.storage.event_key` makes the AMI event and its queue_log
line the same row) -> :class:`~queue_stats.storage.EventWriter` inserts the
rows in batches (one transaction per batch, duplicates of a key dropped by
the database).  Handlers only touch memory and a queue.  The live board is
not kept here: :class:`callcenter.live.LiveState` owns it.

What AMI does not say (why a caller left the queue without an agent: timeout,
empty queue) is taken from the ``QUEUESTATUS`` channel variable of the
caller's ``Hangup``; anything else (and everything that happened while the
application was down) comes from queue_log (:mod:`queue_stats.catchup`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from callcenter.shifts import extension_of
from core.ami import AMIClient, Event, chan_vars, event_time, header_int
from core.clock import Clock
from queue_stats.storage import MEMBER_ROW_EVENTS, EventWriter, Row, event_key

INGEST_EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "AgentDump",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "Hangup",
)

# QUEUESTATUS (set by Queue() when the caller leaves without an agent) -> queue_log's
# verb; a caller who hung up while waiting leaves it empty (ABANDON).
EXIT_BY_STATUS = {
    "TIMEOUT": "EXITWITHTIMEOUT",
    "LEAVEEMPTY": "EXITEMPTY",
    "LEAVEUNAVAIL": "EXITEMPTY",
}

# Calls remembered between join and hang-up; bounded, oldest forgotten first.
MAX_TRACKED_CALLS = 20_000


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

    def __init__(self, writer: EventWriter, clock: Clock) -> None:
        self.writer = writer
        self.clock = clock
        self.calls: OrderedDict[str, _Call] = OrderedDict()
        self.events = 0
        self._handlers = {
            "queuecallerjoin": self._join,
            "queuecallerleave": self._leave,
            "queuecallerabandon": self._abandon,
            "agentconnect": self._connect,
            "agentcomplete": self._complete,
            "agentringnoanswer": self._ring_no_answer,
            "agentdump": self._dump,
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
        at = event_time(e, self.clock)
        position = header_int(e.get("Position")) or 0
        caller = e.get("CallerIDNum") or None
        if caller in ("<unknown>", "unknown"):
            caller = None
        self._track(uniqueid, _Call(queue, at, position, caller))
        self._row("JOIN", e, at, data={"position": position, "caller": caller})

    def _leave(self, e: Any) -> None:
        uniqueid, queue = e.get("Uniqueid"), e.get("Queue")
        if not uniqueid or not queue:
            return
        call = self.calls.get(uniqueid)
        if call is not None:
            call.left, call.left_position = event_time(e, self.clock), header_int(e.get("Position"))

    def _abandon(self, e: Any) -> None:
        uniqueid, queue = e.get("Uniqueid"), e.get("Queue")
        if not uniqueid or not queue:
            return
        at = event_time(e, self.clock)
        hold = header_int(e.get("HoldTime"))
        call = self.calls.get(uniqueid)
        if call is None:  # joined before this process started
            position = header_int(e.get("OriginalPosition")) or header_int(e.get("Position")) or 0
            call = _Call(queue, at - timedelta(seconds=hold or 0), position, None)
            self._track(uniqueid, call)
        call.gone, call.gone_hold, call.gone_position = at, hold, header_int(e.get("Position"))

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

    # -- agents on calls ------------------------------------------------------
    def _connect(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if not uniqueid or not queue:
            return
        call = self.calls.get(uniqueid)
        if call is not None:
            call.answered = True
        self._row(
            "CONNECT",
            e,
            event_time(e, self.clock),
            agent=agent,
            wait=header_int(e.get("HoldTime")),
            data={"ring_seconds": header_int(e.get("RingTime"))},
        )

    def _complete(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if not uniqueid or not queue:
            return
        at = event_time(e, self.clock)
        reason = str(e.get("Reason") or "").lower()
        verb = {"agent": "COMPLETEAGENT", "caller": "COMPLETECALLER"}.get(reason, "TRANSFER")
        self._row(
            verb,
            e,
            at,
            agent=agent,
            wait=header_int(e.get("HoldTime")),
            talk=header_int(e.get("TalkTime")),
        )

    def _ring_no_answer(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if not uniqueid or not queue:
            return
        at = event_time(e, self.clock)
        ring_ms = header_int(e.get("RingTime"))
        self._row("RINGNOANSWER", e, at, agent=agent, ring_ms=ring_ms, data={"ring_ms": ring_ms})

    def _dump(self, e: Any) -> None:
        uniqueid, queue, agent = e.get("Uniqueid"), e.get("Queue"), self._agent(e)
        if uniqueid and queue:
            self._row("AGENTDUMP", e, event_time(e, self.clock), agent=agent)

    # -- members -------------------------------------------------------------
    def _member_added(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        self._row("ADDMEMBER", e, event_time(e, self.clock), agent=agent)

    def _member_removed(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        self._row("REMOVEMEMBER", e, event_time(e, self.clock), agent=agent)

    def _member_pause(self, e: Any) -> None:
        agent, queue = self._agent(e), e.get("Queue")
        if not agent or not queue:
            return
        at = event_time(e, self.clock)
        paused = e.get("Paused") == "1"
        reason = e.get("PausedReason") or e.get("Reason") or None
        self._row(
            "PAUSE" if paused else "UNPAUSE",
            e,
            at,
            agent=agent,
            data={"reason": reason} if paused and reason else None,
        )

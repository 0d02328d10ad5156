"""AMI handlers of the call centre: call lifecycle and queue membership.

They turn events into service calls and hold no SQL.  ``subscribe`` is the
one place that says what this domain hears.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from callcenter.queue_log import QueueLogReader
from callcenter.service import CallService, sanitize_caller
from core.ami import AMIClient, Event, chan_vars, event_time, header_int
from core.clock import Clock

if TYPE_CHECKING:
    from callcenter.scheduler import ShiftScheduler

log = logging.getLogger(__name__)

CALL_EVENTS = (
    "QueueCallerJoin",
    "AgentConnect",
    "AgentComplete",
    "QueueCallerAbandon",
    "Hangup",
    "UserEvent",
)
# The dialplan's word that an emergency service answered a caller put through
# from the menu (context hotline-emergency-answered): the call is recorded from then.
EMERGENCY_ANSWERED = "HotlineEmergencyAnswered"
MEMBER_EVENTS = (
    "QueueMemberStatus",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
    "QueueCallerLeave",
    "FullyBooted",
)
# Events that come back as answers to the actions the application sends.
RESPONSE_EVENTS = (
    "QueueParams",
    "QueueMember",
    "QueueEntry",
    "QueueStatusComplete",
    "CoreShowChannel",
    "CoreShowChannelsComplete",
    "OriginateResponse",
)


def _complete(e: Event, *keys: str) -> bool:
    """Whether the event carries what the handler needs; a malformed one is logged, not fatal."""
    missing = [k for k in keys if not e.get(k)]
    if missing:
        log.info("%s without %s ignored: %s", e.get("Event"), ", ".join(missing), dict(e))
    return not missing


class CallEvents:
    """Writes each hotline call's life from Asterisk's events."""

    def __init__(self, calls: CallService, clock: Clock) -> None:
        self.calls = calls
        self.clock = clock

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(["QueueCallerJoin"], self.on_join)
        ami.subscribe(["AgentConnect"], self.on_connect)
        ami.subscribe(["AgentComplete"], self.on_complete)
        ami.subscribe(["QueueCallerAbandon"], self.on_abandon)
        ami.subscribe(["Hangup"], self.on_hangup)
        ami.subscribe(["UserEvent"], self.on_user_event)

    async def on_join(self, e: Event) -> None:
        if not _complete(e, "Uniqueid", "Queue"):
            return
        v = chan_vars(e)
        await self.calls.caller_joined(
            uniqueid=e["Uniqueid"],
            linkedid=e.get("Linkedid"),
            queue=e["Queue"],
            hotline_number=v.get("HOTLINE_NUMBER") or None,
            caller=sanitize_caller(e.get("CallerIDNum"), e.get("CallerIDName")),
            at=event_time(e, self.clock),
            recording_base=v.get("MONITOR_FILENAME") or None,
            route_source=v.get("HOTLINE_ROUTE_SOURCE") or "agi",
        )

    async def on_connect(self, e: Event) -> None:
        if not _complete(e, "Uniqueid", "Queue"):
            return
        v = chan_vars(e)
        await self.calls.agent_connected(
            uniqueid=e["Uniqueid"],
            queue=e["Queue"],
            interface=e.get("Interface", ""),
            member_name=e.get("MemberName"),
            hold_seconds=header_int(e.get("HoldTime")),
            at=event_time(e, self.clock),
            recording_base=v.get("MONITOR_FILENAME") or None,
        )

    async def on_complete(self, e: Event) -> None:
        if not _complete(e, "Uniqueid"):
            return
        await self.calls.agent_completed(
            uniqueid=e["Uniqueid"],
            talk_seconds=header_int(e.get("TalkTime")),
            reason=f"{e.get('Reason', 'unknown')}_hangup",
        )

    async def on_abandon(self, e: Event) -> None:
        if not _complete(e, "Uniqueid"):
            return
        await self.calls.caller_abandoned(
            uniqueid=e["Uniqueid"], hold_seconds=header_int(e.get("HoldTime"))
        )

    async def on_hangup(self, e: Event) -> None:
        if not _complete(e, "Uniqueid"):
            return
        v = chan_vars(e)
        number = v.get("HOTLINE_NUMBER")
        if not number:
            return  # an agent's leg or another channel: not a hotline call
        await self.calls.hung_up(
            uniqueid=e["Uniqueid"],
            at=event_time(e, self.clock),
            queue_status=v.get("QUEUESTATUS") or None,
            cause=e.get("Cause-txt") or e.get("Cause"),
            hotline_number=number,
            linkedid=e.get("Linkedid"),
            caller=sanitize_caller(e.get("CallerIDNum"), e.get("CallerIDName")),
            route_source=v.get("HOTLINE_ROUTE_SOURCE") or None,
        )

    async def on_user_event(self, e: Event) -> None:
        # "Call" is the caller's channel; the event's own Uniqueid is the service's
        if e.get("UserEvent") != EMERGENCY_ANSWERED or not _complete(e, "Call"):
            return
        await self.calls.emergency_answered(e["Call"], at=event_time(e, self.clock))

    async def resync(self, ami: AMIClient, queue_log: QueueLogReader | None = None) -> None:
        """After a (re)connect: complete, from queue_log, the calls missed while away,
        then close the records of calls that ended meanwhile."""
        if queue_log is not None:
            entries, offset = await asyncio.to_thread(queue_log.read_new)
            if entries:
                touched = await self.calls.replay_queue_log(entries)
                if touched:
                    log.info("queue_log: %d call records created or completed", touched)
            queue_log.commit(offset)
        events = await ami.action({"Action": "CoreShowChannels"}, as_list=True, timeout=15)
        live = {ev.get("Uniqueid") for ev in events if ev.get("Event") == "CoreShowChannel"}
        closed = await self.calls.close_stale({u for u in live if u}, self.clock.now())
        if closed:
            log.info("closed %d call records whose calls ended during an outage", closed)


def member_subscriptions(ami: AMIClient, scheduler: ShiftScheduler) -> None:
    """Queue membership events wake the shift scheduler."""
    ami.subscribe(MEMBER_EVENTS, scheduler.on_member_event)

"""Calls an agent places to a citizen from a ticket ("call the citizen").

Follow one: the ticket page's button (or ``POST /api/v1/tickets/{code}/call``)
-> :meth:`OutboundService.place` checks the number (:func:`dialable_number`),
asks Asterisk about the agent's phone (:func:`callcenter.live.read_device`),
decides (:func:`decide`: a clear refusal when the phone is not registered, is
busy, or the agent is calling someone else already; the same call again on a
second click), opens the call record (direction outbound, linked to the
ticket) and asks the dialler over the bus (:data:`DIAL_TOPIC`) ->
:class:`callcenter.dialler.OutboundDialler`, in the process that hears
Asterisk, rings the agent's phone into the dialplan's ``hotline-outbound``
context, the callbacks' path (recorded, then the citizen dialled over the
trunk showing the hotline's number), and pops "calling the citizen" on the
agent's screen -> the context's hang-up report (``UserEvent:
HotlineOutbound``) -> :meth:`OutboundService.finish` completes the record
with its recordings, which the ticket page then lists.

One agent has one outbound call open at most: a partial unique index on the
open outbound records holds it whichever panel process takes the click, so a
double click never places two calls.  A record left open by a report that
never came (the application was down) does not block the agent for ever: once
their phone is free again and the ring time is long past, it is ended as lost.

These calls are not queue calls: no queue, no queue time, outcome
``outbound``; the queue figures and the board's waiting callers never see them.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from callcenter.callbacks import valid_callback_number
from callcenter.exceptions import (
    AgentBusy,
    AlreadyCalling,
    NoPhone,
    NotDialable,
    PhoneNotRegistered,
    TelephonyUnavailable,
)
from callcenter.live import read_device
from callcenter.models import Call, Direction, Outcome, Result, call_to_change
from callcenter.recording_files import side_files
from core.ami import AMIClient, AMIError
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings

log = logging.getLogger(__name__)

# The bus topic the panel asks the dialler on (whichever process the panel runs in).
DIAL_TOPIC = "outbound.dial"
# The uniqueid prefix of these calls' agent channels (and records).
PREFIX = "out-"
# A record still open this long after the ring time, with the agent's phone
# free, lost its report: it is ended, and the agent may call again.
STALE_AFTER = timedelta(seconds=30)

_SEPARATORS = re.compile(r"[\s.\-()/]")


def dialable_number(raw: str | None) -> str | None:
    """The number the trunk dials for a ticket's phone, or None if it cannot be one.

    Spaces, dots, dashes and brackets are dropped and +84 becomes 0; what is
    left must be a Vietnamese number as the callbacks accept it (0 and 9 or
    10 digits, or 84 instead of the 0).
    """
    if not raw:
        return None
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith("84"):
            return None  # a foreign number: the trunk does not call abroad
    if not digits.isdigit():
        return None
    return valid_callback_number(digits)


@dataclass(frozen=True)
class Placed:
    """A call placed (or the same one again, on a second click: ``repeated``)."""

    call: Call
    repeated: bool = False


def decide(
    device: str, open_call: Call | None, ticket_id: int, now: datetime, ring_seconds: int
) -> str:
    """What to do with a click, from the phone's state and the agent's open outbound call.

    ``same``: that call is this ticket's, still under way (a double click);
    ``lost``: that call lost its report, end it and go on; ``place``: call;
    else the refusal: ``already_calling``, ``not_registered``, ``busy``.
    """
    if open_call is not None:
        stale = open_call.started_at + timedelta(seconds=ring_seconds) + STALE_AFTER
        if device == "free" and now >= stale:
            return "lost"
        if open_call.ticket_id == ticket_id:
            return "same"
        return "already_calling"
    if device == "offline":
        return "not_registered"
    if device in ("ringing", "talking"):
        return "busy"
    return "place"


def shown_number(settings: Settings, origin_hotline: str | None) -> str:
    """The caller ID the citizen sees: the configured one, else the hotline the
    ticket's call came in on, else the first hotline's number."""
    if settings.queues.outbound_caller_id:
        return settings.queues.outbound_caller_id
    hotline = settings.hotline(origin_hotline) if origin_hotline else None
    return (hotline or settings.hotlines[0]).number


class OutboundService:
    """Opens, and completes, the records of calls agents place from tickets.

    ``ami`` answers the question "is this phone free?" (any process that has a
    connection); the dialling itself is the dialler's, in the process that
    hears Asterisk's events.
    """

    def __init__(
        self, db: Database, settings: Settings, clock: Clock, bus: Bus, ami: AMIClient | None
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.ami = ami
        # called with the record's id when a talked (recorded) call ended, after the
        # commit: the transcription pipeline queues it, as for the calls citizens make
        self.on_recorded_call_ended: list[Callable[[int], Awaitable[None]]] = []

    async def place(
        self,
        *,
        extension: str | None,
        ticket_id: int,
        ticket_code: str,
        phone: str | None,
        origin_call_id: int | None,
        language: str = "vi",
    ) -> Placed:
        """Call the ticket's citizen from ``extension``'s phone; see the module docstring.

        Raises :class:`NotDialable` (field ``citizen_phone``), :class:`NoPhone`,
        :class:`PhoneNotRegistered`, :class:`AgentBusy`, :class:`AlreadyCalling`
        or :class:`TelephonyUnavailable`.
        """
        number = dialable_number(phone)
        if number is None:
            raise NotDialable("citizen_phone", phone)
        if not extension:
            raise NoPhone(extension)
        if self.ami is None:
            raise TelephonyUnavailable("this panel process has no connection to Asterisk")
        open_call = await self.open_call(extension)
        # the phone's state is read with no session open (a slow AMI answer holds none)
        try:
            device = await read_device(self.ami, extension)
        except AMIError as e:
            raise TelephonyUnavailable(str(e)) from e
        now = self.clock.now()
        verdict = decide(device, open_call, ticket_id, now, self.settings.queues.ring_seconds)
        if verdict == "same" and open_call is not None:
            return Placed(open_call, repeated=True)
        if verdict == "already_calling" and open_call is not None:
            raise AlreadyCalling(extension, open_call.id, open_call.ticket_id)
        if verdict == "not_registered":
            raise PhoneNotRegistered(extension, f"device {device}")
        if verdict == "busy":
            raise AgentBusy(extension, f"device {device}")
        if verdict == "lost" and open_call is not None:
            log.warning(
                "outbound call %s of %s had no report: ended", open_call.uniqueid, extension
            )
            await self.finish(open_call.uniqueid, Result.FAILED, detail="lost")
        origin = await self._origin_hotline(origin_call_id)
        shown = shown_number(self.settings, origin)
        call = await self._open(extension, ticket_id, number, shown, language, now)
        if call is None:
            # the other click of a double click won the race: its call, or a refusal
            other = await self.open_call(extension)
            if other is None:
                raise AgentBusy(extension, "a call was just placed and ended")
            if other.ticket_id == ticket_id:
                return Placed(other, repeated=True)
            raise AlreadyCalling(extension, other.id, other.ticket_id)
        await self.bus.publish(
            DIAL_TOPIC,
            {
                "uniqueid": call.uniqueid,
                "call_id": call.id,
                "extension": extension,
                "number": number,
                "shown": shown,
                "ticket_id": ticket_id,
                "ticket_code": ticket_code,
                "language": language,
            },
        )
        log.info(
            "agent %s calls %s from ticket %s (%s)", extension, number, ticket_code, call.uniqueid
        )
        return Placed(call)

    async def _origin_hotline(self, call_id: int | None) -> str | None:
        if call_id is None:
            return None
        async with self.db.session() as session:
            origin = await session.get(Call, call_id)
            return origin.hotline_number if origin else None

    async def _open(
        self, extension: str, ticket_id: int, number: str, shown: str, language: str, now: datetime
    ) -> Call | None:
        """The call's record, open from before the agent's phone rings (so the pop and
        the ticket page show it at once); None if the agent has one open already."""
        agent = next((a for a in self.settings.agents if a.extension == extension), None)
        call = Call(
            uniqueid=f"{PREFIX}{uuid.uuid4().hex[:16]}",
            direction=Direction.OUTBOUND,
            ticket_id=ticket_id,
            hotline_number=shown,
            caller_number=number,
            language=language,
            ivr_path="",
            route_source="outbound",
            team_id=agent.team if agent else None,
            agent_extension=extension,
            agent_name=agent.name if agent else None,
            started_at=now,
            outcome=Outcome.OUTBOUND,
        )
        call.linkedid = call.uniqueid
        try:
            async with self.db.session() as session:
                session.add(call)
                await session.flush()
        except IntegrityError:
            return None
        return call

    async def open_call(self, extension: str) -> Call | None:
        """The agent's outbound call under way, if any."""
        async with self.db.session() as session:
            return await session.scalar(
                select(Call).where(
                    Call.direction == Direction.OUTBOUND,
                    Call.agent_extension == extension,
                    Call.ended_at.is_(None),
                )
            )

    async def open_calls(self, started_before: datetime) -> list[str]:
        """Channel ids of outbound calls still open, placed before a time."""
        async with self.db.session() as session:
            q = select(Call.uniqueid).where(
                Call.direction == Direction.OUTBOUND,
                Call.ended_at.is_(None),
                Call.started_at < started_before,
            )
            return list((await session.scalars(q)).all())

    async def finish(
        self,
        uniqueid: str,
        result: Result,
        *,
        detail: str | None = None,
        talk_seconds: int | None = None,
        recording_base: str | None = None,
    ) -> Call | None:
        """Complete the record: how it ended (``end_reason``), the talk time and the
        recordings when the citizen talked.  Idempotent: a second report changes nothing."""
        call = await self._finish(uniqueid, result, detail, talk_seconds, recording_base)
        if call is not None and call.recording_base:
            for hook in self.on_recorded_call_ended:
                await hook(call.id)
        return call

    async def _finish(
        self,
        uniqueid: str,
        result: Result,
        detail: str | None,
        talk_seconds: int | None,
        recording_base: str | None,
    ) -> Call | None:
        now = self.clock.now()
        async with self.db.session() as session:
            call = await session.scalar(
                call_to_change(uniqueid).where(Call.direction == Direction.OUTBOUND)
            )
            if call is None or call.ended_at is not None:
                return None
            call.ended_at = now
            call.end_reason = f"outbound_{result}"
            if result == Result.CONNECTED:
                call.answered_at = now - timedelta(seconds=talk_seconds or 0)
                call.talk_seconds = talk_seconds
                call.recording_base = recording_base
                call.recording_caller, call.recording_agent = side_files(recording_base)
            await session.flush()
            log.info("outbound call %s: %s (%s)", uniqueid, result, detail or "")
            return call


def dial_request(data: dict[str, Any]) -> dict[str, str] | None:
    """A bus message of :data:`DIAL_TOPIC` checked (None if it is not one)."""
    keys = ("uniqueid", "extension", "number", "shown", "ticket_code")
    if not all(isinstance(data.get(k), str) and data.get(k) for k in keys):
        return None
    if not str(data["uniqueid"]).startswith(PREFIX):
        return None
    return {k: str(data[k]) for k in (*keys, "language") if data.get(k) is not None}

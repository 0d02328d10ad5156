"""The recording follows a transferred call to whoever took it.

A call is recorded on the caller's channel from the first answer (app_queue's
MixMonitor, both sides).  Once that channel has been moved into another bridge
by a transfer, Asterisk's MixMonitor on it records the side the caller *hears*
as silence, although the caller does hear the new party (asterisk/asterisk#507:
the same with the recording kept running or started anew there).  So each leg
after a transfer is recorded on the channel of the party that answered it,
appended to the call's own files with the sides swapped (what that party says
is what the caller hears):

- a phone or a number (``hotline-transfer``'s Dial): the dialplan itself, in
  the gosub that runs when the target answers (``hotline-transfer-answered``);
- another queue: app_queue starts its recording on the caller's channel again
  as the agent answers, so on ``AgentConnect`` from the ``hotline-transfer``
  context this module stops that one and records the agent's channel instead;
- an attended hand-over: nothing runs in the dialplan when the agent hangs up
  to complete it, so on ``AttendedTransfer`` this module finds the consulted
  party bridged with the caller and records its channel.

Each hand-over is AMI ``StopMixMonitor`` on the caller's channel, a pause for
that recording to close its files, then ``MixMonitor`` (append) on the new
party's.  These handlers have a lane of their own: the pause and the search
for the consulted party never hold up the call records.  When the application
is away the caller's recording simply goes on, as before.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from callcenter.models import Call
from callcenter.recording_files import AGENT_SUFFIX, CALLER_SUFFIX, FORMAT
from core.ami import AMIClient, AMIError, Event, chan_vars
from core.db import Database

log = logging.getLogger(__name__)

HANDOVER_EVENTS = ("AgentConnect", "AttendedTransfer")
# the dialplan context a transferred caller's channel runs in (callcenter.transfers)
TRANSFER_CONTEXT = "hotline-transfer"
# how long the caller's recording is given to close its files before the next appends
CLOSE_SECONDS = 0.2
# how long, and how often, the consulted party is looked for next to the caller
FIND_SECONDS = 5.0
FIND_EVERY = 0.2


def mixmonitor_options(base: str) -> str:
    """MixMonitor's options on the new party's channel: append, while bridged, its
    own voice to the side the caller hears, the caller's to the caller's side."""
    return f"abr({base}{AGENT_SUFFIX}.{FORMAT})t({base}{CALLER_SUFFIX}.{FORMAT})"


class RecordingHandover:
    """Moves a transferred call's recording to the party that took it; see the module."""

    def __init__(self, db: Database, ami: AMIClient) -> None:
        self.db = db
        self.ami = ami

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(["AgentConnect"], self.on_connect, lane="handover")
        ami.subscribe(["AttendedTransfer"], self.on_attended, lane="handover")

    async def on_connect(self, e: Event) -> None:
        """Another queue's agent answered a transferred caller."""
        if e.get("Context") != TRANSFER_CONTEXT:
            return  # a first answer: app_queue's recording on the caller is the call's
        uniqueid, channel = e.get("Uniqueid"), e.get("DestChannel")
        base = chan_vars(e).get("MONITOR_FILENAME")
        if uniqueid and channel and base:
            await self.hand_over(uniqueid, base, channel)

    async def on_attended(self, e: Event) -> None:
        """An attended transfer completed: the caller talks to the consulted party."""
        if str(e.get("Result", "")).lower() != "success":
            return
        uniqueid = e.get("TransfereeUniqueid")
        if not uniqueid:
            return
        async with self.db.session() as s:
            base = await s.scalar(select(Call.recording_base).where(Call.uniqueid == uniqueid))
        if not base:
            return  # not a hotline call, or not recorded
        channel = await self.peer(uniqueid)
        if channel is None:
            log.warning("call %s: nobody found bridged with the caller; recording left", uniqueid)
            return
        await self.hand_over(uniqueid, base, channel)

    async def peer(self, uniqueid: str) -> str | None:
        """The channel bridged with the caller's, once it is a phone's or the trunk's
        (the consultation's Local channels are optimised away first)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + FIND_SECONDS
        while True:
            try:
                events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
            except AMIError as err:
                log.warning("call %s: channels not listed: %s", uniqueid, err)
                return None
            chans = [c for c in events if c.get("Event") == "CoreShowChannel"]
            caller = next((c for c in chans if c.get("Uniqueid") == uniqueid), None)
            if caller is None:
                return None  # the caller is gone
            bridge = caller.get("BridgeId")
            others = [
                str(c.get("Channel", ""))
                for c in chans
                if bridge and c.get("BridgeId") == bridge and c.get("Uniqueid") != uniqueid
            ]
            if len(others) == 1 and not others[0].startswith("Local/"):
                return others[0]
            if loop.time() >= until:
                return None
            await asyncio.sleep(FIND_EVERY)

    async def hand_over(self, uniqueid: str, base: str, channel: str) -> None:
        """Stop the recording on the caller's channel and go on, in the same files,
        on ``channel``."""
        try:
            await self.ami.action({"Action": "StopMixMonitor", "Channel": uniqueid})
        except AMIError as err:
            log.info("call %s: no recording to stop on the caller (%s)", uniqueid, err)
        await asyncio.sleep(CLOSE_SECONDS)
        try:
            await self.ami.action(
                {
                    "Action": "MixMonitor",
                    "Channel": channel,
                    "File": f"{base}.{FORMAT}",
                    "Options": mixmonitor_options(base),
                }
            )
        except AMIError as err:
            log.warning("call %s: the recording did not move to %s: %s", uniqueid, channel, err)
            return
        log.info("call %s: recorded on %s from now", uniqueid, channel)

"""Supervisors in an agent's call: listen, whisper or barge in.

Follow a supervision: the live board's button (or ``POST
/api/v1/supervisions``) -> :meth:`SupervisionService.start` checks the
supervisor has a desk phone that is not in a call and that the agent is
talking (Asterisk's channel list is the judge) -> an audit row
(:class:`~callcenter.models.Supervision`) -> AMI Originate rings the
supervisor's phone into the dialplan's ``hotline-supervise`` context, which
runs ChanSpy on the agent's channel with the mode's options
(:func:`spy_options`) -> the context's hang-up handler reports the end
(``UserEvent: HotlineSupervisionEnded``, :meth:`SupervisionService.on_user_event`)
and the row is closed.  With ``[supervision] show_to_agent``, the agent's
screen is told while a supervisor is on the line (``supervision`` messages on
the agent's topic).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from callcenter.models import SpyMode, Supervision
from core.ami import AMIClient, AMIError, Event
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.lifecycle import cancel_and_wait
from core.settings import Settings

log = logging.getLogger(__name__)

SPY_CONTEXT = "hotline-supervise"
END_EVENT = "HotlineSupervisionEnded"
SUPERVISION_EVENTS = ("UserEvent",)
# how long the agent's screen keeps "a supervisor is on the line" without news
SHOWN_TTL = 4 * 3600

_MODE_OPTION = {SpyMode.LISTEN: "", SpyMode.WHISPER: "w", SpyMode.BARGE: "B"}


def spy_options(mode: SpyMode) -> str:
    """ChanSpy's options for ``mode``: quiet (no beep, no name said), end with the
    agent's call (E) or at once when it is already gone (S), keys 4/5/6 switch
    listen/whisper/barge (d), then the mode's own letter."""
    return "qESd" + _MODE_OPTION[mode]


def spy_channel(agent_extension: str) -> str:
    """The prefix of the agent's phone's channels (``PJSIP/1001-000000a2``)."""
    return f"PJSIP/{agent_extension}-"


class SupervisionRefused(Exception):
    """The supervision cannot start; ``reason`` names why (the panel's answer)."""

    REASONS = ("no_extension", "supervisor_busy", "agent_not_talking", "unavailable")

    def __init__(self, reason: str, **details: Any) -> None:
        assert reason in self.REASONS
        self.reason, self.details = reason, details
        super().__init__(f"supervision refused: {reason} {details or ''}".strip())


@dataclass(frozen=True)
class Supervisor:
    """Who asks to join (the panel's signed-in user): their account and desk phone."""

    user_id: int | None
    name: str
    extension: str | None


@dataclass(frozen=True)
class Started:
    id: int
    channel_id: str
    mode: SpyMode
    agent_extension: str
    supervisor_extension: str
    call_uniqueid: str | None


def _channels(events: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in (events if isinstance(events, list) else [])
        if e.get("Event") == "CoreShowChannel"
    ]


class SupervisionService:
    """Starts supervisions over AMI and keeps their audit; see the module docstring."""

    def __init__(
        self, settings: Settings, db: Database, bus: Bus | None, ami: AMIClient, clock: Clock
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.ami = ami
        self.clock = clock
        self._rings: set[asyncio.Task[None]] = set()

    def subscribe(self, ami: AMIClient) -> None:
        ami.subscribe(SUPERVISION_EVENTS, self.on_user_event)

    async def stop(self) -> None:
        tasks = list(self._rings)
        for t in tasks:
            t.cancel()
        await cancel_and_wait(tasks, "supervisions")

    def phone_of(self, actor: Supervisor) -> str | None:
        """The actor's desk phone, if their extension is one of ``supervision.phones``."""
        phones = {p.extension for p in self.settings.supervision.phones}
        return actor.extension if actor.extension in phones else None

    async def start(self, actor: Supervisor, agent_extension: str, mode: SpyMode) -> Started:
        """Ring the supervisor's phone into the agent's call in ``mode``.

        Refused (:class:`SupervisionRefused`) when the actor has no desk phone,
        their phone is in a call, or the agent is not talking.  The audit row is
        written before the phone rings; the ring itself goes on in the background.
        """
        phone = self.phone_of(actor)
        if phone is None:
            raise SupervisionRefused("no_extension", extension=actor.extension)
        try:
            events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        except AMIError as e:
            raise SupervisionRefused("unavailable", error=str(e)) from None
        channels = _channels(events)
        if any(str(c.get("Channel", "")).startswith(f"PJSIP/{phone}-") for c in channels):
            raise SupervisionRefused("supervisor_busy", extension=phone)
        prefix = spy_channel(agent_extension)
        talking = [
            c
            for c in channels
            if str(c.get("Channel", "")).startswith(prefix)
            and c.get("ChannelStateDesc") == "Up"
            and c.get("BridgeId")
        ]
        if not talking:
            raise SupervisionRefused("agent_not_talking", extension=agent_extension)
        call = await self._call_of(agent_extension, talking[0])
        channel_id = f"spy-{uuid.uuid4().hex[:12]}"
        async with self.db.session() as s:
            row = Supervision(
                channel_id=channel_id,
                user_id=actor.user_id,
                username=actor.name,
                supervisor_extension=phone,
                agent_extension=agent_extension,
                call_uniqueid=call,
                mode=mode.value,
                started_at=self.clock.now(),
            )
            s.add(row)
            await s.flush()
            started = Started(row.id, channel_id, mode, agent_extension, phone, call)
        log.info(
            "supervision %s: %s (%s) %s agent %s, call %s",
            started.id, actor.name, phone, mode.value, agent_extension, call,
        )  # fmt: skip
        task = asyncio.create_task(self._ring(started, actor), name=f"supervision-{started.id}")
        self._rings.add(task)
        task.add_done_callback(self._rings.discard)
        return started

    async def _call_of(self, agent_extension: str, channel: dict[str, Any]) -> str | None:
        """The call's uniqueid as the call records know it: the live state's, else the
        channel's linked id (the caller's channel starts the call)."""
        if self.bus is not None:
            try:
                state = await self.bus.kept(f"state.{agent_extension}")
            except Exception:  # noqa: BLE001 - Redis away: the linked id still names the call
                state = None
            if state and state.get("call"):
                return str(state["call"])
        return channel.get("Linkedid") or None

    async def _ring(self, st: Started, actor: Supervisor) -> None:
        s = self.settings.supervision
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{st.supervisor_extension}",
            "Context": SPY_CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "Async": "true",
            "Timeout": str(s.ring_seconds * 1000),
            "ChannelId": st.channel_id,
            "CallerID": f'"{st.mode.value} {st.agent_extension}" <{st.agent_extension}>',
            "Variable": [
                f"HOTLINE_SPY={st.id}",
                f"HOTLINE_SPY_BY={actor.user_id or ''}",
                f"HOTLINE_SPY_MODE={st.mode.value}",
                f"HOTLINE_SPY_CHANNEL={spy_channel(st.agent_extension)}",
                f"HOTLINE_SPY_OPTIONS={spy_options(st.mode)}",
            ],
        }
        try:
            reply = await self.ami.action(action, timeout=s.ring_seconds + 15)
            answer = reply[-1] if isinstance(reply, list) else reply
            if str(answer.get("Response", "")).lower() != "success":
                log.info("supervision %s: phone not answered (%s)", st.id, answer.get("Reason"))
                await self.finish(st.channel_id, "not_answered")
                return
        except AMIError as e:
            log.warning("supervision %s: originate failed: %s", st.id, e)
            await self.finish(st.channel_id, "failed")
            return
        await self._show(st.agent_extension, {"active": True, "mode": st.mode.value})

    async def on_user_event(self, e: Event) -> None:
        """The dialplan's report: the supervisor's channel hung up."""
        if e.get("UserEvent") != END_EVENT:
            return
        # the event's Uniqueid is the supervisor's channel's: the ChannelId we gave it
        await self.finish(e.get("Uniqueid") or "", "ended")

    async def finish(self, channel_id: str, result: str) -> None:
        """Close the audit row of ``channel_id`` (once: a second report changes nothing)."""
        async with self.db.session() as s:
            done = await s.execute(
                update(Supervision)
                .where(Supervision.channel_id == channel_id, Supervision.ended_at.is_(None))
                .values(ended_at=self.clock.now(), result=result)
                .returning(Supervision.agent_extension)
            )
            ext = done.scalar_one_or_none()
        if ext is not None:
            await self._show(ext, {"active": False})

    async def _show(self, agent_extension: str, what: dict[str, Any]) -> None:
        """Tell the agent's screen, where the configuration says so."""
        if self.bus is None or not self.settings.supervision.show_to_agent:
            return
        payload = {"type": "supervision", "extension": agent_extension, **what}
        try:
            await self.bus.publish_kept(
                f"agent.{agent_extension}", f"supervision.{agent_extension}", payload, SHOWN_TTL
            )
        except Exception:
            log.exception("supervision: the agent's screen was not told")

    async def recent(self, limit: int = 200) -> list[Supervision]:
        """The audit, newest first."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Supervision).order_by(Supervision.started_at.desc()).limit(limit)
            )
            return list(rows)

"""Shift queues driven over AMI.

One queue per (team, shift).  At each handover (06:00, 14:00, 22:00 in the
configured time zone) the incoming shift's agents are added to their queue
and the outgoing shift's are removed.  An outgoing agent still on a call is
paused (so no new call rings) and removed when the call ends, not before;
callers still waiting in the outgoing queue are served by the incoming shift,
who are members there too until it is empty.

The decision is a pure function, :func:`plan`, of the time, the membership
Asterisk reports (QueueStatus) and the callers waiting; the scheduler applies
it at start, after every AMI (re)login, at each handover, when a member it
waits for becomes free, and every ``interval`` seconds as a safety net.  So
membership is always re-synced from Asterisk, never from memory.

A pause is the agent's, not the queue's: an agent on a break (paused with a
reason in any of the queues Asterisk reports) who is added to another queue
(helping to drain the previous shift's queue, moved to another shift by the
configuration, or added again under a new name) is added paused, with the
same reason, so a break never ends by itself at a handover.  The scheduler's
own ``shift-ended`` pause is not carried: it only keeps a finishing call's
agent from being rung in the queue they are leaving; and where such a member
is on duty again (a restart, a new configuration) the scheduler lifts it, as
an agent cannot.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from callcenter.live import QueueStatus, read_queue_status
from callcenter.shifts import member_name, next_handover, queue_name, shift_at
from core.ami import AMIClient, AMIError, Event
from core.clock import Clock
from core.settings import Settings

log = logging.getLogger(__name__)

SHIFT_END_REASON = "shift-ended"


@dataclass(frozen=True)
class Member:
    queue: str
    interface: str
    name: str = ""
    paused: bool = False
    paused_reason: str = ""
    busy: bool = False


@dataclass(frozen=True)
class Change:
    kind: Literal["add", "remove", "pause", "resume"]
    queue: str
    interface: str
    name: str = ""
    # an "add" of an agent on a break: added paused, with the break's reason
    paused: bool = False
    reason: str = ""

    def __str__(self) -> str:
        where = "to" if self.kind == "add" else "in"
        text = f"{self.kind} {self.interface} {where} {self.queue}"
        if self.kind == "add" and self.paused:
            text += f" (paused: {self.reason or 'no reason'})"
        return text


def interface(extension: str) -> str:
    return f"PJSIP/{extension}"


def on_break(members: list[Member]) -> dict[str, str]:
    """Interface -> pause reason of every member on a break, whichever queue says so.

    The queues are read in name order, so an agent paused with different
    reasons in two queues (paused queue by queue) always carries the same one.
    """
    breaks: dict[str, str] = {}
    for m in sorted(members, key=lambda m: m.queue):
        if m.paused and m.paused_reason != SHIFT_END_REASON:
            breaks.setdefault(m.interface, m.paused_reason)
    return breaks


def _add(queue: str, iface: str, name: str, breaks: dict[str, str]) -> Change:
    if iface in breaks:
        return Change("add", queue, iface, name, paused=True, reason=breaks[iface])
    return Change("add", queue, iface, name)


def plan(
    settings: Settings, now: datetime, members: list[Member], waiting: dict[str, int]
) -> list[Change]:
    """What to change so queue membership matches the shift on duty at ``now``.

    Additions come first: an agent moved from one queue to another is in
    the new one before leaving the old, so if an action fails half-way the
    next look still finds the break to carry.
    """
    current = shift_at(settings.shifts, now, settings.tz)
    names = {interface(a.extension): member_name(a.extension, a.name) for a in settings.agents}
    breaks = on_break(members)
    first: list[Change] = []  # additions (and renames): before anybody leaves a queue
    changes: list[Change] = []
    by_queue: dict[str, dict[str, Member]] = {}
    for m in members:
        by_queue.setdefault(m.queue, {})[m.interface] = m
    for team in settings.teams:
        on_duty = {
            interface(a.extension)
            for a in settings.agents
            if a.team == team.id and a.shift == current.id
        }
        for shift in settings.shifts:
            q = queue_name(team.id, shift.id)
            present = by_queue.get(q, {})
            if shift.id == current.id or waiting.get(q, 0) > 0:
                wanted = on_duty
            else:
                wanted = set()
            for iface in sorted(wanted - present.keys()):
                first.append(_add(q, iface, names.get(iface, iface), breaks))
            for iface, m in sorted(present.items()):
                if iface in wanted:
                    if m.name != names[iface] and not m.busy:
                        # renamed in the configuration (or added by an older
                        # version): queue_log must carry the current name
                        first.append(Change("remove", q, iface, m.name))
                        first.append(_add(q, iface, names[iface], breaks))
                    elif m.paused and m.paused_reason == SHIFT_END_REASON:
                        # on duty here again (a restart, a new configuration):
                        # only the scheduler lifts its own pause, agents cannot
                        changes.append(Change("resume", q, iface, m.name))
                    continue
                if not m.busy:
                    changes.append(Change("remove", q, iface, m.name))
                elif not m.paused:
                    changes.append(Change("pause", q, iface, m.name))
    return first + changes


def members_of(status: QueueStatus) -> list[Member]:
    """The members of a QueueStatus answer as :func:`plan` reads them."""
    return [
        Member(
            queue=m.queue,
            interface=m.interface,
            name=m.name,
            paused=m.paused,
            paused_reason=m.reason,
            busy=m.busy,
        )
        for m in status.members
    ]


def parse_status(events: list[Event]) -> tuple[list[Member], dict[str, int]]:
    """Members and waiting callers from a QueueStatus answer's events."""
    status = QueueStatus.parse(events)
    return members_of(status), status.waiting


class ShiftScheduler:
    """Keeps queue membership in the real Asterisk in line with the shifts."""

    def __init__(
        self, settings: Settings, ami: AMIClient, clock: Clock, *, interval: float = 30.0
    ) -> None:
        self.settings = settings
        self.ami = ami
        self.clock = clock
        self.interval = interval
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._managed_queues = {
            queue_name(t.id, s.id) for t in settings.teams for s in settings.shifts
        }
        self.last_changes: list[Change] = []
        self.reconciled = asyncio.Event()

    async def start(self) -> None:
        self.ami.on_login(self._on_login)
        self._task = asyncio.create_task(self._run(), name="shift-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def wake(self) -> None:
        self._wake.set()

    async def _on_login(self) -> None:
        self.wake()

    async def on_member_event(self, e: Event) -> None:
        """Wake when a waited-for member frees up or an off-duty queue changes."""
        queue = e.get("Queue", "")
        if e.get("Event") == "FullyBooted":
            self.wake()
        elif queue not in self._managed_queues:
            return
        elif e.get("Paused") == "1" and e.get("PausedReason") == SHIFT_END_REASON:
            self.wake()
        elif e.get("Event") == "QueueCallerLeave" and not queue.endswith(
            "-" + shift_at(self.settings.shifts, self.clock.now(), self.settings.tz).id
        ):
            self.wake()  # an off-duty queue drained: its helpers can go

    async def reconcile(self) -> list[Change]:
        """Read membership from Asterisk and apply :func:`plan`; returns what changed."""
        async with self._lock:
            status = await read_queue_status(self.ami)
            members = [m for m in members_of(status) if m.queue in self._managed_queues]
            waiting = status.waiting
            now = self.clock.now()
            changes = plan(self.settings, now, members, waiting)
            for c in changes:
                try:
                    await self._apply(c)
                except AMIError as e:
                    log.error("shift change %s failed: %s", c, e)
            if changes:
                log.info(
                    "shift %s: %s",
                    shift_at(self.settings.shifts, now, self.settings.tz).id,
                    "; ".join(map(str, changes)),
                )
            self.last_changes = changes
            self.reconciled.set()
            return changes

    async def _apply(self, c: Change) -> None:
        if c.kind == "add":
            action = {
                "Action": "QueueAdd",
                "Queue": c.queue,
                "Interface": c.interface,
                "MemberName": c.name,
                "StateInterface": c.interface,
                "Paused": "true" if c.paused else "false",
            }
            if c.paused and c.reason:
                action["Reason"] = c.reason  # QueueAdd has a Reason field since Asterisk 20
            await self.ami.action(action, as_list=False)
        elif c.kind == "remove":
            await self.ami.action(
                {"Action": "QueueRemove", "Queue": c.queue, "Interface": c.interface},
                as_list=False,
            )
        elif c.kind == "resume":
            await self.ami.action(
                {
                    "Action": "QueuePause",
                    "Queue": c.queue,
                    "Interface": c.interface,
                    "Paused": "false",
                },
                as_list=False,
            )
        else:
            await self.ami.action(
                {
                    "Action": "QueuePause",
                    "Queue": c.queue,
                    "Interface": c.interface,
                    "Paused": "true",
                    "Reason": SHIFT_END_REASON,
                },
                as_list=False,
            )

    async def _run(self) -> None:
        while True:
            try:
                if self.ami.connected:
                    await self.reconcile()
            except AMIError as e:
                log.warning("shift reconcile postponed: %s", e)
            except Exception:
                log.exception("shift reconcile failed")
            handover = next_handover(self.settings.shifts, self.clock.now(), self.settings.tz)
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(handover))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait(
                    {sleeper, waker}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                sleeper.cancel()
                waker.cancel()
            # Several events often arrive together: reconcile once for all of them.
            await asyncio.sleep(0.05)

"""Congestion alarms: a queue under pressure is announced, logged and recorded.

The HCMC hotline "got congested when too many calls arrived at once": the
supervisors must see it at once.  Three measures per queue, from its live
state (:mod:`queue_stats.live`):

- ``callers_waiting``: how many callers wait;
- ``longest_wait``: how long the first of them has waited (seconds);
- ``all_busy_growing``: how long no member has been free while callers
  waited and their number grew (seconds; 0 when someone is free or the
  queue did not grow over the last ``all_busy_growing_seconds``).

The alarm goes up when any measure reaches its threshold
(``[stats.congestion]``) and clears only once every measure is under
``clear_ratio`` x its threshold (hysteresis: a queue hovering at the
threshold does not flap).

While it is up, a measure that reaches its threshold for the first time in
this alarm *escalates* it: the reason is announced and recorded (state
``escalated``, its ``reasons`` the alarm's reasons now, ``added`` the new
ones).  A reason, once announced, stays one of the alarm's reasons until the
alarm clears, even if its measure falls back meanwhile: so each reason is
announced at most once per alarm (an alarm writes at most one row per
reason, plus the row that clears it), and a measure hovering at its
threshold, or a longest wait that drops each time the first caller is
answered and grows again, adds nothing.  The board shows the alarm's reasons
and, in today's log, what each row added.

:class:`CongestionRule` is that logic alone, on a time it is given;
:class:`CongestionWatch` applies it every second to the live state, writes
each change to the log and to ``congestion_events`` (append-only, migrations
0009 and 0010), publishes it on the bus topic ``board`` and keeps the alarms
in force as kept values (``congestion.<queue>``), so a page opened later
shows them.  After a restart the alarms in force are taken back from the
table (each queue's last row, and the row that raised it for its start), so
an alarm is neither raised twice nor left uncleared, and a reason already
announced is not announced again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Index, Integer, String, Subquery, func, select
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.shifts import queue_name
from core.bus import Bus
from core.clock import Clock
from core.db import Base, Database, UTCDateTime
from core.settings import Congestion, Settings
from queue_stats.live import BOARD_TOPIC, LiveQueues

log = logging.getLogger(__name__)

REASONS = ("callers_waiting", "longest_wait", "all_busy_growing")
# An alarm in force is kept this long without news (the watch refreshes it).
KEPT_TTL = 24 * 3600
_REFRESH = timedelta(hours=1)

State = Literal["raised", "escalated", "cleared"]
# the states of an alarm in force (the queue's last row says so)
IN_FORCE = ("raised", "escalated")


class CongestionEvent(Base):
    """One alarm raised, escalated or cleared.  Rows are only ever inserted (trigger, 0009)."""

    __tablename__ = "congestion_events"
    __table_args__ = (Index("ix_congestion_events_queue_at", "queue", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # raised | escalated | cleared
    # the alarm's reasons after this row, comma-separated (empty when cleared)
    reasons: Mapped[str] = mapped_column(String(120), default="")
    # the reasons this row announces first: all of them when raised, the new
    # ones when escalated, none when cleared (0010; empty in older rows)
    added: Mapped[str] = mapped_column(String(120), default="", server_default="")
    waiting: Mapped[int] = mapped_column(Integer)
    longest_wait_seconds: Mapped[int] = mapped_column(Integer)
    all_busy_growing_seconds: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Measures:
    waiting: int
    longest_wait: float
    all_busy_growing: float

    def as_dict(self) -> dict[str, int]:
        return {
            "waiting": self.waiting,
            "longest_wait_seconds": int(self.longest_wait),
            "all_busy_growing_seconds": int(self.all_busy_growing),
        }


@dataclass(frozen=True)
class Change:
    """A queue's alarm went up, gained a reason, or went down."""

    queue: str
    state: State
    reasons: tuple[str, ...]  # the alarm's reasons after the change
    measures: Measures
    at: datetime
    added: tuple[str, ...] = ()  # what this change announces first
    since: datetime | None = None  # when the alarm went up (None once cleared)

    def message(self) -> dict[str, Any]:
        return {
            "type": "congestion",
            "queue": self.queue,
            "state": self.state,
            "reasons": list(self.reasons),
            "added": list(self.added),
            "at": self.at.isoformat(),
            "since": self.since.isoformat() if self.since else None,
            **self.measures.as_dict(),
        }


@dataclass
class _Queue:
    """What the rule remembers of one queue between two looks."""

    raised: bool = False
    reasons: tuple[str, ...] = ()
    raised_at: datetime | None = None
    busy_since: datetime | None = None
    # (moment, callers waiting) while nobody is free, to see the queue grow
    samples: deque[tuple[datetime, int]] = field(default_factory=deque)


def _parse(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CongestionRule:
    """The alarm logic, on the time it is given (no clock of its own: testable)."""

    def __init__(self, config: Congestion) -> None:
        self.config = config
        self.queues: dict[str, _Queue] = {}

    def restore(self, queue: str, reasons: tuple[str, ...], since: datetime) -> None:
        """An alarm already in force (from before a restart), up since ``since``."""
        q = self.queues.setdefault(queue, _Queue())
        q.raised, q.reasons, q.raised_at = True, reasons, since

    def is_raised(self, queue: str) -> bool:
        q = self.queues.get(queue)
        return bool(q and q.raised)

    def measure(self, queue: str, state: dict[str, Any], now: datetime) -> Measures:
        """The three measures of ``state`` (a queue as LiveQueues gives it) at ``now``."""
        q = self.queues.setdefault(queue, _Queue())
        waiting = state.get("waiting") or []
        members = state.get("members") or []
        count = len(waiting)
        sinces = [s for s in (_parse(c.get("since")) for c in waiting) if s is not None]
        longest = max(((now - s).total_seconds() for s in sinces), default=0.0)
        window = timedelta(seconds=self.config.all_busy_growing_seconds)
        nobody_free = not any(m.get("state") == "free" for m in members)
        growing = 0.0
        if count and nobody_free:
            if q.busy_since is None:
                q.busy_since = now
            if not q.samples or q.samples[-1][1] != count:
                q.samples.append((now, count))
            # keep one sample at or before the window's start: the baseline
            while len(q.samples) > 1 and q.samples[1][0] <= now - window:
                q.samples.popleft()
            baseline = q.samples[0][1]
            if count > baseline:
                growing = (now - q.busy_since).total_seconds()
        else:
            q.busy_since = None
            q.samples.clear()
        return Measures(count, max(0.0, longest), growing)

    def over(self, m: Measures, ratio: float = 1.0) -> tuple[str, ...]:
        """The measures at or above ``ratio`` x their threshold."""
        c = self.config
        out = []
        if m.waiting >= ratio * c.callers_waiting:
            out.append("callers_waiting")
        if m.longest_wait >= ratio * c.longest_wait_seconds:
            out.append("longest_wait")
        if m.all_busy_growing >= ratio * c.all_busy_growing_seconds:
            out.append("all_busy_growing")
        return tuple(out)

    def evaluate(self, queue: str, state: dict[str, Any], now: datetime) -> Change | None:
        """Look at one queue at ``now``; the change of its alarm, if any."""
        m = self.measure(queue, state, now)
        q = self.queues[queue]
        if not q.raised:
            reasons = self.over(m)
            if reasons:
                q.raised, q.reasons, q.raised_at = True, reasons, now
                return Change(queue, "raised", reasons, m, now, added=reasons, since=now)
            return None
        # raised: clear only once every measure is well under its threshold
        if not self.over(m, self.config.clear_ratio):
            q.raised, q.reasons, q.raised_at = False, (), None
            return Change(queue, "cleared", (), m, now)
        # a reason not yet announced in this alarm reached its threshold
        added = tuple(r for r in self.over(m) if r not in q.reasons)
        if not added:
            return None
        q.reasons = tuple(r for r in REASONS if r in q.reasons or r in added)
        return Change(queue, "escalated", q.reasons, m, now, added=added, since=q.raised_at)


def queue_names(settings: Settings) -> list[str]:
    """Every queue the configuration makes (one per team and shift)."""
    return [queue_name(t.id, s.id) for t in settings.teams for s in settings.shifts]


def kept_name(queue: str) -> str:
    return f"congestion.{queue}"


async def current_alarms(bus: Bus, settings: Settings) -> dict[str, dict[str, Any]]:
    """The alarms in force, by queue (what a fresh board shows)."""
    kept = await bus.kept_many([kept_name(q) for q in queue_names(settings)])
    return {msg["queue"]: msg for msg in kept.values() if msg.get("state") in IN_FORCE}


class CongestionWatch:
    """Applies :class:`CongestionRule` to the live queues every ``interval`` seconds."""

    def __init__(
        self,
        live: LiveQueues,
        bus: Bus,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        interval: float = 1.0,
    ) -> None:
        self.live = live
        self.bus = bus
        self.db = db
        self.settings = settings
        self.clock = clock
        self.interval = interval
        self.rule = CongestionRule(settings.stats.congestion)
        self._task: asyncio.Task[None] | None = None
        self._kept_at: dict[str, datetime] = {}

    async def start(self) -> None:
        await self.restore()
        self._task = asyncio.create_task(self._run(), name="congestion-watch")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def restore(self) -> None:
        """Take back the alarms in force: each queue's last row, if it is raised or
        escalated, with the moment the alarm went up (its last raised row)."""
        last, raised = _last_rows(None), _last_rows("raised")
        lasts = select(CongestionEvent).join(last, CongestionEvent.id == last.c.id)
        raises = select(CongestionEvent.queue, CongestionEvent.at).join(
            raised, CongestionEvent.id == raised.c.id
        )
        async with self.db.session() as s:
            rows = (await s.scalars(lasts)).all()
            starts = {queue: at for queue, at in (await s.execute(raises)).all()}
        for row in rows:
            if row.state not in IN_FORCE:
                continue
            reasons = _split(row.reasons)
            since = starts.get(row.queue, row.at)
            self.rule.restore(row.queue, reasons, since)
            m = Measures(row.waiting, row.longest_wait_seconds, row.all_busy_growing_seconds)
            state: State = "escalated" if row.state == "escalated" else "raised"
            added = _split(row.added) or (reasons if state == "raised" else ())
            msg = Change(row.queue, state, reasons, m, row.at, added, since).message()
            await self.bus.keep(kept_name(row.queue), msg, KEPT_TTL)
            self._kept_at[row.queue] = self.clock.now()
            log.info(
                "congestion alarm on %s still in force (since %s): %s",
                row.queue,
                since,
                ", ".join(reasons),
            )

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - Redis or the database away: look again soon
                log.exception("congestion check failed; trying again in %s s", self.interval)
            await asyncio.sleep(self.interval)

    async def check(self) -> list[Change]:
        """Look at every queue now; record and announce what changed."""
        snap = await self.live.snapshot()
        now = self.clock.now()
        queues: dict[str, Any] = snap.get("queues", {})
        # a raised queue that vanished from the board (rebuilt empty) is empty
        for name in list(self.rule.queues):
            if name not in queues and self.rule.is_raised(name):
                queues[name] = {"waiting": [], "members": []}
        changes = []
        for name, state in queues.items():
            change = self.rule.evaluate(name, state, now)
            if change is not None:
                await self._announce(change)
                changes.append(change)
            elif self.rule.is_raised(name) and now - self._kept_at.get(name, now) > _REFRESH:
                # a long alarm outlives the kept value's TTL: keep it again
                kept = await self.bus.kept(kept_name(name))
                if kept:
                    await self.bus.keep(kept_name(name), kept, KEPT_TTL)
                self._kept_at[name] = now
        return changes

    async def _announce(self, change: Change) -> None:
        m = change.measures
        if change.state == "raised":
            log.warning(
                "congestion on queue %s: %s (waiting %d, longest wait %d s, all busy and "
                "growing for %d s)",
                change.queue,
                ", ".join(change.reasons),
                m.waiting,
                m.longest_wait,
                m.all_busy_growing,
            )
        elif change.state == "escalated":
            log.warning(
                "congestion on queue %s escalated: %s too (now %s; waiting %d, longest wait "
                "%d s, all busy and growing for %d s)",
                change.queue,
                ", ".join(change.added),
                ", ".join(change.reasons),
                m.waiting,
                m.longest_wait,
                m.all_busy_growing,
            )
        else:
            log.warning(
                "congestion on queue %s cleared (waiting %d, longest wait %d s)",
                change.queue,
                m.waiting,
                m.longest_wait,
            )
        # the record first: the alarm must survive a crash right after
        async with self.db.session() as s:
            s.add(
                CongestionEvent(
                    at=change.at,
                    queue=change.queue,
                    state=change.state,
                    reasons=",".join(change.reasons),
                    added=",".join(change.added),
                    **m.as_dict(),
                )
            )
        msg = change.message()
        self._kept_at[change.queue] = change.at
        if change.state in IN_FORCE:
            await self.bus.publish_kept(BOARD_TOPIC, kept_name(change.queue), msg, KEPT_TTL)
        else:
            await self.bus.forget(kept_name(change.queue))
            await self.bus.publish(BOARD_TOPIC, msg)


def _split(text: str) -> tuple[str, ...]:
    return tuple(r for r in text.split(",") if r)


def _last_rows(state: str | None) -> Subquery:
    """Each queue's last row id (of that state, if given), as a subquery."""
    q = select(CongestionEvent.queue, func.max(CongestionEvent.id).label("id"))
    if state is not None:
        q = q.where(CongestionEvent.state == state)
    return q.group_by(CongestionEvent.queue).subquery()


async def history(db: Database, since: datetime, limit: int = 50) -> list[CongestionEvent]:
    """The alarms raised, escalated and cleared since ``since``, newest first."""
    async with db.session() as s:
        rows = await s.scalars(
            select(CongestionEvent)
            .where(CongestionEvent.at >= since)
            .order_by(CongestionEvent.id.desc())
            .limit(limit)
        )
        return list(rows.all())

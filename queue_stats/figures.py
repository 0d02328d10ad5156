"""Queue figures over a period: per queue, hotline, shift, agent, or in total.

Computed from the ``calls`` table (one row per call, kept right across
outages) and, for occupancy and ring-no-answer, from the append-only
``queue_events`` table.  A call belongs to the period in which it started.

Where Asterisk's app_queue counts the same thing the figures count it the same
way (apps/app_queue.c: ``record_abandoned``, ``update_queue``,
``__queues_show``), so they can be checked against AMI ``QueueStatus``:

- ``answered`` — app_queue's ``Completed`` (``callscompleted``, once the
  answered call has ended);
- ``asterisk_abandoned`` — app_queue's ``Abandoned`` (``callsabandoned``):
  app_queue calls ``record_abandoned`` for a caller who hangs up while waiting
  AND for one who reaches the maximum wait, so it is ``abandoned + timed_out``;
- ``answered_in_sl`` — ``callscompletedinsl``: answered after a wait
  (``hold_seconds``) of at most ``service_level_seconds``;
- ``abandoned_in_sl`` — ``callsabandonedinsl``: left unanswered (either way)
  within ``service_level_seconds``;
- ``service_level_perf`` — ``ServicelevelPerf`` =
  100 × callscompletedinsl / callscompleted;
- ``service_level_perf2`` — ``ServicelevelPerf2`` =
  100 × (callsabandonedinsl + callscompletedinsl) / (callsabandoned + callscompleted).
  (Note: app_queue counts the callers who gave up within the service level as
  served in time here; our ``service_level`` below does not.)

app_queue's figures are shown only under their app_queue names.

Our own figures on top, each defined once in :mod:`queue_stats.kpis` (the
text every view shows): the service level (``service_level`` = 100 ×
answered_in_sl / counted) and the abandon rate (``abandon_rate`` = 100 ×
(abandoned − short abandons + timed_out) / counted), both over the calls
counted (``counted``: offered, less the short abandons — callers who hung up
within ``short_abandon_seconds``, as is usual in call centres — and the calls
still waiting); average speed of answer (``asa``, mean wait of answered calls; app_queue's
``Holdtime`` is a running average weighting the last call by 1/4, the same
for one call); average handling time (``aht``: mean talk time plus the
configured wrap-up); longest wait; occupancy (talk time / staffed time, the
staffed time from ADDMEMBER/REMOVEMEMBER queue events); calls per hour.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.models import Call, Direction, Outcome
from core import clock
from core.db import Database
from core.settings import Settings
from queue_stats.models import QueueEvent

By = Literal["queue", "hotline", "shift", "agent"]
# {(queue, extension): [(from, to), ...]}: when each agent was a member of each queue
Intervals = dict[tuple[str, str], list[tuple[datetime, datetime]]]
BY_VALUES: tuple[By, ...] = ("queue", "hotline", "shift", "agent")

_COLUMNS = {
    "queue": Call.queue,
    "hotline": Call.hotline_number,
    "shift": Call.shift_id,
    "agent": Call.agent_extension,
}


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


@dataclass
class Figures:
    """The figures of one group (``key``: a queue, hotline number, shift id or
    extension; None for everything) over [start, end).

    The fields are sums and counts, so figures of two periods add up
    (:meth:`add`); the rates are properties computed from them.
    """

    key: str | None
    start: datetime
    end: datetime
    offered: int = 0  # entered a queue
    answered: int = 0
    abandoned: int = 0  # hung up while waiting
    short_abandoned: int = 0  # ... within short_abandon_seconds
    timed_out: int = 0  # reached the maximum wait
    waiting: int = 0  # offered and still in the queue
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0  # abandoned or timed out within the service level
    hold_answered_seconds: int = 0  # summed wait of answered calls
    talk_seconds: int = 0
    talk_calls: int = 0  # answered calls whose talk time is known
    longest_wait: int | None = None
    wrapup_seconds: int = 0  # configured wrap-up per answered call
    staffed_seconds: float | None = None  # None where it does not apply
    ring_no_answer: int | None = None

    @property
    def abandoned_long(self) -> int:
        """Abandoned, leaving out short abandons."""
        return self.abandoned - self.short_abandoned

    @property
    def asterisk_abandoned(self) -> int:
        return self.abandoned + self.timed_out

    @property
    def service_level_perf(self) -> float | None:
        """app_queue's ServicelevelPerf (percent)."""
        return _pct(self.answered_in_sl, self.answered)

    @property
    def service_level_perf2(self) -> float | None:
        """app_queue's ServicelevelPerf2 (percent)."""
        return _pct(
            self.answered_in_sl + self.abandoned_in_sl, self.answered + self.asterisk_abandoned
        )

    @property
    def counted(self) -> int:
        """What the service level and the abandon rate are taken over: the calls
        offered less the short abandons and those still waiting."""
        return self.offered - self.short_abandoned - self.waiting

    @property
    def service_level(self) -> float | None:
        """The service level, percent (``queue_stats.kpis``: answered in time / counted)."""
        return _pct(self.answered_in_sl, self.counted)

    @property
    def abandon_rate(self) -> float | None:
        """The abandon rate, percent (``queue_stats.kpis``: abandoned after the short
        threshold or timed out / counted)."""
        return _pct(self.abandoned_long + self.timed_out, self.counted)

    @property
    def asa(self) -> float | None:
        """Average speed of answer, seconds."""
        return round(self.hold_answered_seconds / self.answered, 1) if self.answered else None

    @property
    def avg_talk(self) -> float | None:
        return round(self.talk_seconds / self.talk_calls, 1) if self.talk_calls else None

    @property
    def aht(self) -> float | None:
        """Average handling time: talk plus the configured wrap-up, seconds."""
        talk = self.avg_talk
        return None if talk is None else round(talk + self.wrapup_seconds, 1)

    @property
    def occupancy(self) -> float | None:
        """Talk time / staffed time, percent."""
        if not self.staffed_seconds:
            return None
        return round(100.0 * self.talk_seconds / self.staffed_seconds, 1)

    @property
    def calls_per_hour(self) -> float:
        hours = (self.end - self.start).total_seconds() / 3600
        return round(self.offered / hours, 2) if hours > 0 else 0.0

    def add(self, other: Figures) -> None:
        """Add ``other``'s counts to these (the period grows to cover both)."""
        for f in _SUMMED:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        for f in ("staffed_seconds", "ring_no_answer"):
            a, b = getattr(self, f), getattr(other, f)
            setattr(self, f, None if a is None and b is None else (a or 0) + (b or 0))
        if other.longest_wait is not None:
            self.longest_wait = max(self.longest_wait or 0, other.longest_wait)
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)

    def as_dict(self) -> dict[str, Any]:
        """Counts and rates, for templates, CSV and JSON."""
        out = asdict(self)
        for name in RATES:
            out[name] = getattr(self, name)
        return out


_SUMMED = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timed_out",
    "waiting",
    "answered_in_sl",
    "abandoned_in_sl",
    "hold_answered_seconds",
    "talk_seconds",
    "talk_calls",
)
RATES = (
    "counted",
    "service_level",
    "abandon_rate",
    "abandoned_long",
    "asterisk_abandoned",
    "service_level_perf",
    "service_level_perf2",
    "asa",
    "avg_talk",
    "aht",
    "occupancy",
    "calls_per_hour",
)
# the columns of the CSV exports, in order: the keys of queue_stats.kpis, whose
# names in the user's language head the columns; app_queue's own figures last
CSV_FIELDS = [
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timed_out",
    "waiting",
    "counted",
    "answered_in_sl",
    "service_level",
    "abandon_rate",
    "asa",
    "avg_talk",
    "aht",
    "longest_wait",
    "occupancy",
    "calls_per_hour",
    "ring_no_answer",
    "staffed_seconds",
    "talk_seconds",
    "talk_calls",
    "abandoned_in_sl",
    "asterisk_abandoned",
    "service_level_perf",
    "service_level_perf2",
]


def _aggregates(settings: Settings) -> list[ColumnElement[Any]]:
    sl = settings.stats.service_level_seconds
    short = settings.stats.short_abandon_seconds
    hold = Call.hold_seconds
    answered = Call.outcome == Outcome.ANSWERED
    unanswered = Call.outcome.in_((Outcome.ABANDONED, Outcome.TIMEOUT))

    def count(cond: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    return [
        count(Call.queued_at.is_not(None)).label("offered"),
        count(answered).label("answered"),
        count(Call.outcome == Outcome.ABANDONED).label("abandoned"),
        count(and_(Call.outcome == Outcome.ABANDONED, hold < short)).label("short_abandoned"),
        count(Call.outcome == Outcome.TIMEOUT).label("timed_out"),
        count(and_(Call.queued_at.is_not(None), Call.outcome == Outcome.QUEUED)).label("waiting"),
        count(and_(answered, hold <= sl)).label("answered_in_sl"),
        count(and_(unanswered, hold <= sl)).label("abandoned_in_sl"),
        func.coalesce(func.sum(case((answered, func.coalesce(hold, 0)), else_=0)), 0).label(
            "hold_answered_seconds"
        ),
        func.coalesce(
            func.sum(case((and_(answered, Call.talk_seconds.is_not(None)), Call.talk_seconds))),
            0,
        ).label("talk_seconds"),
        count(and_(answered, Call.talk_seconds.is_not(None))).label("talk_calls"),
        func.max(case((Call.queued_at.is_not(None), hold))).label("longest_wait"),
    ]


def _filters(
    start: datetime,
    end: datetime,
    queue: str | None,
    hotline: str | None,
    shift: str | None,
    agent: str | None,
) -> list[ColumnElement[bool]]:
    # the calls citizens make: an agent's call to a citizen (outbound) is no queue call
    conds = [Call.started_at >= start, Call.started_at < end, Call.direction == Direction.INBOUND]
    for col, value in (
        (Call.queue, queue),
        (Call.hotline_number, hotline),
        (Call.shift_id, shift),
        (Call.agent_extension, agent),
    ):
        if value is not None:
            conds.append(col == value)
    return conds


def _row_figures(row: Any, key: str | None, start: datetime, end: datetime, wrapup: int) -> Figures:
    return Figures(
        key=key,
        start=start,
        end=end,
        offered=int(row.offered),
        answered=int(row.answered),
        abandoned=int(row.abandoned),
        short_abandoned=int(row.short_abandoned),
        timed_out=int(row.timed_out),
        waiting=int(row.waiting),
        answered_in_sl=int(row.answered_in_sl),
        abandoned_in_sl=int(row.abandoned_in_sl),
        hold_answered_seconds=int(row.hold_answered_seconds),
        talk_seconds=int(row.talk_seconds),
        talk_calls=int(row.talk_calls),
        longest_wait=None if row.longest_wait is None else int(row.longest_wait),
        wrapup_seconds=wrapup,
    )


async def figures(
    db: Database,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    by: By | None = None,
    queue: str | None = None,
    hotline: str | None = None,
    shift: str | None = None,
    agent: str | None = None,
    staffing: bool = True,
    staffed: Staffing | None = None,
) -> list[Figures]:
    """The figures of calls started in [start, end), one per group of ``by``
    (sorted by key; calls without a value for the group, such as unanswered
    calls when grouping by agent, are left out), or a single total when
    ``by`` is None.  ``queue``/``hotline``/``shift``/``agent`` narrow the calls.

    With ``staffing``, occupancy (staffed time) and ring-no-answer counts are
    filled from the queue events for the total and for queue, shift and agent
    groups; ``staffed`` (from :func:`read_staffing` over the same period) saves
    reading the queue events again when several groupings are wanted.
    """
    if by is not None and by not in _COLUMNS:
        raise ValueError(f"by: must be one of {', '.join(BY_VALUES)}, not {by!r}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start/end: timezone-aware datetimes expected")
    wrapup = settings.queues.wrapup_seconds
    conds = _filters(start, end, queue, hotline, shift, agent)
    async with db.session() as s:
        if by is None:
            row = (await s.execute(select(*_aggregates(settings)).where(*conds))).one()
            out = [_row_figures(row, None, start, end, wrapup)]
        else:
            col = _COLUMNS[by]
            rows = (
                await s.execute(
                    select(col.label("key"), *_aggregates(settings))
                    .where(*conds, col.is_not(None))
                    .group_by(col)
                    .order_by(col)
                )
            ).all()
            out = [_row_figures(r, r.key, start, end, wrapup) for r in rows]
        if staffing and by != "hotline" and hotline is None:
            if staffed is None:
                staffed = await read_staffing(s, start, end)
            _add_staffing(out, staffed, by, queue, shift, agent)
    return out


# ---- staffing: occupancy and ring-no-answer from queue events ---------------


def _group_of(by: By | None, queue: str, agent: str) -> str | None:
    if by == "queue":
        return queue
    if by == "agent":
        return agent
    if by == "shift":
        return queue.partition("-")[2] or None
    return None


async def staffed_intervals(s: AsyncSession, start: datetime, end: datetime) -> Intervals:
    """When each agent was a member of each queue within [start, end):
    {(queue, extension): [(from, to), ...]}, from ADDMEMBER/REMOVEMEMBER events
    (membership at ``start`` is the last such event before it)."""
    kinds = ("ADDMEMBER", "REMOVEMEMBER")
    # The last ADDMEMBER and the last REMOVEMEMBER before ``start`` per queue and
    # agent, each from the (event, queue, agent, at) index alone; a member at
    # ``start`` is one whose last ADDMEMBER came after its last REMOVEMEMBER.
    last: dict[str, dict[tuple[str, str], datetime]] = {}
    for kind in kinds:
        rows = (
            await s.execute(
                select(QueueEvent.queue, QueueEvent.agent, func.max(QueueEvent.at))
                .where(QueueEvent.event == kind, QueueEvent.at < start)
                .group_by(QueueEvent.queue, QueueEvent.agent)
            )
        ).all()
        last[kind] = {(q, str(a)): at for q, a, at in rows if a is not None and at is not None}
    since: dict[tuple[str, str], datetime | None] = {}
    for k, added in last["ADDMEMBER"].items():
        removed = last["REMOVEMEMBER"].get(k)
        since[k] = start if removed is None or _utc(added) > _utc(removed) else None
    during = (
        await s.execute(
            select(QueueEvent.queue, QueueEvent.agent, QueueEvent.event, QueueEvent.at)
            .where(
                QueueEvent.event.in_(kinds),
                QueueEvent.at >= start,
                QueueEvent.at < end,
                QueueEvent.agent.is_not(None),
            )
            .order_by(QueueEvent.at, QueueEvent.id)
        )
    ).all()
    out: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for q, a, ev, at in during:
        k = (q, str(a))
        began = since.get(k)
        if ev == "ADDMEMBER":
            if began is None:
                since[k] = at
        elif began is not None:
            out[k].append((began, at))
            since[k] = None
    for k, t in since.items():
        if t is not None:
            out[k].append((t, end))
    return dict(out)


def _utc(value: datetime | str) -> datetime:
    """An aggregate's datetime (SQLite gives MAX() of a timestamp back as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _union_seconds(intervals: Iterable[tuple[datetime, datetime]]) -> float:
    total, cur_start, cur_end = 0.0, None, None
    for a, b in sorted(intervals):
        if cur_end is None or a > cur_end:
            if cur_end is not None:
                total += (cur_end - cur_start).total_seconds()  # type: ignore[operator]
            cur_start, cur_end = a, b
        elif b > cur_end:
            cur_end = b
    if cur_end is not None:
        total += (cur_end - cur_start).total_seconds()  # type: ignore[operator]
    return total


@dataclass
class Staffing:
    """Who staffed which queue when, and how often each agent let a call ring out,
    over one period (:func:`read_staffing`)."""

    intervals: Intervals
    ring_no_answer: dict[tuple[str, str], int]


async def read_staffing(s: AsyncSession, start: datetime, end: datetime) -> Staffing:
    rows = (
        await s.execute(
            select(QueueEvent.queue, QueueEvent.agent, func.count())
            .where(
                QueueEvent.event == "RINGNOANSWER",
                QueueEvent.at >= start,
                QueueEvent.at < end,
                QueueEvent.agent.is_not(None),
            )
            .group_by(QueueEvent.queue, QueueEvent.agent)
        )
    ).all()
    return Staffing(
        intervals=await staffed_intervals(s, start, end),
        ring_no_answer={(q, str(ext)): int(n) for q, ext, n in rows if ext is not None},
    )


def _add_staffing(
    out: list[Figures],
    staffing: Staffing,
    by: By | None,
    queue: str | None,
    shift: str | None,
    agent: str | None,
) -> None:
    def wanted(q: str, a: str) -> bool:
        return (
            (queue is None or q == queue)
            and (agent is None or a == agent)
            and (shift is None or q.partition("-")[2] == shift)
        )

    per_group: dict[str | None, dict[str, list[tuple[datetime, datetime]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for (q, a), spans in staffing.intervals.items():
        if wanted(q, a):
            per_group[_group_of(by, q, a)][a].extend(spans)
    staffed = {
        g: sum(_union_seconds(spans) for spans in agents.values())
        for g, agents in per_group.items()
    }
    rna: dict[str | None, int] = defaultdict(int)
    for (q, ext), n in staffing.ring_no_answer.items():
        if wanted(q, ext):
            rna[_group_of(by, q, ext)] += n
    for f in out:
        f.staffed_seconds = staffed.get(f.key, 0.0)
        f.ring_no_answer = rna.get(f.key, 0)


# ---- per hour ---------------------------------------------------------------


def _epoch(col: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return cast(func.strftime("%s", col), Integer)
    return func.extract("epoch", col)


def local_midnight(settings: Settings, day: date) -> datetime:
    """The start of ``day`` in the hotline's time zone."""
    return clock.local_midnight(day, settings.tz)


async def buckets(
    db: Database,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    seconds: int = 3600,
    queue: str | None = None,
    hotline: str | None = None,
    shift: str | None = None,
) -> list[Figures]:
    """Figures of every ``seconds``-long slice of [start, end), in order (empty
    slices included), computed in one grouped query."""
    wrapup = settings.queues.wrapup_seconds
    n = max(1, int(-(-(end - start).total_seconds() // seconds)))
    conds = _filters(start, end, queue, hotline, shift, None)
    async with db.session() as s:
        dialect = db.engine.dialect.name
        idx = cast(
            func.floor((_epoch(Call.started_at, dialect) - int(start.timestamp())) / seconds),
            Integer,
        ).label("idx")
        rows = (
            await s.execute(
                select(idx, *_aggregates(settings)).where(*conds).group_by(idx).order_by(idx)
            )
        ).all()
    out = [
        Figures(
            key=None,
            start=start + timedelta(seconds=i * seconds),
            end=min(end, start + timedelta(seconds=(i + 1) * seconds)),
            wrapup_seconds=wrapup,
        )
        for i in range(n)
    ]
    for r in rows:
        i = int(r.idx)
        if 0 <= i < n:
            out[i] = _row_figures(r, None, out[i].start, out[i].end, wrapup)
    return out


async def hourly(
    db: Database,
    settings: Settings,
    day: date,
    *,
    queue: str | None = None,
    hotline: str | None = None,
) -> list[dict[str, Any]]:
    """Calls and service level per hour of one local day (the live board's charts).

    Returns 24 dicts (fewer or more on a day when clocks change), one per hour
    from local midnight, in order, empty hours included::

        {"hour": 0..23,                # local hour of day
         "start": "2026-11-25T00:00:00+07:00",  # ISO 8601, local time
         "offered": int, "answered": int, "abandoned": int, "timed_out": int,
         "short_abandoned": int, "waiting": int, "counted": int,
         "answered_in_sl": int,
         "service_level": float | None,   # percent, as queue_stats.kpis defines it;
         "abandon_rate": float | None,    # both None when no call counts
         "service_level_perf": float | None,   # app_queue's ServicelevelPerf
         "service_level_perf2": float | None,  # and ServicelevelPerf2
         "asa": float | None,             # mean wait of answered calls, seconds
         "longest_wait": int | None}      # seconds

    This shape is stable: other code draws it.
    """
    start = local_midnight(settings, day)
    end = local_midnight(settings, day + timedelta(days=1))
    out = []
    for f in await buckets(db, settings, start, end, queue=queue, hotline=hotline):
        local = f.start.astimezone(settings.tz)
        out.append(
            {
                "hour": local.hour,
                "start": local.isoformat(),
                "offered": f.offered,
                "answered": f.answered,
                "abandoned": f.abandoned,
                "timed_out": f.timed_out,
                "short_abandoned": f.short_abandoned,
                "waiting": f.waiting,
                "counted": f.counted,
                "answered_in_sl": f.answered_in_sl,
                "service_level": f.service_level,
                "abandon_rate": f.abandon_rate,
                "service_level_perf": f.service_level_perf,
                "service_level_perf2": f.service_level_perf2,
                "asa": f.asa,
                "longest_wait": f.longest_wait,
            }
        )
    return out


def figures_json(items: list[Figures]) -> str:
    return json.dumps([f.as_dict() for f in items], default=str, ensure_ascii=False)


__all__ = [
    "By",
    "BY_VALUES",
    "CSV_FIELDS",
    "Figures",
    "RATES",
    "buckets",
    "figures",
    "figures_json",
    "hourly",
    "local_midnight",
    "staffed_intervals",
    "read_staffing",
    "Intervals",
    "Staffing",
]

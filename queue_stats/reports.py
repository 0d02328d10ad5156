"""Reports: the shift handover summary, the daily, weekly and monthly report.

Each report gathers the queue figures (:mod:`queue_stats.figures`) of its
period per shift, agent, queue and hotline, with a time series (hours of the
day, days of the week), the tickets opened in the period by topic and level,
and the agencies' timeliness with the tickets forwarded to them in the period:
answered on time, answered late, overdue and unanswered, still within their
deadline — ranked best first, with how many of them were reopened since by a
dissatisfied citizen, and the supervisors' review in the period (answers sent
back, extensions asked for and granted: :func:`agency_review`); and the citizens'
satisfaction (:mod:`queue_stats.satisfaction`:
the survey's ratings and the reopenings, per agency, topic, level and agent); and the
agents' wrap-up codes of the calls answered (:mod:`queue_stats.wrapup`: the share with
usable content per shift, hotline and agent, and the calls of each code); and the
leaders' figures (:mod:`queue_stats.ticket_counts`: the reports received by channel,
domain, topic, level, agency and district, with how many are closed, reopened and
rated).  The weekly report is the one the weekly reconciliation meeting with the
agencies reads; the daily, weekly and monthly ones are also written as XLSX and PDF
(:mod:`queue_stats.documents`), on demand and on a schedule (:mod:`queue_stats.periodic`).

All periods are local days (``settings.timezone``); a week starts on Monday, a month
on its first day.
:func:`csv_text` turns a report section into CSV (spreadsheet formulas
defused), its header row in the reader's language: a queue figure's column
is headed by its name in :mod:`queue_stats.kpis`, the other columns by
:data:`COLUMNS`.  README "Reports" lists every header with its key.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, func, or_, select, union_all

from callcenter.shifts import shift_at
from core.db import Database
from core.settings import Settings
from queue_stats.figures import (
    CSV_FIELDS,
    By,
    Figures,
    buckets,
    figures,
    local_midnight,
    read_staffing,
)
from queue_stats.kpis import KPIS, UNIT_SUFFIX
from queue_stats.satisfaction import SatisfactionRow, satisfaction
from queue_stats.ticket_counts import COLUMNS as COUNT_COLUMNS
from queue_stats.ticket_counts import CountRow, ticket_counts
from queue_stats.wrapup import WrapupRow, wrapup_figures
from tickets.handling.models import Assignment, State
from tickets.models import OPEN_STATUSES, WITH_AGENCY, Agency, Status, Ticket, TicketEvent
from tickets.review.models import AnswerRefusal, DeadlineExtension, ExtensionState

Kind = Literal["daily", "weekly", "monthly", "handover"]
SECTIONS = ("summary", "series", "topics", "agencies", "satisfaction", "wrapup", "tickets")


@dataclass
class AgencyRow:
    """One agency's timeliness on the tickets forwarded to it in the period."""

    agency_id: int
    code: str
    name: str
    forwarded: int = 0
    on_time: int = 0  # answered by the deadline
    late: int = 0  # answered after the deadline
    overdue: int = 0  # not answered, deadline passed
    pending: int = 0  # not answered, still within the deadline
    reopened: int = 0  # of these tickets, those reopened since (a dissatisfied citizen)
    # the supervisors' review in the period (tickets.review): answers sent back to the
    # agency, extensions it asked for and those granted
    sent_back: int = 0
    extensions_asked: int = 0
    extensions_granted: int = 0
    rank: int = 0

    @property
    def decided(self) -> int:
        return self.on_time + self.late + self.overdue

    @property
    def on_time_rate(self) -> float | None:
        """Percent of the tickets whose deadline has been met or missed that were met."""
        return round(100.0 * self.on_time / self.decided, 1) if self.decided else None


@dataclass
class Report:
    kind: Kind
    start: datetime
    end: datetime
    generated_at: datetime
    total: Figures
    by_shift: list[Figures]
    by_agent: list[Figures]
    by_queue: list[Figures]
    by_hotline: list[Figures]
    # hours of the day (daily, handover) or days of the week (weekly)
    series: list[Figures]
    # {topic: {level: count}}, tickets opened in the period
    topics: dict[str, dict[int, int]]
    agencies: list[AgencyRow]
    shift_id: str | None = None  # the handover's shift
    # ratings and reopenings in the period: the total, then per agency, topic, level, agent
    satisfaction: list[SatisfactionRow] = field(default_factory=list)
    # answered calls and their wrap-up codes: the total, then per shift, hotline, agent
    wrapup: list[WrapupRow] = field(default_factory=list)
    # the configured codes, in order: (id, {language: label})
    wrapup_codes: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    # the tickets received in the period by channel, domain, topic, level, agency, district
    tickets: list[CountRow] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tickets_total(self) -> int:
        return sum(sum(levels.values()) for levels in self.topics.values())


async def tickets_by_topic(
    db: Database, start: datetime, end: datetime
) -> dict[str, dict[int, int]]:
    """Tickets created in [start, end): {topic: {level: count}}."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Ticket.topic, Ticket.level, func.count())
                .where(Ticket.created_at >= start, Ticket.created_at < end)
                .group_by(Ticket.topic, Ticket.level)
            )
        ).all()
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for topic, level, n in rows:
        out[topic][int(level)] = int(n)
    return dict(sorted(out.items()))


async def agency_timeliness(
    db: Database, start: datetime, end: datetime, now: datetime
) -> list[AgencyRow]:
    """The agencies' record on tickets forwarded to them in [start, end), ranked:
    best on-time rate first, then most tickets; agencies with nothing decided yet last.

    A ticket with several agencies counts once for each: the lead, each co-handling
    agency and each sub-agency it was delegated to (tickets.handling), on its own part."""
    # an answer the supervisors sent back (tickets.review) is no answer: the first one
    # given after the last refusal counts
    refused_at = (
        select(func.max(AnswerRefusal.at))
        .where(AnswerRefusal.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    answered_at = (
        select(func.min(TicketEvent.at))
        .where(
            TicketEvent.ticket_id == Ticket.id,
            TicketEvent.to_status == Status.ANSWERED,
            or_(refused_at.is_(None), TicketEvent.at > refused_at),
        )
        .correlate(Ticket)
        .scalar_subquery()
    )
    leads = select(
        Ticket.agency_id.label("agency_id"),
        Ticket.deadline_at.label("deadline_at"),
        answered_at.label("answered_at"),
        Ticket.reopens.label("reopens"),
    ).where(
        Ticket.forwarded_at >= start,
        Ticket.forwarded_at < end,
        Ticket.agency_id.is_not(None),
    )
    # each co-handling agency's and each delegation's part counts for its own agency,
    # with its own deadline (a withdrawn one is no longer theirs); the delegating
    # agency's own part stays open, and counted, until it answers.  A part closed with
    # its ticket before its deadline was neither late nor answered: not counted; closed
    # after it, it was overdue
    others = (
        select(
            Assignment.agency_id.label("agency_id"),
            Assignment.deadline_at.label("deadline_at"),
            Assignment.answered_at.label("answered_at"),
            Ticket.reopens.label("reopens"),
        )
        .join(Ticket, Ticket.id == Assignment.ticket_id)
        .where(
            Assignment.created_at >= start,
            Assignment.created_at < end,
            Assignment.status != State.WITHDRAWN.value,
            or_(
                Assignment.status != State.CLOSED.value,
                Assignment.deadline_at < Assignment.ended_at,
            ),
        )
    )
    t = union_all(leads, others).subquery()

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    answered = t.c.answered_at.is_not(None)
    no_deadline = t.c.deadline_at.is_(None)
    q = (
        select(
            Agency.id,
            Agency.code,
            Agency.name,
            func.count().label("forwarded"),
            count(and_(answered, no_deadline | (t.c.answered_at <= t.c.deadline_at))).label(
                "on_time"
            ),
            count(and_(answered, t.c.answered_at > t.c.deadline_at)).label("late"),
            count(and_(~answered, t.c.deadline_at < now)).label("overdue"),
            count(t.c.reopens > 0).label("reopened"),
        )
        .join(Agency, Agency.id == t.c.agency_id)
        .group_by(Agency.id, Agency.code, Agency.name)
    )
    async with db.session() as s:
        rows = (await s.execute(q)).all()
    out = []
    for r in rows:
        row = AgencyRow(
            agency_id=r.id,
            code=r.code,
            name=r.name,
            forwarded=int(r.forwarded),
            on_time=int(r.on_time),
            late=int(r.late),
            overdue=int(r.overdue),
            reopened=int(r.reopened),
        )
        row.pending = row.forwarded - row.decided
        out.append(row)
    await agency_review(db, start, end, out)
    out.sort(key=lambda a: (a.on_time_rate is None, -(a.on_time_rate or 0), -a.forwarded, a.name))
    for i, a in enumerate(out, 1):
        a.rank = i
    return out


async def agency_review(
    db: Database, start: datetime, end: datetime, rows: list[AgencyRow]
) -> None:
    """Add to ``rows`` each agency's answers sent back by the supervisors, extensions it
    asked for and extensions granted in [start, end) (an agency with some of these and no
    ticket forwarded in the period gets a row of its own)."""
    granted = DeadlineExtension.state == ExtensionState.GRANTED.value

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    async with db.session() as s:
        refused = {
            r[0]: int(r[1])
            for r in (
                await s.execute(
                    select(AnswerRefusal.agency_id, func.count())
                    .where(AnswerRefusal.at >= start, AnswerRefusal.at < end)
                    .group_by(AnswerRefusal.agency_id)
                )
            ).all()
        }
        asked = {
            r[0]: (int(r[1]), int(r[2]))
            for r in (
                await s.execute(
                    select(DeadlineExtension.agency_id, func.count(), count(granted))
                    .where(
                        DeadlineExtension.requested_at >= start,
                        DeadlineExtension.requested_at < end,
                    )
                    .group_by(DeadlineExtension.agency_id)
                )
            ).all()
        }
        by_id = {r.agency_id: r for r in rows}
        missing = (set(refused) | set(asked)) - set(by_id)
        if missing:
            for a in (await s.scalars(select(Agency).where(Agency.id.in_(missing)))).all():
                by_id[a.id] = AgencyRow(agency_id=a.id, code=a.code, name=a.name)
                rows.append(by_id[a.id])
    for agency_id, row in by_id.items():
        row.sent_back = int(refused.get(agency_id, 0))
        row.extensions_asked, row.extensions_granted = asked.get(agency_id, (0, 0))


async def _build(
    db: Database,
    settings: Settings,
    kind: Kind,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    series_seconds: int,
    shift: str | None = None,
) -> Report:
    # a period still running: its rates (calls per hour) run to now
    f_end = min(end, max(now, start))
    async with db.session() as s:
        staffed = await read_staffing(s, start, f_end)
    total = (await figures(db, settings, start, f_end, shift=shift, staffed=staffed))[0]
    by: dict[str, list[Figures]] = {}
    dims: tuple[By, ...] = ("shift", "agent", "queue", "hotline")
    for dim in dims:
        by[dim] = await figures(db, settings, start, f_end, by=dim, shift=shift, staffed=staffed)
    series = await buckets(db, settings, start, end, seconds=series_seconds, shift=shift)
    return Report(
        kind=kind,
        start=start,
        end=end,
        generated_at=now,
        total=total,
        by_shift=by["shift"],
        by_agent=by["agent"],
        by_queue=by["queue"],
        by_hotline=by["hotline"],
        series=series,
        topics=await tickets_by_topic(db, start, end),
        agencies=await agency_timeliness(db, start, end, now),
        shift_id=shift,
        satisfaction=await satisfaction(db, start, f_end),
        wrapup=await wrapup_figures(db, settings, start, f_end),
        wrapup_codes=[
            (c.id, {"vi": c.label.vi, "en": c.label.get("en")}) for c in settings.wrapup.codes
        ],
        tickets=await ticket_counts(db, settings, start, end),
    )


async def daily(db: Database, settings: Settings, day: date, now: datetime) -> Report:
    """The report of one local day, hour by hour."""
    start = local_midnight(settings, day)
    end = local_midnight(settings, day + timedelta(days=1))
    return await _build(db, settings, "daily", start, end, now, series_seconds=3600)


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


async def weekly(db: Database, settings: Settings, day: date, now: datetime) -> Report:
    """The report of the week (Monday to Sunday) holding ``day``, day by day."""
    monday = week_of(day)
    start = local_midnight(settings, monday)
    end = local_midnight(settings, monday + timedelta(days=7))
    return await _build(db, settings, "weekly", start, end, now, series_seconds=86400)


def month_of(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def next_month(first: date) -> date:
    """The first day of the month after the one starting on ``first``."""
    return (first + timedelta(days=32)).replace(day=1)


async def monthly(db: Database, settings: Settings, day: date, now: datetime) -> Report:
    """The report of the calendar month holding ``day``, day by day."""
    first = month_of(day)
    start = local_midnight(settings, first)
    end = local_midnight(settings, next_month(first))
    return await _build(db, settings, "monthly", start, end, now, series_seconds=86400)


async def for_period(
    db: Database, settings: Settings, kind: str, day: date, now: datetime
) -> Report:
    """The daily, weekly or monthly report holding ``day``."""
    if kind == "daily":
        return await daily(db, settings, day, now)
    if kind == "weekly":
        return await weekly(db, settings, day, now)
    if kind == "monthly":
        return await monthly(db, settings, day, now)
    raise ValueError(f"kind: must be daily, weekly or monthly, not {kind!r}")


async def handover(db: Database, settings: Settings, now: datetime) -> Report:
    """The summary for the shift handover: the shift on duty at ``now`` from its
    start until now and the tickets still open that it created.  The callers to
    call back are :mod:`callcenter.abandoned`'s list, which the panel shows
    beside it (the same list as the callbacks page's)."""
    tz = settings.tz
    sh = shift_at(settings.shifts, now, tz)
    local = now.astimezone(tz)
    start = datetime.combine(local.date(), sh.start, tzinfo=tz)
    if start > local:  # a night shift seen after midnight began yesterday
        start -= timedelta(days=1)
    end = datetime.combine(start.date(), sh.end, tzinfo=tz)
    if end <= start:
        end += timedelta(days=1)
    report = await _build(
        db, settings, "handover", start, end, now, series_seconds=3600, shift=sh.id
    )
    report.extra["shift_name"] = sh.name
    async with db.session() as s:
        report.extra["open_tickets"] = int(
            await s.scalar(
                select(func.count()).where(
                    Ticket.created_at >= start,
                    Ticket.created_at < now,
                    Ticket.status.in_(OPEN_STATUSES),
                )
            )
            or 0
        )
        report.extra["overdue_now"] = int(
            await s.scalar(
                select(func.count()).where(Ticket.status.in_(WITH_AGENCY), Ticket.deadline_at < now)
            )
            or 0
        )
    return report


# ---- CSV --------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """Defuse spreadsheet formulas in text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


# The headers of the CSV columns that are not queue figures, by key and language.
COLUMNS: dict[str, dict[str, str]] = {
    "group": {"vi": "Theo", "en": "By"},
    "key": {"vi": "Nhóm", "en": "Group"},
    "start": {"vi": "Từ", "en": "From"},
    "end": {"vi": "Đến", "en": "To"},
    "topic": {"vi": "Chủ đề", "en": "Topic"},
    **{f"level_{n}": {"vi": f"Cấp độ {n}", "en": f"Level {n}"} for n in range(1, 6)},
    "total": {"vi": "Tổng", "en": "Total"},
    "rank": {"vi": "Hạng", "en": "Rank"},
    "code": {"vi": "Mã", "en": "Code"},
    "agency": {"vi": "Đơn vị", "en": "Agency"},
    "forwarded": {"vi": "Đã chuyển", "en": "Forwarded"},
    "on_time": {"vi": "Trả lời đúng hạn", "en": "Answered on time"},
    "late": {"vi": "Trả lời trễ hạn", "en": "Answered late"},
    "overdue": {"vi": "Quá hạn", "en": "Overdue"},
    "pending": {"vi": "Còn trong hạn", "en": "Within deadline"},
    "on_time_rate": {"vi": "Tỷ lệ đúng hạn (%)", "en": "On time (%)"},
    "name": {"vi": "Tên", "en": "Name"},
    **{f"rating_{n}": {"vi": f"Điểm {n}", "en": f"Rated {n}"} for n in range(1, 6)},
    "no_code": {"vi": "Chưa có mã", "en": "No code"},
    # the leaders' figures (section "tickets", queue_stats.ticket_counts)
    "dimension": {"vi": "Theo", "en": "By"},
    "received": {"vi": "Tiếp nhận", "en": "Received"},
    "closed": {"vi": "Đã kết thúc", "en": "Closed"},
    "open": {"vi": "Đang xử lý", "en": "Open"},
    "reopened_tickets": {"vi": "Bị mở lại", "en": "Reopened"},
    "ratings": {"vi": "Lượt đánh giá", "en": "Ratings"},
    "ratings_average": {"vi": "Điểm hài lòng TB", "en": "Average rating"},
    "sent_back": {"vi": "Trả lời bị trả lại", "en": "Answers sent back"},
    "extensions_asked": {"vi": "Xin gia hạn", "en": "Extensions asked"},
    "extensions_granted": {"vi": "Được gia hạn", "en": "Extensions granted"},
}
# the tickets section's columns: ticket_counts' figures under keys of their own (the
# queue figures "reopened" and "rated" count in another way: queue_stats.kpis)
TICKET_KEYS = dict(
    zip(
        COUNT_COLUMNS,
        ("received", "closed", "open", "reopened_tickets", "ratings", "ratings_average"),
        strict=True,
    )
)


def header(key: str, lang: str) -> str:
    """The CSV header of column ``key`` in ``lang`` (Vietnamese for a language we lack):
    a queue figure's name with its unit, as queue_stats.kpis names it."""
    if key in KPIS:
        k = KPIS[key]
        unit = UNIT_SUFFIX[k.unit].strip()
        return f"{k.name(lang)} ({unit})" if unit else k.name(lang)
    names = COLUMNS[key]
    return names.get(lang) or names["vi"]


def csv_keys(section: str) -> list[str]:
    """The keys of a section's columns, in order."""
    if section == "summary":
        return ["group", "key", *CSV_FIELDS]
    if section == "series":
        return ["start", "end", *CSV_FIELDS]
    if section == "topics":
        return ["topic", *(f"level_{n}" for n in range(1, 6)), "total"]
    if section == "agencies":
        return [
            "rank",
            "code",
            "agency",
            "forwarded",
            "on_time",
            "late",
            "overdue",
            "pending",
            "on_time_rate",
            "reopened",
            "sent_back",
            "extensions_asked",
            "extensions_granted",
        ]
    if section == "satisfaction":
        return [
            "group",
            "key",
            "name",
            "rated",
            "rating_average",
            "rated_share",
            *(f"rating_{n}" for n in range(1, 6)),
            "reopened",
        ]
    if section == "tickets":
        return ["dimension", "key", "name", *TICKET_KEYS.values()]
    if section == "wrapup":
        # then one column per configured code, headed by its label (csv_rows)
        return ["group", "key", "answered", "coded", "with_content", "content_share", "no_code"]
    raise ValueError(f"section: must be one of {', '.join(SECTIONS)}, not {section!r}")


def csv_rows(report: Report, section: str, tz: Any, lang: str = "vi") -> list[list[Any]]:
    """One section of a report as rows, the header (in ``lang``) first."""
    rows: list[list[Any]] = [[header(k, lang) for k in csv_keys(section)]]
    if section == "summary":
        groups = [("total", [report.total])]
        groups += [
            ("shift", report.by_shift),
            ("agent", report.by_agent),
            ("queue", report.by_queue),
            ("hotline", report.by_hotline),
        ]
        for name, items in groups:
            for f in items:
                d = f.as_dict()
                rows.append([name, f.key or "", *(d[c] for c in CSV_FIELDS)])
    elif section == "series":
        for f in report.series:
            d = f.as_dict()
            rows.append(
                [
                    f.start.astimezone(tz).isoformat(),
                    f.end.astimezone(tz).isoformat(),
                    *(d[c] for c in CSV_FIELDS),
                ]
            )
    elif section == "topics":
        for topic, levels in report.topics.items():
            counts = [levels.get(lv, 0) for lv in range(1, 6)]
            rows.append([topic, *counts, sum(levels.values())])
    elif section == "wrapup":
        rows[0] += [labels.get(lang) or labels["vi"] for _code, labels in report.wrapup_codes]
        for w in report.wrapup:
            rows.append(
                [
                    w.group,
                    w.key,
                    w.answered,
                    w.coded,
                    w.with_content,
                    w.content_share,
                    w.answered - w.coded,
                    *(w.codes.get(code, 0) for code, _labels in report.wrapup_codes),
                ]
            )
    elif section == "tickets":
        for t in report.tickets:
            d = t.as_dict(lang)
            rows.append([t.dimension, t.key, d["name"], *(d[c] for c in COUNT_COLUMNS)])
    elif section == "satisfaction":
        keys = csv_keys(section)
        for row in report.satisfaction:
            d = row.as_dict()
            rows.append([d[k] for k in keys])
    else:
        for a in report.agencies:
            rows.append(
                [
                    a.rank,
                    a.code,
                    a.name,
                    a.forwarded,
                    a.on_time,
                    a.late,
                    a.overdue,
                    a.pending,
                    a.on_time_rate,
                    a.reopened,
                    a.sent_back,
                    a.extensions_asked,
                    a.extensions_granted,
                ]
            )
    return rows


def csv_text(report: Report, section: str, tz: Any, lang: str = "vi") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in csv_rows(report, section, tz, lang):
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()

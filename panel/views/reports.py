"""Panel pages: reports (daily, weekly, monthly, shift handover) with their CSV, XLSX and
PDF, the stored periodic reports, and /metrics.

Reports are for supervisors and admins.  The handover summary is too: it
ranks the agents and lists the callers who gave up and are not reached since
(the callbacks page's list, :mod:`callcenter.abandoned`, with its actions),
which is the supervisors' business; agents see their own state in the workspace.

The daily, weekly and monthly reports download as XLSX and PDF in the reader's
language (:mod:`queue_stats.documents`, written in a thread); the ones written on
the schedule (:mod:`queue_stats.periodic`) are listed on ``/reports/stored`` and
served from where they are kept.

``/metrics`` is Prometheus' text exposition format.  It is not behind the
panel's sign-in (Prometheus has no session): it answers only clients whose
address is in ``[stats] metrics_allow`` (loopback by default) and, when
``metrics_token_file`` names a file, only with ``Authorization: Bearer
<the token in it>``.  Behind a reverse proxy every request comes from the
proxy's address: block /metrics there or set a token.

Every figure is named and defined by :mod:`queue_stats.kpis`, the same text
the board and the CSV use: the report page lists the definitions of its
columns, the CSV heads them in the reader's language, and the service level
and abandon rate of ``/metrics`` carry the definition in their HELP.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import func, select

from callcenter.models import Call, Outcome
from callcenter.shifts import queue_name
from panel.dates import parse_day
from panel.errors import PageError
from panel.keys import GETTEXT, LANG
from panel.security import PUBLIC, require
from panel.views.common import ctx, render
from panel.views.health import metrics_allowed, service_families
from panel.views.qa import quality_csv
from qa.service import GROUPS as QA_GROUPS
from queue_stats import documents
from queue_stats import figures as stats
from queue_stats import reports as rpt
from queue_stats.kpis import KPIS, UNIT_SUFFIX, define_all
from queue_stats.live import MEMBER_STATES, LiveQueues
from queue_stats.periodic import NOT_CONFIGURED
from queue_stats.satisfaction import COLUMNS as SATISFACTION_COLUMNS
from queue_stats.satisfaction import satisfaction
from queue_stats.ticket_counts import DIMENSION_NAMES
from queue_stats.wrapup import COLUMNS as WRAPUP_COLUMNS
from queue_stats.wrapup import codes_since_start, wrapup_figures
from tickets.models import Rating, Ticket

log = logging.getLogger(__name__)

# the figures of the report page's tables, in the order of their columns
REPORT_COLUMNS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "timed_out",
    "service_level",
    "abandon_rate",
    "asa",
    "aht",
    "longest_wait",
    "occupancy",
    "calls_per_hour",
    "service_level_perf",
    "service_level_perf2",
)
AGENT_COLUMNS = (
    "answered",
    "asa",
    "avg_talk",
    "aht",
    "ring_no_answer",
    "staffed_seconds",
    "occupancy",
)

QUEUED_OUTCOMES = (Outcome.QUEUED, Outcome.ANSWERED, Outcome.ABANDONED, Outcome.TIMEOUT)
# the weekly report's quality grading section (qa), beside queue_stats' own sections
QUALITY = "quality"


async def _quality(request: web.Request, report: rpt.Report) -> dict[str, list[Any]]:
    """Quality scores of the calls of the report's period, by agent, team, shift, criterion."""
    c = ctx(request)
    return {by: await c.qa.quality(report.start, report.end, by) for by in QA_GROUPS}


def _day(request: web.Request, name: str) -> date:
    c = ctx(request)
    raw = request.query.get(name, "").strip()
    if not raw:
        return c.clock.now().astimezone(c.settings.tz).date()
    _ = request[GETTEXT]
    try:
        return parse_day(raw)
    except ValueError:
        raise PageError(400, fields={name: _("must be a date such as 25/11/2026")}) from None


def _section(request: web.Request) -> str:
    section = request.query.get("section", "summary")
    _ = request[GETTEXT]
    if section not in (*rpt.SECTIONS, QUALITY):
        raise PageError(400, fields={"section": _("is not one of the allowed values")})
    return section


async def _report(request: web.Request, kind: str) -> rpt.Report:
    c = ctx(request)
    now = c.clock.now()
    if kind == "daily":
        return await rpt.daily(c.db, c.settings, _day(request, "day"), now)
    if kind == "weekly":
        return await rpt.weekly(c.db, c.settings, _day(request, "week"), now)
    if kind == "monthly":
        return await rpt.monthly(c.db, c.settings, _day(request, "month"), now)
    return await rpt.handover(c.db, c.settings, now)


# the query parameter naming each kind's period
PERIOD_PARAM = {"daily": "day", "weekly": "week", "monthly": "month"}


def _names(request: web.Request) -> dict[str, Any]:
    c = ctx(request)
    s = c.settings
    return {
        "agent_names": {a.extension: a.name for a in s.agents},
        "shift_names": {sh.id: sh.name for sh in s.shifts},
        # the Asterisk queue of a team in a shift, as people call it
        "queue_names": {
            queue_name(t.id, sh.id): f"{t.name} · {sh.name}" for t in s.teams for sh in s.shifts
        },
        "tz": s.tz,
    }


@require("supervisor", "admin")
async def index(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    today = c.clock.now().astimezone(c.settings.tz).date()
    return render(request, "reports.html", today=today.isoformat())


@require("supervisor", "admin")
async def report_page(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    report = await _report(request, kind)
    query = ""
    if kind in PERIOD_PARAM:
        first = report.start.astimezone(ctx(request).settings.tz).date().isoformat()
        query = f"{PERIOD_PARAM[kind]}={first}"
    c = ctx(request)
    lang = request.get(LANG, "vi")
    return render(
        request,
        "reports_report.html",
        report=report,
        # the same list as the callbacks page's, with the same actions
        abandoned=await ctx(request).abandoned.waiting() if kind == "handover" else None,
        query=query,
        sections=(*rpt.SECTIONS, QUALITY) if kind == "weekly" else rpt.SECTIONS,
        documents=kind in PERIOD_PARAM,
        dimension_names={k: v.get(lang) or v["vi"] for k, v in DIMENSION_NAMES.items()},
        quality=await _quality(request, report) if kind == "weekly" else None,
        team_names={t.id: t.name for t in c.settings.teams},
        columns=REPORT_COLUMNS,
        agent_columns=AGENT_COLUMNS,
        satisfaction_columns=SATISFACTION_COLUMNS,
        wrapup_columns=WRAPUP_COLUMNS,
        lang=lang,
        kpis={
            k: {
                "name": v.name(lang),
                "unit": UNIT_SUFFIX[v.unit],
                "definition": v.define(lang, c.settings),
                "app_queue": v.app_queue,
            }
            for k, v in KPIS.items()
        },
        glossary=define_all(
            [
                k
                for k in KPIS
                if k in REPORT_COLUMNS
                or k in AGENT_COLUMNS
                or k in SATISFACTION_COLUMNS
                or k in WRAPUP_COLUMNS
            ],
            lang,
            c.settings,
        ),
        **_names(request),
    )


@require("supervisor", "admin")
async def report_csv(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    section = _section(request)
    report = await _report(request, kind)
    tz = ctx(request).settings.tz
    if section == QUALITY:
        by = request.query.get("by", "agent")
        if by not in QA_GROUPS:
            raise PageError(
                400, fields={"by": request[GETTEXT]("is not one of the allowed values")}
            )
        rows = await ctx(request).qa.quality(report.start, report.end, by)
        text = quality_csv(request, rows, by)
    else:
        text = rpt.csv_text(report, section, tz, request.get(LANG, "vi"))
    stamp = report.start.astimezone(tz).strftime("%Y-%m-%d")
    name = f"hotline-{kind}-{stamp}-{section}.csv"
    return web.Response(
        body=("\ufeff" + text).encode(),  # a BOM so spreadsheets read UTF-8 Vietnamese
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@require("supervisor", "admin")
async def report_document(request: web.Request) -> web.StreamResponse:
    """The daily, weekly or monthly report as XLSX or PDF, in the reader's language."""
    c = ctx(request)
    kind, fmt = request.match_info["kind"], request.match_info["fmt"]
    report = await _report(request, kind)
    lang = request.get(LANG, "vi")
    try:
        write = documents.xlsx if fmt == "xlsx" else documents.pdf
        body = await asyncio.to_thread(write, report, c.settings, lang)
    except documents.FontMissing as e:
        log.error("%s", e)
        raise PageError(503, detail=str(e)) from None
    return _download(body, documents.file_name(report, c.settings, fmt), fmt)


def _download(body: bytes, name: str, fmt: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=documents.XLSX_TYPE if fmt == "xlsx" else documents.PDF_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@require("supervisor", "admin")
async def stored_reports(request: web.Request) -> web.StreamResponse:
    """The reports written on the schedule, newest first."""
    c = ctx(request)
    return render(
        request,
        "reports_stored.html",
        rows=await c.periodic.listing(),
        config=c.settings.periodic_reports,
        not_configured=NOT_CONFIGURED,
    )


@require("supervisor", "admin")
async def stored_report(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    fmt = request.match_info["fmt"]
    try:
        row = await c.periodic.get(int(request.match_info["id"]))
    except LookupError:
        raise web.HTTPNotFound() from None
    path = c.periodic.path(row, fmt)
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    return _download(body, path.name, fmt)


# ---- Prometheus ---------------------------------------------------------------


class _Snapshot:
    """A prometheus_client collector over values gathered for one scrape."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


async def collect(request: web.Request) -> list[Any]:
    c = ctx(request)
    now = c.clock.now()
    live = await LiveQueues(c.bus, c.clock).snapshot()
    waiting = GaugeMetricFamily(
        "hotline_queue_callers_waiting",
        KPIS["waiting_now"].define("en", c.settings),
        labels=["queue"],
    )
    longest = GaugeMetricFamily(
        "hotline_queue_longest_wait_seconds",
        KPIS["longest_wait_now"].define("en", c.settings),
        labels=["queue"],
    )
    members = GaugeMetricFamily(
        "hotline_queue_members", "Queue members by state.", labels=["queue", "state"]
    )
    for name, q in live["queues"].items():
        callers = q.get("waiting", [])
        waiting.add_metric([name], len(callers))
        oldest = min((datetime.fromisoformat(w["since"]) for w in callers), default=None)
        longest.add_metric([name], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        by_state = dict.fromkeys(MEMBER_STATES, 0)
        for m in q.get("members", []):
            by_state[m.get("state", "unavailable")] = by_state.get(m.get("state"), 0) + 1
        for state, n in by_state.items():
            members.add_metric([name, state], n)

    offered = CounterMetricFamily(
        "hotline_queue_calls_offered", "Calls that entered the queue.", labels=["queue"]
    )
    answered = CounterMetricFamily(
        "hotline_queue_calls_answered", "Calls an agent answered.", labels=["queue"]
    )
    abandoned = CounterMetricFamily(
        "hotline_queue_calls_abandoned",
        "Calls whose caller hung up while waiting.",
        labels=["queue"],
    )
    timed_out = CounterMetricFamily(
        "hotline_queue_calls_timed_out", "Calls that reached the maximum wait.", labels=["queue"]
    )
    async with c.db.session() as s:
        rows = (
            await s.execute(
                # from the (queue, outcome) index alone: no table rows read
                select(Call.queue, Call.outcome, func.count())
                .where(Call.queue.is_not(None))
                .group_by(Call.queue, Call.outcome)
            )
        ).all()
    totals: dict[str, dict[str, int]] = {}
    for queue, outcome, n in rows:
        totals.setdefault(str(queue), {})[outcome] = int(n)
    for queue, by in sorted(totals.items()):
        # a caller who hung up in the menu after it chose a queue never entered it
        offered.add_metric([queue], sum(by.get(o, 0) for o in QUEUED_OUTCOMES))
        answered.add_metric([queue], by.get(Outcome.ANSWERED, 0))
        abandoned.add_metric([queue], by.get(Outcome.ABANDONED, 0))
        timed_out.add_metric([queue], by.get(Outcome.TIMEOUT, 0))
    blocked = CounterMetricFamily(
        "hotline_calls_blocked",
        "Calls from a number on the blocked list (they heard the message; key 0 only), "
        "since the start, by hotline.",
        labels=["hotline"],
    )
    async with c.db.session() as s:
        blocked_rows = (
            await s.execute(
                select(Call.hotline_number, func.count())
                .where(Call.block_id.is_not(None))
                .group_by(Call.hotline_number)
            )
        ).all()
    counted = {str(h): int(n) for h, n in blocked_rows}
    for h in c.settings.hotlines:
        blocked.add_metric([h.number], counted.pop(h.number, 0))
    for number, n in sorted(counted.items()):  # an alias, or a hotline no longer configured
        blocked.add_metric([number], n)
    rates = await _rates_today(request)
    satisfied = await _satisfaction(request)
    wrapped = await _wrapup(request)
    service = await service_families(c)
    return [
        waiting,
        longest,
        members,
        offered,
        answered,
        abandoned,
        timed_out,
        blocked,
        *rates,
        *satisfied,
        *wrapped,
        *service,
    ]


async def _wrapup(request: web.Request) -> list[Any]:
    """The agents' wrap-up codes: calls per code since the start (every configured code,
    0 when unused), and today's share with usable content per shift, hotline and agent."""
    c = ctx(request)
    calls = CounterMetricFamily(
        "hotline_wrapup_calls",
        "Answered calls by the wrap-up code their agent gave, since the start.",
        labels=["code", "content"],
    )
    counts = await codes_since_start(c.db)
    for code in c.settings.wrapup.codes:
        content = "true" if code.content else "false"
        calls.add_metric([code.id, content], counts.pop(code.id, 0))
    for code_id, n in sorted(counts.items()):  # codes no longer configured
        calls.add_metric([code_id, "unknown"], n)
    day = c.clock.now().astimezone(c.settings.tz).date()
    start = stats.local_midnight(c.settings, day)
    end = stats.local_midnight(c.settings, day + timedelta(days=1))
    share = GaugeMetricFamily(
        "hotline_wrapup_today_content_share_percent",
        f"{KPIS['content_share'].define('en', c.settings)} Today (local day), per group "
        "(total, shift, hotline, agent).",
        labels=["group", "key"],
    )
    for row in await wrapup_figures(c.db, c.settings, start, end):
        if row.content_share is not None:
            share.add_metric([row.group, row.key], row.content_share)
    return [calls, share]


async def _satisfaction(request: web.Request) -> list[Any]:
    """The survey's ratings and the reopenings: counters since the start, and today's
    figures per agency, topic, level and agent (named as in the reports)."""
    c = ctx(request)
    ratings = CounterMetricFamily(
        "hotline_satisfaction_ratings",
        KPIS["rated"].define("en", c.settings) + " Since the start, by source and rating.",
        labels=["source", "rating"],
    )
    reopened = CounterMetricFamily(
        "hotline_tickets_reopened", KPIS["reopened"].define("en", c.settings) + " Since the start."
    )
    async with c.db.session() as s:
        for source, rating, n in (
            await s.execute(
                select(Rating.source, Rating.rating, func.count()).group_by(
                    Rating.source, Rating.rating
                )
            )
        ).all():
            ratings.add_metric([str(source), str(rating)], int(n))
        reopened.add_metric([], int(await s.scalar(select(func.sum(Ticket.reopens))) or 0))
    day = c.clock.now().astimezone(c.settings.tz).date()
    start = stats.local_midnight(c.settings, day)
    end = stats.local_midnight(c.settings, day + timedelta(days=1))
    today = await satisfaction(c.db, start, end)
    families = [ratings, reopened]
    for key in SATISFACTION_COLUMNS:
        fam = GaugeMetricFamily(
            f"hotline_satisfaction_today_{key}",
            f"{KPIS[key].define('en', c.settings)} Today (local day), per group "
            "(total, agency, topic, level, agent).",
            labels=["group", "key"],
        )
        for row in today:
            value = getattr(row, key)
            if value is not None:
                fam.add_metric([row.group, row.key], value)
        families.append(fam)
    return families


async def _rates_today(request: web.Request) -> list[Any]:
    """Today's service level and abandon rate per queue, as the board shows them
    (a queue with no call counted today has neither)."""
    c = ctx(request)
    day = c.clock.now().astimezone(c.settings.tz).date()
    start = stats.local_midnight(c.settings, day)
    end = stats.local_midnight(c.settings, day + timedelta(days=1))
    per_queue = await stats.figures(c.db, c.settings, start, end, by="queue", staffing=False)
    families = []
    for key in ("service_level", "abandon_rate"):
        fam = GaugeMetricFamily(
            f"hotline_queue_{key}_percent",
            f"{KPIS[key].define('en', c.settings)} Today (local day), percent.",
            labels=["queue"],
        )
        for f in per_queue:
            value = getattr(f, key)
            if f.key and value is not None:
                fam.add_metric([f.key], value)
        families.append(fam)
    return families


@require(PUBLIC)
async def metrics(request: web.Request) -> web.StreamResponse:
    if not metrics_allowed(request):
        raise web.HTTPForbidden(text="metrics: not allowed from here", content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await collect(request)))
    registry.register(ProcessCollector(registry=None))  # this process's CPU, memory, files
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def routes() -> list[web.RouteDef]:
    kinds = "{kind:daily|weekly|monthly|handover}"
    periods = "{kind:daily|weekly|monthly}"
    return [
        web.get("/reports", index),
        web.get("/reports/stored", stored_reports),
        web.get(r"/reports/stored/{id:\d{1,12}}.{fmt:xlsx|pdf}", stored_report),
        web.get(f"/reports/{kinds}", report_page),
        web.get(f"/reports/{kinds}.csv", report_csv),
        web.get(f"/reports/{periods}.{{fmt:xlsx|pdf}}", report_document),
        web.get("/metrics", metrics),
    ]

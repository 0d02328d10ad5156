"""The supervisors' live board and its wallboard mode.

``/board`` and ``/board/wall`` render the frame: one block per queue (a
team's hotlines in one shift), grouped by team.  The live state comes to the
page as JSON: ``/board/live.json`` (every queue and the alarms in force, read
again at each WebSocket (re)connection) and then the ``board`` topic over the
panel's WebSocket (``queue`` and ``congestion`` messages, one queue at a time).
``/board/figures.json`` gives today's figures and the charts' hourly series;
the page reads it every minute, which also keeps a wallboard's session alive.

The figures are named and defined by :mod:`queue_stats.kpis`, as in the
reports and ``/metrics``: the service level (answered in time over the calls
counted, short abandons left out) with the abandon rate beside it, each
block's tiles and the table headed by the same names, the definitions listed
on the page.  app_queue's own ServicelevelPerf is not on the board.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from callcenter.shifts import queue_name
from panel.keys import LANG
from panel.security import require
from panel.views.common import ctx, render
from queue_stats import figures as stats
from queue_stats.congestion import REASONS, current_alarms, history
from queue_stats.kpis import KPIS, UNIT_SUFFIX, define_all
from queue_stats.live import MEMBER_STATES, LiveQueues

# today's figures table, in the order of its columns (also the keys of figures.json's rows)
COLUMNS = (
    "offered",
    "answered",
    "abandoned",
    "timed_out",
    "service_level",
    "abandon_rate",
    "asa",
    "longest_wait",
)
# the live tiles of each queue's block
LIVE = ("waiting_now", "longest_wait_now", "agents_free", "agents_busy", "agents_paused")
# defined on the page: the tiles, the table's figures and what they are taken over
DEFINED = (*LIVE, *COLUMNS, "short_abandoned", "counted")


def _groups(request: web.Request) -> list[dict[str, Any]]:
    """Teams, each with its hotlines and one queue per shift, as the board lays them out."""
    s = ctx(request).settings
    out = []
    for team in s.teams:
        hotlines = [h for h in s.hotlines if h.team == team.id]
        out.append(
            {
                "team": team,
                "hotlines": hotlines,
                "queues": [
                    {
                        "name": queue_name(team.id, shift.id),
                        "shift": shift,
                        "start": shift.start.strftime("%H:%M"),
                        "end": shift.end.strftime("%H:%M"),
                    }
                    for shift in s.shifts
                ],
            }
        )
    return out


def _labels(request: web.Request) -> dict[str, str]:
    """Queue name -> what the board calls it (hotline names and shift)."""
    labels = {}
    for g in _groups(request):
        title = " · ".join(h.name for h in g["hotlines"]) or g["team"].name
        for q in g["queues"]:
            labels[q["name"]] = f"{title} — {q['shift'].name}"
    return labels


def _split(reasons: str) -> list[str]:
    return [r for r in reasons.split(",") if r]


def _page(request: web.Request, template: str) -> web.Response:
    c = ctx(request)
    lang = request.get(LANG, "vi")
    return render(
        request,
        template,
        groups=_groups(request),
        member_states=MEMBER_STATES,
        congestion_reasons=REASONS,
        timezone=c.settings.timezone,
        thresholds=c.settings.stats.congestion,
        service_level_seconds=c.settings.stats.service_level_seconds,
        columns=COLUMNS,
        kpis={
            k: {
                "name": KPIS[k].name(lang),
                "unit": UNIT_SUFFIX[KPIS[k].unit],
                "definition": KPIS[k].define(lang, c.settings),
            }
            for k in DEFINED
        },
        glossary=define_all(DEFINED, lang, c.settings),
    )


@require("supervisor", "admin")
async def board(request: web.Request) -> web.StreamResponse:
    return _page(request, "board.html")


@require("supervisor", "admin")
async def wall(request: web.Request) -> web.StreamResponse:
    return _page(request, "board_wall.html")


@require("supervisor", "admin")
async def live(request: web.Request) -> web.StreamResponse:
    """Every queue's live state and the alarms in force (read at each (re)connection)."""
    c = ctx(request)
    snapshot = await LiveQueues(c.bus, c.clock).snapshot()
    alarms = await current_alarms(c.bus, c.settings)
    return web.json_response({**snapshot, "alarms": alarms})


@require("supervisor", "admin")
async def figures(request: web.Request) -> web.StreamResponse:
    """Today's figures (in total and per queue), calls and service level per hour,
    and today's congestion alarms (raised, escalated, cleared)."""
    c = ctx(request)
    now = c.clock.now()
    day = now.astimezone(c.settings.tz).date()
    start = stats.local_midnight(c.settings, day)
    end = start + timedelta(days=1)
    total = (await stats.figures(c.db, c.settings, start, end, staffing=False))[0]
    per_queue = await stats.figures(c.db, c.settings, start, end, by="queue", staffing=False)
    hours = await stats.hourly(c.db, c.settings, day)
    alarms = await history(c.db, start)
    labels = _labels(request)

    def row(f: stats.Figures) -> dict[str, Any]:
        return {
            "queue": f.key,
            "label": labels.get(f.key or "", f.key),
            **{k: getattr(f, k) for k in COLUMNS},
            "short_abandoned": f.short_abandoned,
            "counted": f.counted,
        }

    return web.json_response(
        {
            "at": now.isoformat(),
            "day": day.isoformat(),
            "total": row(total),
            "queues": {f.key: row(f) for f in per_queue if f.key},
            "hourly": hours,
            "alarms": [
                {
                    "at": a.at.isoformat(),
                    "queue": a.queue,
                    "label": labels.get(a.queue, a.queue),
                    "state": a.state,
                    "reasons": _split(a.reasons),
                    # what the row announced: a raised row from before 0010 has
                    # no "added", and all its reasons were new
                    "added": _split(a.added) or (_split(a.reasons) if a.state == "raised" else []),
                }
                for a in alarms
            ],
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/board", board),
        web.get("/board/wall", wall),
        web.get("/board/live.json", live),
        web.get("/board/figures.json", figures),
    ]

"""Health probes for load balancers, monitors and ``hotline status``.

``/healthz``: the process answers (200 while the event loop runs).
``/readyz``: 200 when every required check passes (the database, Redis and,
in the process that takes calls, the AMI login and the FastAGI socket), 503
otherwise, with each check's result in JSON.  Clients outside
``[stats] metrics_allow`` (loopback by default) get only the verdict: the
details name internal addresses and queue sizes.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from panel.context import PanelContext
from panel.security import PUBLIC, require
from panel.views.common import ctx
from queue_stats.congestion import current_alarms
from recordings.models import JobStatus, TranscriptionJob
from tickets.models import DEADLINE_STATUSES, Ticket

log = logging.getLogger(__name__)


def metrics_allowed(request: web.Request) -> bool:
    """Whether this client may read /metrics (see the module docstring)."""
    stats = ctx(request).settings.stats
    try:
        addr = ipaddress.ip_address((request.remote or "").split("%", 1)[0])
    except ValueError:
        return False
    if not any(addr in net for net in stats.metrics_allow):
        return False
    if stats.metrics_token_file is None:
        return True
    path = ctx(request).settings.path(stats.metrics_token_file)
    try:
        token = path.read_text().strip()
    except OSError:
        log.error("metrics: cannot read the token file %s: refusing /metrics", path)
        return False
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


async def service_families(c: PanelContext) -> list[Any]:
    """What /metrics says of the service beside the queues: each readiness
    check (up or not), the transcription backlog and failures, the congestion
    alarms in force and the tickets past their deadline."""
    report = await c.health.report()
    up = GaugeMetricFamily(
        "hotline_dependency_up",
        "1 when the check passes (database, redis, ami, agi, transcription), else 0.",
        labels=["dependency", "required"],
    )
    backlog = GaugeMetricFamily(
        "hotline_transcription_jobs",
        "Transcription jobs in the queue: waiting for a worker, or being worked on.",
        labels=["state"],
    )
    for name, check in report["checks"].items():
        if name == "queues":
            continue
        up.add_metric([name, "yes" if check["required"] else "no"], 1 if check["ok"] else 0)
        if name == "transcription":
            for state in ("waiting", "working"):
                if state in check:
                    backlog.add_metric([state], check[state])
    async with c.db.session() as s:
        failed = await s.scalar(
            select(func.count()).where(TranscriptionJob.status == JobStatus.FAILED)
        )
        overdue = await s.scalar(
            select(func.count()).where(
                Ticket.status.in_([st.value for st in DEADLINE_STATUSES]),
                Ticket.deadline_at < c.clock.now(),
            )
        )
    failures = GaugeMetricFamily(
        "hotline_transcription_failed_jobs",
        "Recorded calls whose transcription failed for good (after its retries).",
        value=int(failed or 0),
    )
    late = GaugeMetricFamily(
        "hotline_tickets_overdue",
        "Tickets past their deadline still with an agency, a meeting or a proposal.",
        value=int(overdue or 0),
    )
    alarms = GaugeMetricFamily(
        "hotline_congestion_alarm",
        "1 while a congestion alarm is in force on the queue.",
        labels=["queue"],
    )
    for queue in sorted(await current_alarms(c.bus, c.settings)):
        alarms.add_metric([queue], 1)
    return [up, backlog, failures, late, alarms]


@require(PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"}, headers={"Cache-Control": "no-store"})


@require(PUBLIC)
async def readyz(request: web.Request) -> web.Response:
    report = await ctx(request).health.report()
    body: dict[str, object] = {"status": "ready" if report["ready"] else "not ready"}
    if metrics_allowed(request):
        body["checks"] = report["checks"]
    else:
        body["failing"] = sorted(
            n for n, c in report["checks"].items() if c["required"] and not c["ok"]
        )
    return web.json_response(
        body, status=200 if report["ready"] else 503, headers={"Cache-Control": "no-store"}
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]

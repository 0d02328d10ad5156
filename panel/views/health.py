"""Health probes for load balancers, monitors and ``hotline status``.

``/healthz``: the process answers (200 while the event loop runs).
``/readyz``: 200 when every required check passes (the database, Redis and,
in the process that takes calls, the AMI login and the FastAGI socket), 503
otherwise, with each check's result in JSON.  Clients outside
``[stats] metrics_allow`` (loopback by default) get only the verdict: the
details name internal addresses and queue sizes.
"""

from __future__ import annotations

from aiohttp import web

from panel.security import PUBLIC, require
from panel.views.common import ctx
from panel.views.reports import metrics_allowed


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

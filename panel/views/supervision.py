"""Supervisors in agents' calls, from the panel: the start (shared by the live
board's buttons, through the JSON API, and any other caller) and the audit page.

:func:`start_supervision` turns the service's refusals into the answer a person
reads: the supervisor has no desk phone (409), their phone is in a call (409),
the agent is not talking (409), or the panel has no telephone system (503).
"""

from __future__ import annotations

from typing import NamedTuple

from aiohttp import web

from callcenter.models import SpyMode
from callcenter.supervision import Started, SupervisionRefused, Supervisor
from panel.keys import ACTOR, GETTEXT
from panel.security import require
from panel.views.common import ctx, render


class SuperviseProblem(NamedTuple):
    """Why a supervision did not start: the HTTP status it means, and the message."""

    status: int
    reason: str
    message: str


async def start_supervision(
    request: web.Request, extension: str, mode: SpyMode
) -> Started | SuperviseProblem:
    """Ring the signed-in supervisor's phone into ``extension``'s call."""
    _ = request[GETTEXT]
    service = ctx(request).supervision
    if service is None:
        return SuperviseProblem(
            503, "unavailable", _("The panel has no connection to the telephone system.")
        )
    try:
        actor = request[ACTOR]
        who = Supervisor(actor.id, actor.name, actor.extension)
        return await service.start(who, extension, mode)
    except SupervisionRefused as e:
        messages = {
            "no_extension": _("Your account has no supervisor's phone: ask an administrator."),
            "supervisor_busy": _("Your phone is in a call: hang up first."),
            "agent_not_talking": _("Agent {ext} is not in a call.", ext=extension),
            "unavailable": _("The telephone system did not answer. Try again."),
        }
        status = 503 if e.reason == "unavailable" else 409
        return SuperviseProblem(status, e.reason, messages[e.reason])


@require("supervisor", "admin")
async def supervisions(request: web.Request) -> web.StreamResponse:
    """The audit: who listened to, whispered to or barged in on whom, and when."""
    service = ctx(request).supervision
    rows = await service.recent() if service is not None else []
    return render(request, "supervisions.html", rows=rows)


def routes() -> list[web.RouteDef]:
    return [web.get("/supervisions", supervisions)]

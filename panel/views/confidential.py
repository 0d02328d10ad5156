"""The ticket views audit log's page: who read which restricted report, when, how.

For the oversight role (the Inspection Committee) and admins; each sees the views of the
tickets they may see themselves (tickets.audit).
"""

from __future__ import annotations

from aiohttp import web

from panel.keys import ACTOR
from panel.security import require
from panel.views.common import ctx, render
from tickets.audit import ViewFilter
from tickets.exceptions import InvalidCode, TicketNotFound

PER_PAGE = 50


@require("admin", "oversight")
async def ticket_views(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    q = request.query
    f = ViewFilter()
    shown = {k: q[k].strip()[:40] for k in ("ticket", "user") if q.get(k, "").strip()}
    if "ticket" in shown:
        try:
            f.ticket_id = (await c.ticket_queries.get_by_code(shown["ticket"])).id
        except (InvalidCode, TicketNotFound):
            f.ticket_id = -1  # nothing matches
    if shown.get("user", "").isdigit():
        f.user_id = int(shown["user"])
    page = int(q["page"]) if q.get("page", "").isdigit() else 1
    page = max(1, min(page, 10_000))
    rows, total = await c.ticket_views.search(
        f, actor=request[ACTOR], settings=c.settings.tickets, page=page, per_page=PER_PAGE
    )
    return render(
        request,
        "ticket_views.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + PER_PAGE - 1) // PER_PAGE),
        query=shown,
        users=await c.accounts.list_users(),
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/audit/tickets", ticket_views)]

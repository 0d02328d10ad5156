"""The weekly reconciliation in the panel: the agency's list, the supervisors' overview.

- ``/reconciliation`` shows an agency officer their agency's list of the week
  (``?week=`` any day of it; by default the week just ended) with *Confirm* and
  *Dispute* (a reason) on each line; supervisors and admins get the overview of
  every agency's state for the week, the disputes to resolve, and each agency's list
  (``/reconciliation/agencies/{id}``), read-only.
- ``POST /reconciliation/items/{id}/decide`` (officers) and ``.../resolve``
  (supervisors, admins) carry the line's version: a line changed meanwhile, or a
  ticket whose status moved, sends the reader back to the list with a message, the
  list showing what is stored now (:mod:`tickets.reconciliation.service`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from panel.dates import parse_day
from panel.errors import PageError
from panel.keys import ACTOR, GETTEXT
from panel.security import field_errors, require
from panel.views.common import ctx, flash_redirect, form, render
from tickets.exceptions import InvalidInput
from tickets.reconciliation.exceptions import ItemChanged, ItemNotFound
from tickets.reconciliation.service import week_of

LEADS = ("supervisor", "admin")


def _week(request: web.Request, raw: str | None = None) -> date:
    c = ctx(request)
    raw = (raw if raw is not None else request.query.get("week", "")).strip()
    if not raw:
        return c.reconciliation.last_week()
    _ = request[GETTEXT]
    try:
        return week_of(parse_day(raw))
    except ValueError:
        raise PageError(400, fields={"week": _("must be a date such as 25/11/2026")}) from None


def _id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    return int(raw)


def _version(data: Any) -> int:
    raw = data.get("version", "")
    return int(raw) if raw.isdigit() else 0


async def _agency_page(
    request: web.Request,
    agency_id: int,
    week: date,
    *,
    status: int = 200,
    errors: dict[int, dict[str, str]] | None = None,
    values: dict[str, str] | None = None,
) -> web.Response:
    c = ctx(request)
    listed = await c.reconciliation.week(agency_id, week)
    return render(
        request,
        "reconciliation_agency.html",
        status=status,
        week=listed,
        may_decide=request[ACTOR].role == "agency",
        # where the week picker goes: the officer's own list, or this agency's
        here="/reconciliation"
        if request[ACTOR].role == "agency"
        else f"/reconciliation/agencies/{agency_id}",
        errors=errors or {},
        values=values or {},
    )


@require("agency", *LEADS)
async def index(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    actor = request[ACTOR]
    week = _week(request)
    if actor.role == "agency":
        if actor.agency_id is None:
            raise web.HTTPForbidden(text="no agency", content_type="text/plain")
        return await _agency_page(request, actor.agency_id, week)
    states = await c.reconciliation.overview(week)
    return render(request, "reconciliation.html", week=week, states=states)


@require(*LEADS)
async def agency_list(request: web.Request) -> web.StreamResponse:
    return await _agency_page(request, _id(request), _week(request))


@require("agency")
async def decide(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    actor = request[ACTOR]
    data = await form(request)
    item_id = _id(request)
    week = _week(request, data.get("week", ""))
    back = f"/reconciliation?week={week.isoformat()}"
    try:
        await c.reconciliation.decide(
            actor,
            item_id,
            _version(data),
            data.get("decision", ""),
            data.get("reason") or None,
            data.get("status_seen") or None,
        )
    except ItemNotFound:
        raise web.HTTPNotFound() from None
    except ItemChanged:
        raise flash_redirect(
            back,
            _(
                "This line was decided by someone else, or its ticket moved on, while you "
                "read it: here is the list as it is now."
            ),
        ) from None
    except InvalidInput as e:
        assert actor.agency_id is not None
        return await _agency_page(
            request,
            actor.agency_id,
            week,
            status=422,
            errors={item_id: field_errors(request, e.errors)},
            values={"reason": data.get("reason", "")},
        )
    raise flash_redirect(back, _("Saved."))


@require(*LEADS)
async def resolve(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    data = await form(request)
    week = _week(request, data.get("week", ""))
    back = f"/reconciliation?week={week.isoformat()}"
    try:
        await c.reconciliation.resolve(
            request[ACTOR], _id(request), _version(data), data.get("note", "")
        )
    except ItemNotFound:
        raise web.HTTPNotFound() from None
    except ItemChanged:
        raise flash_redirect(
            back, _("This dispute was resolved by someone else meanwhile: here it is now.")
        ) from None
    except InvalidInput as e:
        raise PageError(422, fields=field_errors(request, e.errors)) from None
    raise flash_redirect(back, _("Saved."))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/reconciliation", index),
        web.get("/reconciliation/agencies/{id}", agency_list),
        web.post("/reconciliation/items/{id}/decide", decide),
        web.post("/reconciliation/items/{id}/resolve", resolve),
    ]

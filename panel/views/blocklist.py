"""The blocked-numbers page: supervisors and admins add and lift blocks and read the
list's history; the numbers suggested by their wrap-up codes are shown above it.

:func:`add_block` and :func:`lift_block` turn the service's refusals into what a person
reads (the field named); the JSON API shares them (:mod:`panel.api.views`).
"""

from __future__ import annotations

from typing import NamedTuple

from aiohttp import web

from callcenter.blocklist import (
    REASON_MAX,
    AlreadyBlocked,
    BlockInvalid,
    BlockNotActive,
    BlockNotFound,
    state_of,
)
from callcenter.models import BlockedNumber
from panel.keys import ACTOR, GETTEXT, LANG
from panel.security import require
from panel.views.common import ctx, flash_redirect, form, render

LEADS = ("supervisor", "admin")


class BlockProblem(NamedTuple):
    """Why a block was not added or lifted: the HTTP status, the field (if one), the message."""

    status: int
    field: str | None
    message: str


async def add_block(
    request: web.Request, number: str, reason: str, days: int
) -> BlockedNumber | BlockProblem:
    """Block ``number`` for ``days`` days, as the signed-in user."""
    _ = request[GETTEXT]
    c = ctx(request)
    try:
        return await c.blocklist.add(number, reason, days, by=request[ACTOR].name)
    except BlockInvalid as e:
        messages = {
            ("number", "required"): _("Number: type the phone number to block."),
            ("number", "not_a_number"): _("Number: digits only (spaces, dots, dashes allowed)."),
            ("number", "length"): _("Number: between 3 and 20 digits."),
            ("reason", "required"): _("Reason: say why this number is blocked."),
            ("reason", "invalid"): _("Reason: this text cannot be stored (a NUL character)."),
            ("reason", "too_long"): _("Reason: at most {max} characters.", max=REASON_MAX),
            ("days", "range"): _("Days: from 1 to {max}.", max=c.settings.blocklist.max_days),
        }
        return BlockProblem(422, e.field, messages[(e.field, e.problem)])
    except AlreadyBlocked as e:
        return BlockProblem(409, "number", _("{number} is already blocked.", number=e.number))


async def lift_block(request: web.Request, block_id: int) -> BlockedNumber | BlockProblem:
    _ = request[GETTEXT]
    try:
        return await ctx(request).blocklist.lift(block_id, by=request[ACTOR].name)
    except BlockNotFound:
        return BlockProblem(404, None, _("No such block."))
    except BlockNotActive:
        return BlockProblem(409, None, _("This block has already ended."))


@require(*LEADS)
async def page(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    now = c.clock.now()
    lang = request.get(LANG, "vi")
    codes = {w.id: w.label.get(lang) for w in c.settings.wrapup.codes}
    rows = await c.blocklist.history()
    return render(
        request,
        "blocklist.html",
        rows=[(r, state_of(r, now).value) for r in rows],
        candidates=await c.blocklist.candidates(),
        calls=await c.blocklist.blocked_calls(),
        cfg=c.settings.blocklist,
        codes=codes,
        code_names=", ".join(codes.get(i, i) for i in c.settings.blocklist.candidate_codes),
        reason_max=REASON_MAX,
        number=request.query.get("number", ""),
    )


@require(*LEADS)
async def add(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = await form(request)
    raw_days = (data.get("days") or "").strip()
    days = int(raw_days) if raw_days.isascii() and raw_days.isdigit() else 0
    done = await add_block(request, data.get("number", ""), data.get("reason", ""), days)
    if isinstance(done, BlockProblem):
        raise flash_redirect("/blocklist", done.message)
    raise flash_redirect("/blocklist", _("{number} is blocked.", number=done.number))


@require(*LEADS)
async def lift(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    try:
        block_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    done = await lift_block(request, block_id)
    if isinstance(done, BlockProblem):
        if done.status == 404:
            raise web.HTTPNotFound()
        raise flash_redirect("/blocklist", done.message)
    raise flash_redirect("/blocklist", _("The block on {number} is lifted.", number=done.number))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/blocklist", page),
        web.post("/blocklist", add),
        web.post("/blocklist/{id}/lift", lift),
    ]

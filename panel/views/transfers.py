"""Transferring the live call, from the agent's workspace (and, through
:func:`transfer_call`, the JSON API).

The workspace's "Transfer" form sends the call on screen, the target chosen
from :func:`transfer_targets` (never a typed number), a note for the next
agent and the ticket form as it stands (the draft, copied by panel.js).
:func:`transfer_call` turns the service's refusals into the answer a person
reads: unknown target (422, field ``target``), the call not in progress or
not the agent's (409), the telephone system away (503).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from aiohttp import web

from callcenter.models import CallTransfer
from callcenter.transfers import Target, TransferRefused, Transferrer, UnknownTarget
from panel.keys import ACTOR, GETTEXT
from panel.security import require
from panel.views.common import ctx, flash_redirect, form

# who may transfer a call: the agent who has it; supervisors and admins any call
TRANSFERRERS = ("agent", "supervisor", "admin")


class TransferProblem(NamedTuple):
    """Why the call was not transferred: the HTTP status, a short reason (the API's
    ``reason``), the sentence to show, and the field at fault if one is."""

    status: int
    reason: str
    message: str
    field: str | None = None


async def transfer_targets(request: web.Request) -> list[Target]:
    service = ctx(request).transfers
    if service is None or not ctx(request).settings.transfers.enabled:
        return []
    return await service.targets()


def _who(request: web.Request) -> Transferrer:
    actor = request[ACTOR]
    return Transferrer(
        actor.id, actor.name, actor.extension, supervisor=actor.role in ("supervisor", "admin")
    )


async def transfer_call(
    request: web.Request,
    call_id: int,
    target: str,
    note: str | None,
    draft: Any,
    *,
    attended: bool = False,
) -> CallTransfer | TransferProblem:
    """Transfer call ``call_id`` for the signed-in user: blind, or ``attended`` (the
    target rings for the agent to talk to first)."""
    service = ctx(request).transfers
    if service is None:
        return _unavailable(request)
    try:
        if attended:
            return await service.attended(_who(request), call_id, target, note=note, draft=draft)
        return await service.blind(_who(request), call_id, target, note=note, draft=draft)
    except UnknownTarget:
        _ = request[GETTEXT]
        # well formed (the API's schema checks that) but not a target now: a conflict
        # with the directory and the configuration, as the document says
        return TransferProblem(
            409, "unknown_target", _("Choose one of the transfer targets."), "target"
        )
    except TransferRefused as e:
        return _refused(request, e)


async def end_consultation(
    request: web.Request, transfer_id: int, action: str
) -> CallTransfer | TransferProblem:
    """``complete`` (hand the caller to the consulted target) or ``cancel`` (back to
    the caller) an attended transfer of the signed-in user."""
    service = ctx(request).transfers
    if service is None:
        return _unavailable(request)
    try:
        if action == "complete":
            return await service.complete(_who(request), transfer_id)
        return await service.cancel(_who(request), transfer_id)
    except TransferRefused as e:
        return _refused(request, e)


def _unavailable(request: web.Request) -> TransferProblem:
    _ = request[GETTEXT]
    return TransferProblem(
        503, "unavailable", _("The panel has no connection to the telephone system.")
    )


def _refused(request: web.Request, e: TransferRefused) -> TransferProblem:
    _ = request[GETTEXT]
    messages = {
        "disabled": _("Transfers are turned off in the configuration."),
        "not_in_call": _("This call is not in progress: it cannot be transferred."),
        "not_yours": _("This call is not yours to transfer."),
        "unavailable": _("The telephone system did not answer. Try again."),
        "failed": _("The telephone system refused the transfer. Try again."),
        "not_consulting": _("No transfer of yours is waiting to be completed."),
        "no_consultation": _("No transfer of yours is waiting to be completed."),
    }
    status = 503 if e.reason in ("unavailable", "failed") else 409
    return TransferProblem(status, e.reason, messages[e.reason])


def target_label(request: web.Request, t: Target) -> str:
    """A target as the workspace's list names it."""
    _ = request[GETTEXT]
    words = {
        "queue": _("Team {name}", name=t.label),
        "agent": _("Agent {name} ({ext})", name=t.label, ext=t.key),
        "phone": _("Supervisor {name} ({ext})", name=t.label, ext=t.key),
        "agency": _("Agency {name} ({number})", name=t.label, number=t.number or ""),
        "emergency": _("Emergency {number}", number=t.key),
    }
    return words[t.kind]


@require("agent", "supervisor")
async def transfer(request: web.Request) -> web.StreamResponse:
    """The workspace's form: transfer the call on screen; back to the workspace."""
    data = await form(request)
    _ = request[GETTEXT]
    raw = (data.get("call_id") or "").strip()
    if not raw.isdigit() or len(raw) > 12:
        raise flash_redirect("/agent", _("This call is not in progress: it cannot be transferred."))
    try:
        draft = json.loads(data.get("draft") or "null")
    except ValueError:
        draft = None
    attended = data.get("kind") == "attended"
    done = await transfer_call(
        request,
        int(raw),
        (data.get("target") or "").strip(),
        data.get("note"),
        draft,
        attended=attended,
    )
    if isinstance(done, TransferProblem):
        raise flash_redirect("/agent", done.message)
    if attended:
        message = _(
            "Talk to {target}, then complete the transfer or go back to the caller.",
            target=done.target_label,
        )
        raise flash_redirect("/agent", message)
    raise flash_redirect("/agent", _("Call transferred to {target}.", target=done.target_label))


@require("agent", "supervisor")
async def consultation(request: web.Request) -> web.StreamResponse:
    """The workspace's buttons during an attended transfer: complete, or cancel."""
    data = await form(request)
    _ = request[GETTEXT]
    raw = (data.get("transfer_id") or "").strip()
    action = request.match_info["action"]
    if not raw.isdigit() or len(raw) > 12:
        raise flash_redirect("/agent", _("No transfer of yours is waiting to be completed."))
    done = await end_consultation(request, int(raw), action)
    if isinstance(done, TransferProblem):
        raise flash_redirect("/agent", done.message)
    if action == "complete":
        raise flash_redirect("/agent", _("Call transferred to {target}.", target=done.target_label))
    raise flash_redirect("/agent", _("Back with the caller."))


def routes() -> list[web.RouteDef]:
    return [
        web.post("/agent/transfer", transfer),
        web.post(r"/agent/transfer/{action:complete|cancel}", consultation),
    ]

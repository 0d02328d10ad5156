"""Kannel's calls to the application: an SMS in (smsbox's ``get-url``) and a
delivery report of one of ours (the ``dlr-url`` given with each message).

Both carry the shared secret (``sms.callback_secret`` in the secrets file) as
``key``; without it the answer is 403 and nothing is stored.  An SMS is
stored before the 200 goes back: any other answer (or none, while the
application is down) makes smsbox try again, and the message id Kannel sends
each time is unique in the table, so a second try is no second message.
A malformed call gets 400 naming the field (Kannel logs it).
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from inbox.exceptions import MessageNotFound
from inbox.models import MessageChannel
from panel.security import PUBLIC, require
from panel.views.common import ctx
from sms.gateway import BadIncoming, parse_incoming

log = logging.getLogger(__name__)


def _check_key(request: web.Request) -> None:
    c = ctx(request)
    expected = c.settings.sms_callback_secret.get_secret_value()
    sent = request.query.get("key", "")
    if c.inbox is None or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        log.warning("sms: a call to %s without the right key from %s", request.path, request.remote)
        raise web.HTTPForbidden(text="key: wrong or missing\n")


@require(PUBLIC)
async def incoming(request: web.Request) -> web.Response:
    _check_key(request)
    try:
        sms = parse_incoming(request.rel_url.raw_query_string)
    except BadIncoming as e:
        log.warning("sms: a malformed incoming call: %s", e)
        raise web.HTTPBadRequest(text=f"{e}\n") from None
    inbox = ctx(request).inbox
    assert inbox is not None
    msg, new = await inbox.receive(
        MessageChannel.SMS,
        sms.external_id,
        sms.sender,
        sms.receiver,
        sms.text,
        binary=sms.binary,
    )
    # an empty body: smsbox sends the citizen nothing (omit-empty)
    return web.Response(
        text="", headers={"X-Hotline-Message": f"{msg.id} {'new' if new else 'again'}"}
    )


@require(PUBLIC)
async def delivery(request: web.Request) -> web.Response:
    _check_key(request)
    q = request.query
    try:
        message_id, status = int(q.get("message", "")), int(q.get("type", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="message, type: numbers expected\n") from None
    inbox = ctx(request).inbox
    assert inbox is not None
    try:
        await inbox.delivery_report(message_id, status, (q.get("reply") or "")[:500] or None)
    except MessageNotFound:
        # nothing to attach it to: Kannel need not try again
        log.warning("sms: a delivery report for no message %s", message_id)
    return web.Response(text="")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/sms/kannel/in", incoming),
        web.get("/sms/kannel/dlr", delivery),
    ]

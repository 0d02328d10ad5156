"""The panel's aiohttp application: templates, middlewares, routes, the WebSocket hub.

``make_app`` takes a :class:`PanelContext` built by the composition root; the
hub's Redis subscription lives as long as the application (``cleanup_ctx``).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from core.web import delegated
from panel.api import operations as api
from panel.context import PanelContext
from panel.dates import DAY_PATTERN, MOMENT_PATTERN, day_text
from panel.errors import error_pages_middleware
from panel.keys import FLASH_USED
from panel.labels import OUTCOMES
from panel.security import (
    errors_middleware,
    headers_middleware,
    make_auth_middleware,
    roles_checked,
)
from panel.views import (
    admin,
    agent,
    auth,
    blocklist,
    board,
    callbacks,
    calls,
    confidential,
    handling,
    health,
    inbox,
    kb,
    qa,
    reconciliation,
    recordings,
    reports,
    sms,
    supervision,
    tickets,
    transfers,
)
from panel.views.common import CTX
from panel.views.review import upload_limit_middleware
from tickets.numbers import format_number

HERE = Path(__file__).parent


def _local(ctx: PanelContext):  # type: ignore[no-untyped-def]
    def local(moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
        if moment is None:
            return ""
        return moment.astimezone(ctx.settings.tz).strftime(fmt)

    return local


def _isolocal(ctx: PanelContext):  # type: ignore[no-untyped-def]
    local = _local(ctx)

    def isolocal(text: object) -> str:
        try:
            return str(local(datetime.fromisoformat(str(text))))
        except ValueError:
            return str(text)

    return isolocal


def _fromjson(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


@functools.cache
def _static_url(name: str) -> str:
    """A static file's URL with a content hash, so browsers never keep a stale script."""
    digest = hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]
    return f"/static/{name}?v={digest}"


@web.middleware
async def _flash_middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
    if delegated(request):
        return await handler(request)
    response = await handler(request)
    if request.get(FLASH_USED):
        response.del_cookie("hotline_flash", path="/")
    return response


def make_app(ctx: PanelContext, *, client_max_size: int = 256 * 1024) -> web.Application:
    app = web.Application(
        middlewares=[
            # the attachment upload alone may send a large body (read by the CSRF check)
            upload_limit_middleware,
            headers_middleware,
            # outside the sign-in: its refusals (CSRF) become pages too
            error_pages_middleware,
            make_auth_middleware(ctx),
            errors_middleware,
            _flash_middleware,
        ],
        client_max_size=client_max_size,
    )
    app[CTX] = ctx
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local(ctx)
    env.filters["fromjson"] = _fromjson
    env.filters["isolocal"] = _isolocal(ctx)
    env.filters["dmy"] = day_text
    env.filters["ticket_number"] = format_number
    env.globals["day_pattern"] = DAY_PATTERN
    env.globals["moment_pattern"] = MOMENT_PATTERN
    env.globals["static"] = _static_url
    env.globals["outcome_msgids"] = OUTCOMES
    # calls before tickets: its /tickets/{code}/call is matched before the ticket's actions
    for module in (
        auth,
        agent,
        calls,
        tickets,
        handling,
        admin,
        kb,
        api,
        recordings,
        board,
        reports,
        callbacks,
        health,
        supervision,
        blocklist,
        qa,
        sms,
        inbox,
        transfers,
        reconciliation,
        confidential,
    ):
        app.router.add_routes(module.routes())
    app.router.add_static("/static", HERE / "static")
    roles_checked(app)

    async def hub(_app: web.Application) -> AsyncIterator[None]:
        await ctx.hub.start()
        yield
        await ctx.hub.stop()

    app.cleanup_ctx.append(hub)
    return app

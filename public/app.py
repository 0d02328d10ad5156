"""The public site's aiohttp application: no sign-in, Vietnamese first, the panel's headers.

:func:`make_public_app` builds it from a :class:`PublicContext` (made by the
composition root, ``hotline.app``).  It is served on its own address
(``public.host``/``public.port``), so it can face the internet while the
staff panel stays internal, or mounted under the panel at
``public.path_prefix``; either way its own middlewares answer every request
under it (the panel's sign-in, error pages and cookies never touch them):

- security headers: the panel's Content-Security-Policy and companions
  (``core.web.security_headers``);
- the language: the visitor's ``public_lang`` cookie, else ``public.language``
  (never the staff's session or language cookie);
- error pages in that language, for every error (no traceback ever shows).

Route sets are registrars, listed in :data:`ROUTE_SETS`: the status page and
the portal here; the web report form (``public.report``) and the Open311
sub-application join the list (or come as ``extra`` from the composition
root).  The catch-all "not found" route is added after all of them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from core.web import OWN_MIDDLEWARES, security_headers
from public import views
from public.context import PUBLIC_CTX, PublicContext
from public.keys import BASE, GETTEXT, JINJA, LANG
from public.report import report_routes

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

#: Adds one set of routes (or a sub-application) to the public application.
Registrar = Callable[[web.Application], None]

#: The public route sets, in the order they are matched.  The web report form
#: (``public.report``) and Open311 (``open311``) are added here.
ROUTE_SETS: list[Registrar] = [
    views.status_routes,
    views.portal_routes,
    views.directory_routes,
    views.language_routes,
    report_routes,
]

# Headers of an error that its page keeps.
KEPT_HEADERS = ("Allow", "Retry-After")
# aiohttp's own texts (English): the page explains the status instead.
AIOHTTP_STATUSES = frozenset({405, 413})


@functools.cache
def _digest(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]


@web.middleware
async def _headers(request: web.Request, handler):  # type: ignore[no-untyped-def]
    response = await handler(request)
    security_headers(response)
    return response


def _language(ctx: PublicContext):  # type: ignore[no-untyped-def]
    default = ctx.settings.public.language

    @web.middleware
    async def language(request: web.Request, handler):  # type: ignore[no-untyped-def]
        lang = request.cookies.get(views.LANG_COOKIE, default)
        if lang not in views.LANGUAGES:
            lang = default
        request[LANG] = lang
        request[GETTEXT] = ctx.translations(lang)
        return await handler(request)

    return language


def _detail(exc: web.HTTPException) -> str | None:
    """The error's own text if this site wrote it (translated), else None."""
    if exc.status in AIOHTTP_STATUSES or exc.content_type != "text/plain":
        return None
    text = exc.text or ""
    if not text.strip() or text == f"{exc.status}: {exc.reason}":
        return None
    return text


def _error_page(request: web.Request, status: int, detail: str | None) -> web.StreamResponse:
    try:
        return views.render(
            request, "error.html", status=status, error_status=status, detail=detail
        )
    except Exception:
        log.exception("the public error page for %s %s failed", request.method, request.path)
        return web.Response(status=status, text=f"{status}: {HTTPStatus(status).phrase}")


@web.middleware
async def _errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Every error becomes a page in the visitor's language."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        page = _error_page(request, exc.status, _detail(exc))
        for name in KEPT_HEADERS:
            if name in exc.headers:
                page.headers[name] = exc.headers[name]
        return page
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _error_page(request, 500, None)


async def _not_found(request: web.Request) -> web.StreamResponse:
    """What no route took: 405 (with Allow) if a route has the path for other methods."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        _match, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
    raise web.HTTPNotFound()


def make_public_app(
    ctx: PublicContext,
    *,
    prefix: str = "",
    extra: Sequence[Registrar] = (),
    client_max_size: int = 64 * 1024,
) -> web.Application:
    """The public site; ``prefix`` is the path it is mounted under ("" on its own port)."""
    app = web.Application(
        middlewares=[_headers, _language(ctx), _errors], client_max_size=client_max_size
    )
    app[PUBLIC_CTX] = ctx
    app[BASE] = prefix
    app[OWN_MIDDLEWARES] = True
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # the templates are part of the release: no file check on every render
        auto_reload=False,
        app_key=JINJA,
    )
    tz = ctx.settings.tz

    def local(moment: datetime | None, fmt: str = "%d/%m/%Y") -> str:
        return "" if moment is None else moment.astimezone(tz).strftime(fmt)

    env.filters["local"] = local
    env.globals["static"] = lambda name: f"{prefix}/static/{name}?v={_digest(name)}"
    for register in (*ROUTE_SETS, *extra):
        register(app)
    app.router.add_static("/static", HERE / "static")
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app

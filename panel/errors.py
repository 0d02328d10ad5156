"""Error answers in the user's language: a page for the panel, JSON for the API.

Views and ``panel.security`` raise HTTP errors; :func:`error_pages_middleware`
(the outermost but one, so it also sees the sign-in and CSRF refusals) turns
every error of a page into ``error.html``: the base template, what happened in
the user's language, the fields named by their labels, a link back.  API
errors are JSON (the router's own 404 and 405 too); those naming fields get
each field's label as well (``labels``), so a client can show the field the
way the panel does.
``/metrics`` keeps answering its scraper in plain text.  A failure nobody
expected is logged and answered with the 500 page (or JSON), never a traceback.

The text of an HTTP error is shown on the page only when the panel wrote it
(it is translated then); aiohttp's own texts (``404: Not Found``, the size
limit, 405) are English and the page explains the status instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from core.web import delegated
from panel.keys import GETTEXT, LANG
from panel.labels import field_label
from panel.views.common import ctx, render

log = logging.getLogger(__name__)

# Answered to machines in their own format, never as a page.
MACHINE_PATHS = frozenset({"/metrics"})
# Statuses only aiohttp raises for pages: their text is its own (English).
AIOHTTP_STATUSES = frozenset({405, 413})
# Headers of an error that its page keeps.
KEPT_HEADERS = ("Allow", "Retry-After")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


class PageError(web.HTTPException):
    """An error of a page, with what its error page shows besides the status.

    ``detail`` is a sentence already translated; ``fields`` maps a form field's
    name to its translated problem (the page names the field by its label).
    The plain-text body is for a client that never sees the page.
    """

    def __init__(
        self, status: int, *, detail: str | None = None, fields: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status
        self.detail = detail
        self.fields = dict(fields or {})
        lines = [detail or f"{status}: {HTTPStatus(status).phrase}"]
        lines += [f"{name}: {problem}" for name, problem in self.fields.items()]
        super().__init__(text="\n".join(lines), content_type="text/plain")


@web.middleware
async def error_pages_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error of a page becomes a page; every API error is JSON, with field labels."""
    if delegated(request):  # a sub-application (the public site) with its own error pages
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or request.path in MACHINE_PATHS:
            raise
        if is_api(request):
            _api_error(request, exc)
            raise
        return error_page(
            request,
            exc.status,
            detail=_detail(exc),
            fields=exc.fields if isinstance(exc, PageError) else None,
            headers={h: exc.headers[h] for h in KEPT_HEADERS if h in exc.headers},
        )
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        if is_api(request):
            return web.json_response({"error": "internal error"}, status=500)
        if request.path in MACHINE_PATHS:
            raise
        return error_page(request, 500)


def _detail(exc: web.HTTPException) -> str | None:
    """The error's own text if the panel wrote it (see the module docstring), else None."""
    if isinstance(exc, PageError):
        return exc.detail
    if exc.status in AIOHTTP_STATUSES or exc.content_type != "text/plain":
        return None
    text = exc.text or ""
    if not text.strip() or text == f"{exc.status}: {exc.reason}":
        return None
    return text


def _gettext(request: web.Request) -> Any:
    """The request's gettext; set here when the failure came before the sign-in middleware's."""
    if GETTEXT not in request:
        c = ctx(request)
        lang = request.cookies.get("hotline_lang") or c.settings.panel.language
        request[LANG] = lang if lang in ("vi", "en") else c.settings.panel.language
        request[GETTEXT] = c.i18n.gettext(request[LANG])
    return request[GETTEXT]


def back_link(request: web.Request) -> str:
    """Where "back" leads: the page the user came from on this site, else the home page."""
    referer = urlparse(request.headers.get("Referer", ""))
    if referer.netloc and referer.netloc == request.host and referer.path.startswith("/"):
        target = referer.path + (f"?{referer.query}" if referer.query else "")
        if target != request.path_qs:
            return target
    return "/"


def error_page(
    request: web.Request,
    status: int,
    *,
    detail: str | None = None,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """The error page (``error.html``) with ``status``; plain text if even that fails."""
    try:
        _gettext(request)
        response = render(
            request,
            "error.html",
            status=status,
            error_status=status,
            detail=detail,
            fields=dict(fields or {}),
            back=back_link(request),
            flash=None,  # the flash waits for the next real page
        )
    except Exception:
        log.exception(
            "the error page for %s %s could not be rendered", request.method, request.path
        )
        return web.Response(status=status, text=f"{status}: {HTTPStatus(status).phrase}")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _api_error(request: web.Request, exc: web.HTTPException) -> None:
    """Make an API error JSON, naming each refused field's label in the request's language."""
    body: Any = None
    if exc.content_type == "application/json" and exc.text:
        try:
            body = json.loads(exc.text)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        # aiohttp's own (no such route, wrong method, body too large): its reason, as JSON
        body = {"error": (exc.reason or HTTPStatus(exc.status).phrase).lower()}
    elif isinstance(body.get("fields"), dict):
        _ = _gettext(request)
        body["labels"] = {name: field_label(_, name) for name in body["fields"]}
    else:
        return
    exc.content_type = "application/json"
    exc.text = json.dumps(body, ensure_ascii=False, default=str)

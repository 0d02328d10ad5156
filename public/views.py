"""The public site's pages: the status look-up and the portal of completed reports.

Each route set is a registrar (``status_routes``, ``portal_routes``) that
:mod:`public.app` lists; the pages render with the public templates in the
visitor's language.  Refused input re-renders the page with the field's
message beside it and the right status (400; 404 for a look-up that matched
nothing; 429 with Retry-After once an address tried too often); nothing a
refused request sends is stored.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from core.web import client_address
from public.context import PUBLIC_CTX, PublicContext
from public.exceptions import BadInput, NoMatch
from public.keys import BASE, GETTEXT, JINJA, LANG
from public.lookup import StatusView

log = logging.getLogger(__name__)

LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
LANG_COOKIE = "public_lang"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def ctx(request: web.Request) -> PublicContext:
    return request.config_dict[PUBLIC_CTX]


def url(request: web.Request, path: str) -> str:
    """A path of the public site as the browser reaches it (under the prefix, if any)."""
    return f"{request.config_dict[BASE]}{path}"


def render(
    request: web.Request, template: str, *, status: int = 200, **values: Any
) -> web.Response:
    c = ctx(request)
    lang = request[LANG]
    response = aiohttp_jinja2.render_template(
        template,
        request,
        {
            "_": request[GETTEXT],
            "lang": lang,
            "languages": LANGUAGES,
            "base": request.config_dict[BASE],
            # this page's address as sent (URL-encoded), for the language switch's way back
            "here": request.path_qs,
            "topic_names": c.topic_names(lang),
            **values,
        },
        status=status,
        app_key=JINJA,
    )
    return response


def field_errors(request: web.Request, e: BadInput) -> dict[str, str]:
    _ = request[GETTEXT]
    return {e.field: _(e.message, **e.params)}


# -- the status page -------------------------------------------------------------


async def status_form(request: web.Request) -> web.StreamResponse:
    return render(request, "status.html", errors={}, values={}, view=None, message=None)


async def status_lookup(request: web.Request) -> web.StreamResponse:
    """Look a report up by its number and the last phone digits (or the email)."""
    c = ctx(request)
    _ = request[GETTEXT]
    if request.content_type not in FORMS:
        raise web.HTTPUnsupportedMediaType(
            text=_("Send the look-up form (number and check)."), content_type="text/plain"
        )
    data = await request.post()
    number, check = data.get("number"), data.get("check")
    values = {
        "number": number if isinstance(number, str) else "",
        "check": check if isinstance(check, str) else "",
    }
    address = client_address(request, c.settings.panel.trusted_proxies)
    now = c.clock.now()
    until = await c.throttle.blocked_until(address, now)
    if until is not None:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        log.info("status look-up from %s refused: too many tries", address)
        page = render(
            request,
            "status.html",
            status=429,
            errors={},
            values=values,
            view=None,
            message=_(
                "Too many tries from your connection. Wait {minutes} minutes and try again.",
                minutes=minutes,
            ),
        )
        page.headers["Retry-After"] = str(minutes * 60)
        return page
    try:
        view = await c.lookup.find(number, check)  # type: ignore[arg-type]
    except BadInput as e:
        return render(
            request,
            "status.html",
            status=400,
            errors=field_errors(request, e),
            values=values,
            view=None,
            message=None,
        )
    except NoMatch as e:
        await c.throttle.failed(address, now)
        return render(
            request,
            "status.html",
            status=404,
            errors={},
            values=values,
            view=None,
            message=_(str(e)),
        )
    return status_page(request, view)


def status_page(request: web.Request, view: StatusView) -> web.Response:
    page = render(request, "status.html", errors={}, values={}, view=view, message=None)
    # the citizen's own report: no shared cache keeps it
    page.headers["Cache-Control"] = "no-store"
    return page


def status_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/", status_form),
            web.get("/status", status_form),
            web.post("/status", status_lookup),
        ]
    )


# -- the portal ------------------------------------------------------------------


async def portal(request: web.Request) -> web.StreamResponse:
    """A page of the portal: rendered once for everyone who asks for the same address in
    the same language, within ``public.cache_seconds`` (public.cache)."""
    c = ctx(request)
    key = (request[LANG], request.config_dict[BASE], request.path_qs)
    body = c.pages.get(key)
    if body is None:
        # one render for every request that asks for this page meanwhile
        page: web.Response | None = None

        async def make() -> bytes | None:
            nonlocal page
            generation = c.pages.generation
            page = await _portal_page(request, c)
            if page.status != 200 or not isinstance(page.body, bytes):
                return None
            c.pages.put(key, page.body, generation)
            return page.body

        body, made = await c.rendering.share(key, make)
        if made and page is not None:
            return page
        if body is None:  # the one that rendered it failed, or its page was no 200
            return await _portal_page(request, c)
    return web.Response(body=body, content_type="text/html", charset="utf-8")


async def _portal_page(request: web.Request, c: PublicContext) -> web.Response:
    shown = {k: request.query.get(k, "") for k in ("q", "topic", "district")}
    try:
        query = c.portal.parse(request.query)
    except BadInput as e:
        return render(
            request,
            "portal.html",
            status=400,
            errors=field_errors(request, e),
            query=shown,
            result=None,
            pages_url=None,
            topics=c.portal.public_topics(),
            districts=await c.portal.districts(),
        )
    result = await c.portal.search(query)
    kept = {k: v for k, v in (("q", query.q), ("topic", query.topic), ("district", query.district))}

    def pages_url(page: int) -> str:
        return url(
            request, "/reports?" + urlencode({**{k: v for k, v in kept.items() if v}, "page": page})
        )

    return render(
        request,
        "portal.html",
        errors={},
        query=shown,
        result=result,
        pages_url=pages_url,
        topics=c.portal.public_topics(),
        districts=await c.portal.districts(),
    )


async def one_report(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    report = await ctx(request).portal.one(request.match_info["number"])
    if report is None:
        raise web.HTTPNotFound(
            text=_("There is no published report with this number."), content_type="text/plain"
        )
    return render(request, "report.html", r=report)


def portal_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/reports", portal),
            web.get("/reports/{number}", one_report),
        ]
    )


# -- the directory -----------------------------------------------------------------

#: What the public directory shows of an agency: how to reach it, never who its contact
#: person is (``contact_name`` stays with the staff).
PUBLIC_AGENCY_FIELDS = ("name", "kind", "phone", "email", "address")
KIND_ORDER = ("department", "district", "ward", "utility", "party", "other")


def directory_entries(agencies: list[Any]) -> list[dict[str, Any]]:
    """The active agencies as the public page lists them: only the public fields,
    each with the name of the agency it belongs to, by kind then name."""
    names = {a.id: a.name for a in agencies}
    out = []
    for a in agencies:
        if not a.active:
            continue
        entry = {name: getattr(a, name) for name in PUBLIC_AGENCY_FIELDS}
        entry["parent"] = names.get(a.parent_id) if a.parent_id else None
        out.append(entry)
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    out.sort(key=lambda e: (rank.get(e["kind"], len(rank)), e["name"].casefold()))
    return out


async def directory(request: web.Request) -> web.StreamResponse:
    """The agencies' hotline numbers and emails, as the city publishes them."""
    entries = directory_entries(await ctx(request).agencies.list())
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault(e["kind"], []).append(e)
    return render(request, "directory.html", groups=groups)


def directory_routes(app: web.Application) -> None:
    app.router.add_routes([web.get("/directory", directory)])


# -- the language ----------------------------------------------------------------


def safe_back(request: web.Request, target: str | None) -> str:
    """Back to a page of this site only (no open redirect)."""
    base = request.config_dict[BASE]
    home = f"{base}/"
    if not target or not target.startswith(home) or target.startswith("//") or "\\" in target:
        return home
    return target


async def language(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    if code not in LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(safe_back(request, request.query.get("next")))
    response.set_cookie(
        LANG_COOKIE,
        code,
        path=f"{request.config_dict[BASE]}/",
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=ctx(request).settings.panel.secure_cookies,
    )
    raise response


def language_routes(app: web.Application) -> None:
    app.router.add_routes([web.get("/lang/{code}", language)])

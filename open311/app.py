"""The Open311 GeoReport v2 sub-application: ``make_open311_app(...)``.

Mounted by the public web app at ``/open311/v2``::

    public_app.add_subapp("/open311/v2", make_open311_app(settings, db, redis, prefix))

Every resource is answered in JSON or XML by its extension (``services.json``,
``services.xml``).  Reading needs no key; filing a report (``POST
requests.json``) needs an ``api_key`` an admin issued.  Errors, including
unknown paths, are the spec's list of ``{code, description}`` in the format
asked for.  Every request counts against its client address's per-minute
limit, every report against its address's and its key's hourly limits.

The sub-app owns no long-lived resource: the database and Redis belong to
the application that mounts it, which opens and closes them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import redis.asyncio as aioredis
from aiohttp import web

from accounts.apikeys import ApiKeyService
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from open311.formats import FORMATS, error_response, respond
from open311.openapi import document
from open311.schemas import Open311Error, bad, parse_filter, parse_form
from open311.service import SPECIFICATION, Open311Service
from open311.throttle import RateLimiter
from tickets.exceptions import InvalidCode
from tickets.numbers import parse_number
from tickets.service import TicketService

log = logging.getLogger(__name__)

SERVICE = web.AppKey("open311_service", Open311Service)
KEYS = web.AppKey("open311_keys", ApiKeyService)
LIMITER = web.AppKey("open311_limiter", RateLimiter)
SETTINGS = web.AppKey("open311_settings", Settings)
CLOCK = web.AppKey("open311_clock", Clock)
STARTED = web.AppKey("open311_started", datetime)

FMT = "{fmt:json|xml}"
# a POST body larger than this is refused before it is read
BODY_MAX = 64 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_address(request: web.Request, settings: Settings) -> str | None:
    """The client's address: the peer, or the X-Forwarded-For hop a trusted proxy names."""
    peer = request.remote
    trusted = settings.open311.trusted_proxies

    def is_trusted(addr: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(addr or "")
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer


def _fmt(request: web.Request) -> str:
    fmt = request.match_info.get("fmt")
    if fmt in FORMATS:
        return fmt
    return "xml" if request.path.endswith(".xml") else "json"


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as the spec's error list, in the format asked for."""
    fmt = _fmt(request)
    try:
        return await handler(request)
    except Open311Error as e:
        response = error_response(fmt, e.status, e.description)
        if e.retry_after:
            response.headers["Retry-After"] = str(e.retry_after)
        return response
    except web.HTTPRequestEntityTooLarge:
        return error_response(fmt, 413, "request body too large")
    except web.HTTPException as e:
        if e.status == 404:
            return error_response(fmt, 404, f"{request.path}: no such resource")
        if e.status == 405:
            return error_response(fmt, 405, f"{request.method} is not allowed on {request.path}")
        raise
    except Exception:
        log.exception("Open311 %s %s failed", request.method, request.path)
        return error_response(fmt, 500, "internal error")


@web.middleware
async def per_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request counts against its client address's per-minute limit."""
    app = request.app
    settings = app[SETTINGS]
    who = client_address(request, settings) or "unknown"
    wait = await app[LIMITER].hit(
        "addr", who, settings.open311.requests_per_minute, 60, app[CLOCK].now()
    )
    if wait:
        raise Open311Error(429, "too many requests from this address", retry_after=wait)
    return await handler(request)


def _jurisdiction(request: web.Request, given: str | None) -> None:
    expected = request.app[SETTINGS].open311.jurisdiction_id
    if given and expected and given.strip() != expected:
        raise Open311Error(404, f"jurisdiction_id: {given!r} not found")


def _base_url(request: web.Request) -> str:
    public = request.app[SETTINGS].open311.public_url
    prefix = str(request.app.router["services"].url_for(fmt="json")).rsplit("/", 1)[0]
    if public:
        return public.rstrip("/") + prefix
    return f"{request.scheme}://{request.host}{prefix}"


async def discovery(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    changeset = request.app[STARTED].isoformat(timespec="seconds")
    value = {
        "changeset": changeset,
        "contact": settings.open311.contact,
        "key_service": "API keys for filing reports are issued by the hotline's "
        f"administrators: {settings.open311.contact}",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": _base_url(request),
                "changeset": changeset,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return respond(_fmt(request), "discovery", value)


async def services(request: web.Request) -> web.StreamResponse:
    _jurisdiction(request, request.query.get("jurisdiction_id"))
    return respond(_fmt(request), "services", request.app[SERVICE].services())


async def definition(request: web.Request) -> web.StreamResponse:
    _jurisdiction(request, request.query.get("jurisdiction_id"))
    value = request.app[SERVICE].definition(request.match_info["code"])
    return respond(_fmt(request), "service_definition", value)


async def list_requests(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    _jurisdiction(request, request.query.get("jurisdiction_id"))
    f = parse_filter(request.query, request.app[SETTINGS].tz, service.topics)
    return respond(_fmt(request), "service_requests", await service.requests(f))


async def one_request(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["id"]
    _jurisdiction(request, request.query.get("jurisdiction_id"))
    try:
        number = parse_number(raw)
    except InvalidCode:
        raise Open311Error(404, f"service_request_id: {raw!r} not found") from None
    value = await request.app[SERVICE].request(number)
    return respond(_fmt(request), "service_requests", [value])


async def create_request(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    cfg = settings.open311
    now = app[CLOCK].now()
    who = client_address(request, settings)
    wait = await app[LIMITER].hit(
        "post-addr", who or "unknown", cfg.posts_per_hour_per_address, 3600, now
    )
    if wait:
        raise Open311Error(429, "too many reports from this address", retry_after=wait)
    if request.content_type not in FORM_TYPES:
        raise bad("body", "must be form-encoded (application/x-www-form-urlencoded)")
    if request.content_length is not None and request.content_length > BODY_MAX:
        raise Open311Error(413, "request body too large")
    form = await request.post()
    keys = form.getall("api_key", [])
    if not keys or not isinstance(keys[0], str) or not keys[0].strip():
        raise Open311Error(403, "api_key: required")
    if len(keys) > 1:
        raise bad("api_key", "given more than once")
    key = await app[KEYS].authenticate(keys[0])
    if key is None:
        raise Open311Error(403, "api_key: not valid (unknown or revoked)")
    wait = await app[LIMITER].hit("post-key", key.key_id, cfg.posts_per_hour_per_key, 3600, now)
    if wait:
        raise Open311Error(429, "too many reports with this api_key", retry_after=wait)
    jurisdiction = form.get("jurisdiction_id")
    _jurisdiction(request, jurisdiction if isinstance(jurisdiction, str) else None)
    new = parse_form(form, app[SERVICE].topics, cfg.description_max)
    done = await app[SERVICE].submit(key, new, who)
    value = [
        {
            "service_request_id": done.service_request_id,
            "service_notice": done.service_notice,
            "account_id": new.account_id,
        }
    ]
    return respond(_fmt(request), "service_requests", value, status=201)


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(document(_base_url(request)))


def make_open311_app(
    settings: Settings,
    db: Database,
    redis: aioredis.Redis,
    prefix: str,
    *,
    clock: Clock | None = None,
    tickets: TicketService | None = None,
) -> web.Application:
    """The Open311 sub-app, to mount at ``/open311/v2`` of the public web app.

    ``db`` and ``redis`` belong to the caller (opened and closed by it);
    ``prefix`` is the Redis key prefix of this installation.
    """
    clock = clock or Clock()
    tickets = tickets or TicketService(db, settings, clock)
    app = web.Application(middlewares=[errors, per_address], client_max_size=BODY_MAX)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[STARTED] = clock.now().astimezone(settings.tz).replace(microsecond=0)
    app[SERVICE] = Open311Service(db, settings, tickets, clock)
    app[KEYS] = ApiKeyService(db, clock)
    app[LIMITER] = RateLimiter(redis, prefix)
    app.router.add_get(f"/discovery.{FMT}", discovery)
    app.router.add_get(f"/services.{FMT}", services, name="services")
    app.router.add_get(f"/services/{{code:[^/]+?}}.{FMT}", definition)
    app.router.add_get(f"/requests.{FMT}", list_requests)
    app.router.add_post(f"/requests.{FMT}", create_request)
    app.router.add_get(f"/requests/{{id:[^/]+?}}.{FMT}", one_request)
    app.router.add_get("/openapi.json", openapi)
    return app

"""The public report form: a citizen reports a problem on the web, without calling.

One page (``GET /report``) and its answer (``POST /report``), mobile first,
Vietnamese first (``?lang=en`` for English).  What the citizen gives becomes a
ticket of the channel "web", level 2, NEW: it appears in the staff panel's
lists of new reports like one taken on the phone, for a supervisor to forward.

The steps of a report sent, in order; each refusal re-shows the form with what
was typed and a message naming the field, and stores nothing:

1. the client address (behind the trusted proxies) has sent fewer than
   ``web_report.rate_limit`` reports within the window (public/report_throttle.py),
   else 429 with the time to come back;
2. the body is read with limits (a photo over ``photo_max_bytes`` is 413);
3. the honeypot field, hidden from people, is empty, and the form was shown at
   least ``min_fill_seconds`` ago (a timestamp signed with ``form_secret``), else 400;
4. with ``web_report.altcha``, the ALTCHA proof of work is solved (public/altcha.py);
5. the fields are checked (tickets.schemas, plus the form's own limits: 422);
6. the photo is decoded in a thread (tickets.attachments: JPEG, PNG, WebP);
7. the ticket and its photo are written in one transaction, and the page shows
   the tracking number grouped for reading.

The map (Leaflet, vendored) is on the page only when ``web_report.tile_url`` is
set; the Content-Security-Policy then lets images come from that tile server.
The panel's security headers middleware sets every other header.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import redis.asyncio as aioredis
from aiohttp import BodyPartReader, web

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.settings import Settings
from core.web import CSP, client_address
from public.altcha import Altcha
from public.context import PUBLIC_CTX, Translations
from public.report_throttle import ReportThrottle
from tickets.agencies import AgencyService
from tickets.attachments import PHOTO_NOT_IMAGE, NewAttachment, check_photo, too_large
from tickets.exceptions import INVALID, NOT_ALLOWED, REQUIRED, TOO_LONG, FieldError, InvalidInput
from tickets.models import AgencyKind, Channel, Domain
from tickets.numbers import format_number
from tickets.schemas import DISTRICT_MAX, TicketCreate, validate
from tickets.service import TicketService

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LANGUAGES = ("vi", "en")

# who the ticket's history names as its author: no staff member took it
WEB_FORM = Actor(id=None, name="web form", role=Role.AGENT)

# field error msgids of the form's own (translated in panel/locale, as the domain's are)
TOO_SHORT = "is too short (at least {min} characters)"
PLACE_NEEDED = "is required: type the address or put a pin on the map"
HONEYPOT = "This form seems to have been filled in by a program. Please send it yourself."
TOO_FAST = "The form was sent too quickly. Please check what you typed and send it again."
EXPIRED = "The form has expired. Please check what you typed and send it again."
ALTCHA_FAILED = "Please complete the check that you are not a robot, then send again."
UNREADABLE = "The form could not be read. Please send it again."
# every one of them (listed with N_ in panel/messages.py, checked by tests/panel/test_i18n.py)
MESSAGES = (TOO_SHORT, PLACE_NEEDED, HONEYPOT, TOO_FAST, EXPIRED, ALTCHA_FAILED, UNREADABLE)

# the form's fields (as named in the page) and the domain's names for them
FORM_TO_TICKET = {
    "phone": "citizen_phone",
    "email": "reporter_email",
    "address": "citizen_address",
    "name": "citizen_name",
}
TICKET_TO_FORM = {v: k for k, v in FORM_TO_TICKET.items()}
TEXT_FIELDS = (
    "topic",
    "description",
    "address",
    "district",
    "district_other",
    "latitude",
    "longitude",
    "name",
    "phone",
    "email",
    "publish_consent",
    "identity_consent",
    "website",  # the honeypot
    "started",
    "altcha",
    "lang",
)
# what one text field may hold before it is refused unread (the description's own
# limit is lower: settings); bounds the memory a request can take
FIELD_BYTES = 64 * 1024
# the form's text on top of the photo: a body larger than this is refused unread
TEXT_BYTES = 256 * 1024
# a form older than this is sent again (the signed timestamp)
FORM_MAX_AGE = 24 * 3600


@dataclass
class ReportDeps:
    """What the form needs, built by the composition root (or a test)."""

    settings: Settings
    tickets: TicketService
    agencies: AgencyService
    redis: aioredis.Redis
    redis_prefix: str
    clock: Clock
    # a language's gettext (the panel's catalogue, which holds the public site's words)
    translations: Translations


@dataclass
class Upload:
    """The photo part as read: its bytes (up to the limit), or that it was over."""

    filename: str | None
    data: bytes
    over_limit: bool = False


class FormError(Exception):
    """The form is re-shown with ``errors`` (field -> message) and this status."""

    def __init__(self, status: int, errors: dict[str, str], general: str | None = None):
        self.status = status
        self.errors = errors
        self.general = general


@functools.cache
def _static_hash(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:10]


class ReportForm:
    """The form's handlers, bound to their dependencies."""

    def __init__(self, deps: ReportDeps, prefix: str) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.prefix = prefix.rstrip("/")
        secret = deps.settings.form_secret.get_secret_value()
        if not secret:
            # `hotline setup` writes one; without it each process signs its own forms
            log.warning("form_secret is not set: web report forms are signed per process")
            secret = secrets.token_urlsafe(32)
        self.secret = secret.encode()
        self.throttle = ReportThrottle(deps.redis, deps.redis_prefix, deps.settings)
        self.altcha = Altcha(deps.settings, secret, deps.redis, deps.redis_prefix)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(["html"], default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["static"] = self.static_url

    def static_url(self, name: str) -> str:
        return f"{self.prefix}/static/{name}?v={_static_hash(name)}"

    # -- the page -------------------------------------------------------------------

    def language(self, request: web.Request, form: dict[str, str] | None = None) -> str:
        for lang in (
            (form or {}).get("lang"),
            request.query.get("lang"),
            request.cookies.get("hotline_lang"),
        ):
            if lang in LANGUAGES:
                return lang
        return self.settings.panel.language

    def _started_token(self) -> str:
        stamp = f"{time.time():.3f}"
        sig = hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp}.{sig}"

    def _started_age(self, token: str) -> float | None:
        """Seconds since the form was shown, or None if the token is not ours."""
        stamp, _, sig = (token or "").rpartition(".")
        expected = hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]
        if not stamp or not hmac.compare_digest(sig.encode(), expected.encode()):
            return None
        try:
            return time.time() - float(stamp)
        except ValueError:
            return None

    async def _districts(self) -> list[tuple[str, str]]:
        agencies = await self.deps.agencies.list()
        return [(a.code, a.name) for a in agencies if a.kind == AgencyKind.DISTRICT.value]

    def _csp(self) -> str | None:
        """The panel's policy, with images allowed from the tile server (when elsewhere)."""
        url = self.settings.web_report.tile_url
        if not url or url.startswith("/"):
            return None
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        return CSP.replace("img-src 'self' data:", f"img-src 'self' data: {origin}")

    async def _render(
        self,
        request: web.Request,
        template: str,
        lang: str,
        status: int = 200,
        **context: Any,
    ) -> web.Response:
        gettext = self.deps.translations(lang)
        w = self.settings.web_report
        html = self.env.get_template(template).render(
            _=gettext,
            lang=lang,
            prefix=self.prefix,
            settings=w,
            topics=[(t.id, t.name.get(lang)) for t in self.settings.tickets.topics],
            **context,
        )
        response = web.Response(text=html, content_type="text/html", status=status)
        csp = self._csp()
        if csp and template == "report_form.html":
            response.headers["Content-Security-Policy"] = csp
        # a form with a signed timestamp and what a citizen typed: never from a cache
        response.headers["Cache-Control"] = "no-store"
        if request.query.get("lang") in LANGUAGES:
            response.set_cookie(
                "hotline_lang",
                str(request.query["lang"]),
                max_age=365 * 86400,
                samesite="Lax",
                httponly=True,
            )
        return response

    async def _form_page(
        self,
        request: web.Request,
        lang: str,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        general: str | None = None,
        status: int = 200,
    ) -> web.Response:
        values = dict(values or {})
        values.pop("website", None)
        values.pop("altcha", None)
        return await self._render(
            request,
            "report_form.html",
            lang,
            status=status,
            values=values,
            errors=errors or {},
            general=general,
            districts=await self._districts(),
            started=self._started_token(),
            altcha_url=f"{self.prefix}/altcha" if self.settings.web_report.altcha else None,
        )

    async def show(self, request: web.Request) -> web.StreamResponse:
        return await self._form_page(request, self.language(request))

    async def challenge(self, request: web.Request) -> web.StreamResponse:
        if not self.settings.web_report.altcha:
            raise web.HTTPNotFound()
        response = web.json_response(self.altcha.challenge())
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- a report sent ------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.StreamResponse:
        lang = self.language(request)
        gettext = self.deps.translations(lang)
        address = client_address(request, self.settings.panel.trusted_proxies)
        now = self.deps.clock.now()
        until = await self.throttle.hit(address, now)
        if until is not None:
            log.info("web report refused: %s sent too many", address)
            wait = max(1, int((until - now).total_seconds()))
            response = await self._render(
                request,
                "report_refused.html",
                lang,
                status=429,
                until=until.astimezone(self.settings.tz).strftime("%H:%M"),
                minutes=max(1, -(-wait // 60)),
            )
            response.headers["Retry-After"] = str(wait)
            return response
        values: dict[str, str] = {}
        try:
            values, upload = await self._read(request)
            lang = self.language(request, values)
            gettext = self.deps.translations(lang)
            self._check_person(values, gettext)
            if self.settings.web_report.altcha and not await self.altcha.verify(
                values.get("altcha")
            ):
                raise FormError(400, {"altcha": gettext(ALTCHA_FAILED)})
            data = self._ticket_data(values, gettext, await self._districts())
            photos = await self._photos(upload, gettext)
            try:
                ticket = await self.deps.tickets.create(WEB_FORM, data, attachments=photos)
            except InvalidInput as e:
                raise FormError(422, self._messages(e.errors, gettext)) from None
        except FormError as e:
            log.info("web report refused (%s): %s", e.status, ", ".join(e.errors) or e.general)
            return await self._form_page(
                request, lang, values, errors=e.errors, general=e.general, status=e.status
            )
        log.info(
            "web report %s (%s) from %s: topic %s, %d photo(s)",
            ticket.code,
            ticket.number,
            address,
            ticket.topic,
            len(photos),
        )
        return await self._render(
            request,
            "report_done.html",
            lang,
            number=format_number(ticket.number),
            raw_number=ticket.number,
            status_url=self.settings.web_report.status_url,
            photo=bool(photos),
        )

    async def _read(self, request: web.Request) -> tuple[dict[str, str], Upload | None]:
        """The form's text fields and its photo, read with limits."""
        w = self.settings.web_report
        if request.content_type == "application/x-www-form-urlencoded":
            posted = await request.post()
            if posted.get("photo"):
                # a photo can only come as a file (multipart); as text it is not one
                gettext = self.deps.translations(self.language(request))
                raise FormError(
                    422, self._messages([FieldError("photo", PHOTO_NOT_IMAGE)], gettext)
                )
            return {
                k: v for k, v in posted.items() if isinstance(v, str) and k in TEXT_FIELDS
            }, None
        values: dict[str, str] = {}
        gettext = self.deps.translations(self.language(request))
        if request.content_type != "multipart/form-data":
            raise FormError(400, {}, general=gettext(UNREADABLE))
        length = request.content_length
        if length is not None and length > w.photo_max_bytes + TEXT_BYTES:
            # refused unread: the typed text is lost, so say which field was too big
            raise FormError(413, self._messages([_too_large(w.photo_max_bytes)], gettext))
        reader = await request.multipart()
        values = {}
        upload: Upload | None = None
        errors: list[FieldError] = []
        read_total = 0
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise FormError(400, {}, general=gettext(UNREADABLE))
            name = part.name or ""
            if name == "photo" and part.filename is not None:
                if upload is not None:
                    errors.append(FieldError("photo", NOT_ALLOWED, {}))
                    await part.release()
                    continue
                data, over = await _read_limited(part, w.photo_max_bytes)
                read_total += len(data)
                upload = Upload(part.filename, data, over)
                if over and length is None:
                    # no length said (chunked): stop reading what may never end
                    raise FormError(413, self._messages([_too_large(w.photo_max_bytes)], gettext))
                if over:
                    await part.release()  # bounded: the length was checked above
                continue
            if name == "photo":
                # a photo field sent as text is not a photo
                errors.append(FieldError("photo", PHOTO_NOT_IMAGE, {}))
                await part.release()
                continue
            if name not in TEXT_FIELDS:
                await part.release()
                continue
            raw, over = await _read_limited(part, FIELD_BYTES)
            read_total += len(raw)
            if read_total > w.photo_max_bytes + TEXT_BYTES:
                raise FormError(413, {}, general=gettext(UNREADABLE))
            try:
                text = raw.decode(part.get_charset("utf-8"))
            except (UnicodeDecodeError, LookupError):
                errors.append(FieldError(name, INVALID, {}))
                continue
            if name in values:
                errors.append(FieldError(name, INVALID, {}))
                continue
            values[name] = text
            if over:
                errors.append(FieldError(name, TOO_LONG, {"max": FIELD_BYTES}))
        if upload is not None and upload.over_limit:
            lang = self.language(request, values)
            gettext = self.deps.translations(lang)
            raise FormError(413, self._messages([_too_large(w.photo_max_bytes)], gettext))
        if errors:
            gettext = self.deps.translations(self.language(request, values))
            raise FormError(422, self._messages(errors, gettext))
        return values, upload

    def _check_person(self, values: dict[str, str], gettext: Any) -> None:
        """The honeypot is empty and the form was on screen long enough."""
        if values.get("website", "").strip():
            raise FormError(400, {}, general=gettext(HONEYPOT))
        age = self._started_age(values.get("started", ""))
        if age is None or age > FORM_MAX_AGE:
            raise FormError(400, {}, general=gettext(EXPIRED))
        if age < self.settings.web_report.min_fill_seconds:
            raise FormError(400, {}, general=gettext(TOO_FAST))

    def _ticket_data(
        self, values: dict[str, str], gettext: Any, districts: list[tuple[str, str]]
    ) -> dict[str, Any]:
        """The form's fields as the ticket service takes them, or FormError(422)."""
        w = self.settings.web_report
        errors: list[FieldError] = []
        description = values.get("description", "").strip()
        if description and len(description) < w.description_min:
            errors.append(FieldError("description", TOO_SHORT, {"min": w.description_min}))
        elif len(description) > w.description_max:
            errors.append(FieldError("description", TOO_LONG, {"max": w.description_max}))
        topic = values.get("topic", "").strip()
        if not topic:
            errors.append(FieldError("topic", REQUIRED, {}))
        elif topic not in {t.id for t in self.settings.tickets.topics}:
            errors.append(FieldError("topic", NOT_ALLOWED, {}))
        district: str | None = values.get("district", "").strip() or None
        if district == "other":
            district = values.get("district_other", "").strip() or None
            if district is not None and len(district) > DISTRICT_MAX:
                errors.append(FieldError("district_other", TOO_LONG, {"max": DISTRICT_MAX}))
        elif district is not None and district not in {code for code, _ in districts}:
            errors.append(FieldError("district", NOT_ALLOWED, {}))
        has_pin = bool(values.get("latitude", "").strip())
        if not values.get("address", "").strip() and not has_pin:
            errors.append(FieldError("address", PLACE_NEEDED, {}))
        data: dict[str, Any] = {
            "channel": Channel.WEB.value,
            "domain": Domain.STATE.value,
            "level": 2,
            "topic": topic,
            "description": description,
            "district": district,
            "latitude": values.get("latitude"),
            "longitude": values.get("longitude"),
            "publish_consent": values.get("publish_consent", "no"),
            "identity_consent": values.get("identity_consent", "no"),
            **{ticket: values.get(form) for form, ticket in FORM_TO_TICKET.items()},
        }
        try:
            validate(TicketCreate, data)
        except InvalidInput as e:
            seen = {er.field for er in errors}
            for er in e.errors:
                name = TICKET_TO_FORM.get(er.field, er.field)
                if name not in seen:
                    errors.append(FieldError(name, er.message, er.params))
        if errors:
            raise FormError(422, self._messages(errors, gettext))
        return data

    async def _photos(self, upload: Upload | None, gettext: Any) -> list[NewAttachment]:
        if upload is None or (not upload.data and not upload.filename):
            return []
        if not upload.data:  # a file input left empty sends an empty part
            return []
        w = self.settings.web_report
        try:
            # decoding is CPU work: not on the event loop
            photo = await asyncio.to_thread(
                check_photo,
                upload.data,
                max_bytes=w.photo_max_bytes,
                max_pixels=w.photo_max_pixels,
                original_name=upload.filename,
            )
        except InvalidInput as e:
            raise FormError(422, self._messages(e.errors, gettext)) from None
        return [photo]

    @staticmethod
    def _messages(errors: list[FieldError], gettext: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in errors:
            out.setdefault(TICKET_TO_FORM.get(e.field, e.field), gettext(e.message, **e.params))
        return out


def _too_large(max_bytes: int) -> FieldError:
    return too_large("photo", max_bytes).errors[0]


async def _read_limited(part: BodyPartReader, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of ``part``; True when it held more (the rest unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(64 * 1024)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)


def add_routes(app: web.Application, deps: ReportDeps, *, prefix: str = "/report") -> ReportForm:
    """Serve the report form at ``prefix`` on ``app`` (its page, its answer, the ALTCHA
    challenge and its own static files under ``prefix``/static)."""
    form = ReportForm(deps, prefix)
    p = form.prefix
    app.router.add_get(p, form.show)
    app.router.add_post(p, form.submit)
    app.router.add_get(f"{p}/altcha", form.challenge)
    app.router.add_static(f"{p}/static", HERE / "static")
    return form


def report_routes(app: web.Application) -> None:
    """The form on the public site, over its context's services (a route set of
    :data:`public.app.ROUTE_SETS`)."""
    c = app[PUBLIC_CTX]
    add_routes(
        app,
        ReportDeps(
            settings=c.settings,
            tickets=c.tickets,
            agencies=c.agencies,
            redis=c.bus.redis,
            redis_prefix=c.bus.prefix,
            clock=c.clock,
            translations=c.translations,
        ),
    )

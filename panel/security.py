"""Sign-in state, roles, CSRF and the mapping of domain errors to HTTP answers.

Every route declares the roles it serves with :func:`require`; a route that
does not is refused (``roles_checked`` asserts that at start).  Forms carry
the session's CSRF token in ``_csrf``; the JSON API takes it in the
``X-CSRF-Token`` header when it rides on the session cookie, or uses a bearer
token (``Authorization: Bearer``), which a browser never sends by itself.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from accounts.exceptions import AccountInvalid, UserNotFound
from accounts.identity import Actor
from accounts.models import Role
from accounts.service import STATE_CONFLICTS as ACCOUNT_CONFLICTS
from core.web import CSP as CSP
from core.web import client_address as client_address
from core.web import delegated, security_headers
from inbox.exceptions import MessageNotFound, MessageTaken, NotSendable
from panel.errors import PageError
from panel.keys import ACTOR, BEARER, ENROL_FIRST, GETTEXT, LANG, SESSION, USER
from panel.sessions import COOKIE
from qa.exceptions import QaConflict, QaNotFound
from tickets.exceptions import (
    STATE_CONFLICTS,
    AgencyNotFound,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    TicketNotFound,
    VersionConflict,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC = "public"


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def require(*roles: Role | str, before_enrolment: bool = False) -> Callable[[Handler], Handler]:
    """Let only signed-in users with one of ``roles`` in (``PUBLIC``: anyone).

    With ``panel.totp_required``, a user whose role needs a second factor and
    has none yet is sent to their account page to set it up: only handlers
    marked ``before_enrolment`` (that page, signing out) serve them until then.
    """
    allowed = {Role(r) for r in roles if r != PUBLIC}
    public = PUBLIC in roles

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not public:
                actor: Actor | None = request.get(ACTOR)
                if actor is None:
                    if is_api(request) or request.method != "GET":
                        raise json_error(401, "sign in first")
                    raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
                if actor.role not in allowed:
                    raise forbidden(request)
                if request.get(ENROL_FIRST) and not before_enrolment:
                    if is_api(request) or request.method != "GET":
                        raise json_error(
                            403, "turn on two-step sign-in first (on /account in the panel)"
                        )
                    raise web.HTTPSeeOther("/account")
            return await handler(request)

        guarded.roles = allowed  # type: ignore[attr-defined]
        guarded.public = public  # type: ignore[attr-defined]
        return guarded

    return wrap


def json_error(status: int, message: str, **extra: Any) -> web.HTTPException:
    body = json.dumps({"error": message, **extra}, ensure_ascii=False, default=str)
    cls = web.HTTPException
    for c in (
        web.HTTPBadRequest,
        web.HTTPUnauthorized,
        web.HTTPForbidden,
        web.HTTPNotFound,
        web.HTTPConflict,
        web.HTTPUnprocessableEntity,
        web.HTTPTooManyRequests,
        web.HTTPServiceUnavailable,
    ):
        if c.status_code == status:
            cls = c
            break
    return cls(text=body, content_type="application/json")


def forbidden(request: web.Request) -> web.HTTPException:
    _ = request[GETTEXT]
    if is_api(request):
        return json_error(403, "not allowed for your role")
    return web.HTTPForbidden(text=_("You are not allowed to do this."), content_type="text/plain")


def field_errors(request: web.Request, errors: list[Any]) -> dict[str, str]:
    """Domain field errors as {field: translated message}."""
    _ = request[GETTEXT]
    return {e.field: _(e.message, **(e.params or {})) for e in errors}


def account_errors(request: web.Request, exc: AccountInvalid) -> dict[str, str]:
    _ = request[GETTEXT]
    return {f: _(m, **p) for f, (m, p) in exc.errors.items()}


def roles_checked(app: web.Application) -> None:
    """Every route must say who may use it."""
    for route in app.router.routes():
        handler = route.handler
        if route.resource is None or getattr(route.resource, "canonical", "").startswith("/static"):
            continue
        if not hasattr(handler, "roles"):
            raise RuntimeError(f"route {route.method} {route.resource.canonical} has no @require")


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    security_headers(response)
    if request.get(ACTOR) is not None and not request.path.startswith("/static"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def make_auth_middleware(ctx: Any) -> Any:
    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if delegated(request):  # the public site under the panel: no staff session there
            return await handler(request)
        request[ACTOR] = None
        request[SESSION] = None
        request[BEARER] = False
        lang = request.cookies.get("hotline_lang") or ctx.settings.panel.language
        token = request.cookies.get(COOKIE)
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            request[BEARER] = True
        if not request.path.startswith("/static") and token:
            session = await ctx.sessions.get(token)
            if session is not None:
                try:
                    user = await ctx.accounts.get(session.user_id)
                except UserNotFound:
                    user = None
                if user is not None and user.active:
                    request[SESSION] = session
                    request[USER] = user
                    request[ACTOR] = Actor.of(user)
                    p = ctx.settings.panel
                    request[ENROL_FIRST] = (
                        p.totp_required and user.role in p.totp_roles and not user.totp_on
                    )
                    lang = session.language
        if lang not in ("vi", "en"):
            lang = ctx.settings.panel.language
        request[LANG] = lang
        request[GETTEXT] = ctx.i18n.gettext(lang)
        if request.method in UNSAFE and request[SESSION] is not None and not request[BEARER]:
            sent = request.headers.get("X-CSRF-Token")
            if sent is None and request.content_type in (
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                sent = (await request.post()).get("_csrf")  # type: ignore[assignment]
            if not isinstance(sent, str) or not hmac.compare_digest(sent, request[SESSION].csrf):
                raise (
                    json_error(403, "missing or wrong CSRF token")
                    if is_api(request)
                    else web.HTTPForbidden(
                        text=request[GETTEXT](
                            "The form has expired. Reload the page and try again."
                        ),
                        content_type="text/plain",
                    )
                )
        return await handler(request)

    return auth_middleware


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become clear HTTP answers; nothing leaks a traceback."""
    if delegated(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (TicketNotFound, AgencyNotFound, UserNotFound, QaNotFound) as e:
        raise _answer(request, 404, str(e)) from None
    except QaConflict as e:
        raise _answer(request, 409, str(e), reason=e.reason) from None
    except (Forbidden, PermissionError) as e:
        log.info("refused %s %s: %s", request.method, request.path, e)
        raise forbidden(request) from None
    except VersionConflict as e:
        raise _answer(
            request,
            409,
            request[GETTEXT](
                "Someone else changed this ticket meanwhile. Reload it to see their change, "
                "then apply yours again."
            ),
            current_version=getattr(e, "actual", None),
        ) from None
    except InvalidTransition as e:
        raise _answer(
            request,
            409,
            request[GETTEXT]("This action is not possible in the ticket's status."),
            detail=str(e),
        ) from None
    except MessageNotFound as e:
        raise _answer(request, 404, str(e)) from None
    except MessageTaken as e:
        raise _answer(
            request, 409, "the message is someone else's, or already decided", detail=str(e)
        ) from None
    except NotSendable as e:
        raise _answer(request, 422, "invalid input", fields={e.field: e.problem}) from None
    except InvalidInput as e:
        conflict = all(f.message in STATE_CONFLICTS for f in e.errors)
        raise _answer(
            request,
            409 if conflict and is_api(request) else 422,
            "conflicts with what is stored" if conflict else "invalid input",
            fields=field_errors(request, e.errors),
        ) from None
    except AccountInvalid as e:
        conflict = all(m in ACCOUNT_CONFLICTS for m, _p in e.errors.values())
        raise _answer(
            request,
            409 if conflict and is_api(request) else 422,
            "conflicts with what is stored" if conflict else "invalid input",
            fields=account_errors(request, e),
        ) from None


def _answer(request: web.Request, status: int, message: str, **extra: Any) -> web.HTTPException:
    if is_api(request):
        return json_error(status, message, **extra)
    # a page (panel/errors.py): a conflict's message is translated; the others are
    # the API's English words, and the error page explains their status itself
    return PageError(status, detail=message if status == 409 else None, fields=extra.get("fields"))

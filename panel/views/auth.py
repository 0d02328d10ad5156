"""Signing in and out, the language switch, and the user's own account page."""

from __future__ import annotations

import math
import secrets

from aiohttp import web
from multidict import MultiDictProxy

from accounts import totp
from accounts.exceptions import (
    AccountDisabled,
    AccountInvalid,
    AccountLocked,
    AddressBlocked,
    CodeRejected,
    SecondFactorRequired,
    SignInFailed,
    UserNotFound,
)
from accounts.models import User
from panel.keys import ACTOR, ENROL_FIRST, GETTEXT, SESSION
from panel.security import PUBLIC, account_errors, client_address, forbidden, require
from panel.sessions import COOKIE, PENDING_COOKIE, PENDING_SECONDS
from panel.views.common import ctx, flash_redirect, form, home_for, render, safe_next

PRE_CSRF = "hotline_login_csrf"


def _cookie_args(request: web.Request) -> dict[str, object]:
    return {
        "httponly": True,
        "samesite": "Lax",
        "secure": ctx(request).settings.panel.secure_cookies,
        "path": "/",
    }


@require(PUBLIC)
async def index(request: web.Request) -> web.StreamResponse:
    actor = request[ACTOR]
    raise web.HTTPSeeOther(home_for(actor.role) if actor else "/login")


@require(PUBLIC)
async def login_page(request: web.Request) -> web.StreamResponse:
    if request[ACTOR] is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next"), home_for(request[ACTOR].role)))
    return _login_form(request)


def _login_form(
    request: web.Request,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    *,
    code_step: bool = False,
) -> web.Response:
    """The sign-in form; ``code_step``: its second step, asking for the app's code."""
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        username=username,
        login_csrf=token,
        code_step=code_step,
        next=safe_next(request.query.get("next"), ""),
    )
    response.set_cookie(PRE_CSRF, token, max_age=3600, **_cookie_args(request))  # type: ignore[arg-type]
    if not code_step:
        response.del_cookie(PENDING_COOKIE, path="/")
    return response


def _refused(
    request: web.Request, e: AddressBlocked | AccountLocked, username: str
) -> web.Response:
    _ = request[GETTEXT]
    left = (e.until - ctx(request).clock.now()).total_seconds()
    minutes = max(1, math.ceil(left / 60))
    if isinstance(e, AddressBlocked):
        msg = _(
            "Too many failed sign-ins from this computer. Try again in {minutes} minutes.",
            minutes=minutes,
        )
    else:
        msg = _("Too many failed sign-ins. Try again in {minutes} minutes.", minutes=minutes)
    return _login_form(request, msg, username, status=429)


async def _signed_in(request: web.Request, user: User, target: str) -> web.HTTPSeeOther:
    session = await ctx(request).sessions.create(user.id, user.language)
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, session.token, **_cookie_args(request))  # type: ignore[arg-type]
    response.del_cookie(PRE_CSRF, path="/")
    response.del_cookie(PENDING_COOKIE, path="/")
    return response


def _csrf_ok(request: web.Request, data: MultiDictProxy[str]) -> bool:
    sent = data.get("_csrf", "")
    expected = request.cookies.get(PRE_CSRF, "")
    return bool(expected) and secrets.compare_digest(str(sent), expected)


@require(PUBLIC)
async def login(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = await form(request)
    if not _csrf_ok(request, data):
        return _login_form(request, _("The form has expired. Please sign in again."), status=403)
    username = data.get("username", "")[:64]
    c = ctx(request)
    address = client_address(request, c.settings.panel.trusted_proxies)
    target = safe_next(data.get("next"), "")
    try:
        user = await c.accounts.authenticate(username, data.get("password", "")[:256], address)
    except (AddressBlocked, AccountLocked) as e:
        return _refused(request, e, username)
    except SignInFailed:
        return _login_form(request, _("Wrong user name or password."), username, status=401)
    except AccountDisabled:
        msg = _("This account has been deactivated. Ask an administrator.")
        return _login_form(request, msg, username, status=403)
    except SecondFactorRequired as e:
        # the password was right: the account waits server-side for its code
        pending = await c.sessions.begin_pending(e.user_id, target)
        response = _login_form(request, username=username, code_step=True)
        response.set_cookie(
            PENDING_COOKIE,
            pending,
            max_age=PENDING_SECONDS,
            **_cookie_args(request),  # type: ignore[arg-type]
        )
        return response
    raise await _signed_in(request, user, target or home_for(user.role))


@require(PUBLIC)
async def login_code(request: web.Request) -> web.StreamResponse:
    """The sign-in's second step: the code from the authenticator app."""
    _ = request[GETTEXT]
    data = await form(request)
    c = ctx(request)
    if not _csrf_ok(request, data):
        return _login_form(request, _("The form has expired. Please sign in again."), status=403)
    token = request.cookies.get(PENDING_COOKIE)
    pending = await c.sessions.pending(token)
    if pending is None:
        msg = _("The sign-in took too long. Please enter your password again.")
        return _login_form(request, msg, status=401)
    user_id, target = pending
    address = client_address(request, c.settings.panel.trusted_proxies)
    try:
        user = await c.accounts.second_step(user_id, data.get("code", "")[:20], address)
    except (AddressBlocked, AccountLocked) as e:
        await c.sessions.end_pending(token)
        return _refused(request, e, "")
    except CodeRejected:
        msg = _("Wrong code, or a code already used. Type the code the app shows now.")
        return _login_form(request, msg, status=401, code_step=True)
    except (AccountDisabled, UserNotFound):
        await c.sessions.end_pending(token)
        msg = _("This account has been deactivated. Ask an administrator.")
        return _login_form(request, msg, status=403)
    await c.sessions.end_pending(token)
    raise await _signed_in(request, user, target or home_for(user.role))


@require("agent", "supervisor", "admin", "agency", "oversight", before_enrolment=True)
async def logout(request: web.Request) -> web.StreamResponse:
    await ctx(request).sessions.delete(request[SESSION].token)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


@require(PUBLIC)
async def language(request: web.Request) -> web.StreamResponse:
    data = await form(request)
    lang = data.get("language", "vi")
    if lang not in ("vi", "en"):
        lang = "vi"
    response = web.HTTPSeeOther(safe_next(data.get("back"), "/"))
    session = request[SESSION]
    if session is not None:
        session.language = lang
        await ctx(request).sessions.save(session)
        await ctx(request).accounts.update_user(
            request[ACTOR], request[ACTOR].id, {"language": lang}
        )
    response.set_cookie("hotline_lang", lang, max_age=365 * 86400, samesite="Lax", path="/")
    raise response


async def _account(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    c = ctx(request)
    actor = request[ACTOR]
    user = await c.accounts.get(actor.id)
    values: dict[str, object] = {
        "errors": {},
        "totp_secret": None,
        "totp_allowed": c.accounts.totp_allowed(actor),
        "totp_on": user.totp_on,
        "enrol_first": request.get(ENROL_FIRST, False),
        **extra,
    }
    secret = values.get("totp_secret")
    if isinstance(secret, str):
        # shown while the second factor is being set up, never once it is on
        link = totp.uri(secret, user.username)
        values["totp_uri"] = link
        values["totp_qr"] = totp.qr_svg(link)
    return render(request, "account.html", status=status, **values)


@require("agent", "supervisor", "admin", "agency", "oversight", before_enrolment=True)
async def account_page(request: web.Request) -> web.StreamResponse:
    return await _account(request)


@require("agent", "supervisor", "admin", "agency", "oversight", before_enrolment=True)
async def totp_begin(request: web.Request) -> web.StreamResponse:
    """A new secret for the user's app, shown once; off until a code from it is typed."""
    try:
        secret = await ctx(request).accounts.begin_totp(request[ACTOR])
    except PermissionError:
        raise forbidden(request) from None
    except AccountInvalid as e:
        return await _account(request, 409, errors=account_errors(request, e))
    return await _account(request, totp_secret=secret)


@require("agent", "supervisor", "admin", "agency", "oversight", before_enrolment=True)
async def totp_confirm(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = await form(request)
    accounts = ctx(request).accounts
    try:
        await accounts.confirm_totp(request[ACTOR], data.get("code", "")[:20])
    except PermissionError:
        raise forbidden(request) from None
    except AccountInvalid as e:
        pending = await accounts.pending_totp(request[ACTOR])
        return await _account(request, 422, errors=account_errors(request, e), totp_secret=pending)
    raise flash_redirect("/account", _("Two-step sign-in is on."))


@require("agent", "supervisor", "admin", "agency", "oversight", before_enrolment=True)
async def change_password(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = await form(request)
    errors: dict[str, str] = {}
    if data.get("new_password", "") != data.get("repeat_password", ""):
        errors["repeat_password"] = _("does not match the new password")
    else:
        try:
            await ctx(request).accounts.set_password(
                request[ACTOR],
                request[ACTOR].id,
                data.get("new_password", ""),
                current=data.get("current_password", ""),
            )
        except AccountInvalid as e:
            errors = account_errors(request, e)
            if "password" in errors:
                errors["new_password"] = errors.pop("password")
    if errors:
        return await _account(request, 422, errors=errors)
    raise flash_redirect("/account", _("Password changed."))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", index),
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/login/code", login_code),
        web.post("/logout", logout),
        web.post("/language", language),
        web.get("/account", account_page),
        web.post("/account/password", change_password),
        web.post("/account/totp", totp_begin),
        web.post("/account/totp/confirm", totp_confirm),
    ]

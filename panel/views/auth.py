"""Signing in and out, the language switch, and the user's own account page."""

from __future__ import annotations

import math
import secrets

from aiohttp import web

from accounts.exceptions import (
    AccountDisabled,
    AccountInvalid,
    AccountLocked,
    AddressBlocked,
    SignInFailed,
)
from panel.keys import ACTOR, GETTEXT, SESSION
from panel.security import PUBLIC, account_errors, client_address, require
from panel.sessions import COOKIE
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
    request: web.Request, error: str | None = None, username: str = "", status: int = 200
) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        username=username,
        login_csrf=token,
        next=safe_next(request.query.get("next"), ""),
    )
    response.set_cookie(PRE_CSRF, token, max_age=3600, **_cookie_args(request))  # type: ignore[arg-type]
    return response


@require(PUBLIC)
async def login(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = await form(request)
    sent, expected = data.get("_csrf", ""), request.cookies.get(PRE_CSRF, "")
    if not expected or not secrets.compare_digest(sent, expected):
        return _login_form(request, _("The form has expired. Please sign in again."), status=403)
    username = data.get("username", "")[:64]
    address = client_address(request, ctx(request).settings.panel.trusted_proxies)
    try:
        user = await ctx(request).accounts.authenticate(
            username, data.get("password", "")[:256], address
        )
    except AddressBlocked as e:
        left = (e.until - ctx(request).clock.now()).total_seconds()
        msg = _(
            "Too many failed sign-ins from this computer. Try again in {minutes} minutes.",
            minutes=max(1, math.ceil(left / 60)),
        )
        return _login_form(request, msg, username, status=429)
    except AccountLocked as e:
        left = (e.until - ctx(request).clock.now()).total_seconds()
        minutes = max(1, math.ceil(left / 60))
        msg = _("Too many failed sign-ins. Try again in {minutes} minutes.", minutes=minutes)
        return _login_form(request, msg, username, status=429)
    except SignInFailed:
        return _login_form(request, _("Wrong user name or password."), username, status=401)
    except AccountDisabled:
        msg = _("This account has been deactivated. Ask an administrator.")
        return _login_form(request, msg, username, status=403)
    session = await ctx(request).sessions.create(user.id, user.language)
    target = safe_next(data.get("next"), home_for(user.role))
    response = web.HTTPSeeOther(target)
    response.set_cookie(COOKIE, session.token, **_cookie_args(request))  # type: ignore[arg-type]
    response.del_cookie(PRE_CSRF, path="/")
    raise response


@require("agent", "supervisor", "admin", "agency")
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


@require("agent", "supervisor", "admin", "agency")
async def account_page(request: web.Request) -> web.StreamResponse:
    return render(request, "account.html", errors={})


@require("agent", "supervisor", "admin", "agency")
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
        return render(request, "account.html", status=422, errors=errors)
    raise flash_redirect("/account", _("Password changed."))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", index),
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.post("/language", language),
        web.get("/account", account_page),
        web.post("/account/password", change_password),
    ]

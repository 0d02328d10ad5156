"""Admins' screens: accounts and the agency directory (supervisors may read the directory)."""

from __future__ import annotations

from aiohttp import web

from accounts.apikeys import ApiKeyError
from accounts.exceptions import AccountInvalid
from accounts.models import Role
from panel.keys import ACTOR, GETTEXT
from panel.security import account_errors, client_address, field_errors, require
from panel.views.common import ctx, flash_redirect, form, form_dict, render
from tickets.exceptions import InvalidInput
from tickets.models import AgencyKind

USER_FIELDS = ("username", "display_name", "role", "password", "extension", "agency_id", "language")
AGENCY_FIELDS = ("parent_id", "kind", "code", "name", "contact_name", "phone", "email", "address")


async def _users_page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    c = ctx(request)
    return render(
        request,
        "users.html",
        status=status,
        users=await c.accounts.list_users(),
        roles=list(Role),
        agencies=await c.agencies.list(),
        # agents' phones, then the supervisors' desk phones (for supervisor and admin accounts)
        agent_extensions=[(a.extension, a.name) for a in c.settings.agents]
        + [(p.extension, p.name) for p in c.settings.supervision.phones],
        **{"errors": {}, "values": {}, **extra},
    )


@require("admin")
async def users(request: web.Request) -> web.StreamResponse:
    return await _users_page(request)


def _clean_user(data: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {k: v for k, v in data.items() if v != ""}
    if str(out.get("agency_id", "")).isdigit():
        out["agency_id"] = int(str(out["agency_id"]))
    return out


@require("admin")
async def create_user(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = form_dict(await form(request), *USER_FIELDS)
    try:
        user = await ctx(request).accounts.create_user(request[ACTOR], _clean_user(data))
    except AccountInvalid as e:
        data.pop("password", None)
        return await _users_page(request, 422, errors=account_errors(request, e), values=data)
    raise flash_redirect("/admin/users", _("Account {name} created.", name=user.username))


@require("admin")
async def update_user(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    user_id = int(request.match_info["id"])
    data = await form(request)
    what = data.get("do", "save")
    try:
        if what == "password":
            await c.accounts.set_password(request[ACTOR], user_id, data.get("password", ""))
        elif what == "unlock":
            await c.accounts.unlock(request[ACTOR], user_id)
        elif what == "reset_totp":
            await c.accounts.reset_totp(request[ACTOR], user_id)
        else:
            fields: dict[str, object] = _clean_user(
                form_dict(data, "display_name", "role", "extension", "agency_id", "language")
            )
            fields["active"] = data.get("active") == "1"
            if user_id == request[ACTOR].id and (
                not fields["active"] or fields.get("role") != "admin"
            ):
                raise AccountInvalid({"role": ("you cannot remove your own admin access", {})})
            await c.accounts.update_user(request[ACTOR], user_id, fields)
    except AccountInvalid as e:
        return await _users_page(request, 422, errors=account_errors(request, e), editing=user_id)
    raise flash_redirect("/admin/users", _("Saved."))


async def _agencies_page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    c = ctx(request)
    return render(
        request,
        "agencies.html",
        status=status,
        tree=await c.agencies.tree(),
        agencies=await c.agencies.list(include_inactive=True),
        kinds=list(AgencyKind),
        **{"errors": {}, "values": {}, "editing": None, **extra},
    )


@require("supervisor", "admin")
async def agencies(request: web.Request) -> web.StreamResponse:
    editing = None
    if request.query.get("edit", "").isdigit():
        editing = await ctx(request).agencies.get(int(request.query["edit"]))
    return await _agencies_page(request, editing=editing)


def _clean_agency(data: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = dict(data)
    out["parent_id"] = int(data["parent_id"]) if data.get("parent_id", "").isdigit() else None
    return out


@require("admin")
async def create_agency(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    data = form_dict(await form(request), *AGENCY_FIELDS)
    try:
        agency = await ctx(request).agencies.create(request[ACTOR], _clean_agency(data))
    except InvalidInput as e:
        return await _agencies_page(
            request, 422, errors=field_errors(request, e.errors), values=data
        )
    message = _("Agency {name} added.", name=agency.name)
    raise flash_redirect("/agencies", _code_note(request, message, data.get("code"), agency.code))


def _code_note(request: web.Request, message: str, typed: str | None, kept: str) -> str:
    """``message``, and what became of the code typed when it is not kept as typed."""
    _ = request[GETTEXT]
    if typed is None or typed.strip() == kept:
        return message
    note = _("The code is saved as “{code}”: codes are kept in lower case.", code=kept)
    return f"{message} {note}"


@require("admin")
async def update_agency(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    agency_id = int(request.match_info["id"])
    raw = await form(request)
    data = form_dict(raw, *AGENCY_FIELDS)
    version = int(raw["version"]) if raw.get("version", "").isdigit() else 0
    try:
        if raw.get("do") == "deactivate":
            await c.agencies.deactivate(request[ACTOR], agency_id, version)
            typed, kept = None, ""
        else:
            agency = await c.agencies.update(
                request[ACTOR], agency_id, version, _clean_agency(data)
            )
            typed, kept = data.get("code"), agency.code
    except InvalidInput as e:
        return await _agencies_page(
            request,
            422,
            errors=field_errors(request, e.errors),
            values=data,
            editing=await c.agencies.get(agency_id),
        )
    raise flash_redirect("/agencies", _code_note(request, _("Saved."), typed, kept))


async def _keys_page(request: web.Request, status: int = 200, **extra: object) -> web.Response:
    response = render(
        request,
        "api_keys.html",
        status=status,
        keys=await ctx(request).api_keys.list(),
        **{"errors": {}, "values": {}, "issued": None, **extra},
    )
    # the page right after issuing shows the key: never kept by a browser or a proxy
    response.headers["Cache-Control"] = "no-store"
    return response


@require("admin")
async def api_keys(request: web.Request) -> web.StreamResponse:
    return await _keys_page(request)


def _key_error(request: web.Request, e: ApiKeyError) -> dict[str, str]:
    _ = request[GETTEXT]
    messages = {
        "name": _(
            "Give the name of the program or partner the key is for (at most 100 characters)."
        ),
        "key_id": _("No such active key."),
    }
    return {e.field: messages.get(e.field, e.message)}


@require("admin")
async def issue_api_key(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    data = form_dict(await form(request), "name")
    address = client_address(request, c.settings.panel.trusted_proxies)
    try:
        issued = await c.api_keys.issue(request[ACTOR], data.get("name", ""), address=address)
    except ApiKeyError as e:
        return await _keys_page(request, 422, errors=_key_error(request, e), values=data)
    # rendered, not redirected: the key is shown this once and goes in no cookie
    return await _keys_page(request, issued=issued)


@require("admin")
async def revoke_api_key(request: web.Request) -> web.StreamResponse:
    _ = request[GETTEXT]
    c = ctx(request)
    address = client_address(request, c.settings.panel.trusted_proxies)
    try:
        key = await c.api_keys.revoke(request[ACTOR], request.match_info["key_id"], address=address)
    except ApiKeyError as e:
        return await _keys_page(request, 422, errors=_key_error(request, e))
    raise flash_redirect("/admin/api-keys", _("Key {key} revoked.", key=key.key_id))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/users", users),
        web.post("/admin/users", create_user),
        web.post("/admin/users/{id:\\d+}", update_user),
        web.get("/admin/api-keys", api_keys),
        web.post("/admin/api-keys", issue_api_key),
        web.post("/admin/api-keys/{key_id:[0-9a-f]{1,24}}/revoke", revoke_api_key),
        web.get("/agencies", agencies),
        web.post("/agencies", create_agency),
        web.post("/agencies/{id:\\d+}", update_agency),
    ]

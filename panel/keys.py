"""What the middlewares put on each request, as typed keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from accounts.identity import Actor
from accounts.models import User
from panel.sessions import Session

ACTOR = web.RequestKey("actor", Actor | None)  # type: ignore[arg-type]
USER = web.RequestKey("user", User)
SESSION = web.RequestKey("session", Session | None)  # type: ignore[arg-type]
BEARER = web.RequestKey("bearer", bool)
LANG = web.RequestKey("lang", str)
# gettext for the request's language: _("text", **params)
GETTEXT = web.RequestKey("gettext", Callable[..., str])  # type: ignore[arg-type]
FLASH_USED = web.RequestKey("flash_used", bool)
# signed in, but must turn on the second factor before anything else
# (panel.totp_required)
ENROL_FIRST = web.RequestKey("enrol_first", bool)

__all__ = [
    "ACTOR",
    "USER",
    "SESSION",
    "BEARER",
    "LANG",
    "GETTEXT",
    "FLASH_USED",
    "ENROL_FIRST",
    "Any",
]

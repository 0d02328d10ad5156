"""What the public site's middlewares and application hold, as typed keys."""

from __future__ import annotations

from collections.abc import Callable

import jinja2
from aiohttp import web

LANG = web.RequestKey("public_lang", str)
# gettext for the request's language: _("text", **params)
GETTEXT = web.RequestKey("public_gettext", Callable[..., str])  # type: ignore[arg-type]
# the path the site is served under ("" on its own address, e.g. "/public" under the panel)
BASE = web.AppKey("public_base", str)
JINJA = web.AppKey("public_jinja", jinja2.Environment)

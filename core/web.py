"""What every web face of the hotline shares: its security headers and the client's address.

The staff panel and the public site answer with the same strict
Content-Security-Policy (only this site's own scripts, styles, images and
forms; no frame may hold a page) and the same companion headers, from
:func:`security_headers`.  :func:`client_address` names the client behind a
trusted reverse proxy, for the panel's sign-in throttle and the public
status page's alike.

A sub-application mounted under the panel (the public site with
``public.path_prefix``) runs its own middlewares: the panel's sign-in,
error pages and flash messages leave its requests alone
(:func:`delegated`), so no staff session cookie is ever read there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; media-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)

#: Set on a sub-application that handles its requests with its own middlewares.
OWN_MIDDLEWARES = web.AppKey("own_middlewares", bool)


def security_headers(response: web.StreamResponse) -> None:
    """The headers every page carries (those already set are kept)."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")


def delegated(request: web.Request) -> bool:
    """Whether the request is routed into a sub-application with its own middlewares."""
    apps: Sequence[web.Application] = request.match_info.apps
    return any(app.get(OWN_MIDDLEWARES, False) for app in apps[1:])


def client_address(
    request: web.Request, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str | None:
    """The client's address: the peer's, or, when the peer is one of the
    ``trusted`` proxies, the last address in X-Forwarded-For that is not one of
    them (the one the proxy saw; earlier ones are the client's own say)."""
    peer = (request.remote or "").split("%", 1)[0] or None
    if peer is None or not trusted:
        return peer

    def is_trusted(text: str) -> bool:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # not an address: the proxy's word is all we have
    return peer

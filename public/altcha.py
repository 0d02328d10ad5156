"""ALTCHA: a proof-of-work check that the report form was sent by a browser a person uses.

No outside service: the form's page fetches a challenge from us
(:meth:`Altcha.challenge`), the vendored widget (npm ``altcha``, public/static/vendor)
solves it in a Web Worker, and the form carries the solution back.  The server
side is the ALTCHA project's own library (PyPI ``altcha``, its v2 protocol, the one the
widget 3.x speaks): challenges are signed with HMAC-SHA-256 under
``settings.form_secret`` and carry an expiry, so we keep no state to issue them.

A solved challenge would verify again until it expires; so each one's nonce is
remembered in Redis until then and a second use is refused (one solution, one report).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import altcha as altcha_lib
import redis.asyncio as aioredis

from core.settings import Settings

log = logging.getLogger(__name__)

ALGORITHM = "PBKDF2/SHA-256"


class Altcha:
    def __init__(self, settings: Settings, secret: str, redis: aioredis.Redis, prefix: str):
        self.settings = settings
        self.secret = secret
        self.redis = redis
        self.prefix = prefix

    def challenge(self, now: float | None = None) -> dict[str, Any]:
        """A new signed challenge, as the widget fetches it (JSON)."""
        w = self.settings.web_report
        expires = int((now if now is not None else time.time()) + w.altcha_expire_minutes * 60)
        c = altcha_lib.create_challenge(
            ALGORITHM, w.altcha_cost, expires_at=expires, hmac_secret=self.secret
        )
        return c.to_dict()

    async def verify(self, payload: str | None) -> bool:
        """Whether ``payload`` (the widget's field, base64 JSON) solves one of our
        challenges, unexpired and not used before.  PBKDF2 runs once: cheap."""
        if not payload or len(payload) > 10_000:
            return False
        result = altcha_lib.verify_solution(payload, self.secret)
        if not result.verified:
            log.info(
                "altcha refused: expired=%s signature=%s solution=%s %s",
                result.expired,
                result.invalid_signature,
                result.invalid_solution,
                result.error or "",
            )
            return False
        try:
            params = json.loads(base64.b64decode(payload))["challenge"]["parameters"]
            nonce, expires = str(params["nonce"]), int(params.get("expiresAt") or 0)
        except (ValueError, KeyError, TypeError):
            return False
        ttl = max(1, expires - int(time.time()) + 1)
        first = await self.redis.set(f"{self.prefix}:altcha:{nonce}", "1", nx=True, ex=ttl)
        if not first:
            log.info("altcha refused: a solution used twice")
        return bool(first)

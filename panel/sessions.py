"""Server-side sessions in Redis, shared by every panel process.

The cookie holds only a random token (HttpOnly, SameSite=Lax); the session
(user id, CSRF token, language) lives in Redis and expires after
``panel.session_hours`` of inactivity.  Signing out deletes it, and an admin
deactivating an account ends that user's sessions at their next request
(every request reloads the user).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

from core.bus import Bus

COOKIE = "hotline_session"
# the sign-in waiting for its second-factor code (a random token)
PENDING_COOKIE = "hotline_signin"
PENDING_SECONDS = 300


@dataclass
class Session:
    token: str
    user_id: int
    csrf: str
    language: str


class SessionStore:
    def __init__(self, bus: Bus, ttl_seconds: int) -> None:
        self.bus = bus
        self.ttl = ttl_seconds

    def _key(self, token: str) -> str:
        return self.bus.key("session", token)

    async def create(self, user_id: int, language: str) -> Session:
        s = Session(secrets.token_urlsafe(32), user_id, secrets.token_urlsafe(24), language)
        await self.bus.redis.set(self._key(s.token), json.dumps(asdict(s)), ex=self.ttl)
        return s

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 100:
            return None
        key = self._key(token)
        raw = await self.bus.redis.getex(key, ex=self.ttl)
        if not raw:
            return None
        return Session(**json.loads(raw))

    async def save(self, s: Session) -> None:
        await self.bus.redis.set(self._key(s.token), json.dumps(asdict(s)), ex=self.ttl)

    async def delete(self, token: str) -> None:
        await self.bus.redis.delete(self._key(token))

    # -- a sign-in waiting for its second-factor code -------------------
    # The right password was given for an account with a second factor: which
    # account, and where to go next, wait here for the code (the cookie holds
    # only a random token), for at most PENDING_SECONDS.
    async def begin_pending(self, user_id: int, next_url: str) -> str:
        token = secrets.token_urlsafe(32)
        value = json.dumps({"user_id": user_id, "next": next_url})
        await self.bus.redis.set(self._pending_key(token), value, ex=PENDING_SECONDS)
        return token

    async def pending(self, token: str | None) -> tuple[int, str] | None:
        """The account waiting for its code and where it goes next (None: expired)."""
        if not token or len(token) > 100:
            return None
        raw = await self.bus.redis.get(self._pending_key(token))
        if not raw:
            return None
        data = json.loads(raw)
        return int(data["user_id"]), str(data["next"])

    async def end_pending(self, token: str | None) -> None:
        if token and len(token) <= 100:
            await self.bus.redis.delete(self._pending_key(token))

    def _pending_key(self, token: str) -> str:
        return self.bus.key("signin-pending", token)

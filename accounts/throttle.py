"""Sign-in failures counted per client address and per account name, in Redis.

The account lockout (``panel.lockout_attempts`` failures within
``panel.lockout_minutes``) protects a password from guessing; alone it also
lets anyone lock every agent out by trying their names.  So failures are
counted per address as well, over the same sliding window, and an address
is refused once it reaches ``panel.signin_address_attempts``, which must be
below the lockout: one address can never reach an account's lockout by
itself, only the account's owner (who signs in and clears the count) or
many addresses at once.  Addresses in ``panel.signin_exempt_networks`` (an
office behind one NAT address) are not limited, and can lock accounts.

Counts live in Redis sorted sets (one timestamp per failure, trimmed to the
window), so every panel process sees the same counts and a restart forgets
nothing; names without an account are counted and locked like real ones.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from core.settings import Settings


class SignInThrottle:
    def __init__(self, redis: aioredis.Redis, prefix: str, settings: Settings) -> None:
        self.redis = redis
        self.prefix = prefix
        self.settings = settings

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.settings.panel.lockout_minutes)

    def _key(self, kind: str, who: str) -> str:
        return f"{self.prefix}:signin:{kind}:{who}"

    def limited(self, address: str | None) -> bool:
        """Whether failures from ``address`` are counted against it."""
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True
        return not any(ip in net for net in self.settings.panel.signin_exempt_networks)

    async def _count(self, key: str, now: datetime) -> tuple[int, float | None]:
        """Failures within the window, and when the oldest of them was (epoch)."""
        since = (now - self.window).timestamp()
        async with self.redis.pipeline(transaction=True) as p:
            p.zremrangebyscore(key, "-inf", since)
            p.zcard(key)
            p.zrange(key, 0, 0, withscores=True)
            _, n, oldest = await p.execute()
        return int(n), (float(oldest[0][1]) if oldest else None)

    async def address_blocked(self, address: str | None, now: datetime) -> datetime | None:
        """Until when ``address`` is refused (None: it may try)."""
        if not self.limited(address):
            return None
        n, oldest = await self._count(self._key("addr", str(address)), now)
        if n < self.settings.panel.address_attempts or oldest is None:
            return None
        return datetime.fromtimestamp(oldest, now.tzinfo) + self.window

    async def name_locked(self, name: str, now: datetime) -> datetime | None:
        """Until when a name without an account is locked (as a real one would be)."""
        raw = await self.redis.get(self._key("lock", name))
        if raw is None:
            return None
        until = datetime.fromisoformat(raw)
        return until if until > now else None

    async def failed(self, name: str, address: str | None, now: datetime) -> int:
        """Count one failure; the name's failures within the window."""
        member = f"{now.timestamp()}:{uuid.uuid4().hex[:8]}"
        ttl = int(self.window.total_seconds()) + 60
        async with self.redis.pipeline(transaction=True) as p:
            for key in (
                self._key("name", name),
                *([self._key("addr", str(address))] if self.limited(address) else []),
            ):
                p.zadd(key, {member: now.timestamp()})
                p.expire(key, ttl)
            await p.execute()
        n, _ = await self._count(self._key("name", name), now)
        return n

    async def lock_name(self, name: str, until: datetime) -> None:
        ttl = max(1, int(until.timestamp() - datetime.now(until.tzinfo).timestamp()) + 1)
        await self.redis.set(self._key("lock", name), until.isoformat(), ex=ttl)
        await self.redis.delete(self._key("name", name))

    async def succeeded(self, name: str) -> None:
        await self.redis.delete(self._key("name", name))

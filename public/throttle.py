"""Status look-ups that matched nothing, counted per client address in Redis.

A tracking number has a check digit, so a typo is caught without a look-up;
what is left to guess is the last three digits of the phone (a thousand
choices) or the email.  So look-ups that matched no report are counted per
client address over a sliding window (``public.lookup_minutes``), and an
address that reaches ``public.lookup_attempts`` is refused, even a right
look-up, until the oldest of its failures leaves the window: the answer says
how many minutes that is.

Counts live in Redis sorted sets (one timestamp per failure, trimmed to the
window), as ``accounts.throttle`` counts sign-in failures: every process
sees the same counts and a restart forgets nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from core.settings import Settings


class LookupThrottle:
    def __init__(self, redis: aioredis.Redis, prefix: str, settings: Settings) -> None:
        self.redis = redis
        self.prefix = prefix
        self.settings = settings

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.settings.public.lookup_minutes)

    def _key(self, address: str | None) -> str:
        # no address (a Unix socket, a test client): one shared count, never none
        return f"{self.prefix}:public:lookup:{address or 'unknown'}"

    async def blocked_until(self, address: str | None, now: datetime) -> datetime | None:
        """Until when ``address`` is refused (None: it may look up).

        One command for an address under the limit (every right look-up asks
        this): the failures within the window are counted, not trimmed;
        ``failed`` trims the old ones as it adds.
        """
        key = self._key(address)
        since = (now - self.window).timestamp()
        n = await self.redis.zcount(key, f"({since}", "+inf")
        if int(n) < self.settings.public.lookup_attempts:
            return None
        oldest = await self.redis.zrangebyscore(
            key, f"({since}", "+inf", start=0, num=1, withscores=True
        )
        if not oldest:  # the window moved on between the two commands
            return None
        return datetime.fromtimestamp(float(oldest[0][1]), now.tzinfo) + self.window

    async def failed(self, address: str | None, now: datetime) -> None:
        """Count one look-up that matched nothing (and forget those past the window)."""
        key = self._key(address)
        member = f"{now.timestamp()}:{uuid.uuid4().hex[:8]}"
        since = (now - self.window).timestamp()
        async with self.redis.pipeline(transaction=True) as p:
            p.zremrangebyscore(key, "-inf", since)
            p.zadd(key, {member: now.timestamp()})
            p.expire(key, int(self.window.total_seconds()) + 60)
            await p.execute()

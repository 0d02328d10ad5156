"""How many reports one client address sent lately, in Redis.

Every report sent counts, refused ones too (a flood of junk costs as much as a
flood of reports): ``web_report.rate_limit`` within ``rate_window_minutes``, a
sliding window kept as a sorted set of timestamps per address, as the sign-in
throttle does (accounts/throttle.py), so every process sees the same counts.
The address is the client's as :func:`panel.security.client_address` finds it
behind the trusted proxies.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from core.settings import Settings


class ReportThrottle:
    def __init__(self, redis: aioredis.Redis, prefix: str, settings: Settings) -> None:
        self.redis = redis
        self.prefix = prefix
        self.settings = settings

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.settings.web_report.rate_window_minutes)

    def _key(self, address: str) -> str:
        return f"{self.prefix}:webreport:addr:{address}"

    async def hit(self, address: str | None, now: datetime) -> datetime | None:
        """Count one report from ``address``; None if it may be taken, else until when
        that address is refused.  A refused try is not counted (it would push the
        end of the wait further with every reload)."""
        if not address:
            return None
        key = self._key(address)
        since = (now - self.window).timestamp()
        async with self.redis.pipeline(transaction=True) as p:
            p.zremrangebyscore(key, "-inf", since)
            p.zcard(key)
            p.zrange(key, 0, 0, withscores=True)
            _, n, oldest = await p.execute()
        limit = self.settings.web_report.rate_limit
        if int(n) >= limit and oldest:
            return datetime.fromtimestamp(float(oldest[0][1]), now.tzinfo) + self.window
        member = f"{now.timestamp()}:{uuid.uuid4().hex[:8]}"
        async with self.redis.pipeline(transaction=True) as p:
            p.zadd(key, {member: now.timestamp()})
            p.expire(key, int(self.window.total_seconds()) + 60)
            await p.execute()
        return None

"""Rate limits of the Open311 API, counted in Redis (shared by every process).

Each limit is a sliding window kept as a Redis sorted set (one member per
request, scored by its time, trimmed to the window), the way
accounts/throttle.py counts sign-in failures.  A refused request is counted
too: a client that keeps hammering stays refused until it slows down.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

import redis.asyncio as aioredis


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def hit(self, kind: str, who: str, limit: int, window: float, now: datetime) -> int:
        """Count one request of ``who``; 0 if within ``limit`` per ``window`` seconds,
        else the seconds to wait before the next one is taken."""
        key = f"{self.prefix}:open311:rate:{kind}:{who}"
        t = now.timestamp()
        async with self.redis.pipeline(transaction=True) as p:
            p.zremrangebyscore(key, "-inf", t - window)
            p.zadd(key, {f"{t}:{uuid.uuid4().hex[:8]}": t})
            p.zcard(key)
            p.zrange(key, 0, 0, withscores=True)
            p.expire(key, int(window) + 60)
            _, _, n, oldest, _ = await p.execute()
        if int(n) <= limit:
            return 0
        first = float(oldest[0][1]) if oldest else t
        return max(1, math.ceil(first + window - t))

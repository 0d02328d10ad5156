"""The transcription job queue in Redis: at-least-once delivery with leases.

Keys (under the project's prefix):

- ``transcribe:pending`` — a sorted set of call ids waiting, scored by when
  they were queued (a call is in it at most once);
- ``transcribe:leases`` — a sorted set of call ids being worked on, scored by
  the lease's deadline (Redis server time, so workers on other machines need
  no synchronised clocks);
- ``transcribe:owners`` — a hash: call id → the worker holding the lease.

A worker claims a job atomically (pending → leases), renews the lease while
it works (heartbeat) and finishes it.  A worker that dies stops renewing; the
next claim by any worker first moves expired leases back to pending, so the
job is done again elsewhere.  The database (``transcription_jobs``) stays the
source of truth: what Redis loses (a restart without persistence) is queued
again by the application's scan.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# now = Redis TIME in seconds (float)
_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) + tonumber(t[2]) / 1e6\n"

ENQUEUE = (
    _NOW
    + """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
return redis.call('ZADD', KEYS[1], 'NX', now, ARGV[1])
"""
)

# KEYS: pending, leases, owners; ARGV: worker, lease seconds
CLAIM = (
    _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZADD', KEYS[1], 'NX', 0, id)
end
local got = redis.call('ZPOPMIN', KEYS[1])
if #got == 0 then return false end
local id = got[1]
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
redis.call('HSET', KEYS[3], id, ARGV[1])
return id
"""
)

# KEYS: leases, owners; ARGV: id, worker, lease seconds
RENEW = (
    _NOW
    + """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

# KEYS: leases, owners; ARGV: id, worker
FINISH = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


class JobQueue:
    """Call ids to transcribe, handed out with leases (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.pending = f"{prefix}:transcribe:pending"
        self.leases = f"{prefix}:transcribe:leases"
        self.owners = f"{prefix}:transcribe:owners"
        self._enqueue: Any = redis.register_script(ENQUEUE)
        self._claim: Any = redis.register_script(CLAIM)
        self._renew: Any = redis.register_script(RENEW)
        self._finish: Any = redis.register_script(FINISH)

    @staticmethod
    async def _run(script: Any, keys: list[str], args: list[Any]) -> Any:
        # once more after a dropped connection (Redis restarted): the pool
        # reconnects; a script run twice at worst leaves a lease that expires
        try:
            return await script(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError):
            return await script(keys=keys, args=args)

    async def enqueue(self, call_id: int) -> bool:
        """Queue a call unless it is already waiting or leased; True if it was added."""
        return bool(await self._run(self._enqueue, [self.pending, self.leases], [call_id]))

    async def claim(self, worker: str, lease_seconds: float) -> int | None:
        """The next call id for ``worker`` (expired leases go back first), or None."""
        got = await self._run(
            self._claim, [self.pending, self.leases, self.owners], [worker, lease_seconds]
        )
        return int(got) if got is not None else None

    async def renew(self, call_id: int, worker: str, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease; False when it no longer holds it."""
        return bool(
            await self._run(
                self._renew, [self.leases, self.owners], [call_id, worker, lease_seconds]
            )
        )

    async def finish(self, call_id: int, worker: str) -> bool:
        return bool(await self._run(self._finish, [self.leases, self.owners], [call_id, worker]))

    async def known(self) -> set[int]:
        """Every call id waiting or leased."""
        try:
            return await self._known()
        except (RedisConnectionError, RedisTimeoutError):
            return await self._known()

    async def _known(self) -> set[int]:
        async with self.redis.pipeline(transaction=False) as p:
            p.zrange(self.pending, 0, -1)
            p.zrange(self.leases, 0, -1)
            a, b = await p.execute()
        return {int(x) for x in (*a, *b)}

    async def sizes(self) -> tuple[int, int]:
        """(waiting, leased)."""
        async with self.redis.pipeline(transaction=False) as p:
            p.zcard(self.pending)
            p.zcard(self.leases)
            a, b = await p.execute()
        return int(a), int(b)

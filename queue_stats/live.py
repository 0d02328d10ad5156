"""Every queue's live state as the board reads it, in any process.

:class:`callcenter.live.LiveState` owns the live state in the application
that hears Asterisk and writes each queue's board into one Redis hash
(``<prefix>:queues:live``, a field per queue), publishing each change on the
bus topic ``board``.  :class:`LiveQueues` is the reading side: the board
pages, the congestion watch, reports and ``/metrics`` read the same hash, so
a second panel process sees what the first one does.
"""

from __future__ import annotations

import json
from typing import Any

from callcenter.live import BOARD_TOPIC, MEMBER_STATES, iso
from core.bus import Bus
from core.clock import Clock

__all__ = ["BOARD_TOPIC", "MEMBER_STATES", "LiveQueues"]


class LiveQueues:
    """Reads the queues' live state from Redis; see the module docstring."""

    def __init__(self, bus: Bus, clock: Clock) -> None:
        self.bus = bus
        self.clock = clock

    @property
    def hash_key(self) -> str:
        return self.bus.key("queues", "live")

    async def snapshot(self) -> dict[str, Any]:
        """Every queue's live state, as the board shows it."""
        raw = await self.bus.redis.hgetall(self.hash_key)
        queues = {name: json.loads(value) for name, value in sorted(raw.items())}
        return {"at": iso(self.clock.now()), "queues": queues}

    async def queue(self, name: str) -> dict[str, Any]:
        """One queue's live state (empty lists for a queue nobody has heard of)."""
        raw = await self.bus.redis.hget(self.hash_key, name)
        return json.loads(raw) if raw else {"waiting": [], "members": []}

"""Pages of published reports kept for a few seconds: the portal after a news article.

The portal's first page (and the first page of each popular search or filter)
is the same for every visitor who asks for it in the same language: it shows
only published reports, never anything of the visitor.  So it is rendered once
and its bytes are answered again for ``public.cache_seconds``.

What keeps this safe:

- the key is the language and the whole address asked for (path and query
  string as sent), so a page never crosses languages or searches;
- an entry lives at most ``ttl`` seconds: a report withheld, reopened or
  changed in another process leaves the portal within that time;
- in this process, every write to a report that was or now is published
  (``TicketService.on_publication_changed``) empties the cache at once;
- at most ``size`` entries, the least recently used going first: random
  queries cannot grow it, only push popular pages out (which then cost a
  render again, as without a cache).

The timer is :func:`time.monotonic` (a cache's age, not a time of day; the
application's clock is for the domain's times).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

#: Entries kept at most (pages of about 30 KB: a few MB at worst).
SIZE = 256


class TTLCache(Generic[V]):
    """A small LRU of values that expire ``ttl`` seconds after they were put."""

    def __init__(
        self, ttl: float, size: int = SIZE, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.timer = timer
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        # bumped by clear(): a value computed from reads made before it is not kept
        self.generation = 0

    def get(self, key: Hashable) -> V | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] <= self.timer():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, value: V, generation: int | None = None) -> None:
        """Keep ``value``; unless the cache was cleared since ``generation`` (the
        ``generation`` read before the value was computed), when it is dropped."""
        if self.ttl <= 0 or (generation is not None and generation != self.generation):
            return
        self._entries[key] = (self.timer() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)


class Flights(Generic[V]):
    """What is being made for a key, shared with whoever asks for it meanwhile.

    When a popular page leaves the cache, every request in flight for it would
    otherwise render it again at once (a stop of the loop for each); with
    :meth:`share` the first one renders and the others wait for its result.
    A maker that fails or is cancelled gives its waiters None: each then
    makes its own, as without this.
    """

    def __init__(self) -> None:
        self._flying: dict[Hashable, asyncio.Future[V | None]] = {}

    async def share(self, key: Hashable, make: Callable[[], Awaitable[V]]) -> tuple[V | None, bool]:
        """(the value, whether this call made it); None from a maker that failed."""
        flying = self._flying.get(key)
        if flying is not None:
            return await asyncio.shield(flying), False
        flying = asyncio.get_running_loop().create_future()
        self._flying[key] = flying
        value: V | None = None
        try:
            value = await make()
            return value, True
        finally:
            del self._flying[key]
            flying.set_result(value)

    def __len__(self) -> int:
        return len(self._flying)

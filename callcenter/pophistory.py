"""The caller's history for the screen-pop, read while the caller is still in the IVR.

The caller ID is known when the call reaches the IVR (FastAGI), seconds
before the queue rings an agent: the greeting, the recorded-call notice and
the menu all play first.  :meth:`CallerHistory.warm` starts the reads of the
caller's earlier calls and tickets then, so that when ``AgentCalled`` comes
the pop finds them done instead of reading beside the call records' writes
of the moment the caller joins the queue.

An entry belongs to one call (its uniqueid) and lives until the pop is done
with it (answered, abandoned) or is pushed out by newer ones (``size``).
It must never show history that is known to be old: a ticket written for
the caller's phone while the call waits (the agent of their previous call
still typing it) marks the entries of that phone stale, and the pop then
reads again at the ring, as if there had been no prefetch.  A stale mark
comes from :meth:`CallerHistory.phone_changed`, which the composition root
calls when a ticket is written in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
# the caller's earlier calls (the current one left out) and tickets
History = tuple[Rows, Rows]
ReadFn = Callable[[str, str], Awaitable[History]]  # (number, uniqueid) -> history

# calls warmed and not yet done with (the oldest are dropped past this)
MAX_ENTRIES = 2000


def _same(number: str) -> str | None:
    return number


@dataclass
class _Entry:
    number: str
    phone: str | None  # the number as tickets store it, to match a ticket's write
    task: asyncio.Task[History]
    stale: bool = False


class CallerHistory:
    """Per call, the caller's history read ahead; see the module docstring."""

    def __init__(
        self,
        read: ReadFn,
        *,
        phone_key: Callable[[str], str | None] = _same,
        size: int = MAX_ENTRIES,
    ) -> None:
        self._read = read
        self._key = phone_key
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def warm(self, uniqueid: str, number: str | None) -> None:
        """Start reading ``number``'s history for the call ``uniqueid`` (once)."""
        if not uniqueid or not number:
            return
        entry = self._entries.get(uniqueid)
        if entry is not None and entry.number == number and not entry.stale:
            if not (entry.task.done() and _failed(entry.task)):
                return
        self._start(uniqueid, number)

    async def get(self, uniqueid: str, number: str) -> History:
        """The history for the pop: the warmed read when it is still good, else a new one."""
        entry = self._entries.get(uniqueid)
        if entry is None or entry.number != number or entry.stale or _failed(entry.task):
            self.misses += 1
            entry = self._start(uniqueid, number)
        else:
            self.hits += 1
        while True:
            # shielded: another pop of the same call may wait on the same read
            history = await asyncio.shield(entry.task)
            now = self._entries.get(uniqueid)
            if now is entry and not entry.stale:
                return history
            if now is None:
                # done with meanwhile (another agent answered): this read is as fresh as any
                return history if not entry.stale else await self._read(number, uniqueid)
            entry = now if not now.stale else self._start(uniqueid, number)

    def phone_changed(self, phone: str | None) -> None:
        """A ticket of ``phone`` was written: its callers' reads are not to be trusted."""
        if not phone:
            return
        key = self._key(phone)
        if key is None:
            return
        for entry in self._entries.values():
            if entry.phone == key:
                entry.stale = True

    def done(self, uniqueid: str) -> None:
        """The call needs no pop any more (answered, abandoned): forget its read.

        A read still running is left to finish: another pop of the call may wait on it.
        """
        self._entries.pop(uniqueid, None)

    async def stop(self) -> None:
        tasks = [e.task for e in self._entries.values()]
        self._entries.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, uniqueid: str, number: str) -> _Entry:
        task = asyncio.create_task(self._read(number, uniqueid), name=f"pop-history-{uniqueid}")
        task.add_done_callback(_retrieve)
        entry = _Entry(number, self._key(number), task)
        self._entries[uniqueid] = entry
        self._entries.move_to_end(uniqueid)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)  # a call that never reached the queue
        return entry


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """A failed read is reported by whoever awaits it; none may wait (a call that
    never reached the queue): log it here, so it is never an unretrieved error."""
    with contextlib.suppress(asyncio.CancelledError):
        exc = task.exception()
        if exc is not None:
            log.warning("reading a caller's history for the pop failed: %r", exc)

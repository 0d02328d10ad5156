"""WebSocket fan-out: one Redis subscription per panel process, many browser sockets.

Topics (see core/bus.py): ``agent.<ext>`` (that agent's pop and state) goes to
every socket of that agent (several tabs are fine); ``agents`` (all states)
and ``alerts`` go to supervisors and admins, and so does ``board`` (the live
queues and congestion alarms); ``agency.<id>`` to that agency's officers;
``user.<id>`` (a ticket back on its creator's desk: tickets/notify.py) to
every socket of that user; ``inbox.<team>`` (a message on that team's SMS
desk: inbox/service.py) to its agents and to supervisors and admins.
Messages are passed on as the JSON text they arrived in.

The messages of this process (the call path of ``hotline run`` shares its
loop) come straight from the publisher (``Bus.deliver_here``); the Redis
subscription brings the other processes' only.

Each socket has an outbox, sent from by a task of its own: handing a message
over never waits on a browser, so a page that stops reading (a laptop put to
sleep, a phone's network gone) cannot hold up the call path that publishes
nor the other sockets.  A socket with :data:`OUTBOX` messages still unsent is
closed (1013, try again later); its page connects again at once and reads the
present state in its ``hello``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import cast

from aiohttp import web

from core.bus import Bus

log = logging.getLogger(__name__)

TOPICS = ["agent.*", "alerts", "agency.*", "board", "user.*", "inbox.*"]
# Messages a socket may have waiting before it counts as stuck.  A flood's busiest
# socket (a supervisor's: every agent's state and the board) gets a few a second.
OUTBOX = 500
STUCK = 1013  # WebSocket close code: try again later


# A message this short goes out at once when nothing waits before it and the socket's
# buffer has room: no turn of the loop for the outbox's task (a pop is under 1 kB).
# In characters: at most 4 bytes each in UTF-8, within the 16 kB aiohttp compresses
# in line, without waiting.
DIRECT = 4 * 1024
UTF8_MAX = 4


class _Outbox:
    """One socket's messages, sent in order by a task of its own."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self.ws = ws
        # asyncio's transports or uvloop's (which are not asyncio.WriteTransport's subclasses)
        writes = all(
            hasattr(transport, name)
            for name in ("get_write_buffer_size", "get_write_buffer_limits", "is_closing")
        )
        self.transport = cast(asyncio.WriteTransport, transport) if writes else None
        self.queue: asyncio.Queue[str] = asyncio.Queue(OUTBOX)
        self.sending = False
        self.task = asyncio.create_task(self._send(), name="panel-socket-outbox")

    def takes_now(self, data: str) -> bool:
        """Whether ``data`` can be written now without waiting: nothing before it, and
        the socket's buffer stays under the mark at which aiohttp would wait for it."""
        t = self.transport
        if t is None or self.sending or not self.queue.empty() or len(data) > DIRECT:
            return False
        try:
            high = t.get_write_buffer_limits()[1]
            room = high - t.get_write_buffer_size()
            return not t.is_closing() and UTF8_MAX * len(data) + 64 < room
        except (AttributeError, NotImplementedError):
            return False

    async def _send(self) -> None:
        while True:
            data = await self.queue.get()
            self.sending = True
            try:
                await self.ws.send_str(data)
            except (ConnectionError, RuntimeError) as e:
                log.debug("socket gone while sending: %s", e)
                return
            finally:
                self.sending = False


class Hub:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._outboxes: dict[web.WebSocketResponse, _Outbox] = {}
        self._closing: set[asyncio.Task[bool]] = set()
        self._task: asyncio.Task[None] | None = None
        self._undeliver: Callable[[], None] | None = None
        self.ready = asyncio.Event()
        self.stuck = 0  # sockets closed for not reading

    def join(
        self, topic: str, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None
    ) -> None:
        """Send ``topic``'s messages to ``ws`` (``transport``: its request's)."""
        self.sockets[topic].add(ws)
        if ws not in self._outboxes:
            self._outboxes[ws] = _Outbox(ws, transport)

    def leave(self, ws: web.WebSocketResponse) -> None:
        for topic in list(self.sockets):
            self.sockets[topic].discard(ws)
            if not self.sockets[topic]:
                del self.sockets[topic]
        box = self._outboxes.pop(ws, None)
        if box is not None:
            box.task.cancel()

    @property
    def connected(self) -> int:
        return len({ws for group in self.sockets.values() for ws in group})

    async def start(self) -> None:
        self._undeliver = self.bus.deliver_here(TOPICS, self._deliver)
        self._task = asyncio.create_task(self._run(), name="panel-hub")

    async def stop(self) -> None:
        if self._undeliver:
            self._undeliver()
        if self._task:
            self._task.cancel()
            await self.bus.stop_listening(self._task)
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                log.warning("the hub's Redis subscription did not end in 5 s")
        sockets = {ws for group in self.sockets.values() for ws in group}
        for ws in sockets:
            self.leave(ws)
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutting down")
        if self._closing:
            await asyncio.wait(self._closing, timeout=5)

    async def _run(self) -> None:
        async for topic, data in self.bus.listen(TOPICS, self.ready, others_only=True):
            await self._deliver(topic, data)

    async def _deliver(self, topic: str, data: str) -> None:
        """Send ``data`` to every socket of ``topic`` that takes it at once, put it in
        the others' outboxes; never waits on a browser."""
        for ws in list(self.sockets.get(topic, ())):
            box = self._outboxes.get(ws)
            if ws.closed or box is None or box.task.done():
                self.leave(ws)
                continue
            if box.takes_now(data):
                try:
                    await ws.send_str(data)  # written in line: nothing to wait for
                except (ConnectionError, RuntimeError) as e:
                    log.debug("socket gone while sending: %s", e)
                    self.leave(ws)
                continue
            try:
                box.queue.put_nowait(data)
            except asyncio.QueueFull:
                self._stuck(ws)

    def _stuck(self, ws: web.WebSocketResponse) -> None:
        """A socket that stopped reading: leave it out and close it (its page reconnects)."""
        self.stuck += 1
        log.warning("a panel socket read nothing of its last %d messages: closing it", OUTBOX)
        self.leave(ws)
        task = asyncio.create_task(ws.close(code=STUCK, message=b"too slow"))
        self._closing.add(task)
        task.add_done_callback(self._closed)

    def _closed(self, task: asyncio.Task[bool]) -> None:
        self._closing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("closing a stuck socket: %s", task.exception())

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

from aiohttp import web

from core.bus import Bus

log = logging.getLogger(__name__)

TOPICS = ["agent.*", "alerts", "agency.*", "board", "user.*", "inbox.*"]


class Hub:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._undeliver: Callable[[], None] | None = None
        self.ready = asyncio.Event()

    def join(self, topic: str, ws: web.WebSocketResponse) -> None:
        self.sockets[topic].add(ws)

    def leave(self, ws: web.WebSocketResponse) -> None:
        for topic in list(self.sockets):
            self.sockets[topic].discard(ws)
            if not self.sockets[topic]:
                del self.sockets[topic]

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
        for ws in {ws for group in self.sockets.values() for ws in group}:
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutting down")

    async def _run(self) -> None:
        async for topic, data in self.bus.listen(TOPICS, self.ready, others_only=True):
            await self._deliver(topic, data)

    async def _deliver(self, topic: str, data: str) -> None:
        targets = self.sockets.get(topic)
        if not targets:
            return
        for ws in list(targets):
            if ws.closed:
                targets.discard(ws)
                continue
            try:
                await ws.send_str(data)
            except (ConnectionError, RuntimeError) as e:
                log.debug("socket gone while sending: %s", e)
                targets.discard(ws)

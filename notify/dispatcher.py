"""The notification dispatcher: one task that sends what is due.

Woken at once when a notification is written in this process (the planner's ``wake``)
or in another one (the bus topic :data:`WAKE_TOPIC`), and every
``notify.sweep_seconds`` besides: then it writes the reminders and the digest that
have come due (:meth:`notify.planner.Planner.periodic`, at most once a minute) and
sends the due notifications, ``notify.concurrency`` at a time, batch after batch
until none is due.  At start, rows a stop left half-sent go back to the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from core.bus import Bus
from core.clock import Clock
from notify.models import Notification
from notify.planner import Planner
from notify.service import NotifySender

log = logging.getLogger(__name__)

WAKE_TOPIC = "notify.wake"
PERIODIC_SECONDS = 60


class NotifyDispatcher:
    def __init__(
        self,
        planner: Planner,
        sender: NotifySender,
        clock: Clock,
        *,
        bus: Bus | None = None,
        interval: float = 30,
        concurrency: int = 50,
    ) -> None:
        self.planner = planner
        self.sender = sender
        self.clock = clock
        self.bus = bus
        self.interval = interval
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self._last_periodic = 0.0
        planner.wake = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        back = await self.sender.recover()
        if back:
            log.warning("notifications: %d interrupted by a stop put back", back)
        if self.bus is not None:
            self._listener = asyncio.create_task(self._listen(self.bus), name="notify-wake")
        self._task = asyncio.create_task(self._run(), name="notify-dispatcher")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._listener) if t is not None]
        for t in tasks:
            t.cancel()
        if self.bus is not None and self._listener is not None:
            await self.bus.stop_listening(self._listener)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._task = self._listener = None

    async def _listen(self, bus: Bus) -> None:
        async for _topic, _data in bus.listen([WAKE_TOPIC], self.listening):
            self.wake()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                if loop.time() - self._last_periodic >= PERIODIC_SECONDS:
                    self._last_periodic = loop.time()
                    await self.planner.periodic()
                await self.round()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the sending
                log.exception("notification round failed; again in %s s", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def round(self) -> int:
        """Send everything due now; how many were handed on.

        ``concurrency`` senders take the claimed notifications one by one, and the
        first to find none left claims the next batch while the others are still
        sending theirs: no sender waits for the slowest of a batch, as they did
        when each batch was gathered before the next was claimed.
        """
        claimed: deque[Notification] = deque()
        claiming = asyncio.Lock()
        finished = False
        sent = 0

        async def next_one() -> Notification | None:
            nonlocal finished
            async with claiming:
                if not claimed and not finished:
                    batch = await self.sender.claim(self.concurrency * 4)
                    claimed.extend(batch)
                    finished = not batch
                return claimed.popleft() if claimed else None

        async def sender() -> None:
            nonlocal sent
            while (n := await next_one()) is not None:
                await self.sender.send(n)
                sent += 1

        # a sender that fails (the database gone) stops; the others finish the
        # notification in their hands rather than being cancelled half-sent
        ended = await asyncio.gather(
            *(sender() for _ in range(self.concurrency)), return_exceptions=True
        )
        for e in ended:
            if isinstance(e, BaseException):
                raise e
        return sent

"""The composition root: builds every long-lived resource and wires the domains.

:class:`Application` owns the database engine, the AMI client, the FastAGI
server and the shift scheduler, each started in order and closed in reverse by
one AsyncExitStack.  Nothing else creates them.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from agi.ivr import IVR
from agi.protocol import FastAGIServer
from agi.routes import routes
from callcenter.events import (
    CALL_EVENTS,
    MEMBER_EVENTS,
    RESPONSE_EVENTS,
    CallEvents,
    member_subscriptions,
)
from callcenter.queue_log import QueueLogReader
from callcenter.scheduler import ShiftScheduler
from callcenter.service import CallService
from core.ami import AMIClient
from core.clock import Clock
from core.db import Database
from core.settings import Settings, require_secrets

log = logging.getLogger(__name__)

# Every event the application hears: manager.conf lets only these through.
AMI_EVENTS = sorted({*CALL_EVENTS, *MEMBER_EVENTS, *RESPONSE_EVENTS})


class Application:
    """The running hotline back end (everything but Asterisk itself)."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, scheduler_interval: float = 30.0
    ) -> None:
        require_secrets(settings)
        self.settings = settings
        self.clock = clock or Clock()
        self.db = Database(settings.database)
        self.calls = CallService(self.db, settings)
        self.ami = AMIClient(
            settings.asterisk.ami_host,
            settings.asterisk.ami_port,
            settings.asterisk.ami_user,
            settings.ami_secret.get_secret_value(),
        )
        self.call_events = CallEvents(self.calls, self.clock)
        self.queue_log = QueueLogReader(
            settings.queue_log, settings.state_dir / "queue_log.offset.json"
        )
        self.scheduler = ShiftScheduler(settings, self.ami, self.clock, interval=scheduler_interval)
        self.ivr = IVR(settings, self.calls, self.clock)
        self.agi = FastAGIServer(settings.agi.host, settings.agi.port, routes(self.ivr))
        self._stack = AsyncExitStack()

        self.call_events.subscribe(self.ami)
        member_subscriptions(self.ami, self.scheduler)
        self.ami.on_login(self._resync_calls)

    async def _resync_calls(self) -> None:
        await self.call_events.resync(self.ami, self.queue_log)

    async def start(self) -> None:
        stack = self._stack
        stack.push_async_callback(self.db.close)
        await self.calls.sync_directory()
        await self.agi.start()
        stack.push_async_callback(self.agi.stop)
        await self.ami.start()
        stack.push_async_callback(self.ami.stop)
        await self.scheduler.start()
        stack.push_async_callback(self.scheduler.stop)
        log.info("hotline application started")

    async def stop(self) -> None:
        await self._stack.aclose()
        log.info("hotline application stopped")

    async def __aenter__(self) -> Application:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

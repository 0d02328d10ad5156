"""The AMI client: one connection to Asterisk's manager, reconnecting by itself.

Domains declare the events they hear with :meth:`AMIClient.subscribe` (a list
of event names, one handler, and a lane).  Within a lane, events are handed to
handlers one at a time in the order Asterisk sent them, so a call's join,
answer and hang-up are never processed out of order.  Lanes run side by side:
the screen-pop has its own, so it never waits behind the call records'
database writes; a handler that needs a fact from another lane must carry
it itself (the pop keeps its own join times).  An *immediate* lane has no
queue: its handlers run as the event is read, so they must never wait (the
screen-pop's only note the event and start the agent's own task).  A handler that raises is
logged with the event and never stops its lane.  ``on_login`` callbacks run
after every (re)login so state can be re-synced from Asterisk.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

if TYPE_CHECKING:
    from core.clock import Clock

log = logging.getLogger(__name__)

Event: TypeAlias = Message
EventHandler = Callable[[Event], Awaitable[None]]
LoginHook = Callable[[], Awaitable[None]]


class AMIError(Exception):
    """An AMI action failed or could not be sent."""

    def __init__(self, action: str, detail: str) -> None:
        self.action, self.detail = action, detail
        super().__init__(f"AMI {action}: {detail}")


def header_int(value: Any) -> int | None:
    """An AMI header as a whole number ("12", "12.0"); None when absent or not a number."""
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def event_time(event: Any, clock: Clock) -> datetime:
    """When Asterisk says the event happened (manager.conf ``timestampevents``),
    else now by ``clock``."""
    ts = event.get("Timestamp")
    if ts:
        try:
            return datetime.fromtimestamp(float(ts), UTC)
        except (TypeError, ValueError, OverflowError):
            pass
    return clock.now()


def chan_vars(event: Event) -> dict[str, str]:
    """The ``ChanVariable`` headers of an event (manager.conf ``channelvars``)."""
    try:
        return dict(event.getdict("chanvariable"))
    except (KeyError, ValueError):
        return {}


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol, decoding UTF-8 across TCP chunks.

    panoramisk decodes each chunk on its own with errors ignored, so a
    Vietnamese name split between two chunks lost bytes.  Here an incremental
    decoder carries the partial character over to the next chunk.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            # the parent decodes again: hand it bytes that are whole characters
            super().data_received(text.encode("utf-8"))


class AMIClient:
    """Owns the panoramisk Manager; see the module docstring."""

    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self._config = dict(
            host=host,
            port=port,
            protocol_factory=_Protocol,
            username=username,
            secret=secret,
            ping_delay=5,
            ping_interval=5,
            reconnect_timeout=1,
        )
        self._lanes: dict[str, _Lane] = {}
        self._login_hooks: list[LoginHook] = []
        self._manager: Manager | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._logged_in = asyncio.Event()
        self.logins = 0

    # -- wiring -----------------------------------------------------------
    def subscribe(
        self,
        names: Iterable[str],
        handler: EventHandler,
        *,
        lane: str = "main",
        immediate: bool = False,
    ) -> None:
        """Call ``handler`` for every event whose name is in ``names``, in ``lane``.

        ``immediate``: the lane's handlers are run to their end as the event
        is read, without a turn of the loop in between; a handler there must
        not wait for anything (one that does is stopped and logged).
        """
        target = self._lanes.get(lane)
        if target is None:
            target = self._lanes[lane] = _Lane(lane, immediate=immediate)
        elif target.immediate != immediate:
            raise ValueError(f"AMI lane {lane!r} is {'' if target.immediate else 'not '}immediate")
        for name in names:
            target.handlers[name.lower()].append(handler)
        if self._manager is not None and target.worker is None:
            target.start()  # subscribed after start

    def subscribed(self) -> set[str]:
        """Every event name some handler hears (lower case), whatever its lane."""
        return {name for lane in self._lanes.values() for name in lane.handlers}

    def on_login(self, hook: LoginHook) -> None:
        self._login_hooks.append(hook)

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._manager = Manager(
            loop=loop, on_login=self._logged, on_disconnect=self._lost, **self._config
        )
        self._manager.register_event("*", self._enqueue)
        for lane in self._lanes.values():
            lane.start()
        self._manager.connect()

    async def stop(self) -> None:
        self._stopping = True
        if self._manager is not None:
            self._manager.close()
            # panoramisk would reconnect after close(); stop its timer from doing so.
            self._manager.connect = lambda *a, **k: None
        # A login hook still running (a resync after a late reconnect) must not
        # outlive the client: it would touch Redis or the database after the
        # application has closed them.
        hooks = list(self._hooks)
        for task in hooks:
            task.cancel()
        await asyncio.gather(*hooks, return_exceptions=True)
        await asyncio.gather(*(lane.stop() for lane in self._lanes.values()))

    async def wait_logged_in(self, timeout: float = 30) -> None:
        await asyncio.wait_for(self._logged_in.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    # -- actions ------------------------------------------------------------
    async def action(
        self, action: dict[str, Any], *, as_list: bool | None = None, timeout: float = 10
    ) -> Any:
        """Send an action; return its response (or list of events with ``as_list``)."""
        name = str(action.get("Action"))
        if self._manager is None or not self.connected or self._manager.protocol is None:
            raise AMIError(name, "not connected to Asterisk")
        fut = self._manager.send_action(dict(action), as_list=as_list)
        try:
            resp = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AMIError(name, f"no answer within {timeout}s") from None
        first = resp[0] if isinstance(resp, list) else resp
        if first.get("Response") == "Error":
            raise AMIError(name, first.get("Message", "error"))
        return resp

    async def command(self, cli: str, timeout: float = 10) -> str:
        """Run a CLI command through AMI and return its output."""
        resp = await self.action({"Action": "Command", "Command": cli}, timeout=timeout)
        out = resp.get("Output", "")
        return "\n".join(out) if isinstance(out, list) else str(out)

    # -- internals ----------------------------------------------------------
    def _enqueue(self, _manager: Manager, event: Event) -> None:
        name = event.get("Event", "").lower()
        for lane in self._lanes.values():
            if name in lane.handlers:
                if lane.immediate:
                    lane.run_now(event)
                else:
                    lane.queue.put_nowait(event)

    def _logged(self, _manager: Manager) -> None:
        self.logins += 1
        log.info("AMI logged in (login #%d)", self.logins)
        self._logged_in.set()
        if self._stopping:
            return
        for hook in self._login_hooks:
            name = getattr(hook, "__qualname__", "hook")
            task = asyncio.create_task(self._run_hook(hook), name=f"ami-login-{name}")
            self._hooks.add(task)
            task.add_done_callback(self._hooks.discard)

    def _lost(self, _manager: Manager, exc: Exception | None) -> None:
        if self._logged_in.is_set():
            log.warning("AMI connection lost (%s); reconnecting", exc)
        self._logged_in.clear()

    async def _run_hook(self, hook: LoginHook) -> None:
        try:
            await hook()
        except Exception:
            log.exception("AMI login hook %s failed", getattr(hook, "__qualname__", hook))


class _Lane:
    """Handlers that see their events in Asterisk's order, one at a time."""

    def __init__(self, name: str, *, immediate: bool = False) -> None:
        self.name = name
        self.immediate = immediate
        self.handlers: dict[str, list[EventHandler]] = defaultdict(list)
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self.immediate:
            self.worker = asyncio.create_task(self._dispatch(), name=f"ami-lane-{self.name}")

    def run_now(self, event: Event) -> None:
        """Each handler of ``event`` to its end, here and now (an immediate lane)."""
        for handler in self.handlers.get(event.get("Event", "").lower(), ()):
            what = getattr(handler, "__qualname__", handler)
            coro = cast("Coroutine[Any, Any, None]", handler(event))
            try:
                coro.send(None)
            except StopIteration:
                continue
            except Exception:
                log.exception(
                    "AMI handler %s failed on %s (uniqueid %s)",
                    what,
                    event.get("Event"),
                    event.get("Uniqueid"),
                )
                continue
            coro.close()
            log.error(
                "AMI handler %s waited in the immediate lane %s on %s: stopped there",
                what,
                self.name,
                event.get("Event"),
            )

    async def stop(self) -> None:
        if self.worker is None:
            return
        await self.queue.put(None)
        try:
            await asyncio.wait_for(self.worker, 5)
        except TimeoutError:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        self.worker = None

    async def _dispatch(self) -> None:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            for handler in self.handlers.get(event.get("Event", "").lower(), ()):
                try:
                    await handler(event)
                except Exception:
                    log.exception(
                        "AMI handler %s failed on %s (uniqueid %s)",
                        getattr(handler, "__qualname__", handler),
                        event.get("Event"),
                        event.get("Uniqueid"),
                    )

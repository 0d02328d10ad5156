"""The message bus between the call path and the panel processes (Redis).

The application that hears Asterisk publishes screen-pops, agent states and
alerts; every panel process subscribes and hands them to its WebSockets.  The
last value of each live item (an agent's state, the call on their screen) is
also kept under a key, so a page opened or reloaded mid-call shows it at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from fnmatch import fnmatchcase
from typing import Any

import redis.asyncio as aioredis

from core.retry import Outage

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]
# takes (topic, JSON text) of a message published in this process
Sink = Callable[[str, str], Awaitable[None]]

# between the publishing bus's name and the JSON text of a message on Redis
# (JSON text never holds a raw control character)
ORIGIN_END = "\x1e"

# the longest a listening loop reads before it looks whether it was ended (s);
# a message that arrives wakes it at once
POLL = 1.0


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


class Bus:
    """Topics and kept values under one key prefix (several hotlines may share a Redis)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.redis: aioredis.Redis = aioredis.from_url(
            url, decode_responses=True, health_check_interval=30
        )
        # each subscription of :meth:`listen`, with the task that listens
        self._pubsubs: dict[Any, asyncio.Task[Any] | None] = {}
        # tasks whose listening was ended: their loops return, never resubscribe
        self._ended: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self._closed = False
        # this bus's name on Redis, and the sinks of this process (see deliver_here)
        self.origin = uuid.uuid4().hex[:12]
        self._sinks: list[tuple[list[str], Sink]] = []

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        self._closed = True  # a listener that loses its connection now ends, not resubscribes
        await self.stop_listening()
        await self.redis.aclose()

    async def stop_listening(self, task: asyncio.Task[Any] | None = None) -> None:
        """End the :meth:`listen` loops run by ``task`` (every one of this bus without it).

        Several owners share one bus (the panel's hub, the callback dialler):
        each ends only its own subscriptions.

        redis-py's pub/sub read does not always give way to a task
        cancellation (it can swallow it and wait on), and closing its
        connection from outside does not end it either: the library's own
        retry connects again and resubscribes.  So a listening loop reads
        with a bound (:data:`POLL`) and looks, between reads, whether its
        listening was ended here: it returns within that bound whether or
        not the owner's cancellation reached it.
        """
        if task is not None:
            self._ended.add(task)
            return
        for owner in list(self._pubsubs.values()):
            if owner is not None:
                self._ended.add(owner)

    # -- delivering in this process -------------------------------------
    def deliver_here(self, patterns: list[str], sink: Sink) -> Callable[[], None]:
        """Hand every message this bus publishes on ``patterns`` to ``sink`` at once.

        The sink is awaited by the publisher, before Redis is written, so it
        must not wait on anything slow.  Pair it with ``listen(...,
        others_only=True)`` for the other processes' messages.  Returns the
        function that takes the sink away.
        """
        entry = (list(patterns), sink)
        self._sinks.append(entry)

        def remove() -> None:
            if entry in self._sinks:
                self._sinks.remove(entry)

        return remove

    async def _here(self, topic: str, data: str) -> None:
        for patterns, sink in self._sinks:
            if any(fnmatchcase(topic, p) for p in patterns):
                try:
                    await sink(topic, data)
                except Exception:  # a socket's trouble is not the publisher's
                    log.exception("delivering %s in this process failed", topic)

    def _framed(self, data: str) -> str:
        return f"{self.origin}{ORIGIN_END}{data}"

    # -- publishing -----------------------------------------------------
    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        data = _dumps(payload)
        await self._here(topic, data)
        await self.redis.publish(self.key("topic", topic), self._framed(data))

    async def keep(self, name: str, payload: dict[str, Any], ttl: int) -> None:
        await self.redis.set(self.key("kept", name), _dumps(payload), ex=ttl)

    async def publish_kept(self, topic: str, name: str, payload: dict[str, Any], ttl: int) -> None:
        """Keep ``payload`` as the current value of ``name`` and publish it, in one round trip."""
        data = _dumps(payload)
        await self._here(topic, data)
        async with self.redis.pipeline(transaction=False) as p:
            p.set(self.key("kept", name), data, ex=ttl)
            p.publish(self.key("topic", topic), self._framed(data))
            await p.execute()

    async def kept(self, name: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.key("kept", name))
        return json.loads(raw) if raw else None

    async def kept_many(self, names: list[str]) -> dict[str, dict[str, Any]]:
        if not names:
            return {}
        raws = await self.redis.mget([self.key("kept", n) for n in names])
        return {n: json.loads(r) for n, r in zip(names, raws, strict=True) if r}

    async def forget(self, name: str) -> None:
        await self.redis.delete(self.key("kept", name))

    # -- subscribing ----------------------------------------------------
    async def listen(
        self,
        patterns: list[str],
        ready: asyncio.Event | None = None,
        *,
        others_only: bool = False,
    ) -> AsyncIterator[tuple[str, str]]:
        """Yield (topic, JSON text) for every message on topics matching ``patterns``.

        With ``others_only``, messages this bus published are left out (a sink
        of :meth:`deliver_here` had them already).  Reconnects after a Redis
        restart (messages published meanwhile are lost: pages re-read the kept
        values when their socket reconnects).
        """
        full = [self.key("topic", p) for p in patterns]
        strip = len(self.key("topic", ""))
        me = asyncio.current_task()
        outage = Outage("bus: Redis subscription", logger=log)
        while not self._closed and me not in self._ended:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            self._pubsubs[pubsub] = me
            try:
                await pubsub.psubscribe(*full)
                outage.ok()
                if ready is not None:
                    ready.set()
                while not self._closed and me not in self._ended:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
                    if msg is None or msg.get("type") != "pmessage":
                        continue
                    origin, _, data = msg["data"].rpartition(ORIGIN_END)
                    if others_only and origin == self.origin:
                        continue
                    yield msg["channel"][strip:], data
                return
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as e:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # redis-py turns a cancellation during connect into a
                    # ConnectionError: the owner is stopping, do not retry.
                    raise asyncio.CancelledError from e
                if self._closed or me in self._ended:
                    return
                await asyncio.sleep(outage.failed(e))
            finally:
                self._pubsubs.pop(pubsub, None)
                # A cancelled read can leave the connection's lock held: do
                # not let closing it stall the owner's shutdown.
                try:
                    await asyncio.wait_for(pubsub.aclose(), 1)
                except Exception:  # noqa: BLE001 - the connection is gone already
                    pass

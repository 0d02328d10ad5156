"""The bus shared by several owners on real Redis: each ends only its own listeners."""

from __future__ import annotations

import asyncio
import uuid

from core.bus import Bus
from tests.helpers import REDIS_URL


async def test_stopping_one_owners_listener_leaves_the_others_listening():
    bus = Bus(REDIS_URL, f"bustest{uuid.uuid4().hex[:8]}")
    got: dict[str, list[str]] = {"a": [], "b": []}
    ready = {"a": asyncio.Event(), "b": asyncio.Event()}

    async def listen(name: str) -> None:
        async for _topic, data in bus.listen([name], ready[name]):
            got[name].append(data)

    tasks = {n: asyncio.create_task(listen(n)) for n in got}
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 5)
        tasks["a"].cancel()
        await bus.stop_listening(tasks["a"])
        await asyncio.wait({tasks["a"]}, timeout=5)
        assert tasks["a"].done()
        await bus.publish("b", {"n": 1})

        async def arrived() -> None:
            while not got["b"]:  # noqa: ASYNC110 - polled briefly
                await asyncio.sleep(0.02)

        await asyncio.wait_for(arrived(), 5)
        assert got["b"] == ['{"n":1}'] and not tasks["b"].done()
    finally:
        for t in tasks.values():
            t.cancel()
        await bus.close()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_a_listener_ends_when_its_owner_stops_it_even_if_never_cancelled():
    """A pub/sub read that swallows its cancellation sees only the closed
    connection: it must end there, not take it for a lost one and resubscribe
    (its owner, waiting on it at shutdown, would wait for ever)."""
    bus = Bus(REDIS_URL, f"bustest{uuid.uuid4().hex[:8]}")
    ready = asyncio.Event()

    async def listen() -> list[str]:
        return [data async for _topic, data in bus.listen(["x"], ready)]

    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        await bus.stop_listening(task)  # no cancel: as if the read swallowed it
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done and task.result() == []
    finally:
        task.cancel()
        await bus.close()
        await asyncio.gather(task, return_exceptions=True)

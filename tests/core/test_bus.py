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


async def test_a_message_published_here_reaches_this_process_once_and_others_by_redis():
    """The panel of the publishing process has the message from the publisher
    itself, before Redis; its own subscription then leaves it out, while a
    second process (another bus on the same prefix) has it from Redis."""
    prefix = f"bustest{uuid.uuid4().hex[:8]}"
    here, there = Bus(REDIS_URL, prefix), Bus(REDIS_URL, prefix)
    sunk: list[tuple[str, str]] = []
    heard: dict[str, list[str]] = {"here": [], "there": []}
    ready = {"here": asyncio.Event(), "there": asyncio.Event()}

    async def sink(topic: str, data: str) -> None:
        # the publisher has not written Redis yet: nobody subscribed heard it
        assert not heard["there"]
        sunk.append((topic, data))

    async def listen(name: str, bus: Bus) -> None:
        async for _topic, data in bus.listen(["agent.*"], ready[name], others_only=True):
            heard[name].append(data)

    remove = here.deliver_here(["agent.*"], sink)
    tasks = [asyncio.create_task(listen("here", here)), asyncio.create_task(listen("there", there))]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 5)
        await here.publish("agent.1001", {"type": "pop", "n": 1})
        await here.publish_kept("agent.1002", "pop.1002", {"type": "pop", "n": 2}, 60)
        await here.publish("board", {"n": 3})  # not a sink's topic
        await there.publish("agent.1003", {"n": 4})  # another process's message

        async def arrived() -> None:
            while len(heard["there"]) < 2 or not heard["here"]:  # noqa: ASYNC110 - polled briefly
                await asyncio.sleep(0.02)

        await asyncio.wait_for(arrived(), 5)
        await asyncio.sleep(0.2)  # a stray copy would be here by now
        assert sunk == [
            ("agent.1001", '{"type":"pop","n":1}'),
            ("agent.1002", '{"type":"pop","n":2}'),
        ]
        assert heard["there"] == ['{"type":"pop","n":1}', '{"type":"pop","n":2}']
        assert heard["here"] == ['{"n":4}']
        assert await here.kept("pop.1002") == {"type": "pop", "n": 2}
        remove()
        await here.publish("agent.1001", {"n": 5})
        assert len(sunk) == 2
    finally:
        for t in tasks:
            t.cancel()
        await here.close()
        await there.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_failing_sink_does_not_stop_the_message_going_to_redis():
    bus = Bus(REDIS_URL, f"bustest{uuid.uuid4().hex[:8]}")
    other = Bus(REDIS_URL, bus.prefix)
    ready = asyncio.Event()

    async def broken(_topic: str, _data: str) -> None:
        raise ConnectionResetError("socket gone")

    async def listen() -> list[str]:
        return [data async for _topic, data in other.listen(["x"], ready)]

    bus.deliver_here(["x"], broken)
    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        await bus.publish("x", {"n": 1})
        await asyncio.sleep(0.3)
        await other.stop_listening(task)
        assert await asyncio.wait_for(task, 5) == ['{"n":1}']
    finally:
        task.cancel()
        await bus.close()
        await other.close()

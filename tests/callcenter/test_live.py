"""The live board on the real Redis: wrap-up, positions, a queue nobody knows.

The live state (callcenter.live.LiveState) is changed as its AMI handlers
change it and written by its own writer; the board is read back through
LiveQueues, as the panel reads it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.live import LiveState
from core.bus import Bus
from core.clock import Clock
from queue_stats.live import LiveQueues
from tests.helpers import REDIS_URL, forget_keys
from tests.lab import eventually


class Live:
    """The owner (``state``) and a reader of its board (``board``)."""

    def __init__(self, state: LiveState, board: LiveQueues) -> None:
        self.state, self.board = state, board

    async def flush(self) -> None:
        await self.state.flush()

    async def queue(self, name: str) -> dict[str, object]:
        return await self.board.queue(name)


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    bus = Bus(REDIS_URL, f"qstest{uuid.uuid4().hex[:8]}")
    state = LiveState(bus, Clock(), names={"1001": "Võ Thanh Tâm"}, wrapup_seconds=0.4)
    await state.start()
    yield Live(state, LiveQueues(bus, Clock()))
    await state.stop()
    await forget_keys(bus)
    await bus.close()


async def member(live: Live, queue: str, ext: str) -> dict[str, object]:
    return next(m for m in (await live.queue(queue))["members"] if m["extension"] == ext)


async def test_a_member_is_in_wrapup_after_a_call_then_free(live: Live):
    now = datetime.now(UTC)
    live.state.member_added("t1022-morning", "1001", "free", False, None, now)
    live.state.member_device("1001", "talking", now)
    await live.flush()
    assert (await member(live, "t1022-morning", "1001"))["state"] == "talking"
    live.state.member_completed("1001", datetime.now(UTC))
    await live.flush()
    m = await member(live, "t1022-morning", "1001")
    assert (m["state"], m["name"]) == ("wrapup", "Võ Thanh Tâm")

    async def free() -> bool:
        return (await member(live, "t1022-morning", "1001"))["state"] == "free"

    await eventually(free, 3, 0.05)


async def test_callers_behind_one_who_leaves_move_up(live: Live):
    t = datetime.now(UTC)
    for i, u in enumerate(("pbx-1.1", "pbx-1.2", "pbx-1.3"), start=1):
        live.state.caller_joined("party-night", u, f"09000000{i}", i, t + timedelta(seconds=i))
    live.state.caller_left("party-night", "pbx-1.2")
    await live.flush()
    waiting = (await live.queue("party-night"))["waiting"]
    assert [(c["uniqueid"], c["position"]) for c in waiting] == [("pbx-1.1", 1), ("pbx-1.3", 2)]
    assert datetime.fromisoformat(waiting[1]["since"]) == t + timedelta(seconds=3)


async def test_paused_with_reason_and_unknown_queue(live: Live):
    now = datetime.now(UTC)
    live.state.member_paused("t1022-night", "1002", True, "meal", now)
    await live.flush()
    m = await member(live, "t1022-night", "1002")
    assert (m["state"], m["reason"], m["name"]) == ("paused", "meal", "1002")
    live.state.member_paused("t1022-night", "1002", False, None, now + timedelta(seconds=1))
    await asyncio.sleep(0.05)  # the writer task writes it by itself
    await live.flush()
    m = await member(live, "t1022-night", "1002")
    assert (m["state"], m["reason"]) == ("free", None)
    assert await live.queue("no-such-queue") == {"waiting": [], "members": []}
    snap = await live.board.snapshot()
    assert set(snap["queues"]) == {"t1022-night"} and datetime.fromisoformat(snap["at"])

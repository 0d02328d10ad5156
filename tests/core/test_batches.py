"""core.batches.Batches: what arrives together is applied together, in order, and
every caller gets its own result, its own error, or the batch's error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.batches import Batches


class Applier:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay
        self.fail: Exception | None = None

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.calls.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_a_lone_item_is_applied_at_once() -> None:
    applier = Applier(delay=0.0)
    batches: Batches[int, int] = Batches(applier, name="t")
    assert await asyncio.wait_for(batches.submit(4), 0.5) == 40
    assert applier.calls == [[4]]


async def test_items_arriving_together_go_in_one_batch_in_order() -> None:
    applier = Applier(delay=0.05)
    batches: Batches[int, int] = Batches(applier, name="t", size=50)
    results = await asyncio.gather(
        *(batches.submit(i) for i in range(0, 120, 2)), return_exceptions=True
    )
    assert results == [i * 10 for i in range(0, 120, 2)]
    # all 60 were waiting when the first batch began: at most 50 a batch, in order
    assert [len(c) for c in applier.calls] == [50, 10]
    assert sum(applier.calls, []) == list(range(0, 120, 2))


async def test_each_caller_gets_its_own_error_or_the_batch_s() -> None:
    applier = Applier()
    batches: Batches[int, int] = Batches(applier, name="t")
    got = await asyncio.gather(*(batches.submit(i) for i in (2, 3, 4)), return_exceptions=True)
    assert got[0] == 20 and got[2] == 40
    assert isinstance(got[1], ValueError) and str(got[1]) == "odd 3"
    applier.fail = RuntimeError("database is locked")
    got = await asyncio.gather(*(batches.submit(i) for i in (6, 8)), return_exceptions=True)
    assert all(isinstance(g, RuntimeError) for g in got)
    applier.fail = None
    assert await batches.submit(10) == 100  # the next batch is applied as usual


async def test_a_cancelled_caller_leaves_the_batch_and_a_stopped_one_leaves_none_waiting() -> None:
    applier = Applier(delay=0.2)
    batches: Batches[int, int] = Batches(applier, name="t")
    first = asyncio.create_task(batches.submit(2))
    second = asyncio.create_task(batches.submit(4))
    await asyncio.sleep(0.05)
    first.cancel()
    assert await second == 40  # in the same batch, applied all the same
    with pytest.raises(asyncio.CancelledError):
        await first
    # the draining task stopped (as at shutdown): its callers are not left waiting
    waiting = [asyncio.create_task(batches.submit(i)) for i in (6, 8, 10)]
    await asyncio.sleep(0.05)
    assert batches._task is not None
    batches._task.cancel()
    done, pending = await asyncio.wait(waiting, timeout=1.0)
    assert not pending and all(t.cancelled() for t in done)

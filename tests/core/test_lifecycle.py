"""Stopping within a bounded time: a part that hangs does not keep the others open."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

import pytest

from core.lifecycle import cancel_and_wait, on_stop


async def test_a_hanging_stop_is_logged_and_the_parts_after_it_still_stop(
    caplog: pytest.LogCaptureFixture,
):
    stopped: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def closes() -> None:
        stopped.append("db")

    stack = AsyncExitStack()
    on_stop(stack, "db", closes)  # pushed first: stopped last
    on_stop(stack, "fails", fails)
    on_stop(stack, "listener", hangs, timeout=0.2)
    with caplog.at_level(logging.ERROR, logger="core.lifecycle"):
        await asyncio.wait_for(stack.aclose(), 5)
    assert stopped == ["db"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("stopping listener took over" in m and "hangs" in m for m in messages)
    assert any(m == "stopping fails failed" for m in messages)


async def test_a_task_that_swallows_its_cancel_does_not_hold_its_owner(
    caplog: pytest.LogCaptureFixture,
):
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # as a read that takes the cancel for its own timeout

    async def polite() -> None:
        await asyncio.sleep(10)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="core.lifecycle"):
        await asyncio.wait_for(cancel_and_wait(tasks, "owner", timeout=0.2), 5)
    assert tasks[1].cancelled() and not tasks[0].done()
    assert any("owner: a task did not end" in r.getMessage() for r in caplog.records)
    stop.set()
    tasks[0].cancel()
    await asyncio.wait({tasks[0]}, timeout=5)

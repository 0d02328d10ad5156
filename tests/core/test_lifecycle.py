"""Stopping within a bounded time: a part that hangs does not keep the others open."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

import pytest

from core.lifecycle import on_stop


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

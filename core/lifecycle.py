"""Stopping what a process owns within a bounded time.

A service that cannot stop cannot be restarted: systemd would kill it at
``TimeoutStopSec`` with its last writes unflushed and its sockets held.  Each
part's ``stop`` is therefore given a time; a part that overruns it is logged
with the stack it is stuck in and left behind, and the parts after it (the
database, the listening sockets) still close.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


async def stop_within(name: str, stop: Callable[[], Awaitable[None]], timeout: float) -> None:
    """Run ``stop()``; past ``timeout`` seconds log where it hangs and go on."""
    task = asyncio.ensure_future(stop())
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        stack = io.StringIO()
        task.print_stack(file=stack)
        log.error("stopping %s took over %.0f s; left behind:\n%s", name, timeout, stack.getvalue())
        task.cancel()
        return
    if task.exception() is not None:
        log.error("stopping %s failed", name, exc_info=task.exception())


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any] | None], name: str, timeout: float = 5.0
) -> None:
    """Cancel ``tasks`` and wait for them to end, at most ``timeout`` seconds.

    A task can swallow its cancellation (redis-py's reads do, now and then)
    and carry on; a plain ``gather`` after ``cancel`` then waits for ever. Its
    owner should also make its loop check a stop flag; this bounds the wait
    whatever the task does, and says which task overran.
    """
    pending = [t for t in tasks if t is not None and not t.done()]
    for t in pending:
        t.cancel()
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for t in late:
        stack = io.StringIO()
        t.print_stack(file=stack)
        log.error(
            "%s: a task did not end %.0f s after its cancel:\n%s", name, timeout, stack.getvalue()
        )


def on_stop(
    stack: AsyncExitStack,
    name: str,
    stop: Callable[[], Awaitable[None]],
    timeout: float = STOP_TIMEOUT,
) -> None:
    """Push ``stop`` onto ``stack``, bounded by :func:`stop_within`."""
    stack.push_async_callback(stop_within, name, stop, timeout)

"""Writes that arrive together, applied together: one transaction for many callers.

SQLite has one writer, and each write transaction holds it for a few thread hops
of aiosqlite's and the loop's turns between them: a notification going out, a
delivery report coming back, a row marked sent.  When dozens of these arrive at
once, applying them in one transaction each keeps the writer busy with commits;
:class:`Batches` applies whatever arrived while the batch before it was being
written as the next batch (no timer: a lone item is applied at once).

Each caller awaits its own result, given once its batch has committed; if the
batch fails as a whole, every caller of that batch gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batches(Generic[Item, Result]):
    """Items applied in batches by ``apply`` (the items in their order of arrival; one
    result per item, or the exception that item's caller is to get)."""

    def __init__(
        self,
        apply: Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]],
        *,
        name: str,
        size: int = 200,
    ) -> None:
        self._apply = apply
        self._name = name
        self.size = size
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """``item``'s result, once the batch it went in has been applied."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, done))
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = asyncio.create_task(self._drain(), name=self._name)
        # a caller that is cancelled does not cancel the batch the others wait for
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.size], self._waiting[self.size :]
            try:
                results = await self._apply([item for item, _ in batch])
            except asyncio.CancelledError:
                # stopped (at shutdown): nobody is left waiting for ever
                for _, done in batch + self._waiting:
                    done.cancel()
                self._waiting = []
                raise
            except Exception as e:  # noqa: BLE001 - each caller gets it
                for _, done in batch:
                    if not done.done():
                        done.set_exception(e)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, Exception):
                    done.set_exception(result)
                else:
                    done.set_result(result)

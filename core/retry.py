"""Retrying a dependency that went away: capped exponential backoff with
jitter, and one log line when it goes and one when it is back.

A retry every second with a traceback each time floods the log while Redis
is down and, with many workers retrying in step, hits the dependency in a
burst the moment it returns. :class:`Outage` spaces the tries out (0.5 s
doubling to a cap, each delay drawn at random up to its bound, "full
jitter") and says "X unavailable" once, "X is back" once.
"""

from __future__ import annotations

import logging
import random
import time

log = logging.getLogger(__name__)


class Outage:
    """The state of one dependency seen by one loop; call :meth:`failed` on
    each failure (it returns how long to wait) and :meth:`ok` on each success."""

    def __init__(
        self,
        name: str,
        *,
        first: float = 0.5,
        cap: float = 30.0,
        logger: logging.Logger | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.first = first
        self.cap = cap
        self.log = logger or log
        self.rng = rng or random.Random()
        self.failures = 0
        self.since: float | None = None

    @property
    def down(self) -> bool:
        return self.failures > 0

    def bound(self) -> float:
        """The largest wait after the current number of failures."""
        return float(min(self.cap, self.first * 2 ** max(0, self.failures - 1)))

    def failed(self, error: BaseException | str) -> float:
        """Note a failure; the seconds to wait before the next try."""
        self.failures += 1
        if self.failures == 1:
            self.since = time.monotonic()
            self.log.warning("%s unavailable (%s); retrying with backoff", self.name, error)
        else:
            self.log.debug("%s still unavailable (%s), try %d", self.name, error, self.failures)
        return self.rng.uniform(0, self.bound())

    def ok(self) -> None:
        """Note a success; says "back" once after an outage."""
        if self.failures:
            took = time.monotonic() - (self.since or time.monotonic())
            self.log.warning(
                "%s is back after %.1f s and %d failed tries", self.name, took, self.failures
            )
        self.failures = 0
        self.since = None

"""Time, injectable.

Everything that depends on the time of day (which shift is on duty, when the
next handover is) asks a :class:`Clock`, so tests can cross 22:00 and 06:00
without waiting for them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta, tzinfo


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The start of ``day`` in the time zone ``tz`` (an aware local time)."""
    return datetime.combine(day, time.min, tzinfo=tz)


class Clock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``when`` has passed (may return early; callers re-check)."""
        delay = (when - self.now()).total_seconds()
        await asyncio.sleep(max(0.0, min(delay, 60.0)))


class FakeClock(Clock):
    """A clock that moves only when told to; sleepers wake when it passes their time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._now = start
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when
        self._changed.set()
        self._changed = asyncio.Event()

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)

    async def sleep_until(self, when: datetime) -> None:
        while self._now < when:
            await self._changed.wait()

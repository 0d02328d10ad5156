"""Health: whether the process answers, and whether it is ready to take calls.

The composition root registers one check per dependency (the database,
Redis, the AMI login, the FastAGI socket, the transcription workers); a
check returns what it saw, or raises.  Checks run side by side, each within
a time, so one dependency that hangs makes the answer "not ready" in
bounded time instead of hanging the load balancer's probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

CHECK_TIMEOUT = 2.0


class NotReady(Exception):
    """A check's dependency is there but not usable (its message says why)."""


Check = Callable[[], Awaitable[dict[str, Any] | None]]


@dataclass
class Health:
    """Named readiness checks; ``required`` ones decide ready / not ready."""

    checks: dict[str, tuple[Check, bool]] = field(default_factory=dict)
    timeout: float = CHECK_TIMEOUT

    def add(self, name: str, check: Check, *, required: bool = True) -> None:
        self.checks[name] = (check, required)

    async def _one(self, check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            seen = await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            result: dict[str, Any] = {"ok": False, "error": f"no answer within {self.timeout:g} s"}
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            result = {"ok": False, "error": str(e) or type(e).__name__}
        else:
            result = {"ok": True, **(seen or {})}
        result["ms"] = round(1000 * (time.perf_counter() - started), 1)
        return result

    async def report(self) -> dict[str, Any]:
        """``{"ready": bool, "checks": {name: {"ok": ..., ...}}}``."""
        names = list(self.checks)
        results = await asyncio.gather(*(self._one(self.checks[n][0]) for n in names))
        checks = dict(zip(names, results, strict=True))
        for name in names:
            checks[name]["required"] = self.checks[name][1]
        ready = all(c["ok"] for n, c in checks.items() if self.checks[n][1])
        return {"ready": ready, "checks": checks}

"""Backoff with jitter and one line per outage (our own logic: no dependency)."""

from __future__ import annotations

import logging
import random

import pytest

from core.retry import Outage


def test_waits_grow_to_the_cap_with_jitter_and_reset_when_back(
    caplog: pytest.LogCaptureFixture,
):
    outage = Outage("Redis", first=0.5, cap=8, rng=random.Random(7))
    with caplog.at_level(logging.DEBUG, logger="core.retry"):
        waits = [outage.failed(OSError("refused")) for _ in range(8)]
        bounds = [0.5, 1, 2, 4, 8, 8, 8, 8]
        assert all(0 <= w <= b for w, b in zip(waits, bounds, strict=True))
        assert len(set(waits)) == len(waits)  # drawn, not fixed: workers do not retry in step
        outage.ok()
        outage.ok()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0] == "Redis unavailable (refused); retrying with backoff"
    assert warnings[1].startswith("Redis is back after ") and "8 failed tries" in warnings[1]
    assert len(warnings) == 2  # one when it goes, one when it is back
    assert not outage.down and outage.bound() == 0.5

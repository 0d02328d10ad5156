"""The congestion watch on real live state: LiveQueues in real Redis, alarms in
real SQLite and PostgreSQL, announced on the real bus.

The queue is moved through LiveState's own change calls (what its AMI
handlers call); the watch reads it back from Redis through a second LiveQueues, as a
separate process would.  The browser test drives the same path with real calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from callcenter.live import LiveState
from core.bus import Bus
from core.clock import Clock, FakeClock
from core.db import Database, sync_url
from core.settings import Congestion, Settings
from queue_stats.congestion import CongestionWatch, current_alarms, history
from queue_stats.live import LiveQueues
from tests.helpers import alembic_cfg, forget_keys, settings_in
from tests.lab import eventually

Q = "t1022-morning"
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = settings_in(tmp_path)
    congestion = Congestion(
        callers_waiting=3, longest_wait_seconds=60, all_busy_growing_seconds=30, clear_ratio=0.5
    )
    stats = base.stats.model_copy(update={"congestion": congestion})
    return base.model_copy(update={"stats": stats})


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    b = Bus(settings.panel.redis_url, f"testcong{uuid.uuid4().hex[:8]}")
    yield b
    await forget_keys(b)
    await b.close()


class Board:
    """Everything published on the ``board`` topic, as a page would get it."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.messages: list[dict[str, Any]] = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for _topic, data in self.bus.listen(["board"], self.ready):
            self.messages.append(json.loads(data))

    def congestion(self) -> list[tuple[str, str]]:
        return [(m["queue"], m["state"]) for m in self.messages if m["type"] == "congestion"]

    async def close(self) -> None:
        self.task.cancel()
        await self.bus.stop_listening()
        await asyncio.wait({self.task}, timeout=5)


async def test_alarm_raised_recorded_announced_kept_survives_restart_and_clears(
    db: Database, bus: Bus, settings: Settings, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="queue_stats.congestion")
    clock = FakeClock(T0)
    live = LiveState(bus, clock)  # the application's owner of the live state
    board = Board(bus)
    await asyncio.wait_for(board.ready.wait(), 5)
    try:
        live.member_added(Q, "1001", "talking", False, None, T0)
        live.member_added(Q, "1002", "free", True, "meal", T0)  # paused, not free
        for i in range(2):
            live.caller_joined(Q, f"pbx-{i}.1", f"090000000{i}", i + 1, T0)
        await live.flush()
        reader = LiveQueues(bus, clock)  # a separate reader, as the panel has
        watch = CongestionWatch(reader, bus, db, settings, clock)
        await watch.restore()
        assert await watch.check() == []

        clock.advance(timedelta(seconds=10))
        live.caller_joined(Q, "pbx-2.1", "0900000002", 3, clock.now())
        await live.flush()
        [change] = await watch.check()
        assert (change.queue, change.state, change.reasons) == (
            Q,
            "raised",
            ("callers_waiting",),
        )
        assert change.measures.waiting == 3 and change.measures.longest_wait == 10
        # kept for a fresh page, announced to open ones, recorded, logged
        alarms = await current_alarms(bus, settings)
        assert list(alarms) == [Q] and alarms[Q]["reasons"] == ["callers_waiting"]
        await eventually(lambda: asyncio.sleep(0, result=board.congestion() or None), 5)
        assert board.congestion() == [(Q, "raised")]
        assert any(m["type"] == "queue" and len(m["state"]["waiting"]) == 3 for m in board.messages)
        [row] = await history(db, T0)
        assert (row.queue, row.state, row.reasons, row.waiting) == (
            Q,
            "raised",
            "callers_waiting",
            3,
        )
        assert row.at == clock.now()
        assert any("congestion on queue t1022-morning" in r.getMessage() for r in caplog.records)

        # the application restarts: the alarm is in force, not raised a second time
        watch = CongestionWatch(LiveQueues(bus, clock), bus, db, settings, clock)
        await bus.forget(f"congestion.{Q}")  # even if Redis lost it meanwhile
        await watch.restore()
        assert Q in await current_alarms(bus, settings)
        clock.advance(timedelta(seconds=5))
        live.caller_left(Q, "pbx-0.1")  # 2 waiting: not yet under 0.5 x 3
        await live.flush()
        assert await watch.check() == []

        live.caller_left(Q, "pbx-1.1")  # 1 waiting, for 5 s
        await live.flush()
        [change] = await watch.check()
        assert change.state == "cleared" and change.measures.waiting == 1
        assert await current_alarms(bus, settings) == {}
        await eventually(lambda: asyncio.sleep(0, result=len(board.congestion()) == 2 or None), 5)
        assert board.congestion() == [(Q, "raised"), (Q, "cleared")]
        rows = await history(db, T0)
        assert [r.state for r in rows] == ["cleared", "raised"]
        assert any("cleared" in r.getMessage() for r in caplog.records)
    finally:
        await board.close()


async def test_congestion_records_are_append_only(db: Database, bus: Bus, settings: Settings):
    clock = FakeClock(T0)
    live = LiveState(bus, clock)
    for i in range(3):
        live.caller_joined(Q, f"pbx-{i}.1", None, i + 1, T0)
    await live.flush()
    watch = CongestionWatch(LiveQueues(bus, clock), bus, db, settings, clock)
    assert len(await watch.check()) == 1
    for statement in (
        "UPDATE congestion_events SET state = 'cleared'",
        "DELETE FROM congestion_events",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.session() as s:
                await s.execute(sa.text(statement))
    assert [r.state for r in await history(db, T0)] == ["raised"]


async def test_the_running_watch_raises_on_a_long_wait_by_itself(
    db: Database, bus: Bus, settings: Settings
):
    """No event at all after the caller joined: time alone raises the alarm."""
    clock = Clock()
    live = LiveState(bus, clock)
    live.member_added(Q, "1001", "free", False, None, clock.now())
    live.caller_joined(Q, "pbx-9.1", None, 1, clock.now() - timedelta(seconds=59))
    await live.flush()
    watch = CongestionWatch(LiveQueues(bus, clock), bus, db, settings, clock, interval=0.2)
    await watch.start()
    try:
        alarms = await eventually(lambda: current_alarms(bus, settings), 10)
        assert alarms[Q]["reasons"] == ["longest_wait"]
        assert alarms[Q]["longest_wait_seconds"] >= 60
    finally:
        await watch.stop()


async def test_a_new_reason_escalates_the_alarm_once_and_survives_a_restart(
    db: Database, bus: Bus, settings: Settings, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="queue_stats.congestion")
    clock = FakeClock(T0)
    live = LiveState(bus, clock)
    board = Board(bus)
    await asyncio.wait_for(board.ready.wait(), 5)

    async def moment(seconds: int) -> None:
        await live.flush()
        clock.set(T0 + timedelta(seconds=seconds))

    try:
        live.member_added(Q, "1001", "free", False, None, T0)
        live.caller_joined(Q, "pbx-0.1", "0900000000", 1, T0)
        await moment(30)
        for i in (1, 2):
            live.caller_joined(Q, f"pbx-{i}.1", f"090000000{i}", i + 1, clock.now())
        await moment(30)
        watch = CongestionWatch(LiveQueues(bus, clock), bus, db, settings, clock)
        await watch.restore()
        [raised] = await watch.check()
        assert raised.reasons == ("callers_waiting",)
        began = clock.now()

        # the first caller has now waited 60 s: the alarm gains a reason
        await moment(60)
        [change] = await watch.check()
        assert (change.state, change.added, change.reasons) == (
            "escalated",
            ("longest_wait",),
            ("callers_waiting", "longest_wait"),
        )
        assert await watch.check() == [], "announced once"
        alarm = (await current_alarms(bus, settings))[Q]
        assert (alarm["state"], alarm["reasons"], alarm["added"], alarm["since"]) == (
            "escalated",
            ["callers_waiting", "longest_wait"],
            ["longest_wait"],
            began.isoformat(),
        )
        await eventually(lambda: asyncio.sleep(0, result=len(board.congestion()) == 2 or None), 5)
        assert board.congestion() == [(Q, "raised"), (Q, "escalated")]
        rows = await history(db, T0)
        assert [(r.state, r.reasons, r.added) for r in rows] == [
            ("escalated", "callers_waiting,longest_wait", "longest_wait"),
            ("raised", "callers_waiting", "callers_waiting"),
        ]
        assert rows[0].at == clock.now() and rows[0].longest_wait_seconds == 60
        assert any(
            "escalated: longest_wait too" in r.getMessage() and r.levelno == logging.WARNING
            for r in caplog.records
        )

        # a restart: the alarm comes back with both reasons and its start
        await bus.forget(f"congestion.{Q}")
        watch = CongestionWatch(LiveQueues(bus, clock), bus, db, settings, clock)
        await watch.restore()
        alarm = (await current_alarms(bus, settings))[Q]
        assert (alarm["state"], alarm["reasons"], alarm["since"]) == (
            "escalated",
            ["callers_waiting", "longest_wait"],
            began.isoformat(),
        )
        # the first caller is answered: 2 waiting, the longest for 31 s, both under
        # their thresholds (not under half: still up) ...
        live.caller_left(Q, "pbx-0.1")
        await moment(61)
        assert await watch.check() == []
        m = watch.rule.measure(Q, (await watch.live.snapshot())["queues"][Q], clock.now())
        assert (m.waiting, m.longest_wait) == (2, 31)
        # ... then both pass them again: nothing is announced a second time
        live.caller_joined(Q, "pbx-3.1", "0900000003", 3, clock.now())
        await moment(95)
        assert await watch.check() == []
        assert len(await history(db, T0)) == 2

        for i in (1, 2, 3):
            live.caller_left(Q, f"pbx-{i}.1")
        await moment(96)
        [cleared] = await watch.check()
        assert cleared.state == "cleared" and await current_alarms(bus, settings) == {}
        rows = await history(db, T0)
        assert [r.state for r in rows] == ["cleared", "escalated", "raised"]
    finally:
        await board.close()


def test_migration_0010_keeps_the_alarm_log_append_only_both_ways(database_url: str):
    cfg = alembic_cfg(database_url)
    command.upgrade(cfg, "0009")
    engine = sa.create_engine(sync_url(database_url))
    insert = sa.text(
        "INSERT INTO congestion_events (at, queue, state, reasons, waiting, "
        "longest_wait_seconds, all_busy_growing_seconds) "
        "VALUES (:at, :queue, :state, :reasons, 3, 60, 0)"
    )

    def states() -> list[tuple[str, str]]:
        with engine.connect() as c:
            return [
                (r.state, r.reasons)
                for r in c.execute(sa.text("SELECT * FROM congestion_events ORDER BY id"))
            ]

    def refused(statement: str) -> None:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as c:
            c.execute(sa.text(statement))

    try:
        with engine.begin() as c:
            c.execute(
                insert, {"at": T0, "queue": Q, "state": "raised", "reasons": "callers_waiting"}
            )
        command.upgrade(cfg, "0010")
        with engine.begin() as c:
            assert c.execute(sa.text("SELECT added FROM congestion_events")).scalar_one() == ""
            c.execute(
                insert,
                {
                    "at": T0 + timedelta(seconds=60),
                    "queue": Q,
                    "state": "escalated",
                    "reasons": "callers_waiting,longest_wait",
                },
            )
        refused("UPDATE congestion_events SET added = 'x'")
        refused("DELETE FROM congestion_events")

        # down again: the escalated row reads as the alarm in force 0009 knows
        command.downgrade(cfg, "0009")
        assert states() == [
            ("raised", "callers_waiting"),
            ("raised", "callers_waiting,longest_wait"),
        ]
        refused("UPDATE congestion_events SET state = 'cleared'")
        refused("DELETE FROM congestion_events")
        command.upgrade(cfg, "head")
        refused("UPDATE congestion_events SET state = 'cleared'")
    finally:
        engine.dispose()

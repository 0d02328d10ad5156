"""The application stopped in the middle of a run of real calls, then started again.

The calls go on in Asterisk while the application is down; on its next AMI
login it catches up from queue_log.  The event table must then hold exactly
what it holds without the restart (the rows Asterisk's queue_log names for
those calls, as tests/queue_stats/test_ingest_calls.py shows the live path
writes them): nothing lost, nothing twice.  The board is rebuilt from
Asterisk even though Redis was flushed meanwhile.  On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlalchemy import select

from callcenter.models import Call
from core.clock import Clock
from hotline.app import Application
from hotline.system import migrate
from tests.agi.test_calls import new_number
from tests.lab import Lab, eventually
from tests.queue_stats.test_ingest_calls import fact, queue_log_rows, rows_of

pytestmark = pytest.mark.asterisk

CALLS = 4


async def started(app: Application) -> Application:
    """Started, logged in to AMI, and its login hooks done (stopping it sooner would
    leave the agents' state resync writing to a closed Redis)."""
    since = time.time()
    await app.start()
    await app.ami.wait_logged_in(30)
    await asyncio.wait_for(app.scheduler.reconciled.wait(), 30)
    names = [f"state.{a.extension}" for a in app.settings.agents]

    async def agents_resynced() -> bool:
        kept = await app.bus.kept_many(names)
        return len(kept) == len(names) and all(v.get("sent", 0) >= since for v in kept.values())

    await eventually(agents_resynced, 30)
    return app


async def answered_ids(app: Application, numbers: list[str]) -> set[str] | None:
    async with app.db.session() as s:
        calls = list(await s.scalars(select(Call).where(Call.caller_number.in_(numbers))))
    done = {c.uniqueid for c in calls if c.answered_at is not None}
    return done if len(done) == len(numbers) else None


async def test_restart_mid_run_loses_nothing_and_counts_nothing_twice(
    carrier: Lab, database_url: str
):
    settings = carrier.settings.model_copy(update={"database_url": database_url})
    await asyncio.to_thread(migrate, settings)
    numbers = [new_number() for _ in range(CALLS)]

    first = await started(Application(settings, clock=Clock(), scheduler_interval=2))
    try:
        for i, number in enumerate(numbers):
            # long enough that the first is still talking when the last is answered, the
            # recorded-call notice played before each joins the queue
            await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=10 + i)
        # every caller is talking to an agent: stop the application now
        ids = await eventually(lambda: answered_ids(first, numbers), 30)
        await asyncio.wait_for(first.queue_events.drained(), 10)
        before = {fact(r) for r in await rows_of(first, ids)}
    finally:
        await first.stop()
    assert Counter(f[1] for f in before) == {"JOIN": CALLS, "CONNECT": CALLS}

    # the calls end while nobody listens; Asterisk's queue_log records it
    async def all_completed() -> bool:
        return sum(r.event == "COMPLETECALLER" for r in queue_log_rows(first, ids)) == CALLS

    await eventually(all_completed, 30)

    second = Application(settings, clock=Clock(), scheduler_interval=2)
    await second.bus.redis.delete(second.live_queues.hash_key)  # Redis lost its state too
    await started(second)
    try:

        async def caught_up() -> list[tuple[object, ...]] | None:
            got = [fact(r) for r in await rows_of(second, ids)]
            return got if len(got) >= 3 * CALLS else None

        got = await eventually(caught_up, 30)
        await second.queue_catchup.run_once()  # a further pass changes nothing
        assert [fact(r) for r in await rows_of(second, ids)] == got
        assert len(got) == len(set(got)) == 3 * CALLS
        assert set(got) == {fact(r) for r in queue_log_rows(second, ids)}
        assert before <= set(got)  # the rows written live stay as they were
        for uniqueid in ids:
            assert [f[1] for f in got if f[3] == uniqueid] == ["JOIN", "CONNECT", "COMPLETECALLER"]

        # the board, rebuilt from Asterisk: every queue, its members, nobody waiting
        snap = await second.live_queues.snapshot()
        team = {a.extension for a in settings.agents if a.team == "t1022"}
        on_duty = {
            m["extension"]
            for name, q in snap["queues"].items()
            if name.startswith("t1022-")
            for m in q["members"]
        }
        assert on_duty and on_duty <= team
        assert not any(c["uniqueid"] in ids for q in snap["queues"].values() for c in q["waiting"])
    finally:
        await second.stop()

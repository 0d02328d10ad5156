"""Real calls through the real Asterisk: the event table and the live board.

One call answered, one abandoned, one that reaches the maximum wait (every
agent of its team paused); the rows must be the ones Asterisk's own queue_log
names for those calls, key for key, and the board must show the callers
waiting and the paused members while it lasts.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.models import Outcome
from callcenter.queue_log import parse_line
from hotline.app import Application
from queue_stats.catchup import row_from_entry
from queue_stats.models import QueueEvent
from queue_stats.storage import Row
from tests.agi.test_calls import ended_record, new_number
from tests.callcenter.test_no_agent import set_paused
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk


async def rows_of(app: Application, uniqueids: set[str]) -> list[QueueEvent]:
    async with app.db.session() as s:
        return list(
            await s.scalars(
                select(QueueEvent).where(QueueEvent.uniqueid.in_(uniqueids)).order_by(QueueEvent.id)
            )
        )


def queue_log_rows(app: Application, uniqueids: set[str]) -> list[Row]:
    lines = app.settings.queue_log.read_text().splitlines()
    got = [row_from_entry(e) for e in map(parse_line, lines) if e is not None]
    return [r for r in got if r is not None and r.uniqueid in uniqueids]


def fact(r: QueueEvent | Row) -> tuple[Any, ...]:
    return (r.key, r.event, r.queue, r.uniqueid, r.agent, r.wait_seconds, r.talk_seconds)


async def test_answered_abandoned_and_timed_out_calls(carrier: Lab, app: Application):
    answers, leaves, waits = new_number(), new_number(), new_number()
    max_wait = carrier.settings.queues.max_wait_seconds
    await set_paused(app, "party", True)
    try:
        # the key cuts the greeting and the recorded-call notice short; the notice is then
        # played in full before the queue, so each caller stays on a little longer
        await carrier.carrier.call("1022", caller_id=f"<{answers}>", digits="1", hold=7)
        await carrier.carrier.call("0888247247", caller_id=f"<{leaves}>", digits="1", hold=8)
        await carrier.carrier.call(
            "0888247247", caller_id=f"<{waits}>", digits="1", hold=max_wait + 20
        )

        # the board: both party callers waiting, in order, every party member paused
        async def both_waiting() -> dict[str, Any] | None:
            for name, q in (await app.live_queues.snapshot())["queues"].items():
                callers = {c["caller"] for c in q["waiting"]}
                if name.startswith("party-") and {leaves, waits} <= callers:
                    return q
            return None

        party = await eventually(both_waiting, 20)
        assert sorted(c["position"] for c in party["waiting"]) == [1, 2]
        assert all(datetime.fromisoformat(c["since"]).tzinfo for c in party["waiting"])
        assert party["members"] and all(
            m["state"] == "paused" and m["reason"] == "test break" for m in party["members"]
        )
        answered, abandoned, timed_out = await asyncio.gather(
            ended_record(app, answers, timeout=30),
            ended_record(app, leaves, timeout=30),
            ended_record(app, waits, timeout=max_wait + 40),
        )
    finally:
        await set_paused(app, "party", False)
    assert (answered.outcome, abandoned.outcome, timed_out.outcome) == (
        Outcome.ANSWERED,
        Outcome.ABANDONED,
        Outcome.TIMEOUT,
    )
    ids = {answered.uniqueid, abandoned.uniqueid, timed_out.uniqueid}
    await asyncio.wait_for(app.queue_events.drained(), 10)
    got = await rows_of(app, ids)

    def of(uniqueid: str) -> list[str]:
        return [r.event for r in got if r.uniqueid == uniqueid]

    assert of(answered.uniqueid) == ["JOIN", "CONNECT", "COMPLETECALLER"]
    assert of(abandoned.uniqueid) == ["JOIN", "ABANDON"]
    assert of(timed_out.uniqueid) == ["JOIN", "EXITWITHTIMEOUT"]
    by = {(r.uniqueid, r.event): r for r in got}
    complete = by[answered.uniqueid, "COMPLETECALLER"]
    assert complete.agent == answered.agent_extension and complete.talk_seconds >= 3
    assert 4 <= by[abandoned.uniqueid, "ABANDON"].wait_seconds <= 9
    assert max_wait - 1 <= by[timed_out.uniqueid, "EXITWITHTIMEOUT"].wait_seconds <= max_wait + 2
    assert {r.queue for r in got if r.uniqueid != answered.uniqueid} == {abandoned.queue}

    # the same keys as Asterisk's queue_log: a catch-up pass finds nothing to add
    assert {fact(r) for r in got} == {fact(r) for r in queue_log_rows(app, ids)}
    await app.queue_catchup.run_once()
    assert [fact(r) for r in await rows_of(app, ids)] == [fact(r) for r in got]

    # and the board is empty of them again, the party members free
    async def settled() -> bool:
        snap = await app.live_queues.snapshot()
        waiting = {c["uniqueid"] for q in snap["queues"].values() for c in q["waiting"]}
        party_states = {
            m["state"]
            for name, q in snap["queues"].items()
            if name.startswith("party-")
            for m in q["members"]
        }
        return not (waiting & ids) and party_states == {"free"}

    await eventually(settled, 10)

    # what the events built is what Asterisk itself says (QueueStatus) now
    def picture(snap: dict[str, Any]) -> dict[str, Any]:
        return {
            name: (
                sorted((m["extension"], m["name"], m["state"], m["reason"]) for m in q["members"]),
                sorted(c["uniqueid"] for c in q["waiting"]),
            )
            for name, q in snap["queues"].items()
            if q["members"] or q["waiting"]
        }

    from_events = picture(await app.live_queues.snapshot())
    await app.live.rebuild(app.ami)  # the live state's owner, from QueueStatus
    await app.live.flush()
    assert picture(await app.live_queues.snapshot()) == from_events

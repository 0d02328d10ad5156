"""The figures of real calls through the real Asterisk agree with values worked out
by hand from the same run and with app_queue's own counters (AMI QueueStatus)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.models import Outcome
from callcenter.shifts import on_duty_queue
from hotline.app import Application
from queue_stats.figures import figures
from tests.agi.test_calls import ended_record, new_number
from tests.callcenter.test_no_agent import set_paused
from tests.lab import Lab

pytestmark = pytest.mark.asterisk


async def queue_params(app: Application, queue: str) -> dict[str, str]:  # noqa: F811
    events = await app.ami.action({"Action": "QueueStatus", "Queue": queue}, as_list=True)
    return next(e for e in events if e.get("Event") == "QueueParams" and e["Queue"] == queue)


async def test_answered_abandoned_timed_out_agree_with_asterisk(
    carrier: Lab,  # noqa: F811
    app: Application,  # noqa: F811
):
    s = carrier.settings
    sl = s.stats.service_level_seconds
    start = datetime.now(UTC)
    queue, _ = on_duty_queue(s, "party", start)
    if (on_duty_queue(s, "party", start + timedelta(minutes=3))[0]) != queue:
        pytest.skip("a shift handover falls within the test: the calls would split")
    # app_queue's counters start from zero for this queue
    await app.ami.action({"Action": "QueueReset", "Queue": queue}, as_list=False)
    params = await queue_params(app, queue)
    assert params["Completed"] == "0" and params["Abandoned"] == "0"
    assert params["ServiceLevel"] == str(sl)

    answers, leaves, waits = new_number(), new_number(), new_number()
    await carrier.carrier.call("0888247247", caller_id=f"<{answers}>", digits="1", hold=4)
    answered = await ended_record(app, answers, timeout=60)
    await set_paused(app, "party", True)  # nobody takes the next two
    try:
        await carrier.carrier.call("0888247247", caller_id=f"<{leaves}>", digits="1", hold=9)
        await carrier.carrier.call(
            "0888247247", caller_id=f"<{waits}>", digits="1", hold=s.queues.max_wait_seconds + 20
        )
        abandoned, timed_out = await asyncio.gather(
            ended_record(app, leaves, timeout=40),
            ended_record(app, waits, timeout=s.queues.max_wait_seconds + 40),
        )
    finally:
        await set_paused(app, "party", False)
    assert answered.outcome == Outcome.ANSWERED and answered.queue == queue
    assert abandoned.outcome == Outcome.ABANDONED and timed_out.outcome == Outcome.TIMEOUT
    assert answered.hold_seconds is not None and answered.talk_seconds is not None
    assert abandoned.hold_seconds is not None and timed_out.hold_seconds is not None

    # by hand, from the three records of this run
    in_sl_answered = int(answered.hold_seconds <= sl)
    in_sl_unanswered = int(abandoned.hold_seconds <= sl) + int(timed_out.hold_seconds <= sl)
    end = datetime.now(UTC) + timedelta(seconds=1)
    [f] = await figures(app.db, s, start, end, queue=queue)
    assert (f.offered, f.answered, f.abandoned, f.timed_out) == (3, 1, 1, 1)
    assert f.answered_in_sl == in_sl_answered
    assert f.abandoned_in_sl == in_sl_unanswered
    assert f.service_level_perf == 100.0 * in_sl_answered
    assert f.service_level_perf2 == round(100 * (in_sl_answered + in_sl_unanswered) / 3, 1)
    assert f.asa == answered.hold_seconds
    assert f.longest_wait == max(
        answered.hold_seconds, abandoned.hold_seconds, timed_out.hold_seconds
    )
    assert f.longest_wait >= s.queues.max_wait_seconds - 1  # the caller who waited it out
    assert f.talk_seconds == answered.talk_seconds
    [by_hotline] = await figures(app.db, s, start, end, by="hotline", queue=queue)
    assert by_hotline.key == "0888247247" and by_hotline.offered == 3

    # and as app_queue counts them
    params = await queue_params(app, queue)
    assert int(params["Completed"]) == f.answered
    assert int(params["Abandoned"]) == f.asterisk_abandoned  # the timeout counts there too
    assert float(params["ServicelevelPerf"]) == pytest.approx(f.service_level_perf, abs=0.05)
    assert float(params["ServicelevelPerf2"]) == pytest.approx(f.service_level_perf2, abs=0.05)
    # one answered call: app_queue's running averages are that call's values
    assert abs(int(params["Holdtime"]) - answered.hold_seconds) <= 1
    assert abs(int(params["TalkTime"]) - answered.talk_seconds) <= 1

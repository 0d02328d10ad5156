"""Callers no agent takes: hanging up while waiting, and the maximum wait."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.models import Outcome
from callcenter.scheduler import parse_status
from hotline.app import Application
from tests.agi.test_calls import ended_record, new_number
from tests.lab import Lab

pytestmark = pytest.mark.asterisk


async def set_paused(app: Application, team: str, paused: bool) -> None:
    events = await app.ami.action({"Action": "QueueStatus"}, as_list=True)
    for m in parse_status(events)[0]:
        if m.queue.startswith(f"{team}-"):
            await app.ami.action(
                {
                    "Action": "QueuePause",
                    "Queue": m.queue,
                    "Interface": m.interface,
                    "Paused": "true" if paused else "false",
                    "Reason": "test break",
                },
                as_list=False,
            )


async def test_abandoned_and_timed_out_calls_get_complete_records(carrier: Lab, app: Application):
    await set_paused(app, "party", True)  # every agent of the team on a break
    try:
        leaves, waits = new_number(), new_number()
        max_wait = carrier.settings.queues.max_wait_seconds
        await carrier.carrier.call("0888247247", caller_id=f"<{leaves}>", digits="1", hold=8)
        await carrier.carrier.call(
            "0888247247", caller_id=f"<{waits}>", digits="1", hold=max_wait + 20
        )
        abandoned, timed_out = await asyncio.gather(
            ended_record(app, leaves, timeout=30), ended_record(app, waits, timeout=max_wait + 40)
        )
    finally:
        await set_paused(app, "party", False)
    assert abandoned.outcome == Outcome.ABANDONED
    assert (
        abandoned.queued_at and abandoned.answered_at is None and abandoned.agent_extension is None
    )
    assert 2 <= abandoned.hold_seconds <= 8
    assert timed_out.outcome == Outcome.TIMEOUT
    waited = (timed_out.ended_at - timed_out.queued_at).total_seconds()
    assert max_wait - 1 <= waited <= max_wait + 15  # then "all operators are busy" and goodbye
    assert timed_out.recording_caller is None  # nobody answered: nothing recorded

"""No call is lost when the IVR application is down or fails: the dialplan queues it."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.models import Outcome
from hotline.app import Application
from tests.agi.test_calls import agent_extensions, dominant_hz, ended_record, new_number
from tests.lab import Lab

pytestmark = pytest.mark.asterisk


async def test_fastagi_server_stopped_call_still_reaches_an_agent(carrier: Lab, app: Application):
    await app.agi.stop()  # connection refused: AGI() returns at once with FAILURE
    number = new_number()
    await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=8)
    call = await ended_record(app, number)
    assert call.route_source == "fallback"
    assert call.outcome == Outcome.ANSWERED
    assert call.queue == f"t1022-{call.shift_id}"
    # the dialplan's own clock picked the queue: the same shift as the application's
    assert call.agent_extension in agent_extensions(carrier, "t1022", call.shift_id)
    hz_in, rms_in = dominant_hz(call.recording_caller)
    hz_out, rms_out = dominant_hz(call.recording_agent)
    assert abs(hz_in - 440) < 15 and abs(hz_out - 1000) < 15
    assert rms_in > 1000 and rms_out > 1000


async def test_ivr_crash_mid_call_falls_back(carrier: Lab, app: Application, monkeypatch):
    async def crash(*_args, **_kwargs):
        raise RuntimeError("simulated fault in the IVR")

    monkeypatch.setattr(app.ivr, "_menu", crash)
    number = new_number()
    await carrier.carrier.call("0888247247", caller_id=f"<{number}>", digits="1", hold=6)
    call = await ended_record(app, number)
    assert call.route_source == "fallback"
    assert call.outcome == Outcome.ANSWERED
    assert call.queue.startswith("party-")
    assert call.recording_caller and call.recording_agent


async def test_call_while_the_application_is_down_gets_its_record_after_restart(carrier: Lab):
    from hotline.app import Application
    from tests.lab import eventually

    async with Application(carrier.settings, scheduler_interval=2) as first:
        await first.ami.wait_logged_in(30)
        await asyncio.wait_for(first.scheduler.reconciled.wait(), 30)
    # The application is down: no IVR, no AMI listener.
    number = new_number()
    channel = await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=8)

    async def gone() -> bool | None:
        return None if await carrier.carrier.active(channel) else True

    await asyncio.sleep(2)
    await eventually(gone, timeout=60)
    async with Application(carrier.settings, scheduler_interval=2) as second:
        await second.ami.wait_logged_in(30)
        call = await ended_record(second, number, timeout=30)
    assert call.route_source == "fallback" and call.outcome == Outcome.ANSWERED
    assert call.hotline_number == "1022" and call.caller_number == number
    assert call.agent_extension in agent_extensions(carrier, "t1022", call.shift_id)
    assert call.talk_seconds and call.talk_seconds >= 3
    hz_in, _ = dominant_hz(call.recording_caller)
    hz_out, _ = dominant_hz(call.recording_agent)
    assert abs(hz_in - 440) < 15 and abs(hz_out - 1000) < 15

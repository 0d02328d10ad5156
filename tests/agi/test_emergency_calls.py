"""Key 0 through the real Asterisk: an emergency number reached over the trunk.

The lab's configuration is changed for these tests (the 1022 hotline's key 0
puts callers through, the trunk has a contact so the PBX can call out) and
reloaded over AMI, then restored.  The test carrier's "emergency desk"
answers 113, 114 and 115 and says so with a ``UserEvent``.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import tomli_w

from callcenter.models import Outcome
from callcenter.recording_files import mixed_file
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from tests.agi.test_calls import (
    AGENT_TONE_HZ,
    CALLER_TONE_HZ,
    dominant_hz,
    ended_record,
    new_number,
)
from tests.callcenter.test_no_agent import set_paused
from tests.lab import CARRIER, Lab, eventually

pytestmark = pytest.mark.asterisk


def emergency_config(original: str) -> dict:
    cfg = tomllib.loads(original)
    for h in cfg["hotlines"]:
        for opt in h["menu"]:
            if opt["action"] == "emergency" and h["id"] == "hl1022":
                opt.update(connect=True, numbers=["113", "114", "115"])
                opt["choose"] = {"vi": "Chọn 1 2 3.", "en": "Choose 1 2 3."}
    cfg["trunk"]["contact"] = f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
    return cfg


@pytest.fixture
async def emergency_app(carrier: Lab) -> AsyncIterator[Application]:
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(emergency_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        application.agi.trace_dir = lab.home / "agi-traces"
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


async def test_key_0_then_1_reaches_113_through_the_trunk(carrier: Lab, emergency_app):
    app = emergency_app
    answered: list[dict] = []

    async def heard(event) -> None:
        if event.get("UserEvent") == "EmergencyAnswered":
            answered.append(dict(event))

    assert carrier.carrier.ami is not None
    carrier.carrier.ami.subscribe(["UserEvent"], heard)
    number = new_number()
    # Every agent of the team on a break and the queue irrelevant: nothing stands
    # between the caller and 113.
    await set_paused(app, "t1022", True)
    try:
        await carrier.carrier.call(
            "1022", caller_id=f"<{number}>", digits="0", wait2=1.0, digits2="1", hold=30
        )
        desk = await eventually(
            lambda: _async([e for e in answered if e.get("Caller") == number]), 30
        )
        call = await ended_record(app, number, timeout=60)
    finally:
        await set_paused(app, "t1022", False)
    assert desk[0]["Number"] == "113"
    assert call.ivr_path == "0:emergency > 1:call:113 > dial:answer"
    assert call.ivr_choice == "emergency:113"
    assert call.outcome == Outcome.EMERGENCY
    assert call.queued_at is None and call.agent_extension is None
    # recorded from the service's answer, both sides, like an agent's call
    assert call.answered_at is not None and call.started_at < call.answered_at < call.ended_at
    assert call.talk_seconds is not None and call.talk_seconds >= 3
    assert call.recording_base and Path(mixed_file(call.recording_base)).stat().st_size > 50_000
    await asyncio.sleep(1)  # MixMonitor closes its files as the bridge ends
    hz_in, rms_in = dominant_hz(call.recording_caller)
    hz_out, rms_out = dominant_hz(call.recording_agent)
    assert abs(hz_in - CALLER_TONE_HZ) < 15, "caller's side holds the caller's voice"
    assert abs(hz_out - AGENT_TONE_HZ) < 15, "the service's side holds the service's voice"
    assert rms_in > 1000 and rms_out > 1000


async def test_emergency_call_hung_up_by_the_caller_stays_noted(carrier: Lab, emergency_app):
    app = emergency_app
    number = new_number()
    started = time.monotonic()
    await carrier.carrier.call(
        "1022", caller_id=f"<{number}>", digits="0", wait2=1.0, digits2="3", hold=5
    )
    call = await ended_record(app, number, timeout=60)
    assert time.monotonic() - started < 30
    assert call.ivr_path.startswith("0:emergency > 3:call:115")
    assert call.outcome == Outcome.EMERGENCY
    assert call.ivr_choice == "emergency:115"


async def test_notice_is_played_before_the_menu(carrier: Lab, app: Application, tmp_path):
    """The recorded-call notice: heard in full after the greeting, before the menu."""
    app.agi.trace_dir = tmp_path
    try:
        number = new_number()
        await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", wait=5, hold=3)
        call = await ended_record(app, number, timeout=60)
    finally:
        app.agi.trace_dir = None
    assert call.ivr_path == "1:agent" and call.outcome == Outcome.ANSWERED
    # what the IVR asked the real Asterisk to play, and what it answered
    trace = (tmp_path / f"{call.uniqueid.replace(':', '_')}.txt").read_text().splitlines()
    asked = [line for line in trace if line.startswith("> ")]
    prompts_dir = carrier.settings.prompts_dir / "vi"
    order = [
        next(i for i, line in enumerate(asked) if f"{prompts_dir}/{pid} " in line)
        for pid in ("greeting-hl1022", "notice-hl1022", "menu-hl1022")
    ]
    assert order == sorted(order), asked
    # the notice ran to its end: no key cut it short
    reply = trace[trace.index(asked[order[1]]) + 1]
    assert reply.startswith("< 200 result=0 endpos="), reply


async def _async(value):
    return value

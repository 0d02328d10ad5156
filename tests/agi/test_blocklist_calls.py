"""Blocked numbers through the real Asterisk and the test carrier.

The 1022 hotline's key 0 puts callers through (as in test_emergency_calls.py).  A
supervisor blocks the caller's number through the panel's service; the running
application's copy of the list learns it over Redis.  Then real calls: the blocked
caller hears the message (the AGI dialogue shows what was played), presses 0 then 1
and reaches 113 over the trunk, never the menu or a queue; one who presses nothing
hears the message twice and is let go; after the block expires, and after it is
lifted, the same number gets the normal menu and an agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import update

from callcenter.models import BlockedNumber, Outcome
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from tests.agi.test_calls import ended_record, new_number
from tests.agi.test_emergency_calls import _async, emergency_config
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk


@pytest.fixture
async def blocking_app(carrier: Lab) -> AsyncIterator[Application]:
    """The application with key 0 putting callers through, its AGI dialogues traced."""
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(emergency_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)  # blocked-hl1022 among them
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        application.agi.trace_dir = lab.home / "agi-traces"
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
            await asyncio.wait_for(application.blocks.listening.wait(), 10)
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


async def block(app: Application, number: str) -> int:
    """Block ``number`` as a supervisor would; returns once the IVR's copy knows it."""
    row = await app.panel.blocklist.add(number, "Gọi quấy rối nhiều lần", 1, by="Giám sát Hà")
    # refresh_seconds is 30: within 5 s only the notice over Redis can have told it
    await eventually(lambda: _async(app.blocks.check(number)), 5)
    return row.id


async def asked(app: Application, uniqueid: str) -> list[str]:
    """What the IVR asked the real Asterisk to do in this call (its AGI trace, written
    when the AGI session ends: the record may be closed a moment before)."""
    assert app.agi.trace_dir is not None
    trace = Path(app.agi.trace_dir) / f"{uniqueid.replace(':', '_')}.txt"
    await eventually(lambda: _async(trace.exists()), 20)
    return [line for line in trace.read_text().splitlines() if line.startswith("> ")]


async def played(app: Application, uniqueid: str, prompt_id: str) -> bool:
    prompts_dir = app.settings.prompts_dir / "vi"
    return any(f"{prompts_dir}/{prompt_id} " in line for line in await asked(app, uniqueid))


async def test_a_blocked_caller_hears_the_message_and_still_reaches_113(
    carrier: Lab, blocking_app: Application
):
    app = blocking_app
    answered: list[dict] = []

    async def heard(event) -> None:
        if event.get("UserEvent") == "EmergencyAnswered":
            answered.append(dict(event))

    assert carrier.carrier.ami is not None
    carrier.carrier.ami.subscribe(["UserEvent"], heard)
    number = new_number()
    block_id = await block(app, number)
    # the network sends it with the country code: the same number
    await carrier.carrier.call(
        "1022", caller_id=f"<+84{number[1:]}>", digits="0", wait=2.0, digits2="1", wait2=1.0,
        hold=20,
    )  # fmt: skip
    desk = await eventually(lambda: _async([e for e in answered if e.get("Number") == "113"]), 40)
    call = await ended_record(app, number, timeout=60)
    assert desk
    assert call.block_id == block_id
    assert call.ivr_path == "blocked > 0:emergency > 1:call:113 > dial:answer"
    assert call.outcome == Outcome.EMERGENCY and call.ivr_choice == "emergency:113"
    assert call.queued_at is None and call.agent_extension is None and call.queue is None
    assert await played(app, call.uniqueid, "blocked-hl1022")
    assert not await played(app, call.uniqueid, "menu-hl1022"), "never the menu"
    assert not await played(app, call.uniqueid, "greeting-hl1022")
    assert (await app.panel.blocklist.blocked_calls()).get(block_id) == 1


async def test_a_blocked_caller_who_presses_nothing_is_let_go(
    carrier: Lab, blocking_app: Application
):
    app = blocking_app
    number = new_number()
    block_id = await block(app, number)
    await carrier.carrier.call("1022", caller_id=f"<{number}>", hold=90)
    call = await ended_record(app, number, timeout=90)
    assert call.outcome == Outcome.BLOCKED and call.block_id == block_id
    assert call.ivr_path == "blocked > silence > silence" and call.ivr_choice == "blocked"
    assert call.queued_at is None and call.agent_extension is None
    assert await played(app, call.uniqueid, "blocked-hl1022") and await played(
        app, call.uniqueid, "goodbye"
    )
    # the channel is gone soon after: the dialplan hung up, not the caller
    await asyncio.sleep(3)
    assert not await carrier.carrier.hangup_all()


async def test_an_expired_and_a_lifted_block_give_the_normal_menu(
    carrier: Lab, blocking_app: Application
):
    app = blocking_app
    # expired: the block ends two seconds from now, judged by the IVR's clock
    number = new_number()
    block_id = await block(app, number)
    async with app.db.session() as s:
        await s.execute(
            update(BlockedNumber)
            .where(BlockedNumber.id == block_id)
            .values(expires_at=app.clock.now() + timedelta(seconds=2))
        )
    assert await app.blocks.refresh()
    assert app.blocks.check(number) == block_id
    await asyncio.sleep(2.5)
    await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", wait=5, hold=3)
    call = await ended_record(app, number, timeout=60)
    assert call.block_id is None and call.outcome == Outcome.ANSWERED
    assert call.ivr_path == "1:agent" and call.agent_extension
    assert await played(app, call.uniqueid, "menu-hl1022")
    assert not await played(app, call.uniqueid, "blocked-hl1022")

    # lifted: the panel's lift reaches the IVR's copy over Redis
    other = new_number()
    lifted_id = await block(app, other)
    await app.panel.blocklist.lift(lifted_id, by="Giám sát Hà")
    await eventually(lambda: _async(app.blocks.check(other) is None or None), 5)
    await carrier.carrier.call("1022", caller_id=f"<{other}>", digits="1", wait=5, hold=3)
    call = await ended_record(app, other, timeout=60)
    assert call.block_id is None and call.outcome == Outcome.ANSWERED
    assert call.ivr_path == "1:agent"
    counted = await app.panel.blocklist.blocked_calls()
    assert block_id not in counted and lifted_id not in counted

"""A configuration change applied over AMI while a call is up: the call stays,
the change takes effect, queue members stay."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w

from callcenter.models import Outcome
from callcenter.scheduler import parse_status
from core.settings import load_settings
from hotline import system
from hotline.app import Application
from tests.agi.test_calls import ended_record, new_number, record_of
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk


async def members(app: Application) -> set[tuple[str, str]]:
    events = await app.ami.action({"Action": "QueueStatus"}, as_list=True)
    return {(m.queue, m.interface) for m in parse_status(events)[0]}


async def test_reload_keeps_calls_and_members_and_applies_the_change(
    carrier: Lab, app: Application
):
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    before = await members(app)
    number = new_number()
    channel = await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=60)

    async def answered():
        c = await record_of(app, number)
        return c if c and c.outcome == Outcome.ANSWERED else None

    await eventually(answered, timeout=30)
    cfg = tomllib.loads(original)
    # before the reload this number would fall to the first hotline (1022)
    cfg["hotlines"][1]["aliases"] = ["84888247247"]
    cfg["queues"]["ring_seconds"] = 9
    path.write_text(tomli_w.dumps(cfg))
    try:
        changed = await system.reload(load_settings(path, env={}), lab.pbx)
        assert {"extensions.conf", "queues.conf"} <= set(changed)
        assert await lab.carrier.active(channel), "the call was dropped by the reload"
        assert (await record_of(app, number)).ended_at is None
        assert await members(app) == before, "queue members lost in the reload"
        # the new number reaches its hotline at once
        other = new_number()
        await lab.carrier.call("84888247247", caller_id=f"<{other}>", digits="1", hold=3)
        call = await ended_record(app, other)
        assert call.hotline_number == "0888247247" and call.team_id == "party"
        assert call.outcome == Outcome.ANSWERED
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)
    await lab.carrier.hangup(channel)

    async def closed():
        c = await record_of(app, number)
        return c if c and c.ended_at else None

    call = await eventually(closed, timeout=20)
    assert call.talk_seconds >= 3

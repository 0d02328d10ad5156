"""Crossing 22:00 and 06:00: queue membership in the real Asterisk follows the shifts,
and a call in progress at the handover is not cut."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callcenter.models import Outcome
from callcenter.scheduler import SHIFT_END_REASON, parse_status
from core.clock import FakeClock
from hotline.app import Application
from tests.agi.test_calls import ended_record, new_number, record_of
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 21, 59, 0, tzinfo=TZ))


async def membership(app: Application) -> dict[str, dict[str, tuple[bool, str]]]:
    events = await app.ami.action({"Action": "QueueStatus"}, as_list=True)
    members, _ = parse_status(events)
    out: dict[str, dict[str, tuple[bool, str]]] = {}
    for m in members:
        out.setdefault(m.queue, {})[m.interface.split("/")[1]] = (m.paused, m.paused_reason)
    return out


def exts(lab: Lab, team: str, shift: str) -> set[str]:
    return {a.extension for a in lab.settings.agents if a.team == team and a.shift == shift}


async def test_handover_at_22_and_06(carrier: Lab, app: Application, clock: FakeClock):
    lab = carrier
    m = await membership(app)
    assert set(m.get("t1022-afternoon", {})) == exts(lab, "t1022", "afternoon")
    assert not m.get("t1022-night") and not m.get("party-night")

    # A call answered at 21:59 by the afternoon shift ...
    number = new_number()
    channel = await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=120)

    async def answered():
        c = await record_of(app, number)
        return c if c and c.outcome == Outcome.ANSWERED else None

    call = await eventually(answered, timeout=30)
    assert call.queue == "t1022-afternoon"
    talker = call.agent_extension

    # ... 22:00 comes: the night shift is in, the afternoon shift out but the talker,
    # who is paused (no new call) and stays until the call ends.
    clock.set(datetime(2026, 11, 25, 22, 0, 0, tzinfo=TZ))

    async def night_in():
        m = await membership(app)
        done = (
            set(m.get("t1022-night", {})) == exts(lab, "t1022", "night")
            and set(m.get("party-night", {})) == exts(lab, "party", "night")
            and set(m.get("t1022-afternoon", {})) == {talker}
            and not m.get("party-afternoon")
        )
        return m if done else None

    m = await eventually(night_in, timeout=20)
    assert m["t1022-afternoon"][talker] == (True, SHIFT_END_REASON)
    still = await record_of(app, number)
    assert still.ended_at is None and still.outcome == Outcome.ANSWERED, "call was cut"

    # A new call now goes to the night queue.
    number2 = new_number()
    await lab.carrier.call("1022", caller_id=f"<{number2}>", digits="1", hold=4)
    call2 = await ended_record(app, number2)
    assert call2.queue == "t1022-night" and call2.agent_extension in exts(lab, "t1022", "night")

    # The first call ends: only then does its agent leave the afternoon queue.
    await lab.carrier.hangup(channel)
    call = await ended_record(app, number)
    assert call.talk_seconds >= 3

    async def talker_gone():
        m = await membership(app)
        return True if not m.get("t1022-afternoon") else None

    await eventually(talker_gone, timeout=20)

    # 06:00 the next morning: the morning shift replaces the night shift.
    clock.set(datetime(2026, 11, 26, 6, 0, 0, tzinfo=TZ))

    async def morning_in():
        m = await membership(app)
        done = (
            set(m.get("t1022-morning", {})) == exts(lab, "t1022", "morning")
            and set(m.get("party-morning", {})) == exts(lab, "party", "morning")
            and not m.get("t1022-night")
            and not m.get("party-night")
        )
        return True if done else None

    await eventually(morning_in, timeout=20)

"""An agent on a break stays on it across the handover: added to another queue
in the real Asterisk, they are added paused, with the same reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.ami import Event
from core.clock import FakeClock
from core.settings import Hotline, Settings
from hotline.app import Application
from tests.agi.test_calls import new_number
from tests.callcenter.test_handover import exts, membership
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def yesterday(hour: int, minute: int) -> datetime:
    """A moment of yesterday: before anything Asterisk stamps with the real time,
    so a caller's wait never looks hours long to the congestion watch (a false
    alarm left in the lab's database for the next tests)."""
    day = datetime.now(TZ).date() - timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(yesterday(5, 59))


@asynccontextmanager
async def running(
    settings: Settings, clock: FakeClock, heard: list[dict[str, str]] | None = None
) -> AsyncIterator[Application]:
    """The application, started and in line with the shift on ``clock``; the
    QueueMemberAdded events it hears go to ``heard``."""
    application = Application(settings, clock=clock, scheduler_interval=2)
    if heard is not None:

        async def keep(e: Event) -> None:
            heard.append(dict(e))

        application.ami.subscribe(["QueueMemberAdded"], keep)
    async with application:
        await application.ami.wait_logged_in(30)
        await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
        yield application


def double_shift(settings: Settings, extension: str, shift: str) -> Settings:
    """The configuration after a supervisor moved one agent to another shift."""
    agents = [
        a.model_copy(update={"shift": shift}) if a.extension == extension else a
        for a in settings.agents
    ]
    return settings.model_copy(update={"agents": agents})


async def test_an_agent_moved_to_the_night_shift_keeps_their_break(carrier: Lab):
    lab = carrier
    clock = FakeClock(yesterday(21, 59))
    async with running(lab.settings, clock) as app:
        m = await membership(app)
        assert "1006" in m["t1022-afternoon"]
        # 1006 goes on a break from the agent page (AMI QueuePause, every queue)
        await app.panel.control.pause("1006", "break")
        try:
            m = await membership(app)
            assert m["t1022-afternoon"]["1006"] == (True, "break")
        except BaseException:
            await app.panel.control.resume("1006")  # the next tests need the agent
            raise

    # The supervisor puts 1006 on the night shift too; the application is
    # restarted for it (README, known limits) and 22:00 comes.
    clock.set(yesterday(22, 0))
    night = exts(lab, "t1022", "night")
    heard: list[dict[str, str]] = []
    async with running(double_shift(lab.settings, "1006", "night"), clock, heard) as app:
        try:

            async def moved():
                m = await membership(app)
                done = set(m.get("t1022-night", {})) == night | {"1006"} and not m.get(
                    "t1022-afternoon"
                )
                return m if done else None

            m = await eventually(moved, timeout=20)
            assert m["t1022-night"]["1006"] == (True, "break"), "the break ended by itself"
            assert all(m["t1022-night"][x] == (False, "") for x in night)
            # what the agent's page and the board hear (Presence, LiveQueues)
            [added] = [e for e in heard if e.get("Interface") == "PJSIP/1006"]
            assert (added["Queue"], added["Paused"], added["PausedReason"]) == (
                "t1022-night",
                "1",
                "break",
            )
        finally:
            await app.panel.control.resume("1006")


def hotline_of(settings: Settings, team: str) -> Hotline:
    return next(h for h in settings.hotlines if h.team == team)


async def late_caller(app: Application, hotline: Hotline, queue: str, number: str) -> None:
    """A caller who joins ``queue`` now, as one routed there a moment before the
    handover does (through the hotline's own "queue" step of the dialplan)."""
    await app.ami.action(
        {
            "Action": "Originate",
            "Channel": f"Local/queue@hotline-{hotline.id}/n",
            "Application": "Wait",
            "Data": "60",
            "Async": "true",
            "CallerID": f"<{number}>",
            "Variable": [f"HOTLINE_QUEUE={queue}", f"HOTLINE_NUMBER={hotline.number}"],
        },
        as_list=False,
    )


async def test_helpers_on_a_break_join_the_old_queue_paused(
    carrier: Lab, app: Application, clock: FakeClock
):
    lab = carrier
    morning = exts(lab, "t1022", "morning")
    hotline = hotline_of(lab.settings, "t1022")
    clock.set(yesterday(6, 0))

    async def morning_in():
        m = await membership(app)
        return (
            m if set(m.get("t1022-morning", {})) == morning and not m.get("t1022-night") else None
        )

    await eventually(morning_in, timeout=20)
    # the whole morning team is away from the phones: one at their meal, the rest in training
    reasons = {x: "meal" if x == "1001" else "training" for x in morning}
    try:
        for x, why in reasons.items():
            await app.panel.control.pause(x, why)
        # a caller routed to the night queue just before 06:00 joins it now: the
        # morning shift drains it, and joins it on the break it is on
        await late_caller(app, hotline, "t1022-night", new_number())

        async def helpers_in():
            m = await membership(app)
            return m if set(m.get("t1022-night", {})) == morning else None

        m = await eventually(helpers_in, timeout=20)
        assert m["t1022-night"] == {x: (True, why) for x, why in reasons.items()}
        assert m["t1022-morning"] == m["t1022-night"]
    finally:
        await app.ami.action(
            {"Action": "Hangup", "Channel": f"/^Local\\/queue@hotline-{hotline.id}-/"},
            as_list=False,
        )
        for x in reasons:
            await app.panel.control.resume(x)

    async def drained():
        m = await membership(app)
        return True if not m.get("t1022-night") else None

    await eventually(drained, timeout=20)

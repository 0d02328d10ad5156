"""A flood beyond ``queue_length`` through the real Asterisk: everyone queues at once.

With no agent free and ``queue_length`` 2, five callers press 1 and simply
wait.  Each one is in the queue within 2 s of their key (QueueCallerJoin on
the PBX against the carrier's note of when the key went out), none is kept
outside for an offer; when they hang up each is an ABANDON in Asterisk's
queue_log, a call record ``abandoned``, and the abandon figure equals the
queue_log's count.  The callers past the second hear the offer as their hold
sound and may leave with a key at once.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import tomli_w

from callcenter.models import Outcome
from callcenter.queue_log import parse_line
from callcenter.shifts import on_duty_queue
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from queue_stats.figures import figures
from tests.agi.test_calls import ended_record, new_number
from tests.callcenter.test_callbacks import SHORT_PROMPTS
from tests.callcenter.test_no_agent import set_paused
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk

QUEUE_LENGTH = 2


def flood_config(original: str) -> dict:
    cfg = tomllib.loads(original)
    cfg["queues"]["overflow"] = {
        "enabled": True,
        "offer_after_seconds": 60,  # the periodic offer stays out of the way
        "queue_length": QUEUE_LENGTH,
        "callbacks": True,
        "voice_messages": True,
    }
    for key, (vi, en) in SHORT_PROMPTS.items():
        cfg["ivr"]["prompts"][key] = {"vi": vi, "en": en}
    return cfg


@pytest.fixture
async def flood_app(carrier: Lab) -> AsyncIterator[Application]:
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(flood_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
            await set_paused(application, "t1022", True)  # no agent free
            try:
                yield application
            finally:
                await set_paused(application, "t1022", False)
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


class Timeline:
    """When each caller's key went out (carrier) and when they joined the queue (PBX)."""

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}
        self.joins: dict[str, tuple[float, int, str]] = {}  # number: (at, position, uniqueid)

    async def on_carrier(self, event) -> None:
        if event.get("UserEvent") == "CallerKeys":
            self.keys.setdefault(str(event.get("Caller")), time.monotonic())

    async def on_pbx(self, event) -> None:
        number = str(event.get("CallerIDNum"))
        self.joins.setdefault(
            number, (time.monotonic(), int(event.get("Position", 0)), str(event.get("Uniqueid")))
        )


def abandons_in_queue_log(lab: Lab, uniqueids: set[str]) -> list[str]:
    lines = lab.settings.queue_log.read_text().splitlines()
    entries = [e for e in (parse_line(line + "\n") for line in lines) if e is not None]
    return [e.callid for e in entries if e.event == "ABANDON" and e.callid in uniqueids]


async def test_a_flood_beyond_queue_length_all_join_at_once_and_count_abandoned(
    carrier: Lab, flood_app: Application
):
    app, lab = flood_app, carrier
    timeline = Timeline()
    assert lab.carrier.ami is not None
    lab.carrier.ami.subscribe(["UserEvent"], timeline.on_carrier)
    app.ami.subscribe(["QueueCallerJoin"], timeline.on_pbx)
    queue, _ = on_duty_queue(app.settings, "t1022", datetime.now(UTC))
    start = datetime.now(UTC) - timedelta(seconds=1)
    numbers = [new_number() for _ in range(5)]
    for number in numbers:
        # the key in the menu, then 12 s of waiting with no key, then hang up
        await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", wait=3, hold=12)
        await asyncio.sleep(0.3)

    async def all_joined():
        return len([n for n in numbers if n in timeline.joins]) == 5

    await eventually(all_joined, 30)
    # Everyone is in the queue at the same time: positions 1..5, nobody outside.
    assert sorted(timeline.joins[n][1] for n in numbers) == [1, 2, 3, 4, 5]
    for n in numbers:
        late = timeline.joins[n][0] - timeline.keys[n]
        assert late < 2.0, f"{n} joined {late:.2f} s after its key"
    waiting = await app.ami.action({"Action": "QueueStatus", "Queue": queue}, as_list=True)
    assert len([e for e in waiting if e.get("Event") == "QueueEntry"]) == 5

    records = [await ended_record(app, n, timeout=60) for n in numbers]
    end = datetime.now(UTC) + timedelta(seconds=1)
    assert [r.outcome for r in records] == [Outcome.ABANDONED] * 5
    assert all(r.queued_at is not None and r.ivr_path == "1:agent" for r in records)
    uniqueids = {r.uniqueid for r in records}

    async def logged():
        found = abandons_in_queue_log(lab, uniqueids)
        return found if len(found) == 5 else None

    assert sorted(await eventually(logged, 20)) == sorted(uniqueids)
    # the figure supervisors read is queue_log's count, not fewer
    total = (await figures(app.db, app.settings, start, end, queue=queue, staffing=False))[0]
    all_abandons = set(abandons_in_queue_log(lab, set(await _calls_between(app, start, end))))
    assert total.abandoned + total.short_abandoned == len(all_abandons) >= 5


async def test_a_caller_joining_a_long_queue_hears_the_offer_and_may_leave_with_a_key(
    carrier: Lab, flood_app: Application
):
    app, lab = flood_app, carrier
    waiting = [new_number() for _ in range(QUEUE_LENGTH)]
    for number in waiting:
        await lab.carrier.call("1022", caller_id=f"<{number}>", digits="1", wait=3, hold=40)
    await asyncio.sleep(6)
    # The hold sound of this class opens with the offer; the files are the prompts.
    files = await app.ami.command("moh show files")
    assert "moh-offer/vi/1-offer" in files, files
    # the first callers joined a short queue: the usual hold sound, no offer yet
    assert await asyncio.wait_for(hold_sound_in_queue(app, waiting[0]), 10) == ""
    late, gives_up = new_number(), new_number()
    # key 1 in the menu, 1 again 3 s later (long before any periodic offer),
    # then 1 to confirm the number read back
    await lab.carrier.call(
        "1022", caller_id=f"<{late}>", digits="1", wait=3, wait2=3, digits2="1wwww1", hold=20
    )
    heard = asyncio.create_task(hold_sound_in_queue(app, late))
    # ... and one who hangs up 2 s after their key, while the offer is being read
    await lab.carrier.call("1022", caller_id=f"<{gives_up}>", digits="1", wait=3, hold=2)
    assert await asyncio.wait_for(heard, 20) == "hotline-offer-vi"
    call, gone = await asyncio.gather(ended_record(app, late), ended_record(app, gives_up))
    assert call.ivr_path == "1:agent > queue:1 > callback:caller_id"
    assert call.outcome == Outcome.CALLBACK
    lines = lab.settings.queue_log.read_text().splitlines()
    assert any(f"|{call.uniqueid}|" in line and "|EXITWITHKEY|1" in line for line in lines)
    # hanging up during the offer is leaving the queue: an abandon, not a menu hang-up
    assert gone.outcome == Outcome.ABANDONED and gone.queued_at is not None
    assert gone.ivr_path == "1:agent"

    async def abandon_logged():
        return abandons_in_queue_log(lab, {gone.uniqueid})

    await eventually(abandon_logged, 20)


async def hold_sound_in_queue(app: Application, number: str) -> str:
    """The music-on-hold class of ``number``'s channel once it waits in Queue()."""
    while True:
        events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        for e in events:
            if e.get("CallerIDNum") == number and e.get("Application") == "Queue":
                reply = await app.ami.action(
                    {"Action": "Getvar", "Channel": e["Channel"], "Variable": "CHANNEL(musicclass)"}
                )
                return str(reply.get("Value") or "")
        await asyncio.sleep(0.2)


async def _calls_between(app: Application, start: datetime, end: datetime) -> list[str]:
    from sqlalchemy import select

    from callcenter.models import Call

    async with app.db.session() as s:
        rows = await s.scalars(
            select(Call.uniqueid).where(Call.started_at >= start, Call.started_at < end)
        )
        return list(rows.all())

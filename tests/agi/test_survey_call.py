"""The satisfaction survey through the real Asterisk: the agent hangs up, the caller stays
on the line (Queue() option c), rates the call on the keypad and reopens their report.

The lab's configuration is changed for these tests (the survey on for hotline 1022, short
prompts) and reloaded over AMI, then restored.  The carrier's caller keeps the line after
the agent's phone hangs up and keys the digits with AMI PlayDTMF when the PBX has the
caller in the survey.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator

import pytest
import tomli_w
from sqlalchemy import select

from accounts.identity import SYSTEM
from callcenter.models import Call, Outcome
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from tests.agi.test_calls import new_number, record_of
from tests.lab import Lab, eventually
from tickets.models import Rating, Status, Ticket
from tickets.service import event_details

pytestmark = pytest.mark.asterisk

SHORT_PROMPTS = {
    "survey_rate": ("Chấm điểm.", "Rate us."),
    "survey_thanks": ("Cảm ơn.", "Thanks."),
    "survey_reopen_offer": ("Mở lại phím 9.", "Reopen, 9."),
    "survey_reopened": ("Đã mở lại.", "Reopened."),
}


def survey_config(original: str) -> dict:
    cfg = tomllib.loads(original)
    for h in cfg["hotlines"]:
        if h["number"] == "1022":
            h["survey_after_call"] = True
    for key, (vi, en) in SHORT_PROMPTS.items():
        cfg["ivr"]["prompts"][key] = {"vi": vi, "en": en}
    return cfg


@pytest.fixture
async def survey_app(carrier: Lab) -> AsyncIterator[Application]:
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(survey_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        # the dialogues, kept: tests/fixtures/agi/survey_*.txt were recorded this way
        application.agi.trace_dir = lab.home / "agi-traces"
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


async def _channels(ami) -> list[dict]:
    events = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return [dict(e) for e in events if e.get("Event") == "CoreShowChannel"]


async def answered(app: Application, number: str) -> Call | None:
    call = await record_of(app, number)
    return call if call is not None and call.answered_at is not None else None


async def agent_hangs_up(lab: Lab) -> None:
    """The agent's phone (on the carrier) ends the call; the caller's side stays up."""
    ami = lab.carrier.ami
    phones = [c for c in await _channels(ami) if c.get("Context") == "agent-phones"]
    assert phones, "the agent's phone is not in a call"
    for c in phones:
        await ami.action({"Action": "Hangup", "Channel": c["Channel"]})


async def in_survey(app: Application) -> bool:
    return any(
        c.get("Application") == "AGI" and "/survey" in str(c.get("ApplicationData", ""))
        for c in await _channels(app.ami)
    )


async def key(lab: Lab, channel_id: str, digit: str) -> None:
    """The caller presses ``digit`` (RFC 4733 from the carrier's channel to the PBX)."""
    ami = lab.carrier.ami
    mine = [c for c in await _channels(ami) if c.get("Uniqueid") == channel_id]
    assert mine, "the caller's channel is gone"
    # "Async: false": panoramisk reads a reply "... successfully queued" as the start of a
    # list unless the action says it is not an asynchronous one
    action = {"Action": "PlayDTMF", "Channel": mine[0]["Channel"], "Digit": digit}
    await ami.action(action | {"Duration": "250", "Async": "false"})


async def rating_of(app: Application, call_id: int) -> Rating | None:
    async with app.db.session() as s:
        return await s.scalar(select(Rating).where(Rating.call_id == call_id))


async def test_caller_rates_1_then_presses_9_and_the_report_is_reopened(
    carrier: Lab, survey_app: Application
):
    app = survey_app
    number = new_number()
    channel_id = await carrier.carrier.call(
        "1022", caller_id=f'"Citizen" <{number}>', digits="1", hold=120
    )
    call = await eventually(lambda: answered(app, number), 60)
    # the agent answers the citizen on the call (level 1: closed at once)
    ticket = await app.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 1,
            "description": "Hỏi thủ tục xin phép đào đường",
            "guidance": "Nộp hồ sơ tại UBND quận",
        },
        call_id=call.id,
    )
    assert ticket.status == Status.CLOSED

    await agent_hangs_up(carrier)
    await eventually(lambda: in_survey(app), 20)
    assert await carrier.carrier.active(channel_id), "the caller is still on the line"
    await key(carrier, channel_id, "1")
    rating = await eventually(lambda: rating_of(app, call.id), 20)
    assert rating.rating == 1 and rating.source == "after_call"
    assert rating.ticket_id == ticket.id and rating.agent_extension == call.agent_extension
    assert (rating.topic, rating.level) == ("flooding", 1)

    await asyncio.sleep(0.5)  # the offer "press 9 to reopen" is playing
    await key(carrier, channel_id, "9")

    async def reopened() -> Ticket | None:
        t = await app.ticket_queries.get(ticket.id)
        return t if t.status == Status.REOPENED else None

    t = await eventually(reopened, 20)
    assert t.reopens == 1
    last = (await app.ticket_queries.history(t.id))[-1]
    assert (last.action, last.actor_name, last.actor_id) == ("reopened", "citizen", None)
    details = event_details(last)
    assert details["via"] == "survey" and details["rating"] == 1
    # the survey thanks the caller and ends the call: nobody is left on the line
    await eventually(lambda: _gone(carrier, channel_id), 30)
    ended = await record_of(app, number)
    assert ended.outcome == Outcome.ANSWERED and ended.ended_at is not None


async def _read(path) -> str | None:
    return path.read_text() if path.exists() else None


async def _gone(lab: Lab, channel_id: str) -> bool:
    return not await lab.carrier.active(channel_id)


async def test_wrong_keys_and_silence_store_nothing_and_end_the_call(
    carrier: Lab, survey_app: Application
):
    app = survey_app
    number = new_number()
    channel_id = await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=120)
    call = await eventually(lambda: answered(app, number), 60)
    await agent_hangs_up(carrier)
    await eventually(lambda: in_survey(app), 20)
    await key(carrier, channel_id, "7")  # no such rating; then silence
    await eventually(lambda: _gone(carrier, channel_id), 40)
    assert await rating_of(app, call.id) is None
    assert not await in_survey(app)


async def test_a_caller_hanging_up_in_the_survey_breaks_nothing(
    carrier: Lab, survey_app: Application
):
    app = survey_app
    number = new_number()
    channel_id = await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=120)
    call = await eventually(lambda: answered(app, number), 60)
    await agent_hangs_up(carrier)
    await eventually(lambda: in_survey(app), 20)
    await carrier.carrier.hangup(channel_id)
    await eventually(lambda: _gone(carrier, channel_id), 20)
    await asyncio.sleep(1)
    assert await rating_of(app, call.id) is None
    # the next caller still gets the survey (the route is alive), in the language they
    # chose in the IVR (9: English)
    number2 = new_number()
    channel2 = await carrier.carrier.call(
        "1022", caller_id=f"<{number2}>", digits="9", digits2="1", wait2=2.5, hold=120
    )
    call2 = await eventually(lambda: answered(app, number2), 60)
    assert call2.language == "en"
    await agent_hangs_up(carrier)
    await eventually(lambda: in_survey(app), 20)
    await key(carrier, channel2, "5")
    rating = await eventually(lambda: rating_of(app, call2.id), 20)
    assert rating.rating == 5 and rating.ticket_id is None
    await eventually(lambda: _gone(carrier, channel2), 30)
    trace = app.agi.trace_dir / f"{call2.uniqueid}.txt"
    said = (await eventually(lambda: _read(trace), 10)).splitlines()
    assert [line.rsplit("/", 1)[-1] for line in said if line.startswith("> ")] == [
        "survey_rate 2000 1",
        '> SET VARIABLE HOTLINE_SURVEY "rated"',
        'survey_thanks ""',
    ]
    assert all("/en/" in line for line in said if line.startswith(("> GET", "> STREAM")))

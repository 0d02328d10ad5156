"""Result calls through the real Asterisk: the agency's answer rings the citizen's phone on
the carrier within seconds; the citizen hears the result (the carrier records what its
phone heard), presses 1 to hear it again, then rates it 1 and presses 9: the rating is
stored and the report reopened.  A phone nobody picks up is tried again, then given up.

The lab's configuration is changed for these tests (result calls on at every hour, a
trunk contact so the PBX can call out, short prompts, a retry after 3 s) and reloaded
over AMI, then restored.
"""

from __future__ import annotations

import asyncio
import random
import time
import tomllib
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from sqlalchemy import select

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from core.ami import Event
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from hotline.carrier import NO_ANSWER_PREFIX
from tests.agi.test_calls import new_number
from tests.lab import CARRIER, Lab, eventually
from tickets.models import Rating, ResultCall, Status, Ticket
from tickets.service import event_details

pytestmark = pytest.mark.asterisk

SHORT_PROMPTS = {
    "survey_rate": ("Chấm điểm.", "Rate us."),
    "survey_thanks": ("Cảm ơn.", "Thanks."),
    "survey_reopen_offer": ("Mở lại phím 9.", "Reopen, 9."),
    "survey_reopened": ("Đã mở lại.", "Reopened."),
}
RESULT_PROMPTS = {
    "intro": ("Đường dây nóng.", "The hotline."),
    "report": ("Số", "Number"),
    "agency": ("Cơ quan", "By"),
    "result": ("Kết quả", "Answer"),
    "repeat": ("Nghe lại phím 1.", "Again, 1."),
}
ANSWER = "Đã nạo vét cống."


def result_call_config(original: str) -> dict:
    cfg = tomllib.loads(original)
    cfg["trunk"]["contact"] = f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
    cfg["result_calls"] = {
        "enabled": True,
        "hours": "00:00-23:59",
        "max_attempts": 2,
        "retry_minutes": 0.05,  # 3 s
        "ring_seconds": 10,
        "repeat_key": True,
        "sweep_seconds": 1,
        "prompts": {k: {"vi": vi, "en": en} for k, (vi, en) in RESULT_PROMPTS.items()},
    }
    for key, (vi, en) in SHORT_PROMPTS.items():
        cfg["ivr"]["prompts"][key] = {"vi": vi, "en": en}
    return cfg


@pytest.fixture
async def result_app(carrier: Lab) -> AsyncIterator[Application]:
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(result_call_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        application.agi.trace_dir = lab.home / "agi-traces"
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.result_calls.listening.wait(), 10)
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


async def forwarded_report(app: Application, number: str) -> tuple[Ticket, Actor]:
    """A level-2 report from ``number`` with an agency, and an officer of that agency."""
    code = f"rc-{random.randrange(10**8)}"
    agency = await app.panel.agencies.create(
        SYSTEM, {"kind": "ward", "code": code, "name": "Phường Bến Nghé"}
    )
    ticket = await app.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": number,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Cống bị tắc gây ngập",
            "agency_id": agency.id,
        },
    )
    assert ticket.status == Status.FORWARDED
    officer = Actor(id=None, name="officer", role=Role.AGENCY, agency_id=agency.id)
    return ticket, officer


async def _channels(ami) -> list[dict]:
    events = await ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return [dict(e) for e in events if e.get("Event") == "CoreShowChannel"]


async def citizen_channel(lab: Lab, number: str) -> str | None:
    """The carrier's channel of the citizen's phone, once it answered the hotline."""
    for c in await _channels(lab.carrier.ami):
        if c.get("Context") == "agent-phones" and c.get("Exten") == number:
            return str(c["Channel"])
    return None


async def in_agi(app: Application, route: str) -> bool:
    return any(
        c.get("Application") == "AGI" and f"/{route}," in str(c.get("ApplicationData", ""))
        for c in await _channels(app.ami)
    )


async def key(lab: Lab, channel: str, digit: str) -> None:
    """The citizen presses ``digit`` (RFC 4733 from the carrier's phone to the PBX)."""
    action = {"Action": "PlayDTMF", "Channel": channel, "Digit": digit, "Duration": "250"}
    await lab.carrier.ami.action(action | {"Async": "false"})


def rms_of(path: Path) -> tuple[float, float]:
    """(seconds, RMS) of a 16-bit mono wav."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    return data.size / rate, float(np.sqrt(np.mean(data**2))) if data.size else 0.0


async def test_the_citizen_hears_the_result_again_then_rates_1_and_reopens(
    carrier: Lab, result_app: Application
):
    app, lab = result_app, carrier
    number = new_number()
    ticket, officer = await forwarded_report(app, number)
    heard_dir = lab.home / "carrier" / "heard"
    await lab.carrier.record_answered_in(heard_dir)
    # the answer and the agency's name are spoken before: the reading does not wait
    await app.speech.speak(ANSWER, "vi")
    await app.speech.speak("Phường Bến Nghé", "vi")
    rang = asyncio.get_running_loop().create_future()

    async def on_event(e: Event) -> None:
        if e.get("UserEvent") == "AgentAnswered" and e.get("Extension") == number:
            if not rang.done():
                rang.set_result(time.monotonic())

    lab.carrier.ami.subscribe(["UserEvent"], on_event, lane=f"rc-{number}")
    try:
        recorded = time.monotonic()
        ticket = await app.tickets.answer(officer, ticket.id, ticket.version, ANSWER)
        assert ticket.status == Status.ANSWERED
        ring = await asyncio.wait_for(rang, 15) - recorded
        assert ring <= 5, f"the phone rang {ring:.2f} s after the result was recorded"
        print(f"\nresult call: the citizen's phone rang {ring:.2f} s after the result")
        channel = await eventually(lambda: citizen_channel(lab, number), 10)
        await eventually(lambda: in_agi(app, "result_call"), 10)
        await asyncio.sleep(1.5)  # the greeting plays: 1 stops it and reads the report again
        await key(lab, channel, "1")
        await eventually(lambda: in_agi(app, "survey"), 40)
        # the reading's AGI dialogue, saved when it ended (the survey's replaces it at its end)
        (job,) = await app.result_call_service.for_ticket(ticket.id)
        said = (await _read(app.agi.trace_dir / f"{job.uniqueid}.txt") or "").splitlines()
        await asyncio.sleep(0.5)
        await key(lab, channel, "1")

        async def rating() -> Rating | None:
            async with app.db.session() as s:
                return await s.scalar(select(Rating).where(Rating.ticket_id == ticket.id))

        rated = await eventually(rating, 20)
        assert (rated.rating, rated.source) == (1, "result_call")
        assert rated.call_id is not None and rated.agency_id == ticket.agency_id
        await asyncio.sleep(0.5)  # "press 9 to reopen" is playing
        await key(lab, channel, "9")

        async def reopened() -> Ticket | None:
            t = await app.ticket_queries.get(ticket.id)
            return t if t.status == Status.REOPENED else None

        t = await eventually(reopened, 20)
        last = (await app.ticket_queries.history(t.id))[-1]
        assert event_details(last)["via"] == "survey" and event_details(last)["rating"] == 1

        async def done() -> ResultCall | None:
            (job,) = await app.result_call_service.for_ticket(ticket.id)
            return job if job.state == "done" else None

        job = await eventually(done, 30)
    finally:
        await lab.carrier.record_answered_in(None)
    assert (job.attempts, job.last_result) == (1, "connected")
    assert job.call_id == rated.call_id, "the rating is the result call's"
    lines = [e for e in await app.ticket_queries.history(ticket.id) if e.action == "result_call"]
    assert [event_details(e)["call_result"] for e in lines] == ["answered"]
    assert event_details(lines[0])["call_id"] == job.call_id
    call = await app.calls.by_id(job.call_id)
    assert call is not None and call.outcome == "result_call" and call.caller_number == number
    assert call.ended_at is not None and call.talk_seconds and call.talk_seconds > 3

    # what the AGI played: the report twice (1 during the first reading), then the survey
    played = [line.rsplit("/", 1)[-1].split()[0] for line in said if "> STREAM FILE" in line]
    assert played.count("result_call_report") == 2, played
    assert played[0] == "result_call_intro" and played.count("result_call_intro") == 1
    assert any(line.endswith('"heard"') for line in said), said

    # the carrier's phone heard the hotline speak, and the PBX recorded both sides
    await asyncio.sleep(1)  # MixMonitor closes its files as the channels go
    seconds, loud = rms_of(heard_dir / f"{number}-heard.wav")
    assert seconds > 5 and loud > 300, (seconds, loud)
    assert Path(call.recording_base + ".wav").stat().st_size > 30_000
    assert call.recording_caller and Path(call.recording_caller).exists()


async def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


async def test_no_answer_is_tried_again_then_given_up(carrier: Lab, result_app: Application):
    app = result_app
    number = NO_ANSWER_PREFIX + "".join(random.choices("0123456789", k=6))
    ticket, officer = await forwarded_report(app, number)
    started = time.monotonic()
    await app.tickets.answer(officer, ticket.id, ticket.version, ANSWER)

    async def gave_up() -> ResultCall | None:
        (job,) = await app.result_call_service.for_ticket(ticket.id)
        return job if job.state == "done" else None

    job = await eventually(gave_up, 60)
    took = time.monotonic() - started
    assert (job.attempts, job.last_result) == (2, "no_answer") and job.call_id is None
    # two tries of 10 s rings, 3 s apart
    assert 20 <= took < 45, took
    lines = [
        event_details(e)
        for e in await app.ticket_queries.history(ticket.id)
        if e.action == "result_call"
    ]
    assert [(d["call_result"], d["attempt"], d["attempts"]) for d in lines] == [
        ("no_answer", 1, 2),
        ("no_answer", 2, 2),
    ]
    assert lines[-1]["unreachable"] is True
    assert not await citizen_channel(carrier, number), "nothing left ringing"

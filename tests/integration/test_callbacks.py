"""Overflow through the real Asterisk: callbacks end to end, typed numbers, voice
messages, and the final offer at the maximum wait.

The lab's configuration is changed for these tests (offer every 10 s, a trunk
contact so the PBX can call out, short prompts) and reloaded over AMI, then
restored.  Agents of team t1022 are paused so nobody answers; a callback is
then served once one of them is free again.
"""

from __future__ import annotations

import asyncio
import random
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import select

from callcenter.callbacks import Callback, Result, Status, VoiceMessage
from callcenter.models import Call, Outcome
from callcenter.recording_files import mixed_file
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from tests.browser import ARTIFACTS
from tests.integration.test_calls import dominant_hz, ended_record, new_number, record_of
from tests.integration.test_no_agent import set_paused
from tests.integration.test_panel_browser import PASSWORD, sign_in
from tests.lab import CARRIER, Lab, eventually

pytestmark = pytest.mark.asterisk

SHORT_PROMPTS = {
    "offer_intro": ("Bận.", "Busy."),
    "offer_final": ("Hết giờ.", "Time is up."),
    "offer_callback": ("Gọi lại phím 1.", "Callback, 1."),
    "offer_voice_message": ("Lời nhắn phím 2.", "Message, 2."),
    "offer_keep_waiting": ("Xin chờ.", "Hold on."),
    "callback_number": ("Số", "Number"),
    "callback_confirm": ("Phím 1.", "Press 1."),
    "callback_enter": ("Nhập số.", "Enter number."),
    "callback_invalid": ("Sai số.", "Bad number."),
    "callback_done": ("Cảm ơn.", "Thanks."),
    "voice_message_start": ("Nói.", "Speak."),
    "voice_message_done": ("Xong.", "Done."),
}


def overflow_config(original: str) -> dict:
    cfg = tomllib.loads(original)
    cfg["queues"]["overflow"] = {
        "enabled": True,
        "offer_after_seconds": 10,
        "queue_length": 10,
        "callbacks": True,
        "voice_messages": True,
        "voice_message_seconds": 20,
        "callback_attempts": 2,
        "callback_retry_minutes": 1,
    }
    # the PBX calls citizens back through the carrier
    cfg["trunk"]["contact"] = f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
    for key, (vi, en) in SHORT_PROMPTS.items():
        cfg["ivr"]["prompts"][key] = {"vi": vi, "en": en}
    return cfg


@pytest.fixture
async def overflow_app(carrier: Lab) -> AsyncIterator[Application]:
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(overflow_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        application.callbacks.interval = 1.0
        application.agi.trace_dir = lab.home / "agi-traces"
        async with application:
            await application.ami.wait_logged_in(30)
            await application.scheduler.reconciled.wait()
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


async def callbacks_of(app: Application, call_id: int) -> list[Callback]:
    async with app.db.session() as s:
        rows = await s.scalars(select(Callback).where(Callback.call_id == call_id))
        return list(rows.all())


async def pbx_channel(app: Application, prefix: str) -> str | None:
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    for e in events:
        if e.get("Event") == "CoreShowChannel" and str(e.get("Uniqueid", "")).startswith(prefix):
            return str(e["Channel"])
    return None


async def test_callback_end_to_end(carrier: Lab, overflow_app: Application):
    app = overflow_app
    number = new_number()
    await set_paused(app, "t1022", True)
    try:
        # menu key 1; after the first offer (10 s) key 1 in the queue, then 1
        # again while the number is read back: confirmed.
        started = datetime.now(UTC)
        await carrier.carrier.call(
            "1022", caller_id=f"<{number}>", digits="1", wait2=12, digits2="1wwww1", hold=30
        )
        call = await ended_record(app, number, timeout=60)
        assert call.outcome == Outcome.CALLBACK
        assert call.end_reason == "callback_requested"
        assert "queue:1 > callback:caller_id" in call.ivr_path
        assert call.answered_at is None
        # the PBX ended the call after the thanks, long before the caller would have
        assert (call.ended_at - started).total_seconds() < 45
        (cb,) = await callbacks_of(app, call.id)
        assert cb.number == number and cb.number_source == "caller_id"
        assert cb.status == Status.PENDING and cb.team_id == "t1022"
        # the place kept is when the caller first joined the queue
        assert abs((cb.queued_at - call.queued_at).total_seconds()) <= 1
        await asyncio.sleep(3)
        assert (await app.panel.callbacks.get(cb.id)).status == Status.PENDING, (
            "no agent is free: nobody is dialled"
        )
    finally:
        await set_paused(app, "t1022", False)

    # an agent is free: the dialler rings them, then the citizen, and records
    async def dialling() -> str | None:
        return await pbx_channel(app, f"cb-{cb.id}-")

    channel = await eventually(dialling, timeout=30)

    async def bridged() -> bool:
        out = await app.ami.command("core show channels concise")
        return out.count("!Up!") >= 2 and channel in out and "Dial" in out

    await eventually(bridged, timeout=20)
    await asyncio.sleep(4)  # they talk
    await app.ami.action({"Action": "Hangup", "Channel": channel})

    async def connected() -> Callback | None:
        c = await app.panel.callbacks.get(cb.id)
        return c if c.status == Status.DONE else None

    done = await eventually(connected, timeout=20)
    assert done.outcome == Result.CONNECTED and done.attempts == 1
    attempts = await app.panel.callbacks.attempts_of(cb.id)
    assert [a.result for a in attempts] == [Result.CONNECTED]
    assert attempts[0].detail == "dial:ANSWER"
    assert done.result_call_id is not None
    back = await app.calls.by_id(done.result_call_id)
    assert back is not None and back.uniqueid == attempts[0].uniqueid
    assert back.route_source == "callback" and back.caller_number == number
    assert back.outcome == Outcome.ANSWERED and back.agent_extension == attempts[0].agent_extension
    assert back.talk_seconds is not None and back.talk_seconds >= 3

    async def closed() -> Call | None:
        c = await app.calls.by_id(done.result_call_id)
        return c if c and c.ended_at else None

    back = await eventually(closed, timeout=10)
    await asyncio.sleep(1)  # MixMonitor closes its files as the channel goes
    assert Path(mixed_file(back.recording_base)).stat().st_size > 30_000
    for side in (back.recording_caller, back.recording_agent):
        hz, rms = dominant_hz(side)
        assert rms > 1000, f"{side} is silent"
        assert abs(hz - 1000) < 15  # both lab phones play the 1000 Hz tone


async def test_no_caller_id_voice_message_and_final_offer(
    carrier: Lab,
    overflow_app: Application,
    browser,
):
    app = overflow_app
    typed, silent, speaker = "0912345678", new_number(), new_number()
    since = datetime.now(UTC)
    max_wait = carrier.settings.queues.max_wait_seconds
    await set_paused(app, "t1022", True)
    try:
        # no caller ID: 1 in the queue, junk "123#" refused, then a real number
        await carrier.carrier.call(
            "1022",
            caller_id="",
            digits="1",
            wait2=3,
            digits2="1wwww123#wwwwww" + typed + "#",
            hold=40,
        )
        # presses nothing: waits to the maximum, hears the final offer, goodbye
        await carrier.carrier.call("1022", caller_id=f"<{silent}>", digits="1", hold=90)
        # 2 in the queue: a voice message (the caller's tone), then hangs up
        await carrier.carrier.call(
            "1022", caller_id=f"<{speaker}>", digits="1", wait2=4, digits2="2", hold=8
        )

        async def typed_callback() -> Callback | None:
            async with app.db.session() as s:
                return await s.scalar(
                    select(Callback).where(Callback.number == typed, Callback.requested_at >= since)
                )

        cb = await eventually(typed_callback, timeout=60)
        # cancelled at once: nobody is to call this made-up number
        await app.panel.callbacks.cancel(cb.id, by="test")
        spoken = await ended_record(app, speaker, timeout=60)
        waited = await ended_record(app, silent, timeout=max_wait + 60)
    finally:
        await set_paused(app, "t1022", False)
    assert cb.number_source == "typed"
    origin = await app.calls.by_id(cb.call_id)
    assert origin is not None and origin.caller_number is None
    assert origin.outcome == Outcome.CALLBACK
    assert "callback:refused > callback:typed" in origin.ivr_path

    assert spoken.outcome == Outcome.VOICEMAIL and spoken.end_reason == "voice_message"
    async with app.db.session() as s:
        vm = await s.scalar(select(VoiceMessage).where(VoiceMessage.call_id == spoken.id))
    assert vm is not None and vm.caller_number == speaker
    assert vm.seconds is not None and vm.seconds >= 2
    assert Path(vm.path).is_file() and str(carrier.settings.recordings_dir) in vm.path
    hz, rms = dominant_hz(vm.path)
    assert abs(hz - 440) < 15 and rms > 1000, "the message holds the caller's voice"

    assert waited.outcome == Outcome.TIMEOUT
    assert waited.end_reason == "max_wait_goodbye"
    assert waited.ivr_path.endswith("final:silence > goodbye")
    held = (waited.ended_at - waited.queued_at).total_seconds()
    # the final offer and goodbye, never a silent cut-off, and ended by the PBX
    assert max_wait <= held <= max_wait + 25
    assert (await record_of(app, silent)).answered_at is None

    tried = await app.panel.callbacks.attempts_of(cb.id)
    assert tried == [], [(a.uniqueid, a.started_at, a.agent_extension) for a in tried]

    await supervisor_plays_and_calls_back(app, browser, vm.id, speaker)


async def supervisor_plays_and_calls_back(app: Application, chromium, vm_id: int, number: str):
    """In Chromium: the message is listed, its audio loads under the strict CSP, and it
    becomes a callback."""
    suffix = random.randrange(10**6)
    await app.panel.accounts.create_user(
        None,
        {
            "username": f"sup{suffix}",
            "display_name": "Giám sát",
            "role": "supervisor",
            "password": PASSWORD,
        },
    )
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    context = await chromium.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        await sign_in(page, base, f"sup{suffix}")
        await page.goto(f"{base}/callbacks")
        row = page.locator(f"#voice-list tr[data-id='{vm_id}']")
        await row.wait_for()
        assert number in await row.inner_text()
        duration = await row.locator("audio").evaluate(
            """a => new Promise((ok, fail) => {
                a.addEventListener("loadedmetadata", () => ok(a.duration));
                a.addEventListener("error", () => fail("audio error " + (a.error && a.error.code)));
                a.load();
            })"""
        )
        assert duration >= 2, duration
        await page.screenshot(path=str(ARTIFACTS / "callbacks.png"), full_page=True)
        await row.locator("button.primary").click()
        await page.wait_for_load_state("domcontentloaded")
        assert await page.locator(f"#voice-list tr[data-id='{vm_id}']").count() == 0
        assert number in await page.locator("#callback-list").inner_text()
        assert not [c for c in console if "Content Security Policy" in c], console
    finally:
        await context.close()
    msg = await app.panel.callbacks.voice_message_by_id(vm_id)
    queued = await app.panel.callbacks.get(msg.callback_id)
    assert queued.number == number and queued.number_source == "voice_message"
    await app.panel.callbacks.cancel(queued.id, by="test")

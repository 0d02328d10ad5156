"""Overflow through the real Asterisk: callbacks end to end (with the agent's
screen-pop in Chromium), "call now" waking the dialler at once, typed numbers,
voice messages, and the final offer at the maximum wait.

The lab's configuration is changed for these tests (offer every 10 s, a trunk
contact so the PBX can call out, short prompts) and reloaded over AMI, then
restored.  Agents of team t1022 are paused so nobody answers; a callback is
then served once one of them is free again.
"""

from __future__ import annotations

import asyncio
import random
import time
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import select

from accounts.identity import SYSTEM
from callcenter.models import Call, Callback, CallbackAttempt, Outcome, Result, Status, VoiceMessage
from callcenter.recording_files import mixed_file
from core.settings import load_settings
from dialplan import prompts
from hotline import system
from hotline.app import Application
from recordings.models import JobStatus, TranscriptionJob
from tests.agi.test_calls import (
    dominant_hz,
    ended_record,
    keys_in_queue,
    new_number,
    record_of,
    settled_record,
)
from tests.browser import ARTIFACTS
from tests.callcenter.test_no_agent import set_paused
from tests.lab import CARRIER, Lab, eventually
from tests.panel.test_panel_browser import PASSWORD, on_duty, sign_in

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
async def overflow_app(carrier: Lab, request: pytest.FixtureRequest) -> AsyncIterator[Application]:
    """The application with overflow on; its dialler polls every second (or every
    ``request.param`` seconds, for a test that must not pass by polling)."""
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    path.write_text(tomli_w.dumps(overflow_config(original)))
    try:
        settings = load_settings(path, env={})
        await asyncio.to_thread(prompts.generate, settings)
        await system.reload(settings, lab.pbx)
        application = Application(settings, scheduler_interval=2)
        application.callbacks.interval = getattr(request, "param", 1.0)
        application.agi.trace_dir = lab.home / "agi-traces"
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
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


@asynccontextmanager
async def agent_page(app: Application, chromium, extension: str) -> AsyncIterator[tuple]:
    """A Chromium page signed in as the agent on ``extension``, its live socket open.

    One account per extension, and the lab's database lives as long as the
    test session: an account an earlier test made is taken over, and one made
    here gives its extension back at the end (for the tests that come after).
    """
    user = await app.panel.accounts.by_extension(extension)
    made = user is None
    if user is None:
        user = await app.panel.accounts.create_user(
            None,
            {
                "username": f"cbagent{random.randrange(10**6)}",
                "display_name": "Điện thoại viên gọi lại",
                "role": "agent",
                "extension": extension,
                "password": PASSWORD,
            },
        )
    else:
        await app.panel.accounts.update_user(SYSTEM, user.id, {"language": "vi", "active": True})
        await app.panel.accounts.set_password(None, user.id, PASSWORD)
    context = await chromium.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        await sign_in(page, f"http://127.0.0.1:{app.settings.panel.port}", user.username)
        assert page.url.endswith("/agent")
        await page.wait_for_selector("#ws-status[data-state=open]", state="attached")
        yield page, console
    finally:
        await context.close()
        if made:
            await app.panel.accounts.update_user(
                SYSTEM, user.id, {"role": "supervisor", "active": False}
            )


async def hang_up_leftovers(app: Application, callback_id: int | None) -> None:
    """A test that failed mid-call must not leave the agent's phone busy for the next."""
    if callback_id is None:
        return
    channel = await pbx_channel(app, f"cb-{callback_id}-")
    if channel:
        await app.ami.action({"Action": "Hangup", "Channel": channel})


async def attempts(app: Application, callback_id: int) -> list[CallbackAttempt]:
    return await app.panel.callbacks.attempts_of(callback_id)


async def test_callback_end_to_end(carrier: Lab, overflow_app: Application, browser):
    app = overflow_app
    number = new_number()
    mine = on_duty(carrier)[0]
    earlier = await app.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": number,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập đường sau mưa",
        },
    )
    async with agent_page(app, browser, mine) as (page, console):
        cb: Callback | None = None
        try:
            await set_paused(app, "t1022", True)
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
            # no callback pop (an earlier test's ended call may still be on this screen)
            assert not await page.locator("#pop.callback").is_visible()

            # our agent is free (the others stay on their break): the dialler rings
            # them, their screen pops, then the citizen is dialled and recorded
            freed = time.monotonic()
            await app.panel.control.resume(mine)
            shown = f"#pop.callback .caller:has-text('{number}')"
            await page.wait_for_selector(shown, timeout=30_000)
            popped = time.monotonic() - freed
            (attempt,) = await attempts(app, cb.id)
            assert attempt.agent_extension == mine
            assert await page.locator("#pop-kind").is_visible()
            assert (await page.inner_text("#pop-title")).startswith("Gọi lại"), "in Vietnamese"
            assert await page.inner_text("#pop [data-f=attempt]") == "1 / 2"
            # what they chose in the menu on the call that asked (key 1), not the callback's path
            assert "1" in await page.inner_text("#pop [data-f=ivr_path]")
            assert await page.inner_text("#pop [data-f=requested_at]")
            assert earlier.code in await page.inner_text("#pop-tickets")
            record = await app.calls.get(attempt.uniqueid)
            assert record is not None, "the try's call record exists while it rings"
            assert await page.input_value("#f-call_id") == str(record.id)
            assert await page.input_value("#f-citizen_phone") == number
            await page.screenshot(path=str(ARTIFACTS / "callback-pop.png"), full_page=True)

            async def dialling() -> str | None:
                return await pbx_channel(app, f"cb-{cb.id}-")

            channel = await eventually(dialling, timeout=30)

            async def bridged() -> bool:
                out = await app.ami.command("core show channels concise")
                return out.count("!Up!") >= 2 and channel in out and "Dial" in out

            await eventually(bridged, timeout=20)
            await page.wait_for_selector("#pop.callback.talking", timeout=10_000)

            # while they talk, the agent makes the ticket from the pop
            await page.select_option("select[name=topic]", "flooding")
            await page.check("input[name=level][value='2']")
            await page.fill("textarea[name=description]", "Gọi lại: nước đã rút một phần.")
            async with page.expect_navigation():
                await page.click("#ticket-form button.primary")
            # back on the workspace, the pop goes on and names the ticket
            assert page.url.endswith("/agent")
            await page.wait_for_selector(f"#pop.callback.talking .caller:has-text('{number}')")
            href = await page.get_attribute("#pop-call-tickets a", "href")
            code = (href or "").rsplit("/", 1)[-1]
            await asyncio.sleep(4)  # they talk
            hung_up = time.monotonic()
            await app.ami.action({"Action": "Hangup", "Channel": channel})
            # at hang-up the pop leaves the live call behind, as a queue call's does:
            # marked ended (kept until the next call for the ticket), with the result
            await page.wait_for_selector("#pop.callback.ended", timeout=20_000)
            cleared = time.monotonic() - hung_up
            assert await page.inner_text("#pop-title") == "Cuộc gọi lại đã kết thúc"
            assert await page.inner_text("#pop [data-f=result]") == "đã nói chuyện với người dân"
            assert not (await page.title()).startswith("☎")
            await page.screenshot(path=str(ARTIFACTS / "callback-pop-ended.png"), full_page=True)
            assert not [c for c in console if "Uncaught" in c or "Security Policy" in c], console
            print(
                f"\ncallback pop: {popped:.2f} s after the agent was free; "
                f"ended on screen {cleared:.2f} s after the hang-up"
            )
        finally:
            await hang_up_leftovers(app, cb.id if cb else None)
            await set_paused(app, "t1022", False)

    async def connected() -> Callback | None:
        c = await app.panel.callbacks.get(cb.id)
        return c if c.status == Status.DONE else None

    done = await eventually(connected, timeout=20)
    assert done.outcome == Result.CONNECTED and done.attempts == 1
    attempts_made = await attempts(app, cb.id)
    assert [a.result for a in attempts_made] == [Result.CONNECTED]
    assert attempts_made[0].detail == "dial:ANSWER"
    assert done.result_call_id == record.id, "the record the pop showed, completed"
    ticket = await app.ticket_queries.get_by_code(code)
    assert ticket.call_id == done.result_call_id and ticket.citizen_phone == number
    back = await app.calls.by_id(done.result_call_id)
    assert back is not None and back.uniqueid == attempts_made[0].uniqueid
    assert back.route_source == "callback" and back.caller_number == number
    assert back.outcome == Outcome.ANSWERED and back.agent_extension == mine
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

    # its recording goes to transcription as a queue call's does, at once
    async def job() -> TranscriptionJob | None:
        async with app.db.session() as s:
            return await s.get(TranscriptionJob, back.id)

    assert (await eventually(job, timeout=5)).status == JobStatus.QUEUED


@pytest.mark.parametrize("overflow_app", [600.0], indirect=True)
async def test_call_now_wakes_the_dialler_at_once(carrier: Lab, overflow_app: Application, browser):
    """The "call now" button reaches the dialler over Redis: the dial starts in well
    under a second, although the dialler polls only every 10 minutes here."""
    app = overflow_app
    assert app.callbacks.interval == 600
    mine = on_duty(carrier)[0]
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    # the list is worked in order: nothing older left by another test stands first
    for left in await app.panel.callbacks.open_list("t1022"):
        await app.panel.callbacks.cancel(left.id, by="test")
    async with agent_page(app, browser, mine) as (page, console):
        cb: Callback | None = None
        try:
            await set_paused(app, "t1022", True)  # nobody free: only "call now" dials it
            await asyncio.wait_for(app.callbacks.listening.wait(), 5)
            number = new_number()
            cb = await app.panel.callbacks.request(
                uniqueid=f"none-{number}",
                number=number,
                number_source="caller_id",
                language="vi",
                joined_at=None,
                hotline_number="1022",
            )
            # assigned without the wake-up, the callback just waits for the next poll
            await app.panel.callbacks.call_now(cb.id, mine)
            await asyncio.sleep(3)
            assert await attempts(app, cb.id) == [], "the dialler does not poll within seconds"

            await page.goto(f"{base}/callbacks")
            button = page.locator(f"tr.cb-row[data-id='{cb.id}'] form[action$='/call'] button")
            clicked_at = datetime.now(UTC)
            clicked = time.monotonic()
            await button.click()

            async def attempt_started() -> list[CallbackAttempt]:
                return await attempts(app, cb.id)

            (attempt,) = await eventually(attempt_started, timeout=10, every=0.02)
            seen = time.monotonic() - clicked
            started = (attempt.started_at - clicked_at).total_seconds()
            assert attempt.agent_extension == mine
            channel = await eventually(lambda: pbx_channel(app, f"cb-{cb.id}-"), 10, every=0.05)
            ringing = time.monotonic() - clicked
            # to the workspace, where the callback pops up
            await page.wait_for_url(f"{base}/agent")
            shown = f"#pop.callback .caller:has-text('{number}')"
            await page.wait_for_selector(shown, timeout=10_000)
            popped = time.monotonic() - clicked
            print(
                f"\ncall now -> attempt started {started:.3f} s (seen {seen:.3f} s), "
                f"agent's channel {ringing:.3f} s, pop on the page {popped:.3f} s "
                f"(dialler interval {app.callbacks.interval:.0f} s)"
            )
            assert started < 1.0, f"the dial started {started:.2f} s after the click"
            assert ringing < 2.0 and popped < 5.0
            await app.ami.action({"Action": "Hangup", "Channel": channel})
            await page.wait_for_selector("#pop.callback.ended", timeout=20_000)
            assert not [c for c in console if "Uncaught" in c or "Security Policy" in c], console
        finally:
            await hang_up_leftovers(app, cb.id if cb else None)
            await set_paused(app, "t1022", False)

    async def ended() -> Callback | None:
        c = await app.panel.callbacks.get(cb.id)
        return c if c.status != Status.DIALLING else None

    after = await eventually(ended, timeout=20)
    assert after.status == Status.DONE and after.outcome == Result.CONNECTED


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
        # no caller ID: 1 once in the queue, junk "123#" refused, then a real number
        hidden = await carrier.carrier.call(
            "1022",
            caller_id="",
            digits="1",
            cue=True,
            wait2=1,
            digits2="1wwww123#wwwwww" + typed + "#",
            hold=40,
        )

        async def hidden_queued() -> Call | None:
            async with app.db.session() as s:
                return await s.scalar(
                    select(Call).where(
                        Call.caller_number.is_(None),
                        Call.started_at >= since,
                        Call.queued_at.is_not(None),
                    )
                )

        await eventually(hidden_queued, timeout=30)
        await carrier.carrier.cue(hidden)
        # presses nothing: waits to the maximum, hears the final offer, goodbye
        await carrier.carrier.call("1022", caller_id=f"<{silent}>", digits="1", hold=90)
        # 2 once in the queue: a voice message (the caller's tone), then hangs up
        await keys_in_queue(carrier.carrier, app, speaker, "2", hold=8)

        async def typed_callback() -> Callback | None:
            async with app.db.session() as s:
                return await s.scalar(
                    select(Callback).where(Callback.number == typed, Callback.requested_at >= since)
                )

        cb = await eventually(typed_callback, timeout=60)
        # cancelled at once: nobody is to call this made-up number
        await app.panel.callbacks.cancel(cb.id, by="test")
        spoken = await settled_record(app, speaker, Outcome.VOICEMAIL)
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

    # the callback it becomes is cancelled at once: nobody free may be rung for it
    # meanwhile (the lab's phones would talk for an hour, busy for the next tests)
    await set_paused(app, "t1022", True)
    try:
        await supervisor_plays_and_calls_back(app, browser, vm.id, speaker)
    finally:
        await set_paused(app, "t1022", False)


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

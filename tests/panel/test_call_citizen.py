""" "Call the citizen" from a ticket, through the real Asterisk, carrier and Chromium.

The agent clicks on the ticket page; their (lab) phone rings and answers, the
PBX dials the citizen over the trunk, the carrier's side answers and sees the
configured hotline number; both sides are recorded, the ticket lists the call
with its recording.  The JSON API refuses clearly: a phone that is not
registered, one that is busy, a call from another ticket under way (409), a
number that cannot be dialled (409); a second click gets the same call.

The lab's configuration gets a trunk contact (so the PBX can call out) and a
caller ID of its own for these calls, reloaded over AMI, then restored.
"""

from __future__ import annotations

import asyncio
import random
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from sqlalchemy import update

from accounts.identity import SYSTEM
from callcenter.live import read_device
from callcenter.models import Call, Callback, Direction, Outcome, Result, Status
from callcenter.recording_files import mixed_file
from core.ami import Event
from core.db import Database
from core.settings import Settings, load_settings
from hotline import system
from hotline.app import Application
from tests.agi.test_calls import dominant_hz, new_number
from tests.browser import ARTIFACTS
from tests.callcenter.test_callbacks import agent_page
from tests.lab import CARRIER, Lab, eventually
from tests.panel.test_panel_browser import PASSWORD, on_duty

pytestmark = pytest.mark.asterisk

SHOWN = "19001022"  # the caller ID configured for these calls


@pytest.fixture
async def click_app(carrier: Lab) -> AsyncIterator[Application]:
    lab = carrier
    path = lab.home / "config" / "hotline.toml"
    original = path.read_text()
    cfg = tomllib.loads(original)
    cfg["trunk"]["contact"] = f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
    cfg["queues"]["outbound_caller_id"] = SHOWN
    path.write_text(tomli_w.dumps(cfg))
    try:
        settings = load_settings(path, env={})
        await system.reload(settings, lab.pbx)
        await _close_left_callbacks(settings)
        application = Application(settings, scheduler_interval=2)
        async with application:
            await application.ami.wait_logged_in(30)
            await asyncio.wait_for(application.outbound.listening.wait(), 10)
            yield application
    finally:
        path.write_text(original)
        await system.reload(load_settings(path, env={}), lab.pbx)


async def _close_left_callbacks(settings: Settings) -> None:
    """Callbacks that other tests left waiting in the lab's database would ring this
    test's agent as soon as the application's dialler starts (and take their pop)."""
    db = Database(settings.database)
    try:
        async with db.session() as session:
            await session.execute(
                update(Callback)
                .where(Callback.status != Status.DONE)
                .values(status=Status.DONE, outcome=Result.FAILED, closed_by="test set-up")
            )
    finally:
        await db.close()


async def account(app: Application, extension: str | None, role: str = "agent") -> str:
    """The user name of an account on ``extension`` (taken over if one exists)."""
    user = await app.panel.accounts.by_extension(extension) if extension else None
    if user is None:
        user = await app.panel.accounts.create_user(
            None,
            {
                "username": f"caller{random.randrange(10**7)}",
                "display_name": "Điện thoại viên gọi đi",
                "role": role,
                **({"extension": extension} if extension else {}),
                "password": PASSWORD,
            },
        )
    else:
        await app.panel.accounts.update_user(SYSTEM, user.id, {"language": "vi", "active": True})
        await app.panel.accounts.set_password(None, user.id, PASSWORD)
    return user.username


async def ticket(app: Application, phone: str, description: str = "Cống bị tắc") -> Any:
    return await app.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": phone,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": description,
        },
    )


async def api(app: Application, username: str) -> aiohttp.ClientSession:
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    session = aiohttp.ClientSession(base_url=base)
    r = await session.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert r.status == 200, await r.text()
    session.headers["Authorization"] = f"Bearer {(await r.json())['token']}"
    return session


async def outbound_channels(app: Application, extension: str) -> list[str]:
    """The PBX's channels of this agent's outbound calls (the agent's leg)."""
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return [
        str(e["Channel"])
        for e in events
        if e.get("Event") == "CoreShowChannel"
        and str(e.get("Uniqueid", "")).startswith("out-")
        and str(e.get("Channel", "")).startswith(f"PJSIP/{extension}-")
    ]


async def device(app: Application, extension: str, wanted: str) -> str | None:
    return wanted if await read_device(app.ami, extension) == wanted else None


async def ended(app: Application, call_id: int) -> Call | None:
    call = await app.calls.by_id(call_id)
    return call if call is not None and call.ended_at is not None else None


async def test_agent_calls_the_citizen_from_the_ticket_page(
    carrier: Lab, click_app: Application, browser
):
    app = click_app
    mine = on_duty(carrier)[0]
    number = new_number()
    t = await ticket(app, number.replace("09", "09 ", 1))  # typed with a space: still dialled
    heard: list[Event] = []

    async def citizen_answered(e: Event) -> None:
        if e.get("UserEvent") == "AgentAnswered" and e.get("Extension") == number:
            heard.append(e)

    assert carrier.carrier.ami is not None
    carrier.carrier.ami.subscribe(["UserEvent"], citizen_answered)
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    async with agent_page(app, browser, mine) as (page, console):
        await page.goto(f"{base}/tickets/{t.code}")
        assert await page.locator("#no-calls").is_visible()
        async with page.expect_navigation():
            await page.click("#call-citizen")
        # the flash says what happens, in Vietnamese
        assert "đổ chuông" in await page.inner_text(".flash")
        # the agent's phone rang and answered, then the citizen's: the call bar says so
        await page.wait_for_selector("#callbar.outbound.talking", timeout=20_000)
        assert await page.inner_text("#callbar-phase") == "Đang gọi cho người dân"
        assert number in await page.inner_text("#callbar-caller")
        (channel,) = await eventually(lambda: outbound_channels(app, mine), timeout=10)

        async def citizen_rang() -> list[Event]:
            return heard

        await eventually(citizen_rang, timeout=20)
        (answered,) = heard
        assert answered.get("Caller") == SHOWN, "the citizen sees the configured hotline number"
        # the ticket's page lists the call while it lasts, and its history names it
        await page.reload()
        row = page.locator("#ticket-calls tr.call-outbound")
        assert await row.count() == 1
        assert "đang diễn ra" in await row.inner_text()
        assert "đã gọi cho người dân" in await page.inner_text(".history-log")
        await page.screenshot(path=str(ARTIFACTS / "call-citizen-talking.png"), full_page=True)
        await asyncio.sleep(4)  # they talk
        await app.ami.action({"Action": "Hangup", "Channel": channel})
        await page.wait_for_selector("#callbar.outbound.ended", timeout=20_000)
        assert await page.inner_text("#callbar-phase") == "Cuộc gọi cho người dân đã kết thúc"
        calls = await app.calls.for_ticket(t.id, None)
        (call,) = calls
        call = await eventually(lambda: ended(app, call.id), timeout=20)
        await page.reload()
        row = page.locator("#ticket-calls tr.call-outbound")
        assert "đã nói chuyện với người dân" in await row.inner_text()
        listen = row.locator("a.listen")
        if app.settings.recordings.agents_replay_own:
            assert await listen.get_attribute("href") == f"/recordings/{call.id}"
        else:
            assert "đã ghi âm" in await row.inner_text()
        await page.screenshot(path=str(ARTIFACTS / "call-citizen-ended.png"), full_page=True)
        assert not [c for c in console if "Uncaught" in c or "Security Policy" in c], console

    assert call.direction == Direction.OUTBOUND and call.ticket_id == t.id
    assert call.outcome == Outcome.OUTBOUND and call.end_reason == "outbound_connected"
    assert call.caller_number == number and call.agent_extension == mine
    assert call.hotline_number == SHOWN and call.queue is None and call.queued_at is None
    assert call.talk_seconds is not None and call.talk_seconds >= 3
    await asyncio.sleep(1)  # MixMonitor closes its files as the channel goes
    assert call.recording_base is not None
    assert Path(mixed_file(call.recording_base)).stat().st_size > 30_000
    for side in (call.recording_caller, call.recording_agent):
        hz, rms = dominant_hz(side)
        assert rms > 1000, f"{side} is silent"
        assert abs(hz - 1000) < 15  # both lab phones play the 1000 Hz tone
    # a supervisor finds it on the ticket page and replays it from there
    boss = await account(app, None, role="supervisor")
    async with await api(app, boss) as s:
        r = await s.get(f"/tickets/{t.code}")
        assert f'href="/recordings/{call.id}"' in await r.text()
        r = await s.get(f"/recordings/{call.id}/audio")
        assert r.status == 200 and r.content_type.startswith("audio/")
        assert len(await r.read()) > 10_000  # some 5 s of compressed talk
    # the board's queues never saw it: no caller waiting, no queue call counted
    assert all(q["waiting"] == 0 for q in app.live.summary().values())


async def test_refusals_and_the_second_click(carrier: Lab, click_app: Application):
    app = click_app
    first, second = on_duty(carrier)[:2]
    a = await ticket(app, new_number())
    b = await ticket(app, new_number())
    bad = await ticket(app, "113")
    agent = await account(app, first)
    other = await account(app, second)
    async with await api(app, agent) as s:
        # a number the trunk cannot dial: 409 (what is stored), naming the ticket's field
        r = await s.post(f"/api/v1/tickets/{bad.code}/call")
        assert r.status == 409
        body = await r.json()
        assert body["detail"] == "not_dialable"
        assert set(body["fields"]) == {"citizen_phone"} and "113" in body["fields"]["citizen_phone"]
        assert body["labels"]["citizen_phone"]

        # a double click: the same call, one channel, one history line
        r1, r2 = await asyncio.gather(
            s.post(f"/api/v1/tickets/{a.code}/call"), s.post(f"/api/v1/tickets/{a.code}/call")
        )
        assert (r1.status, r2.status) == (202, 202), (await r1.text(), await r2.text())
        one, two = await r1.json(), await r2.json()
        assert one["id"] == two["id"] and sorted([one["repeated"], two["repeated"]]) == [
            False,
            True,
        ]
        assert one["caller_id"] == SHOWN and one["extension"] == first
        # the agent's phone rings (answers), then the citizen is dialled
        await eventually(lambda: outbound_channels(app, first), timeout=15)
        # a call from another ticket meanwhile: refused, naming why
        r = await s.post(f"/api/v1/tickets/{b.code}/call")
        assert r.status == 409
        refused = await r.json()
        assert refused["detail"] == "already_calling" and "gác máy" in refused["error"]
        history = await (await s.get(f"/api/v1/tickets/{a.code}/history")).json()
        assert [e["action"] for e in history["items"]].count("called") == 1
        # still one call, and one channel for this agent
        assert len(await outbound_channels(app, first)) == 1
        for channel in await outbound_channels(app, first):
            await app.ami.action({"Action": "Hangup", "Channel": channel})
        await eventually(lambda: ended(app, one["id"]), timeout=20)
        await eventually(lambda: device(app, first, "free"), timeout=10)

    # busy: the agent's phone is in another call (a colleague rang it)
    busy_id = f"busy-{random.randrange(10**6)}"
    await app.ami.action(
        {
            "Action": "Originate",
            "Channel": f"PJSIP/{second}",
            "Application": "Wait",
            "Data": "30",
            "Async": "true",
            "ChannelId": busy_id,
        },
        as_list=False,
    )
    try:
        await eventually(lambda: device(app, second, "talking"), timeout=15)
        async with await api(app, other) as s:
            r = await s.post(f"/api/v1/tickets/{b.code}/call")
            assert r.status == 409
            refused = await r.json()
            assert refused["detail"] == "busy" and second in refused["error"]
    finally:
        await app.ami.action({"Action": "Hangup", "Channel": f"/^PJSIP/{second}-.*$/"})
    await eventually(lambda: device(app, second, "free"), timeout=15)

    # not registered: the phone went away (the softphone was closed)
    assert carrier.carrier.ami is not None
    registration = carrier.carrier.registration(second)
    await carrier.carrier.ami.command(f"pjsip send unregister {registration}")
    try:
        await eventually(lambda: device(app, second, "offline"), timeout=20)
        async with await api(app, other) as s:
            r = await s.post(f"/api/v1/tickets/{b.code}/call")
            assert r.status == 409
            refused = await r.json()
            assert refused["detail"] == "not_registered" and "chưa đăng ký" in refused["error"]
    finally:
        await carrier.carrier.ami.command(f"pjsip send register {registration}")
    await eventually(lambda: device(app, second, "free"), timeout=30)
    # nothing was placed for those refusals
    assert await app.calls.for_ticket(b.id, None) == []

    # no phone of one's own (a supervisor without an extension): 409; an agency: 403
    boss = await account(app, None, role="supervisor")
    async with await api(app, boss) as s:
        r = await s.post(f"/api/v1/tickets/{b.code}/call", json={})
        assert r.status == 409 and (await r.json())["detail"] == "no_phone"
        # an unknown key in the body is refused, not ignored
        r = await s.post(f"/api/v1/tickets/{b.code}/call", json={"number": "0912345678"})
        assert r.status == 422

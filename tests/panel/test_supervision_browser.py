"""The live board's listen / whisper / barge buttons in Debian's Chromium, over a real call.

A caller from the test carrier reaches an agent through the real Asterisk; the
supervisor (an account whose extension is a desk phone of ``[supervision] phones``)
sees the agent talking on /board and clicks each button in turn: the page says the
phone is ringing, the carrier's desk phone really rings and answers (its
``SupervisorAnswered`` event), Asterisk shows the desk phone's channel up in the
agent's call, the audit row is written with the mode, and once the desk phone hangs
up the row is closed and shown on /supervisions.  Screenshots in test-artifacts/browser/.
"""

from __future__ import annotations

import os
import random

import pytest
from sqlalchemy import select

from accounts.identity import Actor
from callcenter.models import Supervision
from hotline.app import Application
from tests.browser import ARTIFACTS
from tests.callcenter.test_supervision_calls import DESK, phone_up, talking_agent
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk

PASSWORD = "mật khẩu đủ dài 2026"


async def _rows(app: Application, user_id: int) -> list[Supervision]:
    async with app.db.session() as s:
        found = await s.scalars(
            select(Supervision).where(Supervision.user_id == user_id).order_by(Supervision.id)
        )
        return list(found)


async def desk_channel(app: Application) -> str | None:
    events = await app.ami.action({"Action": "CoreShowChannels"}, as_list=True)
    return next(
        (
            str(e["Channel"])
            for e in events
            if e.get("Event") == "CoreShowChannel"
            and str(e.get("Channel", "")).startswith(f"PJSIP/{DESK}-")
            and e.get("ChannelStateDesc") == "Up"
        ),
        None,
    )


async def test_the_board_buttons_ring_the_desk_phone_into_the_call_and_are_audited(
    carrier: Lab, app: Application, browser
):
    ctx = app.panel
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    suffix = random.randrange(10**6)
    admin = Actor.of(
        await ctx.accounts.create_user(
            None,
            {
                "username": f"admin{suffix}",
                "display_name": "Admin",
                "role": "admin",
                "password": PASSWORD,
            },
        )
    )
    supervisor = await ctx.accounts.by_extension(DESK)
    if supervisor is None:
        supervisor = await ctx.accounts.create_user(
            admin,
            {
                "username": f"giamsat{suffix}",
                "display_name": "Giám sát Hà",
                "role": "supervisor",
                "password": PASSWORD,
                "extension": DESK,
            },
        )
    else:  # another test on this lab left an account on the desk phone: take it over
        supervisor = await ctx.accounts.update_user(
            admin,
            supervisor.id,
            {"display_name": "Giám sát Hà", "role": "supervisor", "active": True, "language": "vi"},
        )
        await ctx.accounts.set_password(None, supervisor.id, PASSWORD)
    username = supervisor.username
    rang: list[dict] = []

    async def heard(event) -> None:  # type: ignore[no-untyped-def]
        if event.get("UserEvent") == "SupervisorAnswered" and event.get("Extension") == DESK:
            rang.append(dict(event))

    assert carrier.carrier.ami is not None
    carrier.carrier.ami.subscribe(["UserEvent"], heard)

    number = "09" + "".join(random.choices("0123456789", k=8))
    await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="1", hold=120)
    agent, uniqueid = await talking_agent(app, number)

    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    problems: list[str] = []
    try:
        page = await context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", username)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button.primary")
        await page.wait_for_load_state("domcontentloaded")
        await page.goto(f"{base}/board")
        await page.wait_for_selector("#board[data-loaded]", state="attached")
        member = page.locator(f'ul.members li[data-extension="{agent}"][data-state="talking"]')
        await member.first.wait_for(timeout=20_000)
        tools = member.first.locator(".supervise")
        assert await tools.is_visible(), "the buttons show beside a talking agent"
        await page.screenshot(path=os.path.join(ARTIFACTS, "supervise-1-talking.png"))

        before = len(await _rows(app, supervisor.id))  # a taken-over account's earlier ones
        for i, mode in enumerate(("listen", "whisper", "barge")):
            await tools.locator(f'button[data-mode="{mode}"]').click()
            status = page.locator("#supervise-status[data-ok]")
            await status.wait_for(timeout=10_000)
            assert await status.get_attribute("data-ok") == "1", await status.inner_text()
            assert "đổ chuông" in await status.inner_text() and agent in await status.inner_text()
            # the desk phone really rang and answered, and is in the agent's call
            await eventually(lambda n=i: _true(len(rang) > n), 20)
            channel = await eventually(lambda: desk_channel(app), 20)
            assert await phone_up(app, DESK)
            rows = await _rows(app, supervisor.id)
            assert len(rows) == before + i + 1
            row = rows[-1]
            assert (row.mode, row.agent_extension, row.supervisor_extension) == (mode, agent, DESK)
            assert row.call_uniqueid == uniqueid and row.username == "Giám sát Hà"
            assert row.ended_at is None
            await page.screenshot(path=os.path.join(ARTIFACTS, f"supervise-2-{mode}.png"))
            # the supervisor hangs up: the row is closed, the desk phone free again
            await app.ami.action({"Action": "Hangup", "Channel": channel})

            async def closed(row_id: int = row.id) -> Supervision | None:
                async with app.db.session() as s:
                    r = await s.get(Supervision, row_id)
                return r if r is not None and r.ended_at is not None else None

            done = await eventually(closed, 20)
            assert done.result == "ended"
            await eventually(lambda: _none_up(app), 10)
            await page.evaluate(
                "() => document.getElementById('supervise-status').removeAttribute('data-ok')"
            )

        # the audit page lists the three, newest first
        await page.click('a[href="/supervisions"]')
        await page.wait_for_selector("#supervisions")
        listed = await page.locator(f'#supervisions tr[data-agent="{agent}"]').evaluate_all(
            "rows => rows.map(r => r.dataset.mode)"
        )
        assert listed[:3] == ["barge", "whisper", "listen"], listed
        await page.screenshot(path=os.path.join(ARTIFACTS, "supervise-3-audit.png"))
        assert not problems, problems
    finally:
        await context.close()
        await carrier.carrier.hangup_all()


async def _true(value: bool) -> bool | None:
    return True if value else None


async def _none_up(app: Application) -> bool | None:
    return True if not await phone_up(app, DESK) else None

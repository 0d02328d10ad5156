"""The panel in a real browser over a real call.

Debian's Chromium driven by Playwright: an agent signs in, a call placed
through the real Asterisk pops up on their page, survives a reload and shows
in a second tab; the agent creates the ticket from it; an agency officer
accepts and answers it; the agent pauses and resumes through real AMI.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from accounts.identity import Actor
from callcenter.shifts import shift_at
from hotline.app import Application
from tests.browser import ARTIFACTS
from tests.lab import Lab, eventually
from tickets.numbers import format_number

pytestmark = pytest.mark.asterisk

PASSWORD = "mật khẩu đủ dài 2026"


def on_duty(lab: Lab, team: str = "t1022") -> list[str]:
    current = shift_at(lab.settings.shifts, datetime.now(UTC), lab.settings.tz)
    return sorted(
        a.extension for a in lab.settings.agents if a.team == team and a.shift == current.id
    )


async def sign_in(page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_load_state("domcontentloaded")


async def test_call_pops_up_becomes_a_ticket_and_the_agency_answers(
    carrier: Lab, app: Application, browser
):
    ctx = app.panel
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    extensions = on_duty(carrier)
    mine, others = extensions[0], extensions[1:]
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
    agency = await ctx.agencies.create(
        admin,
        {"kind": "utility", "code": f"thoat-nuoc-{suffix}", "name": "Công ty Thoát nước đô thị"},
    )
    agent_name = f"agent{suffix}"
    taken = await ctx.accounts.by_extension(mine)
    if taken is not None and taken.role == "agent":
        # an earlier test of the session gave this phone an agent's account: take it over
        agent_name = taken.username
        await ctx.accounts.update_user(admin, taken.id, {"language": "vi", "active": True})
        await ctx.accounts.set_password(None, taken.id, PASSWORD)
    else:
        await ctx.accounts.create_user(
            admin,
            {
                "username": agent_name,
                "display_name": "Điện thoại viên 1",
                "role": "agent",
                "extension": mine,
                "password": PASSWORD,
            },
        )
    officer_name = f"officer{suffix}"
    await ctx.accounts.create_user(
        admin,
        {
            "username": officer_name,
            "display_name": "Cán bộ thoát nước",
            "role": "agency",
            "agency_id": agency.id,
            "password": PASSWORD,
        },
    )
    # only our agent takes calls: the others pause (through the real AMI)
    for ext in others:
        await ctx.control.pause(ext, "training")
    try:
        console: list[str] = []
        agent_ctx = await browser.new_context(viewport={"width": 1366, "height": 768})
        page = await agent_ctx.new_page()
        await sign_in(page, base, agent_name)
        assert page.url.endswith("/agent")
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        try:
            await page.wait_for_selector("#ws-status[data-state=open]", state="attached")
        except Exception:
            await page.screenshot(path=ARTIFACTS / "0-no-socket.png")
            raise AssertionError(f"no live socket; console: {console}") from None
        await page.screenshot(path=ARTIFACTS / "1-agent-waiting.png")

        number = "09" + "".join(random.choices("0123456789", k=8))
        await carrier.carrier.call(
            "1022", caller_id=f'"Nguyen Van A" <{number}>', digits="1", hold=40
        )
        await page.wait_for_selector(f"#pop .caller:has-text('{number}')", timeout=30_000)
        assert await page.locator("#pop").is_visible()
        assert "1" in await page.locator("#pop [data-f=ivr_path]").inner_text()
        assert await page.input_value("#f-citizen_phone") == number
        call_id = await page.input_value("#f-call_id")
        assert call_id.isdigit()
        await page.screenshot(path=ARTIFACTS / "2-screen-pop.png")

        # still there after a reload, and in a second tab
        await page.reload()
        await page.wait_for_selector(f"#pop .caller:has-text('{number}')", timeout=5_000)
        tab2 = await agent_ctx.new_page()
        await tab2.goto(f"{base}/agent")
        await tab2.wait_for_selector(f"#pop .caller:has-text('{number}')", timeout=5_000)
        await tab2.close()

        # the ticket from the live call
        await page.fill("input[name=citizen_name]", "Nguyễn Văn A")
        await page.fill("input[name=citizen_address]", "Hẻm 12 Nguyễn Hữu Cảnh, Bình Thạnh")
        await page.select_option("select[name=topic]", "flooding")
        await page.check("input[name=level][value='2']")
        await page.fill("textarea[name=description]", "Ngập sâu 40 cm sau mưa, cống bị tắc.")
        await page.select_option("select[name=agency_id]", str(agency.id))
        await page.screenshot(path=ARTIFACTS / "3-ticket-form.png")
        await page.click("#ticket-form button.primary")
        # back on the workspace, where the next call pops; the pop names the ticket
        await page.wait_for_url(f"{base}/agent")
        link = page.locator("#pop-call-tickets a")
        await link.wait_for()
        code = (await link.get_attribute("href") or "").rsplit("/", 1)[-1]
        await page.screenshot(path=ARTIFACTS / "4-ticket-created.png")
        ticket = await ctx.ticket_queries.get_by_code(code)
        # the link names the code and the number the agent reads out
        assert await link.inner_text() == f"{ticket.code} · {format_number(ticket.number)}"
        assert ticket.call_id == int(call_id)
        assert ticket.status == "forwarded" and ticket.agency_id == agency.id
        assert ticket.citizen_phone == number
        call = await ctx.calls.by_id(ticket.call_id)
        assert call is not None and call.caller_number == number
        assert call.agent_extension == mine

        # pause and resume through the real Asterisk; the state comes back as events
        await page.select_option("select[name=reason]", "meal")
        await page.click("#pause")
        await page.wait_for_selector("#state-label.st-paused, #state-label.st-talking")
        assert await page.inner_text("#state-label") in ("Đang tạm nghỉ", "Đang đàm thoại"), (
            "state names are translated"
        )

        # the agency officer answers
        officer_ctx = await browser.new_context(viewport={"width": 1366, "height": 768})
        op = await officer_ctx.new_page()
        await sign_in(op, base, officer_name)
        assert op.url.endswith("/inbox")
        await op.click(f"text={code}")
        await op.click("#action-accept button")
        await op.wait_for_selector("#action-answer")
        await op.fill("#action-answer textarea[name=result]", "Đã nạo vét cống, hết ngập.")
        await op.click("#action-answer button")
        await op.wait_for_load_state("domcontentloaded")
        await op.screenshot(path=ARTIFACTS / "5-agency-answered.png")
        ticket = await ctx.ticket_queries.get_by_code(code)
        assert ticket.status == "answered"
        assert ticket.result == "Đã nạo vét cống, hết ngập."
        actions = [e.action for e in await ctx.ticket_queries.history(ticket.id)]
        assert actions[:1] == ["created"] and "accepted" in actions and "answered" in actions

        # what the call was: the panel insists on its wrap-up code before the next call
        await page.wait_for_selector("#pop-wrapup", state="visible", timeout=10_000)
        await page.select_option("#wrapup-code", "ticket")
        await page.click("#wrapup-save")
        await page.locator("#wrapup-done").wait_for(timeout=10_000)
        await page.click("#resume")

        async def resumed():
            state = await ctx.bus.kept(f"state.{mine}")
            return state if state and not state["paused"] else None

        await eventually(resumed, 10)
        await officer_ctx.close()
        await agent_ctx.close()
    finally:
        for ext in extensions:
            await ctx.control.resume(ext)

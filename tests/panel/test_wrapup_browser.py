"""The wrap-up code picker in Debian's Chromium (Playwright).

The agent's pop is built by the real ``Presence`` from a real call record and the queue
events tests/panel/test_presence.py feeds (no Asterisk): while the call is on, the picker
is there; once it ended without a code the pop insists, and resuming is refused with the
reason; the agent picks a code, the page comes back with it named in the pop and the
record holds it.  Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from callcenter.presence import Presence
from tests.browser import ARTIFACTS
from tests.helpers import queued_call
from tests.panel.test_presence import event
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NUMBER = "0909555222"
UID = "pbx-1795344999.77"


async def test_the_agent_picks_a_wrapup_code_after_the_call(panel, browser):
    ctx = panel.ctx
    base = str(panel.client.make_url("")).rstrip("/")
    now = ctx.clock.now()
    await queued_call(ctx.calls, UID, NUMBER, started=now - timedelta(seconds=40), path="1:agent")
    presence = Presence(ctx.bus, ctx.calls, ctx.settings, ctx.clock)  # the pop alone
    await ctx.bus.keep(
        "state.1001",
        {"extension": "1001", "state": "paused", "paused": True, "reason": "meal"},
        600,
    )
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/agent")
        await page.wait_for_selector("#ws-status[data-state=open]", timeout=10_000)
        await ctx.hub.ready.wait()
        common = {"Uniqueid": UID, "Queue": "t1022-morning", "Interface": "PJSIP/1001"}
        await presence.on_called(event("AgentCalled", **common, CallerIDNum=NUMBER))
        await page.wait_for_selector(f"#pop .caller:has-text('{NUMBER}')", timeout=10_000)
        assert await page.locator("#pop-wrapup").is_hidden()  # ringing: nothing to code yet
        await ctx.calls.agent_connected(
            uniqueid=UID,
            queue="t1022-morning",
            interface="PJSIP/1001",
            member_name=None,
            hold_seconds=5,
            at=now,
            recording_base=None,
        )
        await presence.on_connect(event("AgentConnect", **common))
        await page.wait_for_selector("#pop-wrapup", state="visible", timeout=10_000)
        assert await page.locator("#wrapup-needed").is_hidden()  # on the call: no nagging
        await ctx.calls.hung_up(
            uniqueid=UID, at=now + timedelta(seconds=30), queue_status=None, cause="16"
        )
        await presence.on_complete(event("AgentComplete", **common))
        needed = page.locator("#wrapup-needed")
        await needed.wait_for(state="visible", timeout=10_000)
        assert await needed.inner_text() == (
            "Hãy chọn mã kết thúc cho cuộc gọi này trước cuộc gọi tiếp theo."
        )
        assert "missing" in (await page.get_attribute("#pop-wrapup", "class") or "")
        await page.screenshot(path=ARTIFACTS / "wrapup-needed.png")

        # resuming before the code is refused, with the reason
        await page.click("#resume")
        await page.wait_for_load_state("domcontentloaded")
        assert "Hãy chọn mã kết thúc cho cuộc gọi vừa rồi" in await page.inner_text("body")
        assert panel.control.calls == []

        await page.wait_for_selector("#pop-wrapup", state="visible", timeout=10_000)
        options = await page.locator("#wrapup-code option").all_inner_texts()
        assert "Gọi quấy rối, đùa giỡn" in options and "Đã hướng dẫn, trả lời ngay" in options
        await page.select_option("#wrapup-code", "prank")
        await page.click("#wrapup-save")
        await page.wait_for_load_state("domcontentloaded")
        done = page.locator("#wrapup-done")
        await done.wait_for(state="visible", timeout=10_000)
        assert await done.inner_text() == "Mã: Gọi quấy rối, đùa giỡn"
        assert await page.locator("#wrapup-needed").is_hidden()
        call = await ctx.calls.get(UID)
        assert (call.wrapup_code, call.wrapup_by) == ("prank", "Agent1")
        await page.screenshot(path=ARTIFACTS / "wrapup-done.png")

        await page.click("#resume")
        await page.wait_for_load_state("domcontentloaded")
        assert panel.control.calls == [("resume", "1001", "")]
        assert not problems, problems
    finally:
        await context.close()

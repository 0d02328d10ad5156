"""The workspace's transfer in Debian's Chromium (Playwright), with no Asterisk.

The first agent, talking, sees the transfer form; what they typed in the ticket form
goes with the request as the draft (read off the request the browser sent), and the
refusal of a panel without a telephone system is said in Vietnamese.  The second
agent's pop, built by the real ``Presence`` for a transferred call, names who
transferred it and their note, and their ticket form is filled from the draft.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs

import pytest

from callcenter.models import CallTransfer
from callcenter.presence import Presence
from callcenter.transfers import Transferrer
from tests.browser import ARTIFACTS
from tests.helpers import queued_call
from tests.panel.test_presence import event
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NUMBER = "0909555333"
UID = "pbx-1795344999.88"


async def test_the_transfer_form_sends_the_draft_and_the_next_agent_gets_it(panel, browser):
    ctx = panel.ctx
    base = str(panel.client.make_url("")).rstrip("/")
    now = ctx.clock.now()
    await queued_call(ctx.calls, UID, NUMBER, started=now - timedelta(seconds=40), path="1:agent")
    presence = Presence(ctx.bus, ctx.calls, ctx.settings, ctx.clock)  # the pop alone
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    other = await browser.new_context(viewport={"width": 1366, "height": 900})
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
        assert await page.locator("#pop-transfer").is_hidden()  # ringing: not yet
        await ctx.calls.agent_connected(
            uniqueid=UID, queue="t1022-morning", interface="PJSIP/1001", member_name=None,
            hold_seconds=5, at=now, recording_base=None,
        )  # fmt: skip
        await presence.on_connect(event("AgentConnect", **common))
        await page.wait_for_selector("#pop-transfer", state="visible", timeout=10_000)
        options = await page.locator("#transfer-target option").all_inner_texts()
        assert "Nhóm Đường dây nóng Thành ủy" in options and "Khẩn cấp 113" in options

        await page.fill("#ticket-form textarea[name=description]", "Cây đổ trên đường Lê Lợi")
        await page.fill("#ticket-form input[name=citizen_name]", "Trần Thị Mai")
        await page.select_option("#transfer-target", "queue:party")
        await page.fill("#transfer-note", "Người dân muốn gặp Thành ủy")
        sent: list[str] = []
        page.on(
            "request",
            lambda r: sent.append(r.post_data or "") if r.url.endswith("/agent/transfer") else None,
        )
        await page.screenshot(path=ARTIFACTS / "transfer-form.png")
        await page.click("#transfer-go")
        await page.wait_for_load_state("domcontentloaded")
        await page.wait_for_selector(".flash", timeout=10_000)
        assert "Tổng đài điện thoại không phản hồi" in await page.inner_text(".flash")
        (body,) = sent
        form = parse_qs(body)
        assert form["target"] == ["queue:party"] and form["kind"] == ["blind"]
        assert form["note"] == ["Người dân muốn gặp Thành ủy"]
        draft = json.loads(form["draft"][0])
        assert draft["description"] == "Cây đổ trên đường Lê Lợi"
        assert draft["citizen_name"] == "Trần Thị Mai"
        assert "citizen_phone" not in draft

        # the next agent: the pop of the same call, transferred, on agent2's screen
        row = CallTransfer(
            id=9, call_id=1, call_uniqueid=UID, kind="blind", target_kind="queue",
            target="party", target_label="Party", from_extension="1001", username="Agent1",
            note="Người dân muốn gặp Thành ủy", draft=json.dumps(draft, ensure_ascii=False),
            requested_at=now,
        )  # fmt: skip
        await ctx.transfers._keep_for_pop(row, Transferrer(None, "Agent1", "1001"))
        second = await other.new_page()
        problems2 = watch(second)
        await ctx.bus.forget("pop.1002")
        await presence.on_called(
            event(
                "AgentCalled", Uniqueid=UID, Queue="party-morning", Interface="PJSIP/1002",
                CallerIDNum=NUMBER, ChanVariable=["HOTLINE_TRANSFER=9"],
            )
        )  # fmt: skip
        await sign_in(second, base, "agent2")
        await second.goto(f"{base}/agent")
        box = second.locator("#pop-transferred")
        await box.wait_for(state="visible", timeout=10_000)
        assert await second.inner_text("#pop-transferred-by") == "Được chuyển từ Agent1 (1001)"
        assert await second.inner_text("#pop-transferred-note") == "Người dân muốn gặp Thành ủy"
        assert await second.input_value("#ticket-form textarea[name=description]") == (
            "Cây đổ trên đường Lê Lợi"
        )
        assert await second.input_value("#ticket-form input[name=citizen_name]") == "Trần Thị Mai"
        await second.screenshot(path=ARTIFACTS / "transfer-received.png")
        assert not problems, problems
        assert not problems2, problems2
    finally:
        await context.close()
        await other.close()

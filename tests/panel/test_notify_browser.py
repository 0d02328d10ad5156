"""Telling people, in Debian's Chromium (Playwright), no Asterisk.

The officer's inbox shows a long report whole (on demand) and the citizen's
address; when the officer answers through the ticket page, the agent who
created the ticket, with their workspace open, is told at once (the bus, the
hub, the WebSocket) and finds it in "my tickets that need me".
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ADDRESS = "Số 45 hẻm 12 Nguyễn Trãi, phường Bến Thành, Quận 1"
# longer than the inbox's first line; its last words must reach the officer
LONG = (
    "Cống thoát nước trước nhà bị tắc từ ba ngày nay, mỗi khi mưa nước tràn vào nhà "
    "và cửa hàng hai bên; bà con đã tự khơi thông nhưng không được vì rác đọng sâu. "
    "Xin cơ quan cho người đến kiểm tra và nạo vét sớm, ĐOẠN CUỐI CẦN ĐỌC ĐỦ."
)


async def test_the_officer_answers_and_the_agent_is_told_live(panel, browser):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent1"])
    ticket = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909000222",
            "citizen_address": ADDRESS,
            "domain": "state",
            "topic": "traffic",
            "level": 2,
            "description": LONG,
            "agency_id": panel.agency_ids["so-gtvt"],
            # the citizen agreed the agency may know who they are: it sees the address
            "identity_consent": True,
        },
    )
    base = str(panel.client.make_url("")).rstrip("/")
    agent_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    officer_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await agent_ctx.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/agent")
        assert await page.locator("#needing-none").is_visible()
        assert await page.locator("#live-notices").is_hidden()
        await page.wait_for_function("window.hotlineLast && window.hotlineLast.type === 'hello'")

        # the officer's inbox: the start of the report, the whole of it a click away
        op = await officer_ctx.new_page()
        await sign_in(op, base, "officer")
        await op.goto(f"{base}/inbox")
        row = op.locator("#inbox tbody tr").first
        assert await row.locator(".inbox-address").inner_text() == ADDRESS
        assert await row.locator(".full-description").is_hidden()
        summary = await row.locator("summary").inner_text()
        start = summary.removesuffix("…")
        # cut between two words, not in the middle of one
        assert start != summary and LONG.startswith(start) and LONG[len(start)] == " "
        await row.locator("summary").click()
        assert await row.locator(".full-description").inner_text() == LONG
        await op.screenshot(path=ARTIFACTS / "inbox-full-description.png", full_page=True)

        # the officer accepts and answers on the ticket page
        await row.locator(f'a[href="/tickets/{ticket.code}"]').click()
        await op.click("#action-accept button")
        await op.wait_for_selector("#action-answer")
        await op.fill("#action-answer textarea[name=result]", "Đã nạo vét cống, hết ngập.")
        await op.click("#action-answer button")
        await op.wait_for_load_state("domcontentloaded")
        assert (await ctx.ticket_queries.get(ticket.id)).status == "answered"

        # the agent's open page is told, without a reload
        notice = page.locator("#live-notices li a")
        await notice.wait_for(timeout=5000)
        assert ticket.code in await notice.inner_text()
        assert await notice.get_attribute("href") == f"/tickets/{ticket.code}"
        await page.screenshot(path=ARTIFACTS / "agent-told-answered.png", full_page=True)
        # and after a reload it is in the list of tickets that need them
        await page.reload()
        assert await page.locator(f'#needing tr[data-code="{ticket.code}"]').is_visible()
        assert problems == []
    finally:
        await officer_ctx.close()
        await agent_ctx.close()

"""Reopening a closed ticket in Debian's Chromium (Playwright): a supervisor gives a
reason, the ticket goes back to the supervisors and is in their "needs me" list.  No
Asterisk; screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tickets.models import Status

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def test_a_supervisor_reopens_a_closed_ticket_and_sees_it_in_their_list(panel, browser):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent1"])
    ticket = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_name": "Lê Thị Hoa",
            "domain": "state",
            "topic": "flooding",
            "level": 1,
            "description": "Hỏi vì sao hẻm 42 vẫn ngập sau mưa",
            "guidance": "Đã báo công ty thoát nước, sẽ nạo vét trong tuần",
        },
    )
    other = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "trees",
            "level": 1,
            "description": "Cây nghiêng trước trường",
            "guidance": "Đã hướng dẫn",
        },
    )
    assert ticket.status == Status.CLOSED
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "sup")
        await page.goto(f"{base}/tickets/{ticket.code}")
        assert "Đã đóng" in await page.inner_text("h1")
        form = page.locator("#action-reopen")
        assert await form.is_visible()

        # no reason: refused, said next to the field, nothing changed
        await form.locator("button").click()
        await page.wait_for_selector("#err-reason")
        assert await page.inner_text("#err-reason") == "là bắt buộc"
        assert (await ctx.ticket_queries.get(ticket.id)).status == Status.CLOSED

        reason = "Người dân gọi lại: hẻm 42 vẫn ngập, chưa được nạo vét"
        await page.fill("#action-reopen textarea[name=reason]", reason)
        await page.locator("#action-reopen button").click()
        await page.wait_for_load_state("domcontentloaded")
        assert page.url.endswith(f"/tickets/{ticket.code}")
        assert "Đã mở lại" in await page.inner_text("h1")
        assert await page.inner_text("#ticket-reopens") == "1"
        history = await page.inner_text(".history-log .log")
        assert "đã mở lại" in history and reason in history and "Lý do mở lại" in history
        # from reopened the supervisor can close it again (with a note), not reopen it
        assert await page.locator("#action-close").count() == 1
        assert await page.locator("#action-reopen").count() == 0
        await page.screenshot(path=ARTIFACTS / "reopen-ticket.png")

        await page.click("#nav-needs-me")
        await page.wait_for_selector("#needs-me")
        listed = await page.locator("table.list tbody td:first-child a").all_inner_texts()
        assert ticket.code in listed and other.code not in listed
        row = page.locator("table.list tbody tr", has_text=ticket.code)
        assert "Đã mở lại" in await row.inner_text() and "↺ 1" in await row.inner_text()
        await page.screenshot(path=ARTIFACTS / "reopen-needs-me.png")
        # the one refusal the test asked for is the only error the page logged
        assert [p for p in problems if "422" not in p] == [] and len(problems) == 1
    finally:
        await context.close()

    t = await ctx.ticket_queries.get(ticket.id)
    assert t.status == Status.REOPENED and t.reopens == 1
    last = (await ctx.ticket_queries.history(t.id))[-1]
    assert last.actor_id == panel.users["sup"].id

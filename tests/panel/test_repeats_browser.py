"""An agent types a report, is shown the earlier report of the same matter while typing,
and links the new ticket to it, in Debian's Chromium (Playwright), on SQLite and
PostgreSQL.  Then the group shows on the ticket page and its count in the list.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import pytest

from accounts.identity import SYSTEM, Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tickets.queries import TicketFilter

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

EARLIER = "Ngập nước sâu trên đường Nguyễn Hữu Cảnh, xe máy chết máy hàng loạt"
# as an agent types what the citizen says: no diacritics
TYPED = "ngap nuoc duong nguyen huu canh, nhieu xe chet may"


async def test_an_agent_sees_the_earlier_report_while_typing_and_links_it(panel, browser):
    ctx = panel.ctx
    earlier = await ctx.tickets.create(
        Actor.of(panel.users["agent2"]),
        {
            "channel": "sms",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": EARLIER,
            "citizen_phone": "0901000001",
        },
    )
    await ctx.tickets.create(
        Actor.of(panel.users["agent2"]),
        {
            "channel": "phone",
            "domain": "state",
            "topic": "trees",
            "level": 2,
            "description": "Cây đổ chắn ngang đường Lê Lợi",
            "citizen_phone": "0901000002",
        },
    )
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/tickets/new")
        assert await page.is_hidden("#repeat-suggest")
        await page.fill("#f-citizen_phone", "0909 888 777")
        await page.select_option("#ticket-form select[name=topic]", "flooding")
        await page.check("#ticket-form input[name=level][value='2']")
        # typed key by key: the suggestions come once the typing pauses
        await page.type("#ticket-form textarea[name=description]", TYPED, delay=15)
        hit = page.locator(f"#repeat-hits li[data-code='{earlier.code}']")
        await hit.wait_for(timeout=10_000)
        assert await page.locator("#repeat-hits li").count() == 1
        assert "Nguyễn Hữu Cảnh" in await hit.inner_text()
        await page.screenshot(path=ARTIFACTS / "repeats-suggested.png")
        await hit.locator("button.repeat-link").click()
        assert await page.is_visible("#f-repeat-chosen")
        assert earlier.code in await page.inner_text("#f-repeat-text")
        assert await page.input_value("#f-repeat_of") == earlier.code

        await page.click("#f-save")
        await page.wait_for_selector("#ticket-repeats #repeat-group", timeout=10_000)
        assert await page.inner_text("#repeat-lead") == earlier.code
        assert "2" in await page.inner_text("#repeat-group")
        await page.screenshot(path=ARTIFACTS / "repeats-linked.png")
        rows, _ = await ctx.ticket_queries.search(TicketFilter(q="0909888777"), actor=SYSTEM)
        (new,) = rows
        assert (new.repeat_of, new.description) == (earlier.id, TYPED)
        assert (await ctx.ticket_queries.get(earlier.id)).repeats == 1

        # the list shows the group's count on its ticket, and the repeat as one
        await page.goto(f"{base}/tickets")
        row = page.locator(f"tr:has(a:text-is('{earlier.code}'))")
        assert await row.locator(".badge.repeats").get_attribute("data-reports") == "2"
        assert await page.locator(f"tr:has(a:text-is('{new.code}')) .badge.repeat-of").count() == 1
        assert not problems, problems
    finally:
        await context.close()

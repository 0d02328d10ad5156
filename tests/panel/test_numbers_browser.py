"""The ticket number in Debian's Chromium (Playwright): the ticket page shows it grouped
for reading out, and opens by it as keyed.  No Asterisk; screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import re

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def test_the_ticket_page_shows_the_grouped_number(panel, browser):
    agent = Actor.of(panel.users["agent1"])
    ticket = await panel.ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_name": "Trần Thị Bình",
            "domain": "state",
            "topic": "trees",
            "level": 2,
            "description": "Cây đổ chắn đường",
        },
    )
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/tickets")
        await page.fill("input[name=q]", ticket.number)  # keyed, no spaces
        await page.press("input[name=q]", "Enter")
        await page.wait_for_load_state("domcontentloaded")
        await page.click(f"a[href='/tickets/{ticket.code}']")
        await page.wait_for_selector("#ticket-number")
        shown = await page.inner_text("#ticket-number")
        assert re.fullmatch(r"\d{3} \d{3} \d{3} \d", shown), shown
        assert shown.replace(" ", "") == ticket.number
        assert await page.inner_text("h1 .code") == ticket.code
        # the groups stay on one line, even where the title wraps
        box = await page.locator("#ticket-number").bounding_box()
        line = await page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#ticket-number')).lineHeight) || 0"
        )
        assert box is not None and (not line or box["height"] < 2 * line)
        await page.screenshot(path=ARTIFACTS / "ticket-number.png")
        assert problems == [], problems
    finally:
        await context.close()

"""Callers who gave up, in Debian's Chromium (Playwright): the handover report and
the callbacks page show the same list, and its two actions work from either.

No Asterisk: the calls are written as the call path writes them.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS
from tests.panel.test_abandoned import NUMBER, OTHER, gave_up
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def listed(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.strip() for n in await page.locator("#abandoned-list .ab-number").all_inner_texts()]


async def test_handover_and_callbacks_show_one_list_with_its_actions(panel, browser):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    await gave_up(ctx, "pbx-7.1", NUMBER, 25)
    await gave_up(ctx, "pbx-7.2", OTHER, 12)
    await gave_up(ctx, "pbx-7.3", None, 3)
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "sup")
        await page.goto(f"{base}/reports/handover")
        assert await listed(page) == [OTHER, NUMBER]
        assert "1" in await page.inner_text("#abandoned-anonymous")
        await page.screenshot(path=ARTIFACTS / "abandoned-handover.png", full_page=True)
        await page.goto(f"{base}/callbacks")
        assert await listed(page) == [OTHER, NUMBER]
        assert await page.inner_text("#abandoned-total") == "2"

        # "no need" from the handover report, with its reason
        await page.goto(f"{base}/reports/handover")
        row = page.locator(f'#abandoned-list tr[data-number="{OTHER}"]')
        await row.locator("summary").click()
        await row.locator("input[name=reason]").fill("Người dân đã đến trực tiếp")
        await row.locator(".ab-dismiss button").click()
        await page.wait_for_url(f"{base}/reports/handover")
        assert await listed(page) == [NUMBER]
        await page.goto(f"{base}/callbacks")
        assert await listed(page) == [NUMBER]
        [kept] = await ctx.abandoned.dismissals()
        assert (kept.number, kept.dismissed_by, kept.reason) == (
            OTHER,
            "Sup",
            "Người dân đã đến trực tiếp",
        )

        # "call back" from the callbacks page: onto the callback list, off this one
        await page.locator(f'#abandoned-list tr[data-number="{NUMBER}"] .ab-call button').click()
        await page.wait_for_url(f"{base}/callbacks")
        assert await page.locator("#no-abandoned").is_visible()
        assert NUMBER in await page.inner_text("#callback-list")
        await page.screenshot(path=ARTIFACTS / "abandoned-called-back.png", full_page=True)
        await page.goto(f"{base}/reports/handover")
        assert await page.locator("#no-abandoned").is_visible()
        assert problems == []
    finally:
        await context.close()

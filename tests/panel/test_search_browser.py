"""The ticket search in Debian's Chromium (Playwright): typed without accents, and a
tracking code with a wrong check symbol.  No Asterisk; screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def _tickets(ctx, agent: Actor) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A ticket written with accents and one typed without (an SMS); their codes."""
    codes = []
    for channel, name, address in (
        ("phone", "Nguyễn Hữu Cảnh", "Đường Điện Biên Phủ, Bình Thạnh"),
        ("sms", "NGUYEN HUU CANH", "duong Dien Bien Phu"),
    ):
        t = await ctx.tickets.create(
            agent,
            {
                "channel": channel,
                "citizen_name": name,
                "citizen_address": address,
                "domain": "state",
                "topic": "trees",
                "level": 2,
                "description": "Cây đổ chắn đường",
            },
        )
        codes.append(t.code)
    return codes[0], codes[1]


async def test_the_ticket_search_without_accents_and_with_a_wrong_code(panel, browser):
    ctx = panel.ctx
    accented, typed = await _tickets(ctx, Actor.of(panel.users["agent1"]))
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/tickets")

        await page.fill("input[name=q]", "nguyen huu canh")
        await page.press("input[name=q]", "Enter")
        await page.wait_for_url("**/tickets?q=nguyen+huu+canh*")
        shown = await page.locator("table.list tbody td:first-child a").all_inner_texts()
        assert sorted(shown) == sorted([accented, typed])
        assert await page.inner_text("p.count") == "2 phiếu"
        assert "Nguyễn Hữu Cảnh" in await page.inner_text("table.list")
        await page.screenshot(path=ARTIFACTS / "search-unaccented.png")

        await page.fill("input[name=q]", "ĐƯỜNG ĐIỆN BIÊN")
        await page.press("input[name=q]", "Enter")
        await page.wait_for_load_state("domcontentloaded")
        shown = await page.locator("table.list tbody td:first-child a").all_inner_texts()
        assert sorted(shown) == sorted([accented, typed])

        raw = accented.replace("-", "")
        wrong = raw[:6] + ("2" if raw[6] != "2" else "3")
        await page.fill("input[name=q]", wrong.lower())
        await page.press("input[name=q]", "Enter")
        await page.wait_for_selector("#err-q")
        said = await page.inner_text("#err-q")
        assert said.startswith(f"{wrong[:3]}-{wrong[3:]} không phải là mã phiếu hợp lệ"), said
        assert await page.locator("table.list").count() == 0  # no "0 tickets" beside it
        assert await page.input_value("input[name=q]") == wrong.lower()
        await page.screenshot(path=ARTIFACTS / "search-wrong-code.png")

        await page.fill("input[name=q]", accented.lower().replace("-", " "))
        await page.press("input[name=q]", "Enter")
        await page.wait_for_load_state("domcontentloaded")
        shown = await page.locator("table.list tbody td:first-child a").all_inner_texts()
        assert shown == [accented]
        # the 422 of the wrong code is the only problem the console saw
        assert all("422" in p for p in problems), problems
    finally:
        await context.close()

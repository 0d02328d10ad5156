"""The blocked-numbers page in Debian's Chromium: a supervisor finds a number among
the suggestions (calls coded "prank" and "abusive"), blocks it from there, sees it
in force, lifts it, and the history keeps both; each change is in the database the
IVR reads.  Screenshots in test-artifacts/browser/."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from callcenter.blocklist import BlockState, state_of
from callcenter.wrapup import WrapupService
from tests.browser import ARTIFACTS
from tests.helpers import queued_call
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NUMBER = "0913579246"
QUEUE = "t1022-morning"


async def prank_calls(ctx, n: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` answered calls from NUMBER, coded prank or abusive by a supervisor."""
    await ctx.calls.sync_directory()
    wrapup = WrapupService(ctx.db, ctx.settings, ctx.clock)
    now = ctx.clock.now()
    for i in range(n):
        at = now - timedelta(hours=i + 1)
        uniqueid = f"pbx-1795349{i}.7"
        await queued_call(ctx.calls, uniqueid, NUMBER, started=at, queue=QUEUE, path="1")
        await ctx.calls.agent_connected(
            uniqueid=uniqueid,
            queue=QUEUE,
            interface="PJSIP/1001",
            member_name=None,
            hold_seconds=2,
            at=at + timedelta(seconds=2),
            recording_base=None,
        )
        await ctx.calls.hung_up(
            uniqueid=uniqueid, at=at + timedelta(minutes=1), queue_status=None, cause="16"
        )
        call = await ctx.calls.get(uniqueid)
        code = "prank" if i % 2 == 0 else "abusive"
        await wrapup.set_code(call.id, code, by="Sup", extension=None, supervisor=True)


async def test_a_supervisor_blocks_a_suggested_number_and_lifts_it(panel, browser):
    ctx = panel.ctx
    base = str(panel.client.make_url("")).rstrip("/")
    await prank_calls(ctx, ctx.settings.blocklist.candidate_calls)
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "sup")
        await page.goto(f"{base}/board")
        async with page.expect_navigation():
            await page.click("#board-blocklist")
        assert await page.inner_text("h1") == "Số bị chặn"
        suggested = page.locator(f'#candidates tr.candidate[data-number="{NUMBER}"]')
        assert await suggested.count() == 1
        row_text = await suggested.inner_text()
        assert "Gọi quấy rối, đùa giỡn" in row_text and "Lăng mạ, xúc phạm" in row_text
        await page.screenshot(path=os.path.join(ARTIFACTS, "blocklist-1-suggested.png"))

        # "Block…" brings the number into the form; the supervisor gives a reason and days
        async with page.expect_navigation():
            await suggested.locator("a").click()
        assert await page.input_value("#block-number") == NUMBER
        assert await page.input_value("#block-days") == str(ctx.settings.blocklist.default_days)
        await page.fill("#block-days", "3")
        await page.fill("#block-reason", "Gọi quấy rối nhiều lần trong tuần")
        async with page.expect_navigation():
            await page.click("#block-submit")
        assert f"Đã chặn số {NUMBER}." in await page.inner_text(".flash")
        (block,) = await ctx.blocklist.active()
        assert block.number == NUMBER and block.created_by == "Sup"
        assert block.expires_at == ctx.clock.now() + timedelta(days=3)
        row = page.locator(f'#blocks tr.block[data-id="{block.id}"]')
        assert await row.get_attribute("data-state") == "active"
        assert "đang hiệu lực" in await row.inner_text()
        # blocked: no longer suggested
        assert await page.locator(f'#candidates tr[data-number="{NUMBER}"]').count() == 0
        await page.screenshot(path=os.path.join(ARTIFACTS, "blocklist-2-blocked.png"))

        # a second block of the same number is refused, by name
        await page.fill("#block-number", f"+84 {NUMBER[1:3]} {NUMBER[3:]}")
        await page.fill("#block-reason", "lại")
        async with page.expect_navigation():
            await page.click("#block-submit")
        assert f"Số {NUMBER} đã đang bị chặn." in await page.inner_text(".flash")

        # lifted
        async with page.expect_navigation():
            await row.locator("form.block-lift button").click()
        assert f"Đã gỡ chặn số {NUMBER}." in await page.inner_text(".flash")
        row = page.locator(f'#blocks tr.block[data-id="{block.id}"]')
        assert await row.get_attribute("data-state") == "lifted"
        assert await row.locator("form.block-lift").count() == 0
        assert "Sup · " in await row.inner_text()
        await page.screenshot(path=os.path.join(ARTIFACTS, "blocklist-3-lifted.png"))
        stored = await ctx.blocklist.get(block.id)
        assert stored is not None and stored.removed_by == "Sup"
        assert state_of(stored, ctx.clock.now()) == BlockState.LIFTED
        assert await ctx.blocklist.active() == []
        # suggested again, since nothing blocks it now
        assert await page.locator(f'#candidates tr[data-number="{NUMBER}"]').count() == 1
        assert not problems, problems
    finally:
        await context.close()

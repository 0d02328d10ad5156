"""Words instead of identifiers, in Debian's Chromium (Playwright).

An unknown address shows the Vietnamese error page with a way back; the
agent's screen-pop, built by the real ``Presence`` from real call records and
delivered over the bus and the WebSocket, names the caller's menu choices and
their earlier call's outcome in words, in Vietnamese and, after the language
switch, in English.  No Asterisk: the queue events are the ones
tests/panel/test_presence.py feeds.  Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from callcenter.presence import Presence
from tests.browser import ARTIFACTS
from tests.helpers import queued_call
from tests.panel.conftest import PASSWORD
from tests.panel.test_presence import event

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NUMBER = "0909555111"
UID = "pbx-1795344999.21"


def watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Console errors and script failures of ``page`` (the browser's own favicon.ico aside)."""
    problems: list[str] = []

    def console(m) -> None:  # type: ignore[no-untyped-def]
        where = m.location.get("url", "")
        if m.type == "error" and not where.endswith("/favicon.ico"):
            problems.append(f"{m.text} ({where})")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


async def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_load_state("domcontentloaded")


async def test_an_unknown_address_shows_the_vietnamese_error_page(panel, browser):
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = await context.new_page()
        problems = watch(page)
        answer = await page.goto(f"{base}/bao-cao-khong-co")
        assert answer is not None and answer.status == 404
        assert await page.get_attribute("html", "lang") == "vi"
        assert await page.inner_text("#error-page h1") == "Không tìm thấy trang"
        assert "Trang này không tồn tại" in await page.inner_text("#error-page")
        assert (await page.title()).startswith("Không tìm thấy trang")
        await page.screenshot(path=ARTIFACTS / "error-404-vi.png")
        await page.click("#error-back")
        await page.wait_for_url(f"{base}/login")  # home, signed out: the sign-in page
        # the page's own 404 is the only problem the console saw (no script or CSP error)
        assert all("404" in p and "/bao-cao-khong-co" in p for p in problems), problems
    finally:
        await context.close()


async def _calls(ctx) -> None:  # type: ignore[no-untyped-def]
    """An earlier call the caller abandoned, and this one: menu key 1, then the long queue."""
    now = ctx.clock.now()
    for uid, started, path in (
        ("pbx-1795000000.3", now - timedelta(days=1), "1:agent"),
        (UID, now - timedelta(seconds=40), "1:agent > full:silence"),
    ):
        await queued_call(
            ctx.calls,
            uid,
            NUMBER,
            name="Lê Văn C",
            started=started,
            path=path,
            waited=timedelta(seconds=20),
        )
    await ctx.calls.caller_abandoned(uniqueid="pbx-1795000000.3", hold_seconds=95)


async def test_the_screen_pop_shows_menu_choices_and_outcomes_in_words(panel, browser):
    ctx = panel.ctx
    base = str(panel.client.make_url("")).rstrip("/")
    await _calls(ctx)
    presence = Presence(ctx.bus, ctx.calls, ctx.settings, ctx.clock)  # the pop alone
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/agent")
        await page.wait_for_selector("#ws-status[data-state=open]", timeout=10_000)
        await ctx.hub.ready.wait()

        await presence.on_called(
            event(
                "AgentCalled",
                Uniqueid=UID,
                Queue="t1022-morning",
                Interface="PJSIP/1001",
                MemberName="1001 Nguyễn Văn An",
                CallerIDNum=NUMBER,
                CallerIDName="Lê Văn C",
            )
        )
        await page.wait_for_selector(f"#pop .caller:has-text('{NUMBER}')", timeout=10_000)
        ivr = page.locator("#pop [data-f=ivr_path]")
        assert await ivr.inner_text() == (
            "Phản ánh, kiến nghị (phím 1) → Hàng chờ đã dài: không bấm phím"
        )
        earlier = await page.locator("#pop-calls li").all_inner_texts()
        assert len(earlier) == 1
        assert "Tổng đài 1022 · Gác máy khi đang chờ" in earlier[0], earlier
        assert "abandoned" not in earlier[0] and "1:agent" not in await ivr.inner_text()
        await page.screenshot(path=ARTIFACTS / "pop-words-vi.png")

        # English: the same pop, kept on the bus, comes back in the other language
        await page.click("button[name=language][value=en]")
        await page.wait_for_selector(f"#pop .caller:has-text('{NUMBER}')", timeout=10_000)
        assert (
            await ivr.inner_text()
            == "Report or request (key 1) → Queue already long: pressed no key"
        )
        earlier = await page.locator("#pop-calls li").all_inner_texts()
        assert "Abandoned while waiting" in earlier[0], earlier
        await page.screenshot(path=ARTIFACTS / "pop-words-en.png")
        assert not problems, problems
    finally:
        await context.close()

"""Two-step sign-in in Debian's Chromium (Playwright): a supervisor sets it up
on their account page (the QR code shows, the key is read off the page and
the code computed here, as their phone would), signs out, and signs in again
with their password and then a code.  Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts import totp
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_a_supervisor_sets_up_two_step_sign_in_and_signs_in_with_a_code(panel, browser):
    base = str(panel.client.make_url("")).rstrip("/")
    clock = panel.ctx.clock
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "sup")
        await page.goto(f"{base}/account")
        assert "Đang tắt" in await page.inner_text("#totp")
        await page.click("#totp button.primary")
        await page.wait_for_load_state("domcontentloaded")
        # the QR code is drawn (an SVG the browser decodes to its full size)
        qr = page.locator("img.totp-qr")
        assert await qr.evaluate("i => i.complete && i.naturalWidth > 0")
        secret = await page.inner_text("code.totp-secret")
        assert secret in await page.get_attribute("a.totp-uri", "href")  # type: ignore[operator]
        await page.screenshot(path=ARTIFACTS / "totp-enrol.png")
        await page.fill("#totp input[name=code]", totp.code_at(secret, clock.now()))
        await page.click("#totp button.primary")
        await page.wait_for_url(f"{base}/account")
        assert "Đang bật" in await page.inner_text("#totp")
        assert secret not in await page.content()

        await page.click("header form[action='/logout'] button")
        await page.wait_for_url(f"{base}/login")
        clock.advance(timedelta(seconds=totp.STEP_SECONDS))  # type: ignore[attr-defined]
        await sign_in(page, base, "sup")
        # the second step: no session yet, the code field instead
        assert await page.locator("input[name=code]").count() == 1
        assert "ứng dụng xác thực" in await page.inner_text("main")
        await page.screenshot(path=ARTIFACTS / "totp-code-step.png")
        await page.fill("input[name=code]", "000000")
        await page.click("button.primary")
        await page.wait_for_load_state("domcontentloaded")
        assert "Mã sai" in await page.inner_text("p.error")
        await page.fill("input[name=code]", totp.code_at(secret, clock.now()))
        await page.click("button.primary")
        await page.wait_for_url(f"{base}/tickets")
        # the wrong code's own 401 is the only problem the console saw
        assert all("401" in p and "/login/code" in p for p in problems), problems
    finally:
        await context.close()

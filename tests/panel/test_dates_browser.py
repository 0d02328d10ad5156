"""Date fields in a browser whose language is American English: still dd/mm/yyyy.

Chromium's own date picker follows the browser's language (mm/dd/yyyy in
en-US); the panel's date fields are typed and shown as Vietnamese dates in
every browser.  Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.browser import ARTIFACTS
from tests.panel.recorded import add_call
from tests.panel.test_replay_browser import sign_in


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_dates_are_typed_and_shown_dd_mm_yyyy_in_an_english_browser(panel, browser):
    ctx = panel.ctx
    tz = ctx.settings.tz
    started = datetime.now(UTC) - timedelta(days=10)
    old = await add_call(ctx, None, started=started)
    await add_call(ctx, None, started=datetime.now(UTC))
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(
        locale="en-US", timezone_id="America/New_York", viewport={"width": 1366, "height": 768}
    )
    page = await context.new_page()
    assert await page.evaluate("() => navigator.language") == "en-US"
    await sign_in(page, base, "sup")

    # the recordings filter: typed as dd/mm/yyyy, the list narrowed, shown back so
    day = started.astimezone(tz).strftime("%d/%m/%Y")
    await page.goto(f"{base}/recordings")
    field = page.locator("#rec-filters input[name=from]")
    assert await field.get_attribute("type") == "text"
    assert await field.get_attribute("placeholder") == "dd/mm/yyyy"
    await field.fill(day)
    await page.fill("#rec-filters input[name=to]", day)
    await page.click("#rec-filters button.primary")
    await page.wait_for_url("**/recordings?*")
    rows = await page.locator("tr[data-call]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.call))"
    )
    assert rows == [old.id]
    assert await page.input_value("#rec-filters input[name=from]") == day
    assert await page.input_value("#rec-filters input[name=to]") == day
    await page.screenshot(path=ARTIFACTS / "dates-1-recordings-en-US.png")

    # a date the browser's way (mm/dd/yyyy, a month 25) is refused by name
    await page.fill("#rec-filters input[name=from]", "11/25/2026")
    await page.click("#rec-filters button.primary")
    await page.wait_for_load_state("domcontentloaded")
    assert "25/11/2026" in await page.inner_text("#err-from")

    # the reports page offers today as dd/mm/yyyy and takes it back
    today = datetime.now(UTC).astimezone(tz).strftime("%d/%m/%Y")
    await page.goto(f"{base}/reports")
    assert await page.input_value("input[name=day]") == today
    await page.click("form[action='/reports/daily'] button.primary")
    await page.wait_for_url("**/reports/daily?*")
    assert (await page.title()).strip() != ""
    assert "err-day" not in await page.content()

    # the ticket list's dates too
    await page.goto(f"{base}/tickets?created_from=2026-11-25")
    assert await page.input_value("input[name=created_from]") == "25/11/2026"
    await page.screenshot(path=ARTIFACTS / "dates-2-tickets-en-US.png")
    await context.close()

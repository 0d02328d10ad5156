"""The report form in Debian's Chromium (Playwright), as a citizen on a phone fills it:
a report with a photo gets a tracking number and reaches the panel's new web reports;
junk input is answered next to its field; a bot (honeypot, too fast) and a flood are
refused; the map (vendored Leaflet) appears only with a tile server, here a local one;
the ALTCHA widget solves its proof of work.  No request leaves the machine."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tests.public.conftest import photo_bytes
from tickets.models import Attachment, Ticket

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def open_form(browser, report, path: str = "/report"):  # type: ignore[no-untyped-def]
    base = str(report.client.make_url("")).rstrip("/")
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    problems = watch(page)
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if urlsplit(r.url).hostname not in ("127.0.0.1", "localhost", None)
            and not r.url.startswith("data:")
            else None
        ),
    )
    await page.goto(base + path)
    return context, page, problems, outside


def unexpected(problems: list[str], *statuses: int) -> list[str]:
    """The console's problems, less the refusals the test asked for (the browser logs a
    page answered 4xx as an error)."""
    return [
        p for p in problems if not any(f"responded with a status of {s} " in p for s in statuses)
    ]


async def send(page) -> None:  # type: ignore[no-untyped-def]
    """Press "send" and wait for the answer's page."""
    async with page.expect_navigation():
        await page.click("button.send")


async def fill(page, **over: str) -> None:  # type: ignore[no-untyped-def]
    values = {
        "description": "Cây me tây đổ chắn ngang đường, xe máy không qua được.",
        "address": "45 Lê Lợi, phường Bến Thành",
        "phone": "0903 555 777",
        **over,
    }
    await page.select_option("#f-topic", "trees")
    for name, value in values.items():
        await page.fill(f"#f-{name}", value)


async def test_a_citizen_reports_with_a_photo_and_gets_a_tracking_number(
    make_report, browser, tmp_path
):
    report = await make_report(min_fill_seconds=1)
    photo = tmp_path / "cay-do.jpg"
    photo.write_bytes(photo_bytes(size=(800, 600)))
    context, page, problems, outside = await open_form(browser, report)
    try:
        assert await page.locator("#map").count() == 0  # no tile server: no map
        await fill(page)
        await page.select_option("#f-district", "q1")
        await page.set_input_files("#f-photo", str(photo))
        await page.check("input[name=publish_consent][value=yes]")
        await page.screenshot(path=ARTIFACTS / "report-form-phone.png", full_page=True)
        await asyncio.sleep(1.1)  # a person takes longer than min_fill_seconds
        await send(page)
        await page.wait_for_selector("#tracking-number")
        shown = await page.inner_text("#tracking-number")
        assert re.fullmatch(r"\d{3} \d{3} \d{3} \d", shown), shown
        text = await page.inner_text("main")
        assert "Hãy giữ mã số này" in text and "/status" in text
        await page.screenshot(path=ARTIFACTS / "report-done-phone.png", full_page=True)
        async with report.panel.ctx.db.session() as s:
            t = await s.scalar(select(Ticket).where(Ticket.number == shown.replace(" ", "")))
            photos = (await s.scalars(select(Attachment).where(Attachment.ticket_id == t.id))).all()
        assert t.channel == "web" and t.status == "new" and t.district == "q1"
        assert t.publish_consent is True and t.citizen_phone == "0903555777"
        assert [(p.content_type, p.width, p.height) for p in photos] == [("image/jpeg", 800, 600)]
        # the supervisor's list of new reports shows it
        panel_base = str(report.panel.client.make_url("")).rstrip("/")
        await sign_in(page, panel_base, "sup")
        await page.goto(f"{panel_base}/tickets?status=new")
        assert t.code in await page.content()
        assert problems == [] and outside == [], (problems, outside)
    finally:
        await context.close()


async def test_junk_input_is_answered_next_to_its_field(make_report, browser):
    report = await make_report(min_fill_seconds=0)
    context, page, problems, _ = await open_form(browser, report, "/report?lang=en")
    try:
        await fill(page, description="short", email="nobody-at-nowhere")
        await send(page)
        await page.wait_for_selector("#form-errors")
        summary = await page.inner_text("#form-errors")
        assert "What is the problem?: is too short (at least 10 characters)" in summary
        assert "Email: must be an email address" in summary
        assert await page.inner_text("#email-error") == "must be an email address"
        assert await page.get_attribute("#f-email", "aria-invalid") == "true"
        # what was typed is kept
        assert await page.input_value("#f-address") == "45 Lê Lợi, phường Bến Thành"
        assert await page.input_value("#f-topic") == "trees"
        await page.screenshot(path=ARTIFACTS / "report-errors-phone.png", full_page=True)
        async with report.panel.ctx.db.session() as s:
            assert (await s.scalars(select(Ticket))).all() == []
        assert unexpected(problems, 422) == [], problems
    finally:
        await context.close()


async def test_a_bot_and_a_flood_are_refused(make_report, browser):
    report = await make_report(min_fill_seconds=30, rate_limit=2)
    context, page, problems, _ = await open_form(browser, report, "/report?lang=en")
    try:
        # too fast: sent at once
        await fill(page)
        await send(page)
        await page.wait_for_selector("#form-errors")
        assert "sent too quickly" in await page.inner_text("#form-errors")
        # the honeypot, which only a program fills
        await fill(page)
        await page.evaluate("document.getElementById('f-website').value = 'http://x'")
        await send(page)
        await page.wait_for_selector("#form-errors")
        assert "filled in by a program" in await page.inner_text("#form-errors")
        # two tries spent: the third is refused for the address, clearly
        await send(page)
        await page.wait_for_selector("#rate-limited")
        assert "Too many reports were sent from your connection" in await page.inner_text(
            "#rate-limited"
        )
        async with report.panel.ctx.db.session() as s:
            assert (await s.scalars(select(Ticket))).all() == []
        assert unexpected(problems, 400, 429) == [], problems
    finally:
        await context.close()


async def test_the_map_from_a_local_tile_server_puts_a_pin(make_report, browser):
    report = await make_report(min_fill_seconds=0, tile_url="/tiles/{z}/{x}/{y}.png")
    context, page, problems, outside = await open_form(browser, report)
    try:
        await page.wait_for_selector("#map .leaflet-tile-loaded")
        assert report.tile_hits, "no tile asked for"
        assert await page.evaluate("typeof window.L") == "object"
        await fill(page, address="")
        box = await page.locator("#map").bounding_box()
        await page.mouse.click(box["x"] + box["width"] / 2 + 20, box["y"] + box["height"] / 2)
        await page.wait_for_selector(".leaflet-marker-icon")
        lat = float(await page.input_value("#f-latitude"))
        lng = float(await page.input_value("#f-longitude"))
        assert abs(lat - 10.7769) < 0.05 and abs(lng - 106.7009) < 0.05
        await page.screenshot(path=ARTIFACTS / "report-map-phone.png", full_page=True)
        await send(page)
        await page.wait_for_selector("#tracking-number")
        async with report.panel.ctx.db.session() as s:
            t = await s.scalar(select(Ticket))
        assert (t.latitude, t.longitude) == (lat, lng) and t.citizen_address is None
        assert problems == [] and outside == [], (problems, outside)
    finally:
        await context.close()


async def test_the_altcha_widget_solves_its_proof_of_work(make_report, browser):
    report = await make_report(min_fill_seconds=0, altcha=True, altcha_cost=50)
    context, page, problems, outside = await open_form(browser, report)
    try:
        # without solving it, the report is refused naming the check
        await fill(page)
        await send(page)
        await page.wait_for_selector("#altcha-error")
        # the widget's own drawing of a tick lies over its checkbox
        await page.click("altcha-widget input[type=checkbox]", force=True)
        await expect(page.locator("input[name=altcha]")).to_have_value(
            re.compile(".{20,}"), timeout=30_000
        )
        await send(page)
        await page.wait_for_selector("#tracking-number")
        assert unexpected(problems, 400) == [] and outside == [], (problems, outside)
    finally:
        await context.close()

"""The SMS desk in Debian's Chromium, with a real Kannel and the test SMSC:
a message arrives while the desk is open and shows without a reload by hand
(bus → WebSocket); the agent claims it, turns it into a ticket (the
citizen's phone receives the tracking code) and replies with diacritics,
seeing the parts counter say UCS-2 before sending."""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import watch
from tests.sms.conftest import PASSWORD, SmsLab, eventually, needs_kannel

pytestmark = [needs_kannel, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def _to(lab: SmsLab, number: str):  # type: ignore[no-untyped-def]
    async def sent():  # type: ignore[no-untyped-def]
        return [t for t in lab.smsc.messages() if t[1][0].destination == number]

    return sent


async def test_an_agent_claims_an_sms_makes_a_ticket_and_replies(sms_lab: SmsLab, browser) -> None:  # type: ignore[no-untyped-def]
    assert sms_lab.client is not None
    base = str(sms_lab.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = await context.new_page()
        problems = watch(page)
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", "smsdesk")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button.primary")
        await page.wait_for_load_state("domcontentloaded")
        await page.goto(f"{base}/messages")
        assert await page.locator("#no-messages").count() == 1
        await page.wait_for_function("window.hotlineSocket?.readyState === 1")
        # an SMS arrives while the desk is open: it shows by itself
        await sms_lab.smsc.deliver("0901234580", "1022", b"Cay do chan duong o hem 5")
        row = page.locator(".msg-row", has_text="Cay do chan duong o hem 5")
        await row.wait_for(timeout=15000)
        await page.screenshot(path=ARTIFACTS / "sms-desk.png")
        await row.locator("a.msg-open").click()
        await page.wait_for_load_state("domcontentloaded")
        await page.click("#form-claim button")
        await page.wait_for_load_state("domcontentloaded")
        assert await page.locator("#form-claim button").is_disabled()
        # the reply's parts, before sending
        await page.fill("#reply-text", "Cảm ơn bạn, chúng tôi đã chuyển phản ánh tới phường.")
        await page.locator("#reply-parts", has_text="UCS-2").wait_for(timeout=5000)
        assert "1 (UCS-2" in await page.inner_text("#reply-parts")
        await page.click("#form-reply button")
        await page.wait_for_load_state("domcontentloaded")
        [(text, parts)] = await eventually(_to(sms_lab, "0901234580"), what="the reply")
        assert text == "Cảm ơn bạn, chúng tôi đã chuyển phản ánh tới phường."
        assert parts[0].data_coding == 8
        # turn it into a ticket: the citizen's phone receives the code
        await page.click("#to-ticket summary")
        await page.select_option("select[name=level]", "2")
        await page.click("#form-ticket button.primary")
        await page.wait_for_url(f"{base}/tickets/*")
        await page.screenshot(path=ARTIFACTS / "sms-desk-ticket.png")

        async def code_sent():  # type: ignore[no-untyped-def]
            texts = [t for t, _p in await _to(sms_lab, "0901234580")()]
            return texts if len(texts) == 2 else None

        texts = await eventually(code_sent, what="the tracking code SMS")
        [msg] = [m for m in await sms_lab.messages_in() if m.citizen == "0901234580"]
        assert msg.state == "ticket" and msg.ticket_id is not None
        ticket = await sms_lab.ctx.ticket_queries.get(msg.ticket_id)
        # as the ticket's page shows it, once dashed
        assert f"Ma tra cuu: {ticket.code}." in texts[1] and "--" not in texts[1]
        assert problems == []
    finally:
        await context.close()

"""The email desk in Debian's Chromium, with a real Dovecot and SMTP server: a
mail arrives while the desk is open and shows by itself (IMAP IDLE → bus →
WebSocket); the agent opens it (its HTML shown made safe, its photo offered
as a download), claims it and replies; the reply reaches the SMTP server in
the citizen's thread."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.browser import ARTIFACTS
from tests.email.conftest import PASSWORD, MailLab, mail
from tests.email.servers import needs_dovecot
from tests.panel.test_words_browser import watch

pytestmark = [needs_dovecot, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


async def test_an_agent_answers_a_mail_from_the_email_desk(mail_lab: MailLab, browser) -> None:  # type: ignore[no-untyped-def]
    lab = mail_lab
    await lab.start_panel()
    assert lab.client is not None
    await lab.reader.start()
    base = str(lab.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = await context.new_page()
        problems = watch(page)
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", "maildesk")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button.primary")
        await page.wait_for_load_state("domcontentloaded")
        await page.goto(f"{base}/messages")
        await page.wait_for_function("window.hotlineSocket?.readyState === 1")
        buf = io.BytesIO()
        Image.new("RGB", (20, 20), (0, 120, 0)).save(buf, "JPEG")
        raw, mid = mail(
            subject="Đèn đường hỏng",
            text="Đèn đường trước số 12 hỏng ba ngày.",
            html="<p>Đèn đường trước số <b>12</b> hỏng.</p><script>document.title='x'</script>",
            attachments=[("den.jpg", "image/jpeg", buf.getvalue())],
        )
        lab.dovecot.deliver(raw)
        row = page.locator(".msg-row", has_text="Đèn đường hỏng")
        await row.wait_for(timeout=20000)
        await page.screenshot(path=ARTIFACTS / "email-desk.png")
        await row.locator("a.msg-open").click()
        await page.wait_for_load_state("domcontentloaded")
        assert await page.inner_text(".mail-html b") == "12"
        assert await page.locator(".mail-html script").count() == 0
        assert await page.title() != "x"
        assert await page.locator(".mail-files a", has_text="den.jpg").count() == 1
        await page.click("#form-claim button")
        await page.wait_for_load_state("domcontentloaded")
        await page.fill("#reply-text", "Cảm ơn anh, đội chiếu sáng sẽ sửa trong hôm nay.")
        await page.click("#form-reply button")
        await page.wait_for_load_state("domcontentloaded")
        await page.screenshot(path=ARTIFACTS / "email-desk-reply.png", full_page=True)
        [got] = await lab.smtp.wait_for(1)
        assert got.message["In-Reply-To"].strip() == mid
        assert got.message["Subject"] == "Re: Đèn đường hỏng"
        assert "đội chiếu sáng" in got.message.get_content()
        assert problems == []
    finally:
        await context.close()

"""The review in Debian's Chromium (Playwright): a supervisor sends an agency's answer
back and the officer sees it back with the reason; the officer attaches a PDF (printed
by Chromium itself) and the agent downloads it; a program renamed .pdf is refused next
to the field.  No Asterisk; screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tickets.models import Status

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

REASON = "Câu trả lời chưa nêu ngày hoàn thành nạo vét và chưa có ảnh hiện trường"
EXE = b"MZ\x90\x00\x03" + b"\x00" * 59 + b"This program cannot be run in DOS mode.\r\r\n$" * 20


async def test_a_refused_answer_goes_back_and_a_pdf_goes_to_the_agent(panel, browser):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent1"])
    officer = Actor.of(panel.users["officer_q1"])
    ticket = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909000222",
            "domain": "state",
            "topic": "water",
            "level": 2,
            "description": "Cống nghẹt đầu hẻm 12, nước tràn lên đường",
            "agency_id": panel.agency_ids["q1"],
        },
    )
    ticket = await ctx.tickets.answer(officer, ticket.id, ticket.version, "Đã xử lý")
    base = str(panel.client.make_url("")).rstrip("/")

    # the supervisor sends the answer back
    sup_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await sup_ctx.new_page()
        problems = watch(page)
        await sign_in(page, base, "sup")
        await page.goto(f"{base}/tickets/{ticket.code}")
        form = page.locator("#action-refuse_answer")
        assert await form.is_visible()
        await form.locator("button").click()  # no reason: refused by the field
        await page.wait_for_selector("#err-reason")
        assert await page.inner_text("#err-reason") == "là bắt buộc"
        await page.fill("#action-refuse_answer textarea[name=reason]", REASON)
        await page.locator("#action-refuse_answer button").click()
        await page.wait_for_load_state("domcontentloaded")
        assert page.url.endswith(f"/tickets/{ticket.code}")
        assert "Đơn vị đã tiếp nhận" in await page.inner_text("h1")
        history = await page.inner_text(".history-log .log")
        assert REASON in history and "Đã xử lý" in history, "the answer stays in the history"
        await page.screenshot(path=ARTIFACTS / "review-refused.png")
        assert [p for p in problems if "422" not in p] == [] and len(problems) == 1
    finally:
        await sup_ctx.close()
    assert (await ctx.ticket_queries.get(ticket.id)).status == Status.ACCEPTED

    # a PDF printed by Chromium: a real producer's document
    printer = await browser.new_context()
    try:
        p = await printer.new_page()
        await p.set_content("<h1>Biên bản nghiệm thu nạo vét cống hẻm 12</h1>")
        pdf = await p.pdf()
    finally:
        await printer.close()
    assert pdf.startswith(b"%PDF-")

    # the officer sees it back with the reason, attaches the PDF
    off_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await off_ctx.new_page()
        problems = watch(page)
        await sign_in(page, base, "officer_q1")
        await page.goto(f"{base}/tickets/{ticket.code}")
        assert await page.inner_text("#refusal-reason") == REASON
        assert await page.locator("#action-answer").is_visible(), "to answer again"
        # a program renamed .pdf: refused, said next to the file field
        await page.set_input_files(
            "#action-attach input[name=attachment]",
            files=[{"name": "hoa-don.pdf", "mimeType": "application/pdf", "buffer": EXE}],
        )
        await page.locator("#action-attach button").click()
        await page.wait_for_selector("#err-attachment")
        assert "PDF" in await page.inner_text("#err-attachment")
        await page.set_input_files(
            "#action-attach input[name=attachment]",
            files=[{"name": "bien-ban.pdf", "mimeType": "application/pdf", "buffer": pdf}],
        )
        await page.locator("#action-attach button").click()
        await page.wait_for_selector("#ticket-attachments a.document")
        assert "bien-ban.pdf" in await page.inner_text("#ticket-attachments")
        await page.screenshot(path=ARTIFACTS / "review-officer.png")
        assert [x for x in problems if "422" not in x] == []
    finally:
        await off_ctx.close()

    # the agent downloads it
    agent_ctx = await browser.new_context(accept_downloads=True)
    try:
        page = await agent_ctx.new_page()
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/tickets/{ticket.code}")
        async with page.expect_download() as info:
            await page.locator("#ticket-attachments a.document").click()
        download = await info.value
        assert download.suggested_filename.endswith(".pdf")
        path = await download.path()
        assert path is not None
        with open(path, "rb") as f:
            assert f.read() == pdf
    finally:
        await agent_ctx.close()
    [a] = await ctx.ticket_queries.attachments(ticket.id)
    assert a.added_by == officer.id and a.content_type == "application/pdf"

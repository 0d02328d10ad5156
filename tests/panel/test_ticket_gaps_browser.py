"""The ticket page's changes in Debian's Chromium (Playwright), on both databases: a
supervisor gives a co-handling agency its own deadline (one after the lead's is refused,
said next to its row); the agency's officer reads no file of a citizen who did not agree
to be known to it, but the files staff attached; and once the supervisors close the
ticket, the co-handling agency reads that its part ended with it, and why.  No Asterisk;
screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image

from accounts.identity import Actor
from public.report import WEB_FORM
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tickets.attachments import check_file, check_photo
from tickets.handling.models import State
from tickets.models import Status

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def image(fmt: str, colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format=fmt)
    return buf.getvalue()


async def test_co_agency_deadline_files_kept_from_the_agency_and_a_part_closed_with_it(
    panel, browser
):
    ctx = panel.ctx
    root, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    s = ctx.settings
    photo = check_photo(
        image("PNG", (200, 30, 30)),
        max_bytes=s.web_report.photo_max_bytes,
        max_pixels=s.web_report.photo_max_pixels,
    )
    ticket = await ctx.tickets.create(
        WEB_FORM,
        {
            "channel": "web",
            "citizen_name": "Võ Văn Tám",
            "citizen_phone": "0987654321",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Nước ngập ngang gối ở hẻm 15",
            "identity_consent": False,
        },
        attachments=[photo],
    )
    [citizens] = await ctx.ticket_queries.attachments(ticket.id)
    # the agent who took it attaches a document of the hotline's
    staff_pdf = check_file(
        image("PDF", (30, 30, 200)),
        allowed=s.tickets.attachment_types,
        max_bytes=s.tickets.attachment_max_bytes,
        max_pixels=s.tickets.attachment_max_pixels,
        original_name="bien-ban-tiep-nhan.pdf",
    )
    [staffs] = await ctx.review.attach(Actor.of(panel.users["agent1"]), ticket.id, [staff_pdf])
    base = str(panel.client.make_url("")).rstrip("/")
    tz = s.tz
    lead_deadline = ctx.clock.now() + timedelta(hours=s.tickets.deadline(2))
    own = (ctx.clock.now() + timedelta(hours=30)).astimezone(tz).replace(second=0, microsecond=0)

    sup_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    q1_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        # the supervisor forwards to so-gtvt with q1 co-handling, a deadline past the lead's
        page = await sup_ctx.new_page()
        problems = watch(page)
        await sign_in(page, base, "sup")
        await page.goto(f"{base}/tickets/{ticket.code}")
        form = page.locator("#action-forward")
        await form.locator("select[name=agency_id]").select_option(str(root))
        rows = form.locator(".co-row")
        assert await rows.count() == 3  # no co-handling agency yet: three empty rows
        first = rows.nth(0)
        await first.locator("select[name=co_agency_ids]").select_option(str(q1))
        await first.locator("input[name=co_deadline]").fill("01/01/2099 10:00")
        await form.locator("button.primary").click()
        error = page.locator(f"#action-forward [id='err-co_deadlines.{q1}']")
        await error.wait_for()
        said = await error.inner_text()
        lead_local = lead_deadline.astimezone(tz).strftime("%d/%m/%Y %H:%M")
        assert said == f"phải không muộn hơn hạn của đơn vị chủ trì ({lead_local})", said
        # what was typed is kept in its row, nothing was forwarded
        first = page.locator("#action-forward .co-row").nth(0)
        assert await first.locator("select[name=co_agency_ids]").input_value() == str(q1)
        assert await first.locator("input[name=co_deadline]").input_value() == "01/01/2099 10:00"
        assert (await ctx.ticket_queries.get(ticket.id)).status == Status.NEW

        await first.locator("input[name=co_deadline]").fill(own.strftime("%d/%m/%Y %H:%M"))
        await page.locator("#action-forward select[name=agency_id]").select_option(str(root))
        async with page.expect_navigation():
            await page.locator("#action-forward button.primary").click()
        [part] = await ctx.handling.parts(ticket.id)
        assert (part.agency_id, part.deadline_at) == (q1, own)
        co = page.locator(f"li.part[data-part='{part.id}']")
        assert own.strftime("%d/%m/%Y %H:%M") in await co.inner_text()
        await page.screenshot(path=ARTIFACTS / "gaps-co-agency-deadline.png")
        assert [p for p in problems if "422" not in p] == []

        # q1's officer: the hotline's document, not the citizen's photo, and why
        q1_page = await q1_ctx.new_page()
        q1_problems = watch(q1_page)
        await sign_in(q1_page, base, "officer_q1")
        await q1_page.goto(f"{base}/tickets/{ticket.code}")
        files = q1_page.locator("#ticket-attachments a.attachment")
        assert await files.count() == 1
        assert "bien-ban-tiep-nhan.pdf" in await files.first.inner_text()
        assert await q1_page.locator(f"img[src*='{citizens.id}']").count() == 0
        kept = await q1_page.inner_text("#attachments-kept")
        assert "1" in kept and "không đồng ý" in kept
        assert staffs.id in (await files.first.get_attribute("href") or "")
        await q1_page.screenshot(path=ARTIFACTS / "gaps-files-kept-from-agency.png")
        assert q1_problems == []

        # the lead sends it back, the supervisors close it: q1's part ends with it
        ticket = await ctx.ticket_queries.get(ticket.id)
        ticket = await ctx.tickets.send_back(
            Actor.of(panel.users["officer"]), ticket.id, ticket.version, "Không thuộc thẩm quyền"
        )
        await page.goto(f"{base}/tickets/{ticket.code}")
        await page.fill("#action-close textarea[name=note]", "Đã chuyển cho UBND phường xử lý")
        async with page.expect_navigation():
            await page.locator("#action-close button").click()
        [part] = await ctx.handling.parts(ticket.id)
        assert part.status == State.CLOSED
        await q1_page.goto(f"{base}/tickets/{ticket.code}")
        item = await q1_page.inner_text(f"li.part[data-part='{part.id}']")
        assert "Kết thúc cùng phiếu" in item and "Đã chuyển cho UBND phường xử lý" in item
        assert await q1_page.locator(f"li.part[data-part='{part.id}'] form").count() == 0
        history = await q1_page.inner_text(".history-log .log")
        assert "Phần việc của các cơ quan kết thúc cùng phiếu" in history
        await q1_page.screenshot(path=ARTIFACTS / "gaps-part-closed-with-ticket.png")
        assert q1_problems == []
    finally:
        await sup_ctx.close()
        await q1_ctx.close()

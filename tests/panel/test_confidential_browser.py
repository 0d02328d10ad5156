"""The oversight role in Debian's Chromium (Playwright): the Inspection Committee's account
reads a restricted report, the audit page then shows that reading, and the page offers
it nothing to do.  An agency officer of the cleared office reads a pseudonym in place of
the citizen.  No Asterisk; screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tickets.confidential import pseudonym

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def test_the_oversight_role_reads_a_restricted_report_and_the_audit_shows_it(panel, browser):
    ctx = panel.ctx
    ticket = await ctx.tickets.create(
        Actor.of(panel.users["agent1"]),
        {
            "channel": "phone",
            "domain": "party",
            "topic": "corruption",
            "level": 2,
            "citizen_name": "Võ Thị Kín",
            "citizen_phone": "0912 345 678",
            "description": "Tố cáo cán bộ phường nhận tiền để cấp phép",
            "agency_id": panel.agency_ids["so-gtvt"],
        },
    )
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "inspector")
        # the ticket list, where the restricted report is
        await page.goto(f"{base}/tickets")
        await page.click(f'a[href="/tickets/{ticket.code}"]')
        await page.wait_for_selector("#ticket-confidential")
        assert "Tố cáo cán bộ phường" in await page.inner_text("main")
        assert "Võ Thị Kín" in await page.inner_text("main")  # the hotline's side sees it
        assert "Hạn chế" in await page.inner_text("#ticket-confidential")
        # nothing to do here: no workflow button, no comment, no edit
        assert await page.locator("form.action").count() == 0
        await page.screenshot(path=ARTIFACTS / "oversight-ticket.png", full_page=True)

        await page.click("#nav-ticket-audit")
        await page.wait_for_selector("#ticket-views")
        row = page.locator(f'#ticket-views tr[data-ticket="{ticket.code}"][data-how="page"]')
        assert await row.count() >= 1
        assert "Inspector" in await row.first.inner_text()
        await page.screenshot(path=ARTIFACTS / "oversight-audit.png", full_page=True)
        assert problems == []

        # a write it tries anyway (a form posted by hand) is refused
        answer = await page.request.post(
            f"{base}/tickets/{ticket.code}/comment",
            form={
                "note": "x",
                "_csrf": await page.get_attribute("meta[name=csrf-token]", "content"),
            },
        )
        assert answer.status == 403
        assert [e.action for e in await ctx.ticket_queries.history(ticket.id)] == ["created"]

        # the cleared office's officer reads the report under a pseudonym
        officer = await browser.new_context(viewport={"width": 1366, "height": 900})
        try:
            p2 = await officer.new_page()
            await sign_in(p2, base, "officer")
            await p2.goto(f"{base}/tickets/{ticket.code}")
            main = await p2.inner_text("main")
            assert pseudonym(ticket.id) in main
            assert "Võ Thị Kín" not in main and "345 678" not in main and "345678" not in main
        finally:
            await officer.close()
    finally:
        await context.close()

"""Delegation down the tree in Debian's Chromium (Playwright): an officer of the lead
agency delegates a ticket to a sub-agency (a deadline beyond its own is refused, said by
the field), the sub-agency's officer accepts and answers it, and the lead's officer
accepts that answer, which answers the ticket.  No Asterisk; screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import pytest

from accounts.identity import Actor
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch
from tickets.handling.models import State
from tickets.models import Status

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def test_an_officer_delegates_to_a_sub_agency_which_answers_and_the_lead_accepts(
    panel, browser
):
    ctx = panel.ctx
    root, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    ticket = await ctx.tickets.create(
        Actor.of(panel.users["agent1"]),
        {
            "channel": "phone",
            "citizen_name": "Lê Thị Hoa",
            "citizen_phone": "0901234567",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Cống hẻm 42 bị nghẹt, nước tràn vào nhà",
        },
    )
    ticket = await ctx.tickets.forward(Actor.of(panel.users["sup"]), ticket.id, 1, root)
    base = str(panel.client.make_url("")).rstrip("/")
    lead = await browser.new_context(viewport={"width": 1366, "height": 900})
    sub = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await lead.new_page()
        problems = watch(page)
        await sign_in(page, base, "officer")
        await page.goto(f"{base}/tickets/{ticket.code}")
        form = page.locator("#part-lead-delegate")
        assert await form.is_visible()
        # the sub-agencies offered are the lead's: q1 only
        offered = await form.locator("select[name=agency_id] option").all_inner_texts()
        assert offered[1:] == ["UBND Quận 1"]

        # a deadline beyond the lead's own: refused, said next to the field
        await form.locator("select[name=agency_id]").select_option(str(q1))
        await form.locator("input[name=deadline_at]").fill("01/01/2099 10:00")
        await form.locator("button").click()
        await page.wait_for_selector("#part-lead-delegate #err-deadline_at")
        said = await page.inner_text("#part-lead-delegate #err-deadline_at")
        assert said.startswith("phải") and "/" in said, said  # names the lead's deadline
        assert await ctx.handling.parts(ticket.id) == []

        form = page.locator("#part-lead-delegate")
        await form.locator("select[name=agency_id]").select_option(str(q1))
        await form.locator("input[name=note]").fill("Phường kiểm tra thực tế")
        await form.locator("button").click()
        await page.wait_for_load_state("domcontentloaded")
        assert page.url.endswith(f"/tickets/{ticket.code}")
        [part] = await ctx.handling.parts(ticket.id)
        assert (part.agency_id, part.status) == (q1, State.FORWARDED)
        item = page.locator(f"li.part[data-part='{part.id}']")
        assert "UBND Quận 1" in await item.inner_text()
        # the lead may take it back, not answer it
        assert await page.locator(f"#part-{part.id}-withdraw").count() == 1
        assert await page.locator(f"#part-{part.id}-answer").count() == 0

        # the sub-agency's officer: sees it in the inbox, accepts, answers
        subpage = await sub.new_page()
        sub_problems = watch(subpage)
        await sign_in(subpage, base, "officer_q1")
        await subpage.goto(f"{base}/inbox")
        assert ticket.code in await subpage.inner_text("#inbox")
        await subpage.click(f"#inbox a:text('{ticket.code}')")
        await subpage.wait_for_selector(f"#part-{part.id}-accept")
        # the ticket's own moves are the lead's: none for the sub-agency
        assert await subpage.locator("#action-answer").count() == 0
        await subpage.locator(f"#part-{part.id}-accept button").click()
        await subpage.wait_for_selector(f"#part-{part.id}-answer")
        answer = "Phường đã nạo vét cống hẻm 42 ngày 07/12"
        await subpage.fill(f"#part-{part.id}-answer textarea[name=result]", answer)
        await subpage.locator(f"#part-{part.id}-answer button").click()
        await subpage.wait_for_load_state("domcontentloaded")
        assert answer in await subpage.inner_text(f"li.part[data-part='{part.id}']")
        await subpage.screenshot(path=ARTIFACTS / "handling-sub-agency-answered.png")

        # the lead accepts the sub-agency's answer: the ticket is answered with it
        await page.goto(f"{base}/tickets/{ticket.code}")
        adopt = page.locator(f"#part-{part.id}-adopt")
        assert await adopt.locator("textarea[name=result]").input_value() == answer
        await adopt.locator("button").click()
        await page.wait_for_load_state("domcontentloaded")
        assert "Đơn vị đã trả lời" in await page.inner_text("h1")
        history = await page.inner_text(".history-log .log")
        assert "UBND Quận 1" in history
        await page.screenshot(path=ARTIFACTS / "handling-lead-adopted.png")
        assert [p for p in problems if "422" not in p] == [] and len(problems) == 1
        assert sub_problems == []
    finally:
        await lead.close()
        await sub.close()

    t = await ctx.ticket_queries.get(ticket.id)
    assert t.status == Status.ANSWERED and t.result == answer
    [part] = await ctx.handling.parts(ticket.id)
    assert part.status == State.ADOPTED
    actions = [e.action for e in await ctx.ticket_queries.history(ticket.id)]
    assert actions[-4:] == ["delegated", "part_accepted", "part_answered", "answered"]

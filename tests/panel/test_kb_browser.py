"""An agent on a call finds a procedure from the workspace and closes a level-1 ticket
with it, in Debian's Chromium (Playwright).

The pop is built by the real ``Presence`` from a real call record and the queue events
tests/panel/test_presence.py feeds (no Asterisk), as in test_wrapup_browser.py.  The
search never reloads the page: the pop, its timer and the form stay as they were while
the agent types (without accents), reads the article and uses it.  Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.identity import SYSTEM, Actor
from callcenter.presence import Presence
from tests.browser import ARTIFACTS
from tests.helpers import queued_call
from tests.panel.test_presence import event
from tests.panel.test_words_browser import sign_in, watch
from tickets.kb.starter import ARTICLES
from tickets.queries import TicketFilter

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NUMBER = "0909555333"
UID = "pbx-1795345111.12"


async def place(page, element_id: str) -> list[float]:  # type: ignore[no-untyped-def]
    """Where an element is on the page (not in the window: the browser scrolls to what
    it clicks)."""
    return await page.evaluate(
        "(id) => { const r = document.getElementById(id).getBoundingClientRect();"
        " return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }",
        element_id,
    )


async def test_an_agent_on_a_call_finds_a_procedure_and_closes_a_level_1_ticket(panel, browser):
    ctx = panel.ctx
    await ctx.kb.load_examples(Actor.of(panel.users["admin"]), ARTICLES)
    base = str(panel.client.make_url("")).rstrip("/")
    now = ctx.clock.now()
    await queued_call(ctx.calls, UID, NUMBER, started=now - timedelta(seconds=40), path="1:agent")
    presence = Presence(ctx.bus, ctx.calls, ctx.settings, ctx.clock)
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.goto(f"{base}/agent")
        await page.wait_for_selector("#ws-status[data-state=open]", timeout=10_000)
        await ctx.hub.ready.wait()
        common = {"Uniqueid": UID, "Queue": "t1022-morning", "Interface": "PJSIP/1001"}
        await presence.on_called(event("AgentCalled", **common, CallerIDNum=NUMBER))
        await ctx.calls.agent_connected(
            uniqueid=UID,
            queue="t1022-morning",
            interface="PJSIP/1001",
            member_name=None,
            hold_seconds=5,
            at=now,
            recording_base=None,
        )
        await presence.on_connect(event("AgentConnect", **common))
        await page.wait_for_selector(f"#pop .caller:has-text('{NUMBER}')", timeout=10_000)
        await page.wait_for_function(
            "document.getElementById('f-call_id').value !== ''", timeout=10_000
        )
        navigations: list[str] = []
        page.on("framenavigated", lambda f: navigations.append(f.url))
        pop_box = await place(page, "pop")
        form_box = await place(page, "ticket-form")

        # typed as the citizen says it, without accents
        await page.fill("#kb-q", "lam giay khai sinh cho con")
        first = page.locator("#kb-hits li button.kb-hit").first
        await first.wait_for(timeout=10_000)
        titles = await page.locator("#kb-hits li button.kb-hit").all_inner_texts()
        assert titles[0] == "Đăng ký khai sinh", titles
        assert "Ví dụ" in await page.inner_text("#kb-hits li:first-child")
        await first.click()
        detail = page.locator("#kb-detail")
        await detail.wait_for(state="visible", timeout=10_000)
        assert "Giấy chứng sinh" in await detail.inner_text()
        await page.screenshot(path=ARTIFACTS / "kb-workspace-article.png")
        await page.click("#kb-use")
        assert await page.is_visible("#f-kb-chosen")
        assert await page.inner_text("#f-kb-title") == "Đăng ký khai sinh"
        assert await page.is_checked("#ticket-form input[name=level][value='1']")
        guidance = await page.input_value("#ticket-form textarea[name=guidance]")
        assert guidance.startswith("Đăng ký khai sinh\n")

        # the call on screen was never disturbed: same page, same pop, same place
        assert navigations == []
        assert await page.inner_text("#pop .caller") == NUMBER
        assert await place(page, "pop") == pop_box
        # the form is where it was (its height follows what "Use" filled in)
        assert (await place(page, "ticket-form"))[:3] == form_box[:3]
        timer = await page.inner_text("#pop-timer")
        assert timer

        await page.select_option("#ticket-form select[name=topic]", "traffic")
        await page.fill(
            "#ticket-form textarea[name=description]", "Hỏi thủ tục làm giấy khai sinh cho con"
        )
        await page.click("#f-save")
        await page.wait_for_selector(".flash", timeout=10_000)
        assert page.url.endswith("/agent")
        rows, _total = await ctx.ticket_queries.search(
            TicketFilter(), actor=SYSTEM, page=1, per_page=5
        )
        assert len(rows) == 1
        t = rows[0]
        article = (await ctx.kb.search("dang ky khai sinh", record=False)).hits[0].article
        assert (t.level, t.status, t.kb_article_id, t.kb_article_version) == (
            1,
            "closed",
            article.id,
            article.version,
        )
        call = await ctx.calls.get(UID)
        assert t.call_id == call.id and t.citizen_phone == NUMBER
        assert t.guidance.startswith("Đăng ký khai sinh")
        assert (await ctx.kb.get(article.id)).uses == 1
        await page.screenshot(path=ARTIFACTS / "kb-workspace-saved.png")
        assert not problems, problems
    finally:
        await context.close()

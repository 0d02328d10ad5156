"""The agent never misses the next call: real calls through the real Asterisk, in Chromium.

An agent saves a ticket from a live call (Ctrl+Enter, sent as a real key event
through Chromium's DevTools protocol) and is back on the workspace; the pop
names the ticket and a second ticket on the same call is refused until
confirmed.  The agent opens the ticket's page; the next call rings while they
are there, and shows on that page too, with the way back to the workspace,
where its pop and a form linked to it wait.  Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

import random
import re

import pytest

from accounts.identity import SYSTEM, Actor
from hotline.app import Application
from tests.browser import ARTIFACTS
from tests.lab import Lab
from tests.panel.test_keys_browser import press
from tests.panel.test_panel_browser import PASSWORD, on_duty, sign_in
from tickets.queries import TicketFilter

pytestmark = pytest.mark.asterisk


def a_number() -> str:
    return "09" + "".join(random.choices("0123456789", k=8))


async def fill_ticket(page, description: str) -> None:  # type: ignore[no-untyped-def]
    await page.select_option("select[name=topic]", "flooding")
    await page.check("input[name=level][value='2']")
    await page.fill("textarea[name=description]", description)


async def test_the_next_call_pops_while_the_agent_reads_the_saved_ticket(
    carrier: Lab, app: Application, browser
):
    ctx = app.panel
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    extensions = on_duty(carrier)
    mine, others = extensions[0], extensions[1:]
    suffix = random.randrange(10**6)
    admin = Actor.of(
        await ctx.accounts.create_user(
            None,
            {
                "username": f"adm{suffix}",
                "display_name": "Admin",
                "role": "admin",
                "password": PASSWORD,
            },
        )
    )
    # one account per extension, and the lab's database lives for the session: an
    # account an earlier test made is taken over, one made here is given back at the end
    agent = await ctx.accounts.by_extension(mine)
    made = agent is None
    if agent is None:
        agent = await ctx.accounts.create_user(
            admin,
            {
                "username": f"agent{suffix}",
                "display_name": "Điện thoại viên 2",
                "role": "agent",
                "extension": mine,
                "password": PASSWORD,
            },
        )
    else:
        await ctx.accounts.update_user(admin, agent.id, {"language": "vi", "active": True})
        await ctx.accounts.set_password(None, agent.id, PASSWORD)
    for ext in others:  # only our agent takes calls
        await ctx.control.pause(ext, "training")
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = await context.new_page()
        await sign_in(page, base, agent.username)
        await page.wait_for_selector("#ws-status[data-state=open]", state="attached")
        cdp = await context.new_cdp_session(page)

        first = a_number()
        # the caller hangs up 25 s after the menu key: the second call then reaches the agent
        await carrier.carrier.call("1022", caller_id=f'"Tran Thi B" <{first}>', digits="1", hold=25)
        await page.wait_for_selector(f"#pop.talking .caller:has-text('{first}')", timeout=30_000)
        shown = await page.inner_text("#pop-timer")
        assert re.fullmatch(r"\d+:\d\d", shown), shown
        await page.wait_for_function(
            "(t) => document.querySelector('#pop-timer').textContent !== t", arg=shown
        )
        call_id = int(await page.input_value("#f-call_id"))

        await fill_ticket(page, "Ngập sâu 30 cm ở hẻm 5, nước không rút.")
        await page.focus("textarea[name=description]")
        async with page.expect_navigation():
            await press(cdp, "Ctrl+Enter")
        assert page.url == f"{base}/agent"
        (ticket,), _ = await ctx.ticket_queries.search(TicketFilter(call_id=call_id), actor=SYSTEM)
        assert ticket.code in await page.inner_text(".flash")
        await page.wait_for_selector(f"#pop-call-tickets a:has-text('{ticket.code}')")
        assert ticket.code in await page.inner_text("#callbar-tickets")
        # the form is still linked to the call, and says it has a ticket already
        assert int(await page.input_value("#f-call_id")) == call_id
        assert ticket.code in await page.inner_text("#f-second")
        await page.screenshot(path=ARTIFACTS / "agent-saved-pop-names-ticket.png")

        # a second ticket on the same call, not confirmed: refused, nothing saved
        await fill_ticket(page, "Ngập sâu 30 cm ở hẻm 5 (lần hai).")
        async with page.expect_navigation():
            await page.click("#ticket-form button.primary")
        await page.wait_for_selector("#f-second:not([hidden])")
        assert ticket.code in await page.inner_text("#ticket-form")
        assert (await ctx.ticket_queries.search(TicketFilter(call_id=call_id), actor=SYSTEM))[
            1
        ] == 1
        await page.screenshot(path=ARTIFACTS / "agent-second-ticket-asked.png")

        # reading the ticket when the next call comes: it shows there
        await page.click(f"#pop-call-tickets a:has-text('{ticket.code}')")
        await page.wait_for_url(f"{base}/tickets/{ticket.code}")
        await page.wait_for_selector("#callbar[data-state=open]")
        second = a_number()
        await carrier.carrier.call("1022", caller_id=f'"Le Van C" <{second}>', digits="1", hold=30)
        await page.wait_for_selector(
            f"#callbar:is(.ringing, .talking) #callbar-caller:has-text('{second}')",
            timeout=45_000,
        )
        assert page.url == f"{base}/tickets/{ticket.code}", "the page the agent reads stays"
        await page.screenshot(path=ARTIFACTS / "agent-next-call-on-ticket-page.png")
        await page.click("#callbar-open")
        await page.wait_for_selector(f"#pop .caller:has-text('{second}')", timeout=5_000)
        new_call = int(await page.input_value("#f-call_id"))
        assert new_call != call_id
        assert await page.input_value("#f-citizen_phone") == second
        assert await page.is_hidden("#f-second"), "a new call has no ticket yet"
    finally:
        await context.close()
        for ext in extensions:
            await ctx.control.resume(ext)
        if made:
            await ctx.accounts.update_user(admin, agent.id, {"role": "supervisor", "active": False})

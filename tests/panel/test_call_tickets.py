"""The tickets made on the call an agent has on screen, on a real panel (Redis, SQLite and
PostgreSQL).

The pop is put on the bus by the real :class:`Presence`; the ticket form is posted as
the workspace posts it.  After a save the agent is back on the workspace, where the
next call pops; the pop names the ticket, and a second ticket on the same call is
refused until the agent confirms it.  (The same in Chromium, over real calls:
tests/panel/test_agent_calls_browser.py.)
"""

from __future__ import annotations

import re

from accounts.identity import SYSTEM
from callcenter.presence import Presence
from hotline.app import ticket_history
from tests.panel.conftest import waiting_call
from tests.panel.test_callback_pop import hello, listening, stop_listening
from tests.panel.test_overflow_panel import post
from tests.panel.test_presence import event
from tickets.queries import TicketFilter

NUMBER = "0908777666"
UID = "pbx-1795345000.7"

TICKET = {
    "from": "agent",
    "channel": "phone",
    "domain": "state",
    "topic": "flooding",
    "level": "2",
    "description": "Ngập sâu sau mưa ở hẻm 12",
}


async def ring(ctx) -> Presence:
    """A call from NUMBER in the queue, ringing agent1's phone (1001)."""
    await ctx.calls.sync_directory()
    await waiting_call(ctx, UID, NUMBER, 1)
    presence = Presence(
        ctx.bus, ctx.calls, ctx.settings, ctx.clock, history=ticket_history(ctx.ticket_queries)
    )
    await presence.on_called(
        event(
            "AgentCalled",
            Uniqueid=UID,
            Queue="t1022-morning",
            Interface="PJSIP/1001",
            MemberName="1001 Nguyễn Văn An",
            CallerIDNum=NUMBER,
        )
    )
    return presence


async def test_a_saved_ticket_is_named_on_the_pop_and_a_second_one_needs_a_yes(panel):
    ctx = panel.ctx
    presence = await ring(ctx)
    csrf = await panel.login("agent1")
    first_hello = await hello(panel)
    pop = first_hello["pop"]
    assert pop["uniqueid"] == UID and isinstance(pop["call_id"], int)
    assert pop["call_tickets"] == []
    assert abs(first_hello["now"] - ctx.clock.now().timestamp()) < 1, "the server's clock"
    call_id = str(pop["call_id"])

    listener, task = await listening(ctx, "agent.1001")
    try:
        r = await post(panel, "/tickets", csrf, call_id=call_id, **TICKET)
        assert r.status == 303, await r.text()
        assert r.headers["Location"] == "/agent", "back where the next call pops"
        (first,), _ = await ctx.ticket_queries.search(
            TicketFilter(call_id=int(call_id)), actor=SYSTEM
        )
        page = await (await panel.client.get("/agent")).text()
        assert first.code in page, "the flash names the new ticket"
        # every page of the agent hears of it, and a page opened later reads it
        told = await listener.next("call_tickets")
        assert told["call_id"] == int(call_id)
        assert [t["code"] for t in told["tickets"]] == [first.code]
        assert [t["code"] for t in (await hello(panel))["pop"]["call_tickets"]] == [first.code]

        # the call ends; the pop stays for the ticket and still names it
        await presence.on_complete(event("AgentComplete", Uniqueid=UID, Interface="PJSIP/1001"))
        ended = (await hello(panel))["pop"]
        assert ended["phase"] == "ended"
        assert [t["code"] for t in ended["call_tickets"]] == [first.code]

        # a second ticket on the same call: refused until confirmed, whatever the page does
        r = await post(panel, "/tickets", csrf, call_id=call_id, **TICKET)
        assert r.status == 422
        body = await r.text()
        assert f"đã có phiếu {first.code}" in body, "the server's message names the ticket"
        assert re.search(r'<p class="second-ticket" id="f-second"\s*>', body), "the box shows"
        assert (await ctx.ticket_queries.search(TicketFilter(call_id=int(call_id)), actor=SYSTEM))[
            1
        ] == 1

        r = await post(panel, "/tickets", csrf, call_id=call_id, second_for_call="1", **TICKET)
        assert r.status == 303 and r.headers["Location"] == "/agent"
        rows, total = await ctx.ticket_queries.search(
            TicketFilter(call_id=int(call_id)), actor=SYSTEM
        )
        assert total == 2
        told = await listener.next("call_tickets")
        assert [t["code"] for t in told["tickets"]] == [first.code] + [
            t.code for t in rows if t.code != first.code
        ]
    finally:
        await stop_listening(ctx, task)
        await presence.stop()


async def test_the_new_ticket_page_shows_the_ticket_and_asks_nothing_without_a_call(panel):
    ctx = panel.ctx
    csrf = await panel.login("agent1")
    for _ in range(2):
        r = await post(panel, "/tickets", csrf, **{**TICKET, "from": "new"})
        assert r.status == 303 and r.headers["Location"].startswith("/tickets/")
    assert (await ctx.ticket_queries.search(TicketFilter(), actor=SYSTEM))[1] == 2

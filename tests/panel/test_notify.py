"""Telling the creator of a ticket it is back on their desk (Redis, SQLite and PostgreSQL).

The agency's answer and its sending back are published to the creator's
``user.<id>`` topic after the commit; the agent's socket hears them; their
workspace lists the tickets that need them.  A broken notice never undoes
the agency's move.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from accounts.identity import Actor
from tickets.service import Action


async def forwarded(panel, agent: Actor, description: str):  # type: ignore[no-untyped-def]
    return await panel.ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909000333",
            "domain": "state",
            "topic": "traffic",
            "level": 2,
            "description": description,
            "agency_id": panel.agency_ids["so-gtvt"],
        },
    )


async def test_answered_and_sent_back_reach_the_creators_socket_and_list(panel):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent1"])
    officer = Actor.of(panel.users["officer"])
    answered = await forwarded(panel, agent, "Đèn đường tắt cả dãy phố")
    returned = await forwarded(panel, agent, "Ổ gà giữa đường")
    other = await forwarded(panel, Actor.of(panel.users["agent2"]), "Cây đổ chắn lối")
    await panel.login("agent1")
    async with panel.client.ws_connect("/ws") as ws:
        assert json.loads((await ws.receive()).data)["type"] == "hello"
        t = await ctx.tickets.accept(officer, answered.id, answered.version)
        await ctx.tickets.answer(officer, t.id, t.version, "Đã thay bóng đèn.")
        await ctx.tickets.send_back(
            officer, returned.id, returned.version, "Không thuộc thẩm quyền"
        )
        t = await ctx.tickets.accept(officer, other.id, other.version)
        await ctx.tickets.answer(officer, t.id, t.version, "Đã dọn.")  # agent2's: not told here
        got = [json.loads((await asyncio.wait_for(ws.receive(), 3)).data) for _ in range(2)]
        assert got == [
            {"type": "ticket", "action": "answered", "code": answered.code, "status": "answered"},
            {"type": "ticket", "action": "returned", "code": returned.code, "status": "returned"},
        ]
        with pytest.raises(TimeoutError):  # nothing about agent2's ticket
            await ws.receive(timeout=0.5)
    page = await (await panel.client.get("/agent")).text()
    needing = page[
        page.index('id="needing"') : page.index("</section>", page.index('id="needing"'))
    ]
    assert answered.code in needing and returned.code in needing
    assert other.code not in needing


async def test_a_failing_notice_does_not_undo_the_answer(panel):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent1"])
    officer = Actor.of(panel.users["officer"])
    ticket = await forwarded(panel, agent, "Nắp cống bị mất")
    heard: list[tuple[str, str]] = []

    async def broken(t, action):  # type: ignore[no-untyped-def]
        raise ConnectionError("bus down")

    async def record(t, action):  # type: ignore[no-untyped-def]
        heard.append((t.code, action))

    ctx.tickets.on_creator_needed[:0] = [broken]
    ctx.tickets.on_creator_needed.append(record)
    t = await ctx.tickets.accept(officer, ticket.id, ticket.version)
    assert heard == []  # accepting is no news for the creator
    t = await ctx.tickets.answer(officer, t.id, t.version, "Đã lắp nắp mới.")
    assert t.status == "answered"
    assert (await ctx.ticket_queries.get(ticket.id)).status == "answered"
    assert heard == [(ticket.code, Action.ANSWERED)]

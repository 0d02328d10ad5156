"""A ticket past its deadline is escalated once and announced to supervisors and agencies."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from accounts.identity import Actor
from tickets.alerts import OverdueWatch


async def test_overdue_ticket_alerts_supervisors_and_both_agencies(panel):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent1"])
    child = panel.agency_ids["q1"]
    parent = panel.agency_ids["so-gtvt"]
    ticket = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909000111",
            "domain": "state",
            "topic": "traffic",
            "level": 2,
            "description": "Đèn tín hiệu hỏng",
            "agency_id": child,
        },
    )
    got: dict[str, list[dict]] = {"alerts": [], f"agency.{child}": [], f"agency.{parent}": []}
    ready = asyncio.Event()

    async def listen():
        async for topic, data in ctx.bus.listen(list(got), ready):
            got[topic].append(json.loads(data))

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    watch = OverdueWatch(ctx.tickets, ctx.agencies, ctx.bus, ctx.clock, interval=60)
    try:
        assert await watch.check() == []
        ctx.clock.advance(timedelta(hours=ctx.settings.tickets.deadline(2) + 1))
        escalated = await watch.check()
        assert [t.code for t in escalated] == [ticket.code]
        assert await watch.check() == [], "one deadline escalates once"

        async def all_arrived():
            while not all(got.values()):  # noqa: ASYNC110 - three topics, polled
                await asyncio.sleep(0.02)

        await asyncio.wait_for(all_arrived(), 5)
        alert = got["alerts"][0]
        assert alert["code"] == ticket.code and alert["agency"] == "UBND Quận 1"
        assert got[f"agency.{parent}"][0]["code"] == ticket.code
        # the parent agency's officer now sees it in their inbox
        officer = Actor.of(panel.users["officer"])
        assert ticket.code in [t.code for t in await ctx.ticket_queries.inbox(officer)]
    finally:
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)

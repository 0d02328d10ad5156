"""Agent states and the screen-pop from queue events, through real Redis and a real database.

The events are the ones Asterisk 22 sends (field names as in its AMI), fed
to the handlers as the AMI client would; the end-to-end path through a real
Asterisk and a browser is in tests/panel/test_browser.py.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from panoramisk.message import Message

from callcenter.presence import Presence
from tests.panel.conftest import queued_call

UID = "pbx-1795344736.14"


def event(name: str, **fields: str) -> Message:
    headers = {"Event": name, **fields}
    headers.setdefault("ChanVariable", [])
    if isinstance(headers["ChanVariable"], str):
        headers["ChanVariable"] = [headers["ChanVariable"]]
    return Message(headers)


def member(name: str, ext: str = "1001", **fields: str) -> Message:
    return event(
        name,
        Queue="t1022-morning",
        Interface=f"PJSIP/{ext}",
        MemberName=f"{ext} Nguyễn Văn An",
        StateInterface=f"PJSIP/{ext}",
        **fields,
    )


class Listener:
    """A subscriber on the bus, as a panel process is."""

    def __init__(self, bus, topic):
        self.bus, self.topic = bus, topic
        self.messages: asyncio.Queue = asyncio.Queue()
        self.ready = asyncio.Event()

    async def run(self):
        async for _topic, data in self.bus.listen([self.topic], self.ready):
            await self.messages.put(json.loads(data))

    async def next(self, kind: str, timeout: float = 3):
        while True:
            msg = await asyncio.wait_for(self.messages.get(), timeout)
            if msg["type"] == kind:
                return msg


@pytest.fixture
async def presence(panel):
    ctx = panel.ctx
    history_calls = []

    async def history(phone):
        history_calls.append(phone)
        return [
            {
                "code": t.code,
                "created_at": t.created_at.isoformat(),
                "status": t.status,
                "level": t.level,
                "summary": t.description[:100],
            }
            for t in await ctx.ticket_queries.for_phone(phone)
        ]

    p = Presence(ctx.bus, ctx.calls, ctx.settings, ctx.clock, history=history)
    listener = Listener(ctx.bus, "agent.1001")
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 5)
    yield p, listener
    task.cancel()
    await ctx.bus.stop_listening()
    await asyncio.gather(task, return_exceptions=True)
    await p.stop()


async def open_call(ctx, number="0909123456"):
    now = ctx.clock.now()
    await queued_call(
        ctx,
        UID,
        number,
        name="Trần Thị B",
        started=now - timedelta(seconds=40),
        waited=timedelta(seconds=28),
    )


async def test_ringing_agent_gets_the_pop_with_the_callers_history(panel, presence):
    p, listener = presence
    ctx = panel.ctx
    agent = __import__("accounts.identity", fromlist=["Actor"]).Actor.of(panel.users["agent2"])
    earlier = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909123456",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập đường Nguyễn Hữu Cảnh",
        },
    )
    await open_call(ctx)
    await p.on_member(member("QueueMemberAdded", Status="1", Paused="0"))
    assert (await listener.next("state"))["state"] == "free"
    await p.on_called(
        event(
            "AgentCalled",
            Uniqueid=UID,
            Queue="t1022-morning",
            Interface="PJSIP/1001",
            MemberName="1001 Nguyễn Văn An",
            CallerIDNum="0909123456",
            CallerIDName="Trần Thị B",
        )
    )
    pop = await listener.next("pop")
    assert pop["caller"] == "0909123456"
    assert pop["hotline"] == "1022" and pop["hotline_name"]
    assert pop["ivr_path"] == "1:agent"
    assert pop["waited"] == 12
    assert pop["phase"] == "ringing"
    assert [t["code"] for t in pop["tickets"]] == [earlier.code]
    assert pop["call_id"] is not None
    state = await listener.next("state")
    assert state["state"] == "ringing"
    # kept for a page opened now, or reloaded
    assert (await ctx.bus.kept("pop.1001"))["uniqueid"] == UID

    await p.on_connect(
        event(
            "AgentConnect",
            Uniqueid=UID,
            Queue="t1022-morning",
            Interface="PJSIP/1001",
            HoldTime="12",
        )
    )
    assert (await listener.next("pop"))["phase"] == "talking"
    assert (await listener.next("state"))["state"] == "talking"

    await p.on_complete(
        event(
            "AgentComplete",
            Uniqueid=UID,
            Queue="t1022-morning",
            Interface="PJSIP/1001",
            TalkTime="30",
            Reason="caller",
        )
    )
    ended = await listener.next("pop")
    assert ended["phase"] == "ended", "the pop stays while the agent finishes the ticket"
    assert (await listener.next("state"))["state"] == "wrapup"
    assert (await listener.next("state", timeout=ctx.settings.queues.wrapup_seconds + 3))[
        "state"
    ] == "free"


async def test_a_ring_not_answered_takes_the_pop_away(panel, presence):
    p, listener = presence
    await open_call(panel.ctx)
    called = event(
        "AgentCalled",
        Uniqueid=UID,
        Queue="t1022-morning",
        Interface="PJSIP/1001",
        CallerIDNum="0909123456",
    )
    await p.on_called(called)
    await listener.next("pop")
    await p.on_ring_over(
        event(
            "AgentRingNoAnswer",
            Uniqueid=UID,
            Interface="PJSIP/1001",
            Queue="t1022-morning",
            RingTime="15",
        )
    )
    gone = await listener.next("pop_gone")
    assert gone["uniqueid"] == UID
    assert await panel.ctx.bus.kept("pop.1001") is None


async def test_a_call_with_no_record_and_no_caller_id_still_pops(panel, presence):
    """The dialplan's fallback route with the IVR down: no record from the IVR yet."""
    p, listener = presence
    await p.on_called(
        event(
            "AgentCalled",
            Uniqueid="pbx-9.9",
            Queue="t1022-morning",
            Interface="PJSIP/1001",
            CallerIDNum="<unknown>",
            ChanVariable="HOTLINE_ROUTE_SOURCE=fallback",
        )
    )
    pop = await listener.next("pop")
    assert pop["caller"] is None and pop["call_id"] is None
    assert pop["tickets"] == [] and pop["earlier_calls"] == []


async def test_pause_with_reason_and_member_states(panel, presence):
    p, listener = presence
    await p.on_member(member("QueueMemberAdded", Status="1", Paused="0"))
    assert (await listener.next("state"))["state"] == "free"
    await p.on_member(member("QueueMemberPause", Paused="1", PausedReason="meal"))
    st = await listener.next("state")
    assert st["state"] == "paused" and st["reason"] == "meal"
    await p.on_member(member("QueueMemberStatus", Status="1", Paused="0", PausedReason=""))
    assert (await listener.next("state"))["state"] == "free"
    await p.on_member(member("QueueMemberStatus", Status="5", Paused="0"))
    assert (await listener.next("state"))["state"] == "offline"
    await p.on_member(member("QueueMemberStatus", Status="1", Paused="0"))
    await listener.next("state")
    await p.on_member(member("QueueMemberRemoved"))
    assert (await listener.next("state"))["state"] == "off_shift"

"""Agent states and the screen-pop from queue events, through real Redis and a real database.

The events are the ones Asterisk 22 sends (field names as in its AMI), fed
to the live state and to the screen-pop as their two AMI lanes would; the
end-to-end path through a real Asterisk and a browser is in
tests/panel/test_panel_browser.py.  The two lanes publish on the same
topic in no fixed order between them, so the listener keeps what it was not
asked for yet.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from panoramisk.message import Message

from accounts.identity import SYSTEM
from tests.helpers import queued_call
from tests.panel.conftest import Screen

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
        self.kept: list[dict] = []  # arrived, not asked for yet
        self.ready = asyncio.Event()

    async def run(self):
        async for _topic, data in self.bus.listen([self.topic], self.ready):
            await self.messages.put(json.loads(data))

    async def next(self, kind: str, timeout: float = 3):
        """The first message of ``kind`` not taken yet, in the order it arrived."""
        for i, msg in enumerate(self.kept):
            if msg["type"] == kind:
                return self.kept.pop(i)
        while True:
            msg = await asyncio.wait_for(self.messages.get(), timeout)
            if msg["type"] == kind:
                return msg
            self.kept.append(msg)


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
            for t in await ctx.ticket_queries.for_phone(phone, actor=SYSTEM)
        ]

    screen = Screen(ctx, history)
    await screen.start()
    listener = Listener(ctx.bus, "agent.1001")
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 5)
    yield screen, listener
    task.cancel()
    await ctx.bus.stop_listening()
    await asyncio.gather(task, return_exceptions=True)
    await screen.stop()


async def open_call(ctx, number="0909123456"):
    now = ctx.clock.now()
    await queued_call(
        ctx.calls,
        UID,
        number,
        name="Trần Thị B",
        started=now - timedelta(seconds=40),
        path="1:agent",
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
    await p.hear(member("QueueMemberAdded", Status="1", Paused="0"))
    assert (await listener.next("state"))["state"] == "free"
    await p.hear(
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

    await p.hear(
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

    await p.hear(
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
    ctx.clock.advance(timedelta(seconds=ctx.settings.queues.wrapup_seconds))
    assert (await listener.next("state"))["state"] == "free"


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
    await p.hear(called)
    await listener.next("pop")
    await p.hear(
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
    await p.hear(
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
    await p.hear(member("QueueMemberAdded", Status="1", Paused="0"))
    assert (await listener.next("state"))["state"] == "free"
    await p.hear(member("QueueMemberPause", Paused="1", PausedReason="meal"))
    st = await listener.next("state")
    assert st["state"] == "paused" and st["reason"] == "meal"
    await p.hear(member("QueueMemberStatus", Status="1", Paused="0", PausedReason=""))
    assert (await listener.next("state"))["state"] == "free"
    await p.hear(member("QueueMemberStatus", Status="5", Paused="0"))
    assert (await listener.next("state"))["state"] == "offline"
    await p.hear(member("QueueMemberStatus", Status="1", Paused="0"))
    await listener.next("state")
    await p.hear(member("QueueMemberRemoved"))
    assert (await listener.next("state"))["state"] == "off_shift"


async def test_the_pop_carries_its_own_join_time(panel, presence):
    """The pop's lane does not wait for the call record's queue time: it keeps the
    join time of QueueCallerJoin itself (here the record has none at all)."""
    p, listener = presence
    joined = panel.ctx.clock.now() - timedelta(seconds=33)
    await p.hear(
        event(
            "QueueCallerJoin",
            Uniqueid="pbx-7.7",
            Queue="t1022-morning",
            Timestamp=f"{joined.timestamp():.6f}",
            CallerIDNum="0909000111",
            Position="1",
        )
    )
    await p.hear(
        event(
            "AgentCalled",
            Uniqueid="pbx-7.7",
            Queue="t1022-morning",
            Interface="PJSIP/1001",
            CallerIDNum="0909000111",
        )
    )
    pop = await listener.next("pop")
    assert pop["call_id"] is None and pop["waited"] == 33
    assert pop["queued_at"] == joined.isoformat()
    # the live state heard the same join: the caller waits on the board, then rings
    assert (await listener.next("state"))["state"] == "ringing"
    assert list(p.live.queues["t1022-morning"].waiting) == ["pbx-7.7"]

"""The screen-pop's reads ahead and its per-agent order, through a real database and Redis.

The caller's history is read when the call reaches the IVR (``Presence.prefetch``,
as the application wires it to the IVR); a ticket saved for that phone meanwhile
must still be on the pop.  Each agent's pop events are handled in their order, but
one pop waiting for its reads does not hold up another agent's.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from accounts.identity import Actor
from callcenter.presence import Presence
from hotline.app import ticket_history, ticket_phone
from tests.helpers import queued_call
from tests.panel.test_presence import Listener, event

NUMBER = "0909123456"
WAIT = 10  # seconds a message may take on a busy machine


def ticket(description: str, phone: str = NUMBER) -> dict[str, object]:
    return {
        "channel": "phone",
        "citizen_phone": phone,
        "domain": "state",
        "topic": "flooding",
        "level": 2,
        "description": description,
    }


async def listening(ctx, ext: str):  # type: ignore[no-untyped-def]
    listener = Listener(ctx.bus, f"agent.{ext}")
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 5)
    return listener, task


def presence_of(ctx, history=None) -> Presence:  # type: ignore[no-untyped-def]
    """The pop as hotline.app.Application builds and wires it."""
    presence = Presence(
        ctx.bus,
        ctx.calls,
        ctx.settings,
        ctx.clock,
        history=history or ticket_history(ctx.ticket_queries),
        phone_key=ticket_phone,
    )
    ctx.tickets.on_phone_written.append(presence.tickets_changed)
    return presence


async def in_queue(ctx, uniqueid: str, number: str | None = NUMBER) -> None:  # type: ignore[no-untyped-def]
    await queued_call(
        ctx.calls,
        uniqueid,
        number,
        started=ctx.clock.now() - timedelta(seconds=30),
        path="1:agent",
        waited=timedelta(seconds=20),
    )


def called(uniqueid: str, ext: str = "1001", number: str = NUMBER):  # type: ignore[no-untyped-def]
    return event(
        "AgentCalled",
        Uniqueid=uniqueid,
        Queue="t1022-morning",
        Interface=f"PJSIP/{ext}",
        MemberName=f"{ext} Agent",
        CallerIDNum=number,
    )


async def read_ahead_done(presence: Presence, uniqueid: str) -> None:
    entry = presence.caller_history._entries[uniqueid]
    await asyncio.wait({entry.task}, timeout=5)
    assert entry.task.done()


async def test_the_pop_uses_the_history_read_while_the_caller_was_in_the_ivr(panel):
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent2"])
    earlier = await ctx.tickets.create(agent, ticket("Ngập đường Nguyễn Hữu Cảnh"))
    await in_queue(ctx, "pbx-1.1")  # the caller's last call
    presence = presence_of(ctx)
    listener, task = await listening(ctx, "1001")
    try:
        presence.prefetch("pbx-2.2", NUMBER)  # the IVR has the new call
        await read_ahead_done(presence, "pbx-2.2")
        await in_queue(ctx, "pbx-2.2")
        await presence.on_called(called("pbx-2.2"))
        pop = await listener.next("pop", timeout=WAIT)
        assert [t["code"] for t in pop["tickets"]] == [earlier.code]
        assert [c["uniqueid"] for c in pop["earlier_calls"]] == ["pbx-1.1"]
        assert pop["ivr_path"] == "1:agent" and pop["call_id"] is not None
        assert (presence.caller_history.hits, presence.caller_history.misses) == (1, 0)
    finally:
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)
        await presence.stop()


async def test_a_ticket_saved_while_the_caller_waits_is_on_their_next_pop(panel):
    """The agent of the last call saves its ticket (the number typed with spaces) while
    the citizen, calling back, is in the IVR: the pop shows it, and an edit too."""
    ctx = panel.ctx
    agent = Actor.of(panel.users["agent2"])
    presence = presence_of(ctx)
    listener, task = await listening(ctx, "1001")
    try:
        presence.prefetch("pbx-3.3", NUMBER)
        await read_ahead_done(presence, "pbx-3.3")  # read before the ticket existed
        saved = await ctx.tickets.create(agent, ticket("Cây đổ", phone="0909 123 456"))
        await in_queue(ctx, "pbx-3.3")
        await presence.on_called(called("pbx-3.3"))
        pop = await listener.next("pop", timeout=WAIT)
        assert [t["code"] for t in pop["tickets"]] == [saved.code]

        # the next call, read ahead; then the ticket is edited
        presence.prefetch("pbx-4.4", NUMBER)
        await read_ahead_done(presence, "pbx-4.4")
        await ctx.tickets.update(
            agent, saved.id, saved.version, {"description": "Cây đổ chắn đường"}
        )
        await in_queue(ctx, "pbx-4.4")
        await presence.on_called(called("pbx-4.4", ext="1001"))
        pop = await listener.next("pop", timeout=WAIT)
        assert [(t["code"], t["summary"]) for t in pop["tickets"]] == [
            (saved.code, "Cây đổ chắn đường")
        ]
        # a ticket of another phone leaves the read ahead alone
        presence.prefetch("pbx-5.5", NUMBER)
        await read_ahead_done(presence, "pbx-5.5")
        await ctx.tickets.create(agent, ticket("Khác", phone="0911000111"))
        before = presence.caller_history.hits
        await in_queue(ctx, "pbx-5.5")
        await presence.on_called(called("pbx-5.5"))
        await listener.next("pop", timeout=WAIT)
        assert presence.caller_history.hits == before + 1
    finally:
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)
        await presence.stop()


async def test_one_agents_pop_waiting_for_its_reads_does_not_hold_up_anothers(panel):
    ctx = panel.ctx
    slow = asyncio.Event()

    async def history(phone):  # type: ignore[no-untyped-def]
        if phone == NUMBER:
            await slow.wait()  # this caller's reads are slow (the database is busy)
        return []

    presence = presence_of(ctx, history)
    on_called = presence.in_turn(presence.on_called)
    on_connect = presence.in_turn(presence.on_connect)
    first, t1 = await listening(ctx, "1001")
    second, t2 = await listening(ctx, "1002")
    try:
        await in_queue(ctx, "pbx-6.6")
        await in_queue(ctx, "pbx-7.7", "0911222333")
        await on_called(called("pbx-6.6", "1001"))  # handed over: the lane goes on
        await on_called(called("pbx-7.7", "1002", "0911222333"))
        pop = await second.next("pop", timeout=WAIT)
        assert pop["uniqueid"] == "pbx-7.7", "1002's pop did not wait for 1001's reads"
        # 1001's next event waits for 1001's pop: in their order
        await on_connect(event("AgentConnect", Uniqueid="pbx-6.6", Interface="PJSIP/1001"))
        await asyncio.sleep(0.2)
        assert first.messages.empty() and not first.kept
        slow.set()
        assert (await first.next("pop", timeout=WAIT))["phase"] == "ringing"
        assert (await first.next("pop", timeout=WAIT))["phase"] == "talking"
    finally:
        slow.set()
        for t in (t1, t2):
            t.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(t1, t2, return_exceptions=True)
        await presence.stop()


async def test_a_caller_who_gives_up_while_the_pop_is_built_leaves_no_pop(panel):
    ctx = panel.ctx
    slow = asyncio.Event()

    async def history(phone):  # type: ignore[no-untyped-def]
        await slow.wait()
        return []

    presence = presence_of(ctx, history)
    listener, task = await listening(ctx, "1001")
    try:
        await in_queue(ctx, "pbx-8.8")
        await presence.in_turn(presence.on_called)(called("pbx-8.8"))
        await presence.on_abandon_in_turn(
            event("QueueCallerAbandon", Uniqueid="pbx-8.8", Queue="t1022-morning")
        )
        slow.set()
        assert (await listener.next("pop", timeout=WAIT))["phase"] == "ringing"
        assert (await listener.next("pop_gone", timeout=WAIT))["uniqueid"] == "pbx-8.8"
        assert await ctx.bus.kept("pop.1001") is None
    finally:
        slow.set()
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)
        await presence.stop()


async def test_an_end_without_uniqueid_ends_the_call_on_screen_when_it_was_heard(panel):
    """Asterisk leaves the Uniqueid out of AgentComplete when the caller is gone; the
    agent's next ring, heard just after, must not take its place."""
    ctx = panel.ctx
    slow = asyncio.Event()

    async def history(phone):  # type: ignore[no-untyped-def]
        if phone == "0911222333":
            await slow.wait()
        return []

    presence = presence_of(ctx, history)
    listener, task = await listening(ctx, "1001")
    try:
        await in_queue(ctx, "pbx-9.1")
        await in_queue(ctx, "pbx-9.2", "0911222333")
        await presence.in_turn(presence.on_called)(called("pbx-9.1"))
        assert (await listener.next("pop", timeout=WAIT))["phase"] == "ringing"
        await presence.in_turn(presence.on_connect)(
            event("AgentConnect", Uniqueid="pbx-9.1", Interface="PJSIP/1001")
        )
        assert (await listener.next("pop", timeout=WAIT))["phase"] == "talking"
        await presence.in_turn(presence.on_complete)(
            event("AgentComplete", Interface="PJSIP/1001", Reason="caller")
        )
        await presence.in_turn(presence.on_called)(called("pbx-9.2", number="0911222333"))
        ended = await listener.next("pop", timeout=WAIT)
        assert (ended["uniqueid"], ended["phase"]) == ("pbx-9.1", "ended")
        slow.set()
        ringing = await listener.next("pop", timeout=WAIT)
        assert (ringing["uniqueid"], ringing["phase"]) == ("pbx-9.2", "ringing")
    finally:
        slow.set()
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)
        await presence.stop()


async def test_the_ring_reads_no_call_record_when_the_ivr_wrote_it_here(panel, monkeypatch):
    """The IVR of this process keeps what it wrote of the call (the record's id, the
    menu path, the language) in memory: the pop at the ring is built without reading
    the record; when they are not kept (a restart, the dialplan's fallback), it is
    read, and both pops say the same."""
    ctx = panel.ctx
    reads: list[str] = []
    get = ctx.calls.get

    async def counted(uniqueid: str):  # type: ignore[no-untyped-def]
        reads.append(uniqueid)
        return await get(uniqueid)

    monkeypatch.setattr(ctx.calls, "get", counted)
    presence = presence_of(ctx)
    listener, task = await listening(ctx, "1001")
    try:
        shown = []
        for uniqueid in ("pbx-9.1", "pbx-9.2"):
            await in_queue(ctx, uniqueid)
            if uniqueid == "pbx-9.2":
                ctx.calls.forget(uniqueid)  # as after a restart: only the record has it
            await presence.on_called(called(uniqueid))
            shown.append(await listener.next("pop", timeout=WAIT))
        assert reads == ["pbx-9.2"]
        record = await get("pbx-9.1")
        assert record is not None and shown[0]["call_id"] == record.id
        keys = ("caller", "caller_name", "hotline", "language", "ivr_path", "ivr_choice")
        assert [shown[0][k] for k in keys] == [shown[1][k] for k in keys]
        assert shown[0]["ivr_path"] == "1:agent" and shown[0]["route_source"] == "agi"
    finally:
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)
        await presence.stop()

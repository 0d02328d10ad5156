"""The callback's screen-pop and "call now", on a real panel (Redis, SQLite and PostgreSQL).

The dialler tells :class:`Presence` when it rings an agent for a callback;
here those calls are made as the dialler makes them (the path through a real
Asterisk and Chromium is in tests/callcenter/test_callbacks.py), and the pop
is read as the agent's page gets it: on the bus and in the socket's hello.
"""

from __future__ import annotations

import asyncio
import json
import wave
from datetime import timedelta

from accounts.identity import Actor
from callcenter.callbacks import WAKE_TOPIC
from callcenter.models import Result
from hotline.app import ticket_history
from tests.helpers import requested_callback
from tests.panel.conftest import PASSWORD, Screen, waiting_call
from tests.panel.test_overflow_panel import post
from tests.panel.test_presence import Listener, member

NUMBER = "0908123456"


async def listening(ctx, topic: str):
    listener = Listener(ctx.bus, topic)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.ready.wait(), 5)
    return listener, task


async def stop_listening(ctx, task) -> None:
    task.cancel()
    await ctx.bus.stop_listening()
    await asyncio.gather(task, return_exceptions=True)


async def hello(panel) -> dict:
    """What the agent's page gets first on its socket (a reload, a second tab)."""
    async with panel.client.ws_connect("/ws") as ws:
        return json.loads((await ws.receive()).data)


async def test_a_callback_pops_up_and_becomes_a_ticket(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    agent2 = Actor.of(panel.users["agent2"])
    earlier = await ctx.tickets.create(
        agent2,
        {
            "channel": "phone",
            "citizen_phone": NUMBER,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập đường Nguyễn Hữu Cảnh",
        },
    )
    joined = await waiting_call(ctx, "pbx-20.1", NUMBER, 25)
    cb = await requested_callback(ctx.callbacks, "pbx-20.1", NUMBER, joined)
    screen = Screen(ctx, ticket_history(ctx.ticket_queries))
    await screen.start()
    presence = screen.presence
    listener, task = await listening(ctx, "agent.1001")
    try:
        await screen.hear(member("QueueMemberAdded", Status="1", Paused="0"))
        assert (await listener.next("state"))["state"] == "free"
        started = await ctx.callbacks.start_attempt(cb.id, "1001", "cb-20-a")
        await presence.callback_called("1001", "cb-20-a", started.info)
        pop = await listener.next("pop")
        assert pop["kind"] == "callback" and pop["phase"] == "ringing"
        assert pop["caller"] == NUMBER and pop["hotline"] == "1022" and pop["hotline_name"]
        assert pop["call_id"] == started.call_id, "the ticket form links to the try's record"
        assert pop["waited"] == 25 * 60, "from when they first joined the queue"
        assert pop["queued_at"] == joined.isoformat()
        assert [t["code"] for t in pop["tickets"]] == [earlier.code]
        assert [c["uniqueid"] for c in pop["earlier_calls"]] == ["pbx-20.1"]
        assert pop["callback"]["id"] == cb.id
        assert (pop["callback"]["attempt"], pop["callback"]["attempts"]) == (1, 3)
        assert pop["callback"]["voice_message"] is None
        assert (await listener.next("state"))["state"] == "ringing"

        await presence.callback_phase("1001", "cb-20-a", "talking")
        assert (await listener.next("pop"))["phase"] == "talking"
        assert (await listener.next("state"))["state"] == "talking"

        # the agent's page, opened or reloaded now, shows it; the ticket made from it
        # is linked to the callback's call record while the call goes on
        csrf = await panel.login("agent1")
        shown = (await hello(panel))["pop"]
        assert shown["kind"] == "callback" and shown["caller"] == NUMBER
        r = await post(
            panel,
            "/tickets",
            csrf,
            channel="phone",
            domain="state",
            topic="flooding",
            level="2",
            description="Vẫn còn ngập, nước chưa rút",
            call_id=str(shown["call_id"]),
        )
        assert r.status == 303, await r.text()
        ticket = await ctx.ticket_queries.get_by_code(r.headers["Location"].rsplit("/", 1)[1])
        assert ticket.call_id == started.call_id and ticket.citizen_phone == NUMBER

        ctx.clock.advance(timedelta(seconds=90))
        done = await ctx.callbacks.finish_attempt(
            "cb-20-a", Result.CONNECTED, talk_seconds=80, recording_base=None
        )
        assert done.result_call_id == ticket.call_id
        await presence.callback_phase("1001", "cb-20-a", "ended", result=Result.CONNECTED)
        ended = await listener.next("pop")
        assert ended["phase"] == "ended" and ended["result"] == "connected"
        assert ended["kind"] == "callback", "stays, as a queue call's, for the ticket"
        assert (await listener.next("state"))["state"] == "free"
        # a "talking" that comes after the end (its report overtook it) changes nothing
        await presence.callback_phase("1001", "cb-20-a", "talking")
        assert (await ctx.bus.kept("pop.1001"))["phase"] == "ended"
    finally:
        await stop_listening(ctx, task)
        await screen.stop()


async def test_a_ring_the_agent_missed_leaves_their_screen(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    joined = await waiting_call(ctx, "pbx-21.1", NUMBER, 5)
    cb = await requested_callback(ctx.callbacks, "pbx-21.1", NUMBER, joined)
    screen = Screen(ctx, ticket_history(ctx.ticket_queries))
    await screen.start()
    presence = screen.presence
    listener, task = await listening(ctx, "agent.1001")
    try:
        started = await ctx.callbacks.start_attempt(cb.id, "1001", "cb-21-a")
        await presence.callback_called("1001", "cb-21-a", started.info)
        await listener.next("pop")
        await ctx.callbacks.finish_attempt("cb-21-a", Result.AGENT_MISSED)
        await presence.callback_phase("1001", "cb-21-a", "missed")
        assert (await listener.next("pop_gone"))["uniqueid"] == "cb-21-a"
        assert await ctx.bus.kept("pop.1001") is None
    finally:
        await stop_listening(ctx, task)
        await screen.stop()


async def test_a_voice_message_callback_plays_its_message_from_the_pop(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    await waiting_call(ctx, "pbx-22.1", NUMBER, 3)
    folder = ctx.settings.recordings_dir / "voicemail" / "2026" / "11" / "25"
    folder.mkdir(parents=True)
    path = folder / "pbx-22.1.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x10\x00" * 24000)
    vm = await ctx.callbacks.voice_message(
        uniqueid="pbx-22.1", path=str(path), seconds=3.0, language="vi"
    )
    cb = await ctx.callbacks.voice_to_callback(vm.id, "Sup")
    screen = Screen(ctx, ticket_history(ctx.ticket_queries))
    await screen.start()
    presence = screen.presence
    try:
        started = await ctx.callbacks.start_attempt(cb.id, "1001", "cb-22-a")
        await presence.callback_called("1001", "cb-22-a", started.info)
        await panel.login("agent1")
        voice = (await hello(panel))["pop"]["callback"]["voice_message"]
        assert voice["id"] == vm.id and voice["seconds"] == 3.0
        r = await panel.client.get(voice["url"])
        assert r.status == 200 and await r.read() == path.read_bytes()
        # the link goes through the page's access check: another team's agent is refused
        other = await panel.new_client()
        try:
            await ctx.accounts.create_user(
                Actor.of(panel.users["admin"]),
                {
                    "username": "party1",
                    "display_name": "Party agent",
                    "role": "agent",
                    "password": PASSWORD,
                    "extension": "2001",
                },
            )
            await panel.login("party1", other)
            assert (await other.get(voice["url"])).status == 403
        finally:
            await other.close()
    finally:
        await screen.stop()


async def test_call_now_wakes_the_dialler_over_the_bus_and_opens_the_workspace(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    joined = await waiting_call(ctx, "pbx-23.1", NUMBER, 4)
    cb = await requested_callback(ctx.callbacks, "pbx-23.1", NUMBER, joined)
    listener, task = await listening(ctx, WAKE_TOPIC)
    try:
        csrf = await panel.login("agent1")
        r = await post(panel, f"/callbacks/{cb.id}/call", csrf)
        assert r.status == 303 and r.headers["Location"] == "/agent"
        woken = await asyncio.wait_for(listener.messages.get(), 3)
        assert woken == {"callback_id": cb.id, "extension": "1001"}
        assert (await ctx.callbacks.get(cb.id)).assigned_extension == "1001"
        # refused (not the next one, or no longer waiting): nobody is woken
        await ctx.callbacks.cancel(cb.id, "Sup")
        r = await post(panel, f"/callbacks/{cb.id}/call", csrf)
        assert r.status == 303 and r.headers["Location"] == "/callbacks"
        await asyncio.sleep(0.3)
        assert listener.messages.empty()
    finally:
        await stop_listening(ctx, task)

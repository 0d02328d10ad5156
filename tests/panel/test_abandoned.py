"""Callers who gave up: one list for the callbacks page and the handover report
(Redis, SQLite and PostgreSQL).

Calls are written as the call path writes them (tests/helpers.py); the list
is read by :class:`callcenter.abandoned.AbandonedCallers` and through the two
pages, and its actions are posted as the pages' forms post them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from callcenter.abandoned import LOOKBACK, NotInList
from callcenter.callbacks import WAKE_TOPIC
from callcenter.models import AbandonedDismissal, Status
from tests.panel.conftest import waiting_call
from tests.panel.test_callback_pop import listening, stop_listening
from tests.panel.test_overflow_panel import post

NUMBER = "0908111222"
OTHER = "0909333444"


async def gave_up(ctx, uid: str, number: str | None, minutes_ago: int, hold: int = 90) -> None:
    await waiting_call(ctx, uid, number, minutes_ago)
    await ctx.calls.caller_abandoned(uniqueid=uid, hold_seconds=hold)


async def answered(ctx, uid: str, number: str, minutes_ago: int) -> None:
    await waiting_call(ctx, uid, number, minutes_ago)
    await ctx.calls.agent_connected(
        uniqueid=uid,
        queue="t1022-morning",
        interface="PJSIP/1001",
        member_name=None,
        hold_seconds=5,
        at=ctx.clock.now() - timedelta(minutes=minutes_ago),
        recording_base=None,
    )


async def numbers(ctx, team: str | None = None) -> list[str]:
    return [c.number for c in (await ctx.abandoned.waiting(team)).callers]


async def test_a_later_answered_call_takes_the_caller_off_the_list(panel):
    ctx = panel.ctx
    await gave_up(ctx, "pbx-1.1", NUMBER, 30, hold=70)
    await gave_up(ctx, "pbx-1.2", NUMBER, 20, hold=120)
    await gave_up(ctx, "pbx-1.3", OTHER, 10)
    await gave_up(ctx, "pbx-1.4", None, 5)  # no caller ID: counted, never listed
    # an answered call BEFORE the abandoned ones does not count as reaching them
    await answered(ctx, "pbx-1.0", OTHER, 60)
    # a call too old for the list
    await gave_up(ctx, "pbx-1.9", "0911000000", int(LOOKBACK.total_seconds() // 60) + 5)
    listed = await ctx.abandoned.waiting()
    assert [c.number for c in listed.callers] == [OTHER, NUMBER]
    first = listed.callers[1]
    assert (first.tries, first.longest_wait, first.team_id) == (2, 120, "t1022")
    assert listed.total == 2 and listed.no_caller_id == 1
    # NUMBER calls again and gets through: off the list; OTHER stays
    await answered(ctx, "pbx-1.5", NUMBER, 2)
    assert await numbers(ctx) == [OTHER]
    # and gives up once more afterwards: back on it
    ctx.clock.advance(timedelta(minutes=1))
    await gave_up(ctx, "pbx-1.6", NUMBER, 0)
    assert await numbers(ctx) == [NUMBER, OTHER]
    # the team filter: both are team t1022's, none the party's
    assert await numbers(ctx, "party") == []


async def test_no_need_takes_the_caller_off_with_the_reason_kept(panel):
    ctx = panel.ctx
    await gave_up(ctx, "pbx-2.1", NUMBER, 15)
    await gave_up(ctx, "pbx-2.2", OTHER, 10)
    with pytest.raises(ValueError, match="reason"):
        await ctx.abandoned.dismiss(NUMBER, "Sup", "  ")
    row = await ctx.abandoned.dismiss(NUMBER, "Sup", "Gọi nhầm số, đã xác nhận qua Zalo")
    assert await numbers(ctx) == [OTHER]
    kept = await ctx.abandoned.dismissals()
    assert [(d.number, d.dismissed_by, d.reason) for d in kept] == [
        (NUMBER, "Sup", "Gọi nhầm số, đã xác nhận qua Zalo")
    ]
    assert kept[0].dismissed_at == ctx.clock.now() and kept[0].up_to == row.up_to
    with pytest.raises(NotInList):
        await ctx.abandoned.dismiss(NUMBER, "Sup", "again")
    # the decision is an audit trail: the database refuses to change or delete it
    for sql in (
        "UPDATE abandoned_dismissals SET reason = 'x'",
        "DELETE FROM abandoned_dismissals",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with ctx.db.session() as s:
                await s.execute(text(sql))
    # a new abandoned call after the decision puts the caller back
    ctx.clock.advance(timedelta(minutes=1))
    await gave_up(ctx, "pbx-2.3", NUMBER, 0)
    assert await numbers(ctx) == [NUMBER, OTHER]


async def test_the_two_pages_show_the_same_list_and_its_actions(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    await gave_up(ctx, "pbx-3.1", NUMBER, 15)
    await gave_up(ctx, "pbx-3.2", OTHER, 10)
    await gave_up(ctx, "pbx-3.3", None, 5)
    await panel.login("sup")
    pages = {}
    for path in ("/callbacks", "/reports/handover"):
        r = await panel.client.get(path)
        assert r.status == 200
        pages[path] = await r.text()
    for body in pages.values():
        assert 'id="abandoned-list"' in body and 'id="abandoned-anonymous"' in body
        assert body.index(OTHER) < body.index(NUMBER)  # the last try first, on both
        assert 'action="/callbacks/abandoned/call"' in body
        assert 'action="/callbacks/abandoned/dismiss"' in body
    # "no need" from the handover report: back to it, the caller gone from both pages
    csrf = await panel.csrf()
    r = await post(
        panel,
        "/callbacks/abandoned/dismiss",
        csrf,
        number=OTHER,
        reason="Đã gọi từ máy bàn",
        back="/reports/handover",
    )
    assert r.status == 303 and r.headers["Location"] == "/reports/handover"
    for path in ("/callbacks", "/reports/handover"):
        assert OTHER not in await (await panel.client.get(path)).text()
    async with ctx.db.session() as s:
        row = await s.scalar(select(AbandonedDismissal))
    assert row is not None and (row.dismissed_by, row.reason) == ("Sup", "Đã gọi từ máy bàn")
    # a supervisor's "call back" adds a callback the dialler gives the next free agent
    r = await post(panel, "/callbacks/abandoned/call", csrf, number=NUMBER, back="/callbacks")
    assert r.status == 303 and r.headers["Location"] == "/callbacks"
    [cb] = await ctx.callbacks.open_list()
    assert (cb.number, cb.number_source, cb.status, cb.assigned_extension) == (
        NUMBER,
        "abandoned",
        Status.PENDING,
        None,
    )
    assert cb.queued_at == ctx.clock.now() - timedelta(minutes=15)  # their first try's place
    assert await numbers(ctx) == []
    # an address that is not in the list any more: said so, nothing added
    r = await post(panel, "/callbacks/abandoned/call", csrf, number=NUMBER, back="/elsewhere")
    assert r.status == 303 and r.headers["Location"] == "/callbacks"
    assert len(await ctx.callbacks.open_list()) == 1


async def test_an_agents_call_back_rings_their_phone_first(panel):
    ctx = panel.ctx
    await ctx.calls.sync_directory()
    await gave_up(ctx, "pbx-4.1", NUMBER, 12)
    listener, task = await listening(ctx, WAKE_TOPIC)
    try:
        csrf = await panel.login("agent1")
        r = await post(panel, "/callbacks/abandoned/call", csrf, number=NUMBER)
        assert r.status == 303 and r.headers["Location"] == "/agent"
        [cb] = await ctx.callbacks.open_list()
        assert cb.assigned_extension == "1001"
        woken = await asyncio.wait_for(listener.messages.get(), 3)
        assert woken == {"callback_id": cb.id, "extension": "1001"}
    finally:
        await stop_listening(ctx, task)

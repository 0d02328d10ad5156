"""The live board's pages and JSON through the aiohttp test client (real Redis, both databases)."""

from __future__ import annotations

import re
from datetime import timedelta

from callcenter.shifts import queue_name
from queue_stats.congestion import CongestionWatch
from queue_stats.live import LiveQueues

PAGES = ("/board", "/board/wall", "/board/live.json", "/board/figures.json")


async def test_only_supervisors_and_admins_see_the_board(panel):
    for path in PAGES:
        r = await panel.client.get(path, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/login?next="), path
    for who, status in (("agent1", 403), ("officer", 403), ("sup", 200), ("admin", 200)):
        await panel.login(who)
        for path in PAGES:
            r = await panel.client.get(path, allow_redirects=False)
            assert r.status == status, (who, path, r.status)
        await panel.client.post("/logout", data={"_csrf": await panel.csrf()})


async def test_board_pages_have_a_block_per_queue_and_no_inline_code(panel):
    await panel.login("sup")
    s = panel.ctx.settings
    for path in ("/board", "/board/wall"):
        html = await (await panel.client.get(path)).text()
        for team in s.teams:
            for shift in s.shifts:
                assert f'data-queue="{queue_name(team.id, shift.id)}"' in html, path
        assert "Người gọi đang chờ" in html  # Vietnamese first
        assert "vendor/chart.min.js?v=" in html and "board.js?v=" in html
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
        assert " style=" not in html
    wall = await (await panel.client.get("/board/wall")).text()
    assert 'class="wall"' in wall and "<nav>" not in wall, "the TV has nothing to click"


async def test_live_json_gives_the_queues_and_the_alarms_in_force(panel):
    ctx = panel.ctx
    q = queue_name(ctx.settings.teams[0].id, ctx.settings.shifts[0].id)
    now = ctx.clock.now()
    live = LiveQueues(ctx.bus, ctx.clock)
    live.member_added(q, "1001", "free", True, "meal", now)
    for i in range(ctx.settings.stats.congestion.callers_waiting):
        live.caller_joined(q, f"pbx-{i}.1", f"09{i:08d}", i + 1, now - timedelta(seconds=i))
    await live.flush()
    changes = await CongestionWatch(live, ctx.bus, ctx.db, ctx.settings, ctx.clock).check()
    assert [c.state for c in changes] == ["raised"]

    await panel.login("sup")
    data = await (await panel.client.get("/board/live.json")).json()
    assert data["at"] == now.isoformat()
    state = data["queues"][q]
    assert [c["caller"] for c in state["waiting"]][:2] == ["0900000000", "0900000001"]
    assert state["members"] == [
        {
            "extension": "1001",
            "name": "1001",
            "state": "paused",
            "since": now.isoformat(),
            "reason": "meal",
        }
    ]
    assert data["alarms"][q]["state"] == "raised"
    assert data["alarms"][q]["reasons"] == ["callers_waiting"]

    figures = await (await panel.client.get("/board/figures.json")).json()
    assert len(figures["hourly"]) == 24 and figures["hourly"][0]["hour"] == 0
    assert figures["total"]["offered"] == 0 and figures["queues"] == {}
    [alarm] = figures["alarms"]
    assert alarm["queue"] == q and alarm["state"] == "raised"
    assert ctx.settings.shifts[0].name in alarm["label"]

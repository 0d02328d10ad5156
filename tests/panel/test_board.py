"""The live board's pages and JSON through the aiohttp test client (real Redis, both databases)."""

from __future__ import annotations

import re
from datetime import timedelta

from callcenter.live import LiveState
from callcenter.models import Supervision
from callcenter.shifts import queue_name
from queue_stats.congestion import CongestionWatch
from queue_stats.live import LiveQueues
from tests.browser import ARTIFACTS
from tests.panel.conftest import PASSWORD

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
    live = LiveState(ctx.bus, ctx.clock)
    live.member_added(q, "1001", "free", True, "meal", now)
    for i in range(ctx.settings.stats.congestion.callers_waiting):
        live.caller_joined(q, f"pbx-{i}.1", f"09{i:08d}", i + 1, now - timedelta(seconds=i))
    await live.flush()
    watch = CongestionWatch(
        LiveQueues(ctx.bus, ctx.clock), ctx.bus, ctx.db, ctx.settings, ctx.clock
    )
    changes = await watch.check()
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


async def congest(ctx, q: str) -> tuple[LiveState, CongestionWatch]:  # type: ignore[no-untyped-def]
    """Enough callers in ``q`` to raise its alarm for their number (someone is free)."""
    now = ctx.clock.now()
    live = LiveState(ctx.bus, ctx.clock)
    live.member_added(q, "1001", "free", False, None, now)
    for i in range(ctx.settings.stats.congestion.callers_waiting):
        live.caller_joined(q, f"pbx-{i}.1", f"09{i:08d}", i + 1, now)
    await live.flush()
    watch = CongestionWatch(
        LiveQueues(ctx.bus, ctx.clock), ctx.bus, ctx.db, ctx.settings, ctx.clock
    )
    assert [c.state for c in await watch.check()] == ["raised"]
    return live, watch


async def test_an_escalated_alarm_shows_all_its_reasons_and_its_start(panel):
    ctx = panel.ctx
    q = queue_name(ctx.settings.teams[0].id, ctx.settings.shifts[0].id)
    began = ctx.clock.now()
    _live, watch = await congest(ctx, q)
    ctx.clock.advance(timedelta(seconds=ctx.settings.stats.congestion.longest_wait_seconds))
    assert [(c.state, c.added) for c in await watch.check()] == [("escalated", ("longest_wait",))]

    await panel.login("sup")
    alarm = (await (await panel.client.get("/board/live.json")).json())["alarms"][q]
    assert alarm["state"] == "escalated"
    assert alarm["reasons"] == ["callers_waiting", "longest_wait"]
    assert alarm["since"] == began.isoformat()
    figures = await (await panel.client.get("/board/figures.json")).json()
    assert [(a["state"], a["reasons"], a["added"]) for a in figures["alarms"]] == [
        ("escalated", ["callers_waiting", "longest_wait"], ["longest_wait"]),
        ("raised", ["callers_waiting"], ["callers_waiting"]),
    ]


async def test_the_board_page_follows_an_alarm_that_gets_worse(panel, browser):
    ctx = panel.ctx
    q = queue_name(ctx.settings.teams[0].id, ctx.settings.shifts[0].id)
    block = f'article[data-queue="{q}"]'
    base = str(panel.client.make_url("/")).rstrip("/")
    page = await browser.new_page(viewport={"width": 1366, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", "sup")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button.primary")
        await page.wait_for_load_state("domcontentloaded")
        await page.goto(f"{base}/board")
        await page.wait_for_selector("#ws-status[data-state=open]", state="attached")
        await page.wait_for_selector("#board[data-loaded]", state="attached")

        names = await page.evaluate(
            """() => Object.fromEntries(Array.from(
                 document.getElementById('board-names').content.querySelectorAll('[data-c]'),
                 (el) => [el.dataset.c, el.textContent]))"""
        )
        raised_at = ctx.clock.now()
        _live, watch = await congest(ctx, q)
        await page.wait_for_selector(f"{block}.congested p.alarm:not([hidden])", timeout=10_000)
        text = await page.inner_text(f"{block} p.alarm")
        assert names["callers_waiting"] in text and names["longest_wait"] not in text

        # later the first caller has waited past the threshold: the block, the
        # banner and today's log say so, the alarm still dated from its start
        ctx.clock.advance(timedelta(minutes=2))
        assert [c.state for c in await watch.check()] == ["escalated"]
        await page.wait_for_function(
            "([sel, t]) => document.querySelector(sel).textContent.includes(t)",
            arg=[f"{block} p.alarm", names["longest_wait"]],
            timeout=10_000,
        )
        text = await page.inner_text(f"{block} p.alarm")
        assert names["callers_waiting"] in text
        assert f"{raised_at.astimezone(ctx.settings.tz):%H:%M}" in text
        banner = await page.inner_text("#congestion-banner")
        assert names["callers_waiting"] in banner and names["longest_wait"] in banner
        entry = page.locator("#alarm-log li[data-state=escalated]")
        await entry.wait_for(timeout=10_000)
        logged = await entry.inner_text()
        assert "nghẽn nặng thêm" in logged and names["longest_wait"] in logged
        assert names["callers_waiting"] not in logged, "only what the escalation added"
        await page.screenshot(path=ARTIFACTS / "board-escalated.png", full_page=True)

        # a page opened now (or after a reconnection) shows the same
        await page.reload()
        await page.wait_for_selector("#board[data-loaded]", state="attached")
        text = await page.inner_text(f"{block} p.alarm")
        assert names["callers_waiting"] in text and names["longest_wait"] in text
        assert errors == []
    finally:
        await page.close()


async def test_the_supervision_audit_lists_each_use(panel):
    now = panel.ctx.clock.now()
    async with panel.ctx.db.session() as s:
        s.add(
            Supervision(
                channel_id="spy-audit1",
                user_id=panel.users["sup"].id,
                username="Sup",
                supervisor_extension="1901",
                agent_extension="1003",
                call_uniqueid="pbx-1.1",
                mode="whisper",
                started_at=now - timedelta(minutes=2),
                ended_at=now,
                result="ended",
            )
        )
    await panel.login("sup")
    r = await panel.client.get("/supervisions", allow_redirects=False)
    assert r.status == 200
    html = await r.text()
    assert 'data-mode="whisper" data-agent="1003"' in html
    assert "Nhắc nhỏ" in html and "pbx-1.1" in html and "1901" in html
    board = await (await panel.client.get("/board")).text()
    assert 'href="/supervisions"' in board and 'data-mode-barge="Tham gia"' in board

"""The supervisors' live board and the wallboard in a real browser, over real calls.

Debian's Chromium (Playwright) shows /board from the application and
/board/wall from a second panel process; the real Asterisk's queue events
reach both through the ingest, LiveQueues, Redis and the WebSocket.  Agents
pause through real AMI, a real call joins the queue, the congestion alarm
goes up and comes down, and the wallboard's panel process is restarted under
it (the TV page must carry on by itself).  Screenshots in
test-artifacts/browser/.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from accounts.identity import Actor
from callcenter.shifts import queue_name, shift_at
from core.clock import Clock
from core.settings import Congestion
from hotline.app import Application, PanelOnly
from queue_stats.congestion import history
from tests.browser import ARTIFACTS
from tests.lab import Lab, eventually

pytestmark = pytest.mark.asterisk

PASSWORD = "mật khẩu đủ dài 2026"


@pytest.fixture
async def congested_app(carrier: Lab) -> AsyncIterator[Application]:
    """The application with an alarm at one caller waiting (cleared when nobody waits)."""
    congestion = Congestion(
        callers_waiting=1,
        longest_wait_seconds=3600,
        all_busy_growing_seconds=3600,
        clear_ratio=0.5,
    )
    s = carrier.settings
    settings = s.model_copy(update={"stats": s.stats.model_copy(update={"congestion": congestion})})
    application = Application(settings, clock=Clock(), scheduler_interval=2)
    async with application:
        await application.ami.wait_logged_in(30)
        await asyncio.wait_for(application.scheduler.reconciled.wait(), 30)
        yield application


async def sign_in(page, base: str, username: str, then: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_load_state("domcontentloaded")
    await page.goto(f"{base}{then}")


async def test_board_and_wallboard_follow_real_calls_pauses_and_congestion(
    carrier: Lab, congested_app: Application, browser
):
    app = congested_app
    ctx = app.panel
    base = f"http://127.0.0.1:{app.settings.panel.port}"
    wall_port = app.settings.panel.port + 1
    wall_base = f"http://127.0.0.1:{wall_port}"
    shift = shift_at(app.settings.shifts, datetime.now(UTC), app.settings.tz)
    q = queue_name("t1022", shift.id)
    block = f'article[data-queue="{q}"]'
    extensions = sorted(
        a.extension for a in app.settings.agents if a.team == "t1022" and a.shift == shift.id
    )
    suffix = random.randrange(10**6)
    admin = Actor.of(
        await ctx.accounts.create_user(
            None,
            {
                "username": f"admin{suffix}",
                "display_name": "Admin",
                "role": "admin",
                "password": PASSWORD,
            },
        )
    )
    supervisor = f"giamsat{suffix}"
    await ctx.accounts.create_user(
        admin,
        {
            "username": supervisor,
            "display_name": "Giám sát ca",
            "role": "supervisor",
            "password": PASSWORD,
        },
    )
    # the wallboard's own panel process (a TV signed in once by a supervisor)
    wall_panel: PanelOnly | None = PanelOnly(app.settings, port=wall_port)
    await wall_panel.__aenter__()
    console: list[str] = []
    try:
        board_ctx = await browser.new_context(viewport={"width": 1366, "height": 768})
        page = await board_ctx.new_page()
        page.on("console", lambda m: console.append(f"board {m.type}: {m.text}"))
        page.on(
            "response",
            lambda r: (
                console.append(f"board error: {r.status} {r.url}") if r.status >= 400 else None
            ),
        )
        await sign_in(page, base, supervisor, "/board")
        wall_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
        wall = await wall_ctx.new_page()
        wall.on("console", lambda m: console.append(f"wall {m.type}: {m.text}"))
        await sign_in(wall, wall_base, supervisor, "/board/wall")
        for p in (page, wall):
            await p.wait_for_selector("#ws-status[data-state=open]", state="attached")
            await p.wait_for_selector("#board[data-loaded]", state="attached")
            # the on-duty queue's members, from the real Asterisk
            await p.wait_for_function(
                "([sel, n]) => document.querySelectorAll(sel).length >= n",
                arg=[f"{block} ul.members li[data-state]", len(extensions)],
                timeout=20_000,
            )
            await p.wait_for_selector("#board[data-figures]", state="attached")
        assert "on-duty" in (await page.get_attribute(block, "class") or "")
        await page.screenshot(path=os.path.join(ARTIFACTS, "board-1-quiet.png"))

        # every agent pauses: the board shows them paused, with the reason
        for ext in extensions:
            await ctx.control.pause(ext, "training")
        for p in (page, wall):
            await p.wait_for_function(
                "([sel, n]) => document.querySelectorAll(sel).length === n",
                arg=[f"{block} ul.members li[data-state=paused]", len(extensions)],
                timeout=15_000,
            )
            assert await p.inner_text(f"{block} [data-k=paused]") == str(len(extensions))
            assert await p.inner_text(f"{block} [data-k=free]") == "0"
        why = await page.locator(f"{block} ul.members li[data-state=paused] .why").all_inner_texts()
        assert set(why) == {"Tập huấn"}, why

        # the wallboard's panel process restarts under the TV, which carries on by itself
        await wall_panel.__aexit__(None, None, None)
        wall_panel = None
        await wall.wait_for_selector(
            "#ws-status[data-state=lost]", state="attached", timeout=10_000
        )
        wall_panel = PanelOnly(app.settings, port=wall_port)
        await wall_panel.__aenter__()
        await wall.wait_for_selector(
            "#ws-status[data-state=open]", state="attached", timeout=15_000
        )

        # a real call joins the queue: it is listed, its wait ticks, the alarm goes up
        number = "09" + "".join(random.choices("0123456789", k=8))
        since = datetime.now(UTC)
        await carrier.carrier.call(
            "1022", caller_id=f'"Tran Thi B" <{number}>', digits="1", hold=40
        )
        for p in (page, wall):
            await p.wait_for_selector(
                f"{block} ol.waiting li .who:has-text('{number}')", timeout=30_000
            )
            await p.wait_for_selector(f"{block}.congested p.alarm:not([hidden])", timeout=10_000)
            assert await p.is_visible("#congestion-banner")
            assert await p.inner_text(f"{block} [data-k=waiting]") == "1"
        first = await page.inner_text(f"{block} [data-k=longest]")
        await page.wait_for_timeout(2200)
        later = await page.inner_text(f"{block} [data-k=longest]")
        assert later != first and later.split(":") > first.split(":"), (first, later)
        assert "Nghẽn mạng" in await page.inner_text(f"{block} p.alarm")
        await page.screenshot(path=os.path.join(ARTIFACTS, "board-2-waiting-congested.png"))
        await wall.screenshot(path=os.path.join(ARTIFACTS, "wall-1-congested.png"))
        [raised] = [a for a in await history(app.db, since) if a.queue == q]
        assert raised.state == "raised" and raised.reasons == "callers_waiting"

        # one agent comes back: the call is answered, the queue empties, the alarm clears
        await ctx.control.resume(extensions[0])
        for p in (page, wall):
            await p.wait_for_selector(f"{block} ol.waiting li.empty", timeout=30_000)
            await p.wait_for_selector(f"{block}:not(.congested)", timeout=10_000)
            await p.wait_for_selector("#congestion-banner[hidden]", state="attached")
            await p.wait_for_selector(f"{block} ul.members li[data-state=talking]", timeout=10_000)
        await page.screenshot(path=os.path.join(ARTIFACTS, "board-3-answered.png"), full_page=True)
        await wall.screenshot(path=os.path.join(ARTIFACTS, "wall-2-after-restart.png"))

        async def cleared():
            rows = [a for a in await history(app.db, raised.at) if a.queue == q]
            return rows if rows and rows[0].state == "cleared" else None

        await eventually(cleared, 10)
        # today's log and figures follow without waiting for the minute's refresh
        await page.wait_for_function(
            "() => document.querySelectorAll('#alarm-log li:not(.empty)').length >= 2",
            timeout=10_000,
        )
        log_text = await page.inner_text("#alarm-log")
        assert "bắt đầu nghẽn" in log_text and "hết nghẽn" in log_text, log_text
        assert int(await page.inner_text("#today-figures tfoot td:nth-child(2)")) >= 1
        # today's service level and abandon rate: the block's tiles and the table
        # show what figures.json gives, on the board and the wallboard alike
        for p in (page, wall):
            data = await p.evaluate("() => fetch('/board/figures.json').then((r) => r.json())")
            await p.reload()
            await p.wait_for_selector("#board[data-figures]", state="attached")
            f = data["queues"][q]
            for key in ("service_level", "abandon_rate"):
                shown = "—" if f[key] is None else f"{f[key]} %"
                assert await p.inner_text(f"{block} [data-k={key}]") == shown, key
        headers = await page.locator("#today-figures thead th").all_inner_texts()
        assert "Mức phục vụ (%)" in headers and "Tỷ lệ bỏ dở (%)" in headers, headers
        assert await page.is_visible("dl.kpi-defs dd[data-k=service_level]")
        # the wall's socket and fetches fail while its panel is down: expected
        # (Chromium's own favicon request 404s: page resources are checked by status above)
        errors = [
            c for c in console if c.startswith("board error") and "Failed to load resource" not in c
        ]
        assert not errors, errors
        await board_ctx.close()
        await wall_ctx.close()
    finally:
        for ext in extensions:
            await ctx.control.resume(ext)
        if wall_panel is not None:
            await wall_panel.__aexit__(None, None, None)

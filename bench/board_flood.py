"""The live board in a flood: 100 callers joining one queue, drawn by a real browser.

    sudo .venv/bin/python -m bench.board_flood               # bench/results/board_flood.{json,md}
    sudo .venv/bin/python -m bench.board_flood --callers 300 --rounds 1

The panel runs in this process on real Redis and SQLite; Debian's Chromium
(Playwright) shows ``/board`` signed in as a supervisor.  ``LiveState`` (the
application's copy, as the AMI ingest drives it) takes callers into one queue,
one at a time, each written to Redis and published on the ``board`` topic,
and the page updates that queue's block.  Measured, per caller joining:

- **publish -> drawn**: from just before ``LiveState.flush()`` to the page
  having drawn the change (a listener registered after board.js's own, so it
  runs once the block is updated), both on this machine's clock;
- **render**: the page's own time to update the block for that message
  (window capture listener -> document listener, ``performance.now()``);

then, with every caller waiting, the page's long tasks (> 50 ms, the browser's
own ``longtask`` entries) over 10 s of the waits ticking, and a full reload:
navigation to the whole picture drawn from ``/board/live.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import time
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from aiohttp import web

from accounts.identity import Actor
from callcenter.live import LiveState
from callcenter.shifts import queue_name, shift_at
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import load_settings
from hotline.app import panel_context
from hotline.system import PROJECT_ROOT, migrate
from panel.app import make_app

RESULTS = PROJECT_ROOT / "bench" / "results"
CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "mật khẩu đủ dài 2026"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Registered after board.js: "drawn" marks run once its listener has updated the block.
PROBE = """
() => {
  window.__drawn = [];
  window.__render = [];
  let t0 = 0;
  window.addEventListener("hotline:queue", () => { t0 = performance.now(); }, true);
  document.addEventListener("hotline:queue", (e) => {
    const t1 = performance.now();
    window.__render.push(t1 - t0);
    window.__drawn.push([e.detail.state.waiting.length, performance.timeOrigin + t1]);
  });
  window.__long = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__long.push(entry.duration);
  }).observe({ type: "longtask", buffered: true });
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k], 2)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": round(max(values), 2),
    }


async def run(callers: int, rounds: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    home = Path(tempfile.mkdtemp(prefix="board-flood-"))
    cfg = tomllib.loads((PROJECT_ROOT / "config" / "hotline.example.toml").read_text())
    prefix = f"benchboard{uuid.uuid4().hex[:6]}"
    port = free_port()
    cfg["database_url"] = f"sqlite:///{home / 'hotline.db'}"
    cfg["panel"].update(redis_prefix=prefix, port=port)
    (home / "config").mkdir()
    (home / "config" / "hotline.toml").write_text(tomli_w.dumps(cfg))
    settings = load_settings(home / "config" / "hotline.toml", env={})
    migrate(settings)
    clock = Clock()
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    ctx = panel_context(settings, db=db, bus=bus, clock=clock, control=None)
    admin = Actor.of(
        await ctx.accounts.create_user(
            None, {"username": "admin", "display_name": "A", "role": "admin", "password": PASSWORD}
        )
    )
    await ctx.accounts.create_user(
        admin,
        {"username": "sup", "display_name": "Giám sát", "role": "supervisor", "password": PASSWORD},
    )
    runner = web.AppRunner(make_app(ctx), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    shift = shift_at(settings.shifts, clock.now(), settings.tz)
    team = settings.teams[0].id
    q = queue_name(team, shift.id)
    agents = [a for a in settings.agents if a.team == team and a.shift == shift.id]
    drawn_ms: list[float] = []
    render_ms: list[float] = []
    reload_ms: list[float] = []
    long_tasks: list[float] = []
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = await (
                await browser.new_context(viewport={"width": 1366, "height": 768})
            ).new_page()
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "sup")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button.primary")
            await page.wait_for_load_state("domcontentloaded")
            for r in range(rounds):
                live = LiveState(bus, clock, names={a.extension: a.name for a in agents})
                for a in agents:
                    live.member_added(q, a.extension, "talking", False, None, clock.now())
                await live.flush()
                await page.goto(f"{base}/board")
                await page.wait_for_selector("#board[data-loaded]", state="attached")
                await page.evaluate(PROBE)
                sent: dict[int, float] = {}
                for i in range(1, callers + 1):
                    live.caller_joined(q, f"pbx-{r}-{i}.1", f"09{i:08d}", i, clock.now())
                    sent[i] = time.time() * 1000
                    await live.flush()
                    await page.wait_for_function(
                        "(n) => window.__drawn.some(([w]) => w === n)", arg=i, polling="raf"
                    )
                drawn = await page.evaluate("window.__drawn")
                drawn_ms += [at - sent[n] for n, at in drawn if n in sent]
                render_ms += await page.evaluate("window.__render")
                await page.evaluate("window.__long = []")
                await page.wait_for_timeout(10_000)  # the waits tick every second
                long_tasks += await page.evaluate("window.__long")
                shown = await page.locator(f'article[data-queue="{q}"] ol.waiting li').count()
                assert shown == callers, (shown, callers)
                t0 = time.perf_counter()
                await page.reload()
                await page.wait_for_function(
                    "([sel, n]) => document.querySelectorAll(sel).length === n",
                    arg=[f'article[data-queue="{q}"] ol.waiting li[data-since]', callers],
                    polling="raf",
                )
                reload_ms.append((time.perf_counter() - t0) * 1000)
                for i in range(1, callers + 1):
                    live.caller_left(q, f"pbx-{r}-{i}.1")
                await live.flush()
            await browser.close()
    finally:
        await runner.cleanup()
        keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()
    return {
        "at": datetime.now(UTC).isoformat(),
        "callers": callers,
        "rounds": rounds,
        "publish_to_drawn_ms": summary(drawn_ms),
        "render_ms": summary(render_ms),
        "long_tasks_over_10s_with_all_waiting": len(long_tasks),
        "long_task_ms": summary(long_tasks) if long_tasks else None,
        "reload_to_all_drawn_ms": summary(reload_ms),
    }


def markdown(r: dict[str, Any]) -> str:
    def row(name: str, s: dict[str, float]) -> str:
        return f"| {name} | {s['n']} | {s['p50']} | {s['p90']} | {s['p99']} | {s['max']} |"

    return "\n".join(
        [
            f"# Live board flood ({r['callers']} callers into one queue, {r['rounds']} rounds)",
            "",
            f"Run {r['at']}; Chromium {CHROMIUM}, panel and Redis on this machine.",
            "",
            "| measure | n | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
            row("caller joins: publish -> drawn", r["publish_to_drawn_ms"]),
            row("caller joins: the page's render of the block", r["render_ms"]),
            row(f"reload with {r['callers']} waiting -> all drawn", r["reload_to_all_drawn_ms"]),
            "",
            f"Long tasks (> 50 ms) in 10 s with all {r['callers']} waiting and ticking: "
            f"{r['long_tasks_over_10s_with_all_waiting']}.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--callers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    result = asyncio.run(run(args.callers, args.rounds))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "board_flood.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (RESULTS / "board_flood.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

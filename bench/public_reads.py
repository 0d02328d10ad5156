"""The public side after a news article: status look-ups and the portal under wrk,
side by side with the staff panel's ticket read, on one process.

    .venv/bin/python -m bench.public_reads                  # the figures in bench/results
    .venv/bin/python -m bench.public_reads --runs 1 -d 5    # a quick look
    git worktree add --detach /tmp/before main
    .venv/bin/python -m bench.public_reads --compare /tmp/before --profile
                                                # before and after in one run, profiled

It migrates a fresh SQLite database (or PostgreSQL with ``--database
postgresql``), creates ``--tickets`` reports through TicketService as the desk
would (bench.ticket_reads.seed), then ``--published`` more that an agency
answered and a supervisor closed with the citizen's consent to publish (the
portal shows those).  One server process then runs the staff panel and the
public site on their own ports on one event loop, as ``hotline run`` does
(uvloop, no access log).

wrk (Debian's) loads, in turn, with the runs interleaved so the machine's
noise falls on each alike:

- ``POST /status`` (public): a tracking number and the last 3 digits of the
  citizen's phone, rotating over every report: the citizen's status page;
- ``GET /reports`` (public): the portal's first page;
- ``GET /api/v1/tickets/{code}`` (staff, bearer token): the panel's ticket read.

With ``--compare CHECKOUT`` each run also measures the server of another
checkout (e.g. main, "before") on the same database, the two servers in turn,
one at a time.  With ``--profile`` one more run of each public request is made
under cProfile (the loop thread's CPU; not counted: the profiler slows the
server), and where the time goes is written next to the results.

Targets (the citizens' issue): status ≥ 1,000 req/s, portal ≥ 2,000 req/s,
p99 ≤ 50 ms, on SQLite.  Every answer must be a 200 (a status look-up that
fails would be a 404): the count of others is reported and a run with any is
flagged.  Results go to bench/results/public_reads[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import tomli_w

from accounts.identity import Actor
from accounts.service import AccountService
from bench.ticket_reads import (
    PASSWORD,
    _forget_redis,
    cpu_seconds,
    machine_cpu,
    pg,
    seed,
    stop_server,
    token_for,
)
from core.clock import Clock
from core.db import Database
from core.settings import Settings, load_settings
from hotline import system
from tests.helpers import EXAMPLE
from tickets.models import Ticket
from tickets.service import TicketService

HERE = Path(__file__).parent
LUA = HERE / "public_reads.lua"
# apart from the lab's, a hotline's and bench.ticket_reads' ports
PANEL_PORT, PUBLIC_PORT = 28095, 28096
PG_ADMIN_DB = "postgresql://postgres@127.0.0.1:5432"
DISTRICTS = ["Quận 1", "Quận 3", "Quận 5", "Quận Bình Thạnh", "TP Thủ Đức", "Quận Gò Vấp"]


# -- the server (a separate process: python -m bench.public_reads serve ...) -------------


def serve(config: Path) -> None:
    """The panel and the public site on one loop, as ``hotline run`` serves them."""
    from aiohttp import web

    from core import heap
    from core.bus import Bus
    from hotline.app import panel_context, public_site
    from panel.app import make_app

    settings = load_settings(config)

    async def run() -> None:
        db = Database(settings.database)
        bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
        clock = Clock()
        ctx = panel_context(settings, db=db, bus=bus, clock=clock, control=None)
        panel = make_app(ctx)
        public = public_site(settings, db=db, bus=bus, clock=clock, panel=panel)
        assert public is not None, "the public site is on its own port in this bench"
        runners = []
        for app, port in ((panel, PANEL_PORT), (public.app, PUBLIC_PORT)):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
            runners.append(runner)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if os.environ.get("BENCH_NO_HEAP_SETTLE") != "1":
            heap.settle()  # as `hotline run` does once started
        pauses = gc_pauses()
        print("ready", flush=True)
        await stop.wait()
        # the full collections' stops of the loop, at the end of server.log
        full = sorted(pauses)
        print(
            f"full garbage collections: {len(full)}, pauses ms: "
            + " ".join(f"{p:.1f}" for p in full),
            file=sys.stderr,
            flush=True,
        )
        for runner in runners:
            await runner.cleanup()
        await bus.close()
        await db.close()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


def gc_pauses() -> list[float]:
    """The milliseconds each full (generation 2) garbage collection takes from now on."""
    import gc

    pauses: list[float] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(timed)
    return pauses


# -- preparing the database --------------------------------------------------------------


def write_config(home: Path, database_url: str, prefix: str) -> Path:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["database_url"] = database_url
    cfg["panel"] = {"redis_prefix": prefix}
    cfg["public"] = {"enabled": True, "host": "127.0.0.1", "port": PUBLIC_PORT, "path_prefix": ""}
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


async def publish(settings: Settings, count: int) -> None:
    """``count`` more reports, answered by the agency and closed, that may be published."""
    from sqlalchemy import select

    from accounts.models import User
    from tickets.models import Agency

    db = Database(settings.database)
    clock = Clock()
    rnd = random.Random(311)
    try:
        async with db.session() as s:
            admin = await s.scalar(select(User).where(User.username == "benchadmin"))
            agent = await s.scalar(select(User).where(User.username == "benchagent"))
            root = await s.scalar(select(Agency).where(Agency.code == "so-gtvt"))
        assert admin and agent and root
        accounts = AccountService(db, settings, clock)
        made = {}
        for name, role, extra in (
            ("benchsup", "supervisor", {}),
            ("benchofficer", "agency", {"agency_id": root.id}),
        ):
            made[name] = Actor.of(
                await accounts.create_user(
                    Actor.of(admin),
                    {
                        "username": name,
                        "display_name": name,
                        "role": role,
                        "password": PASSWORD,
                        **extra,
                    },
                )
            )
        service = TicketService(db, settings, clock)
        for i in range(count):
            t = await service.create(
                Actor.of(agent),
                {
                    "channel": "phone",
                    "citizen_phone": f"09{rnd.randrange(10**8):08d}",
                    "citizen_name": f"Trần Thị {i}",
                    "domain": "state",
                    "topic": rnd.choice(["urban", "traffic", "flooding", "trees"]),
                    "level": 2,
                    "agency_id": root.id,
                    "district": rnd.choice(DISTRICTS),
                    "publish_consent": True,
                    "description": f"Phản ánh công khai số {i}: cây đổ chắn đường sau mưa lớn.",
                },
            )
            t = await service.answer(
                made["benchofficer"], t.id, t.version, "Đã cưa cây, thông đường."
            )
            await service.close(made["benchsup"], t.id, t.version)
    finally:
        await db.close()


async def lookups(settings: Settings) -> list[tuple[str, str, str]]:
    """(tracking number, last 3 phone digits, code) of every report."""
    from sqlalchemy import select

    db = Database(settings.database)
    try:
        async with db.session() as s:
            rows = (await s.execute(select(Ticket.number, Ticket.citizen_phone, Ticket.code))).all()
        return [(n, p[-3:], c) for n, p, c in rows if p]
    finally:
        await db.close()


# -- measuring ---------------------------------------------------------------------------


def wrk(port: int, lua_args: list[str], args: argparse.Namespace, seconds: int) -> dict[str, Any]:
    cmd = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}", "--", *lua_args,
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"^RESULT (\{.*\})$", out.stdout, re.M)
    if not m:
        raise RuntimeError(f"no result from wrk:\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(m.group(1)))


async def check_answers(token: str, first: tuple[str, str, str]) -> None:
    """Real answers before loading: the status page, the portal with reports, the ticket."""
    import aiohttp

    number, last3, code = first
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"http://127.0.0.1:{PUBLIC_PORT}/status", data={"number": number, "check": last3}
        ) as r:
            assert r.status == 200, (r.status, await r.text())
        async with http.get(f"http://127.0.0.1:{PUBLIC_PORT}/reports") as r:
            body = await r.text()
            assert r.status == 200 and "cây đổ chắn đường" in body.lower(), r.status
        async with http.get(
            f"http://127.0.0.1:{PANEL_PORT}/api/v1/tickets/{code}",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200 and (await r.json())["code"] == code, r.status


# Runs the server under cProfile (the loop thread's CPU, time.thread_time), started by
# SIGUSR1 and written by SIGUSR2: the same for any checkout, so --compare's "before"
# can be profiled as well as this one.
PROFILED = """
import cProfile, signal, sys, time, runpy
out = sys.argv[1]
prof = cProfile.Profile(time.thread_time)
def start(*_a):
    prof.enable()
def stop(*_a):
    prof.disable()
    prof.dump_stats(out)
signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
sys.argv = ["bench.public_reads", *sys.argv[2:]]
runpy.run_module("bench.public_reads", run_name="__main__")
"""


def start_server(
    config: Path, log: Path, root: Path = HERE.parent, profile: Path | None = None
) -> subprocess.Popen[str]:
    """The server of the checkout at ``root`` (this one, or --compare's)."""
    serve_args = ["serve", "--config", str(config)]
    if profile is None:
        cmd = [sys.executable, "-m", "bench.public_reads", *serve_args]
    else:
        cmd = [sys.executable, "-c", PROFILED, str(profile), *serve_args]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=log.open("a"), text=True, cwd=root, env=env
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"the server did not start; see {log}")
    return proc


TARGETS = {
    "status": ("POST /status (public)", PUBLIC_PORT, 1000),
    "portal": ("GET /reports (public)", PUBLIC_PORT, 2000),
    "ticket": ("GET /api/v1/tickets/{code} (staff)", PANEL_PORT, None),
}


def profile_summary(path: Path, n: int = 30) -> str:
    """The loop thread's CPU by package, by function (own time), and our code's
    cumulative time (approximate: coroutines re-enter)."""
    import io
    import pstats

    from bench.ticket_reads import by_package

    buf = io.StringIO()
    st = pstats.Stats(str(path), stream=buf)
    packages = by_package(st)
    total = sum(t for _, t in packages) or 1.0
    buf.write(f"loop-thread CPU {total:.2f} s, by package:\n")
    for where, t in packages[:25]:
        buf.write(f"  {100 * t / total:5.1f} %  {t:6.3f} s  {where}\n")
    buf.write("\n")
    st.sort_stats("tottime").print_stats(n)
    st.sort_stats("cumulative").print_stats(r"/(public|panel|tickets|accounts|core)/", n)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve")
    s.add_argument("--config", type=Path, required=True)
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--tickets", type=int, default=3000)
    ap.add_argument("--published", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-d", "--duration", type=int, default=15, help="seconds per wrk run")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-c", "--connections", type=int, default=32)
    ap.add_argument("--tag", default="", help="results go to public_reads[-TAG].{json,md}")
    ap.add_argument("--home", default="/tmp/hotline-bench-public")
    ap.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="another checkout (e.g. a worktree of main) measured in the same run, "
        "its server and this one's in turn on the same database",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="one more run of each public request under cProfile (not counted)",
    )
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.config)
        return

    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stem = "public_reads" + (f"-{args.tag}" if args.tag else "")
    tag = uuid.uuid4().hex[:8]
    prefix = f"benchpublic{tag}"
    pg_name = f"hotline_bench_{tag}"
    created_pg = False
    proc: subprocess.Popen[str] | None = None
    # (name, checkout): "this" is this checkout; "before" the one to compare with
    variants = [("this", HERE.parent)]
    if args.compare:
        variants.insert(0, ("before", args.compare.resolve()))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {v: {} for v, _ in variants}
    profiles: dict[str, str] = {}
    try:
        if args.database == "sqlite":
            url = f"sqlite:///{home / 'var' / 'bench.db'}"
        else:
            pg(f"CREATE DATABASE {pg_name}")
            created_pg = True
            url = f"{PG_ADMIN_DB}/{pg_name}"
        config = write_config(home, url, prefix)
        settings = load_settings(config, env={})
        system.migrate(settings)
        t0 = time.perf_counter()
        asyncio.run(seed(settings, args.tickets))
        asyncio.run(publish(settings, args.published))
        rows = asyncio.run(lookups(settings))
        print(f"{len(rows)} reports ready in {time.perf_counter() - t0:.1f} s", flush=True)
        rnd = random.Random(7)
        rnd.shuffle(rows)
        (home / "status.txt").write_text("".join(f"{n} {d}\n" for n, d, _ in rows))
        (home / "codes.txt").write_text("".join(f"{c}\n" for _, _, c in rows))
        token = ""
        lua: dict[str, list[str]] = {}

        def started(root: Path, profile: Path | None = None) -> subprocess.Popen[str]:
            nonlocal token, lua
            p = start_server(config, home / "server.log", root, profile)
            if not token:
                token = asyncio.run(token_for(PANEL_PORT))
                lua = {
                    "status": ["status", str(home / "status.txt")],
                    "portal": ["path", "/reports"],
                    "ticket": ["codes", str(home / "codes.txt"), token],
                }
            asyncio.run(check_answers(token, rows[0]))
            for name, (_label, port, _target) in TARGETS.items():  # warm caches and pools
                wrk(port, lua[name], args, 2)
            return p

        for run in range(1, args.runs + 1):
            for variant, root in variants:
                proc = started(root)
                for name, (_label, port, _target) in TARGETS.items():
                    c0, w0, m0 = cpu_seconds(proc.pid), time.monotonic(), machine_cpu()
                    r = wrk(port, lua[name], args, args.duration)
                    m1 = machine_cpu()
                    r["server_cpu_pct"] = round(
                        100 * (cpu_seconds(proc.pid) - c0) / (time.monotonic() - w0), 1
                    )
                    r["machine_busy_pct"] = round(100 * (m1[0] - m0[0]) / (m1[1] - m0[1]), 1)
                    r["load1"] = round(os.getloadavg()[0], 2)
                    results[variant].setdefault(name, []).append(r)
                    print(
                        f"run {run} {variant:6} {name:7} {r['rps']:8.1f} req/s  "
                        f"p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
                        f"server CPU {r['server_cpu_pct']} %  machine busy "
                        f"{r['machine_busy_pct']} %  load {r['load1']}  "
                        f"not 200: {r['not_200']}  errors "
                        f"{r['err_connect'] + r['err_read'] + r['err_timeout']}",
                        flush=True,
                    )
                stop_server(proc)
                proc = None
        if args.profile:
            for variant, root in variants:
                for name in ("status", "portal"):
                    path = home / f"profile-{variant}-{name}.prof"
                    proc = started(root, path)
                    proc.send_signal(signal.SIGUSR1)
                    r = wrk(TARGETS[name][1], lua[name], args, args.duration)
                    proc.send_signal(signal.SIGUSR2)
                    for _ in range(100):
                        if path.exists():
                            break
                        time.sleep(0.1)
                    time.sleep(0.5)
                    stop_server(proc)
                    proc = None
                    text = profile_summary(path)
                    profiles[f"{variant}.{name}"] = text
                    (out / f"{stem}.profile.{variant}.{name}.txt").write_text(
                        f"{r['rps']:.0f} req/s under cProfile\n\n{text}"
                    )
                    print(f"profiled {variant} {name}: {r['rps']:.0f} req/s under cProfile")
    finally:
        if proc is not None:
            stop_server(proc)
        with contextlib.suppress(Exception):
            asyncio.run(_forget_redis(f"{prefix}*"))
        if created_pg:
            pg(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")

    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} cores; wrk, Redis and the server share them",
        "database": args.database,
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --timeout 10s "
        "-s bench/public_reads.lua",
        "reports": args.tickets + args.published,
        "published": args.published,
        "runs": args.runs,
        "compare": str(args.compare) if args.compare else None,
        "results": results,
    }
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1))
    lines = [
        "| code | request | req/s (median) | target | p50 ms | p99 ms | req/s of each run "
        "| server CPU | machine busy | load (1 min) | not 200 / errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def med(rs: list[dict[str, Any]], k: str) -> float:
        return statistics.median(r[k] for r in rs)

    for name, (label, _port, target) in TARGETS.items():
        for variant, _root in variants:
            rs = results[variant][name]
            bad = sum(r["not_200"] for r in rs)
            errors = sum(r["err_connect"] + r["err_read"] + r["err_timeout"] for r in rs)
            lines.append(
                f"| {variant} | {label} | **{med(rs, 'rps'):.0f}** "
                f"| {f'≥ {target:,}' if target else '—'} "
                f"| {med(rs, 'p50_ms'):.1f} | {med(rs, 'p99_ms'):.1f} "
                f"| {' / '.join(format(r['rps'], '.0f') for r in rs)} "
                f"| {med(rs, 'server_cpu_pct'):.0f} % | {med(rs, 'machine_busy_pct'):.0f} % "
                f"| {med(rs, 'load1'):.1f} | {bad} / {errors} |"
            )
    if args.compare:
        lines.append("")
        for name, (label, _port, _target) in TARGETS.items():
            before = med(results["before"][name], "rps")
            after = med(results["this"][name], "rps")
            lines.append(f"- {label}: {after / before:.1f}× the requests per second of before")
    md = "\n".join(lines)
    (out / f"{stem}.md").write_text(
        f"{summary['when']} — {summary['machine']}; {args.database}, "
        f"{summary['reports']} reports ({args.published} published)\n{summary['wrk']}\n\n{md}\n"
    )
    print()
    print(summary["wrk"])
    print(md)


if __name__ == "__main__":
    main()

"""Ticket API read throughput with wrk, on SQLite and on PostgreSQL side by side.

    .venv/bin/python -m bench.ticket_reads                      # the figures in bench/results
    .venv/bin/python -m bench.ticket_reads --runs 1 -d 5        # a quick look
    .venv/bin/python -m bench.ticket_reads --profile            # plus a cProfile of each server

For each database it migrates a fresh one (SQLite in --home; PostgreSQL a
database of its own, hotline_bench_<random>, dropped at the end), creates
--tickets tickets through TicketService (levels 1-5, about half forwarded to
an agency, as the desk would), then starts the panel alone in its own process
(``panel.app.make_app`` on a PanelContext without AMI, uvloop, no access log,
as ``hotline run`` serves it) and signs an agent in for a bearer token.

wrk (Debian's, /usr/bin/wrk) then loads, in turn, with the runs interleaved
so the machine's noise falls on both databases alike:

- ``GET /api/v1/tickets/{code}``, rotating over every code (bench/ticket_reads.lua);
- ``GET /api/v1/tickets?status=forwarded&per_page=20``.

It reports requests/s and latency p50/p99 per database and query (median of
--runs), the server process's CPU use, and wrk's errors.  With --profile one
more run per database and query is made under cProfile (not counted: the
profiler slows the server) and the top functions are written next to the
results.  Results go to bench/results/ticket_reads.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from accounts.identity import Actor
from accounts.service import AccountService
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings, load_settings
from hotline import system
from tests.helpers import EXAMPLE
from tickets.agencies import AgencyService
from tickets.service import TicketService

HERE = Path(__file__).parent
LUA = HERE / "ticket_reads.lua"
# not the lab's (18080) nor a hotline's (8080); what-if n serves on these + 2n
PORTS = {"sqlite": 28091, "postgresql": 28092}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-reads-password"
LIST_PATH = "/api/v1/tickets?status=forwarded&per_page=20"
TOPICS = ["urban", "traffic", "flooding", "electricity", "water", "trees", "buses", "pollution"]


# -- the server (a separate process: python -m bench.ticket_reads serve ...) --------------


def serve(
    config: Path, port: int, profile: Path | None, engine: dict[str, Any] | None = None
) -> None:
    """The panel alone on ``port``: no AMI, no telephony; until SIGTERM.

    ``engine``: a what-if, the database engine made with these options instead of
    core.db's (the benchmark's process only).
    """
    from aiohttp import web
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from core.db import async_url, install_sqlite_pragmas
    from hotline.app import panel_context
    from panel.app import make_app

    settings = load_settings(config)

    async def run() -> None:
        db = Database(settings.database)
        if engine:
            await db.engine.dispose()
            db.engine = create_async_engine(async_url(settings.database), **engine)
            install_sqlite_pragmas(db.engine.sync_engine)
            db.sessions = async_sessionmaker(db.engine, expire_on_commit=False)
        bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
        ctx = panel_context(settings, db=db, bus=bus, clock=Clock(), control=None)
        app = make_app(ctx)
        probe: Probe | None = None
        if profile is not None:
            probe = Probe(ctx, db)
            app.middlewares.insert(0, probe.middleware)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if probe is not None and profile is not None:
            # SIGUSR1 starts measuring, SIGUSR2 stops and writes <profile> and <profile>.json
            loop.add_signal_handler(signal.SIGUSR1, probe.start)
            loop.add_signal_handler(signal.SIGUSR2, probe.stop, profile)
        print("ready", flush=True)
        await stop.wait()
        await runner.cleanup()
        await bus.close()
        await db.close()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


class Probe:
    """Where a request's time goes, measured in the benchmark's server only (no app change).

    - cProfile with a per-thread CPU clock: the event loop thread's CPU by function;
    - wall time of each service call a read makes (wrapped on the context's instances)
      and of the whole request (a first middleware);
    - the connection pool: new DBAPI connections, closes, checkouts; statements by kind;
    - CPU time of the loop thread and of the other threads (aiosqlite runs SQLite in one
      thread per connection).
    """

    WRAP = {
        "sessions": ["get"],
        "accounts": ["get"],
        "ticket_queries": ["get_by_code", "can_see", "search"],
        "agencies": ["get", "list"],
    }

    def __init__(self, ctx: Any, db: Database) -> None:
        from aiohttp import web
        from sqlalchemy import event

        self.on = False
        self.prof = cProfile.Profile(time.thread_time)
        self.walls: dict[str, list[float]] = {}
        self.counts: dict[str, int] = {}
        for attr, names in self.WRAP.items():
            obj = getattr(ctx, attr)
            for name in names:
                setattr(obj, name, self._timed(f"{attr}.{name}", getattr(obj, name)))
        engine = db.engine.sync_engine
        for ev in ("connect", "checkout", "close", "close_detached", "reset"):
            event.listen(engine.pool, ev, self._counter(f"pool.{ev}"))

        def statement(conn, cursor, text, params, context, many):  # type: ignore[no-untyped-def]
            if self.on:
                words = text.split()
                kind = (
                    " ".join(words[:2])
                    if words[0].upper() != "SELECT"
                    else (
                        "SELECT 1"
                        if text.strip().upper().startswith("SELECT 1")
                        else "SELECT .. FROM "
                        + (words[words.index("FROM") + 1] if "FROM" in words else "?")
                    )
                )
                self.counts[f"sql {kind}"] = self.counts.get(f"sql {kind}", 0) + 1

        event.listen(engine, "before_cursor_execute", statement)

        @web.middleware
        async def middleware(request, handler):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return await handler(request)
            finally:
                if self.on:
                    self.walls.setdefault("request", []).append(time.perf_counter() - t)

        self.middleware = middleware

    def _counter(self, name: str):  # type: ignore[no-untyped-def]
        def count(*_a: Any) -> None:
            if self.on:
                self.counts[name] = self.counts.get(name, 0) + 1

        return count

    def _timed(self, name: str, fn: Any) -> Any:
        async def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **kw)
            finally:
                if self.on:
                    self.walls.setdefault(name, []).append(time.perf_counter() - t)

        return timed

    @staticmethod
    def _thread_cpu() -> dict[str, float]:
        out: dict[str, float] = {}
        main = threading.main_thread().native_id
        for task in Path("/proc/self/task").iterdir():
            try:
                f = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
            key = "loop thread" if int(task.name) == main else "other threads"
            out[key] = out.get(key, 0.0) + cpu
        return out

    def start(self) -> None:
        self.walls.clear()
        self.counts.clear()
        self.cpu0 = self._thread_cpu()
        self.t0 = time.monotonic()
        self.on = True
        self.prof.enable()

    def stop(self, path: Path) -> None:
        self.prof.disable()
        self.on = False
        wall = time.monotonic() - self.t0
        self.prof.dump_stats(str(path))
        self.prof = cProfile.Profile(time.thread_time)
        cpu1 = self._thread_cpu()
        requests = len(self.walls.get("request", [])) or 1
        report = {
            "seconds": round(wall, 2),
            "requests": requests,
            "cpu_pct": {
                k: round(100 * (cpu1.get(k, 0) - self.cpu0.get(k, 0)) / wall, 1) for k in cpu1
            },
            "per_request": {k: round(v / requests, 2) for k, v in sorted(self.counts.items())},
            "wall_ms": {
                k: {
                    "calls_per_request": round(len(v) / requests, 2),
                    "mean": round(1000 * statistics.fmean(v), 2),
                    "p50": round(1000 * statistics.median(v), 2),
                    "ms_per_request": round(1000 * sum(v) / requests, 2),
                }
                for k, v in self.walls.items()
            },
        }
        Path(f"{path}.json").write_text(json.dumps(report, indent=1))


# -- preparing a database ---------------------------------------------------------------


def write_config(home: Path, database_url: str, prefix: str) -> Path:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["database_url"] = database_url
    cfg["panel"] = {"redis_prefix": prefix}
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


async def seed(settings: Settings, tickets: int) -> list[str]:
    """An admin, an agent, two agencies and ``tickets`` tickets; returns their codes."""
    db = Database(settings.database)
    clock = Clock()
    rnd = random.Random(1022)
    try:
        accounts = AccountService(db, settings, clock)
        admin = Actor.of(
            await accounts.create_user(
                None,
                {
                    "username": "benchadmin",
                    "display_name": "Bench",
                    "role": "admin",
                    "password": PASSWORD,
                },
            )
        )
        agent = Actor.of(
            await accounts.create_user(
                admin,
                {
                    "username": "benchagent",
                    "display_name": "Agent",
                    "role": "agent",
                    "extension": settings.agents[0].extension,
                    "password": PASSWORD,
                },
            )
        )
        agencies = AgencyService(db, clock)
        root = await agencies.create(
            admin, {"kind": "department", "code": "so-gtvt", "name": "Sở Giao thông Vận tải"}
        )
        child = await agencies.create(
            admin,
            {"kind": "district", "code": "q1", "name": "UBND Quận 1", "parent_id": root.id},
        )
        service = TicketService(db, settings, clock)
        codes = []
        for i in range(tickets):
            level = rnd.choices([1, 2, 3, 4, 5], weights=[15, 60, 10, 5, 10])[0]
            data: dict[str, Any] = {
                "channel": rnd.choice(["phone", "phone", "phone", "sms", "email"]),
                "citizen_phone": f"09{rnd.randrange(10**8):08d}",
                "citizen_name": f"Nguyễn Văn {i}",
                "citizen_address": f"{i} Nguyễn Huệ, Quận 1",
                "domain": "state",
                "topic": rnd.choice(TOPICS),
                "level": level,
                "description": f"Phản ánh số {i}: " + "ngập nước sau mưa lớn, " * 8,
            }
            if level == 1:
                data["guidance"] = "Đã hướng dẫn thủ tục qua điện thoại."
            if level == 2 and rnd.random() < 0.8:
                data["agency_id"] = rnd.choice([root.id, child.id])
            t = await service.create(agent, data)
            codes.append(t.code)
        return codes
    finally:
        await db.close()


def pg(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- measuring ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    port: int, token: str, target: tuple[str, str], args: argparse.Namespace, seconds: int
) -> dict[str, Any]:
    mode, arg = target
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        token,
        mode,
        arg,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"^RESULT (\{.*\})$", out.stdout, re.M)
    if not m:
        raise RuntimeError(f"no result from wrk:\n{out.stdout}\n{out.stderr}")
    return json.loads(m.group(1))


async def token_for(port: int) -> str:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/api/v1/session",
            json={"username": "benchagent", "password": PASSWORD},
        ) as r,
    ):
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"sign-in: {r.status} {body}")
        return str(body["token"])


async def check_one(port: int, token: str, code: str) -> None:
    """A real answer before loading: the ticket, and a non-empty forwarded page."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"http://127.0.0.1:{port}/api/v1/tickets/{code}") as r:
            body = await r.json()
            assert r.status == 200 and body["code"] == code, (r.status, body)
        async with http.get(f"http://127.0.0.1:{port}{LIST_PATH}") as r:
            body = await r.json()
            assert r.status == 200 and len(body["items"]) == 20, (r.status, body)


def start_server(
    config: Path,
    port: int,
    profile: Path | None,
    log: Path,
    engine: dict[str, Any] | None = None,
) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "bench.ticket_reads", "serve",
        "--config", str(config), "--port", str(port),
    ]  # fmt: skip
    if profile:
        cmd += ["--profile-out", str(profile)]
    if engine:
        cmd += ["--engine", json.dumps(engine)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=log.open("a"), text=True, cwd=HERE.parent
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"server on {port} did not start; see {log}")
    return proc


def stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def by_package(st: pstats.Stats) -> list[tuple[str, float]]:
    """The profiled thread's CPU (own time) summed by where the code lives."""
    root = str(HERE.parent) + "/"
    totals: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in file:
            where = file.split("site-packages/", 1)[1].split("/", 1)[0]
        elif file.startswith(root):
            where = "ours: " + file[len(root) :].split("/", 1)[0]
        elif file == "~":
            where = "C built-ins (" + func.split("'")[1] + ")" if "'" in func else "C built-ins"
            where = "C built-ins" if "of '" not in func else where
        else:
            where = "stdlib: " + Path(file).parent.name + "/" + Path(file).stem
        totals[where] = totals.get(where, 0.0) + tt
    return sorted(totals.items(), key=lambda kv: -kv[1])


def top_functions(path: Path, n: int = 30) -> str:
    """The loop thread's CPU (cProfile on time.thread_time): by package, by function
    (own time), then our code by cumulative time (approximate: coroutines re-enter)."""
    buf = io.StringIO()
    st = pstats.Stats(str(path), stream=buf)
    packages = by_package(st)
    total = sum(t for _, t in packages) or 1.0
    buf.write(f"loop-thread CPU {total:.2f} s, by package:\n")
    for where, t in packages[:25]:
        buf.write(f"  {100 * t / total:5.1f} %  {t:6.3f} s  {where}\n")
    buf.write("\n")
    st.sort_stats("tottime").print_stats(n)
    buf.write("\n")
    ours = re.escape(str(HERE.parent)) + "/(panel|tickets|accounts|core)/"
    st.sort_stats("cumulative").print_stats(ours, n)
    return buf.getvalue()


@dataclass
class Variant:
    """One server: a database, and the engine as configured or a bench-only what-if."""

    name: str
    db: str
    port: int
    engine: dict[str, Any] | None = None
    proc: subprocess.Popen[str] | None = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve")
    s.add_argument("--config", type=Path, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--profile-out", type=Path)
    s.add_argument("--engine", type=json.loads, default=None)
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--tickets", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-d", "--duration", type=int, default=15, help="seconds per wrk run")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-c", "--connections", type=int, default=32)
    ap.add_argument("--profile", action="store_true", help="one more run under cProfile")
    ap.add_argument(
        "--what-if",
        type=json.loads,
        action="append",
        default=[],
        metavar="JSON",
        help='also serve each database with these engine options, e.g. \'{"pool_size": 40, '
        '"max_overflow": 0}\'; may be repeated (bench-only: the application is not changed)',
    )
    ap.add_argument("--tag", default="", help="results go to ticket_reads[-TAG].{json,md}")
    ap.add_argument("--home", default="/tmp/hotline-bench-reads")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args.config, args.port, args.profile_out, args.engine)
        return

    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    dbs = args.databases.split(",")
    tag = uuid.uuid4().hex[:8]
    prefix = f"benchreads{tag}"
    pg_name = f"hotline_bench_{tag}"
    variants = [Variant(db, db, PORTS[db]) for db in dbs]
    for i, engine in enumerate(args.what_if, start=1):
        variants += [Variant(f"{db} what-if {i}", db, PORTS[db] + 2 * i, engine) for db in dbs]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    probes: dict[str, Any] = {}
    created_pg = False
    try:
        configs, codes, tokens = {}, {}, {}
        for db in dbs:
            if db == "sqlite":
                url = f"sqlite:///{home / db / 'var' / 'bench.db'}"
            else:
                pg(f"CREATE DATABASE {pg_name}")
                created_pg = True
                url = f"postgresql://postgres@127.0.0.1:5432/{pg_name}"
            configs[db] = write_config(home / db, url, f"{prefix}{db[:2]}")
            settings = load_settings(configs[db], env={})
            system.migrate(settings)
            t0 = time.perf_counter()
            codes[db] = asyncio.run(seed(settings, args.tickets))
            print(
                f"{db}: {args.tickets} tickets created in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            (home / db / "codes.txt").write_text("\n".join(codes[db]) + "\n")
        for v in variants:
            v.proc = start_server(configs[v.db], v.port, None, home / v.db / "server.log", v.engine)
            tokens[v.name] = asyncio.run(token_for(v.port))
            asyncio.run(check_one(v.port, tokens[v.name], codes[v.db][0]))
        targets = {
            "detail": lambda db: ("codes", str(home / db / "codes.txt")),
            "list": lambda db: ("path", LIST_PATH),
        }
        for v in variants:  # warm caches and pools
            for target in targets.values():
                wrk(v.port, tokens[v.name], target(v.db), args, 3)
        # interleaved: run 1 of every query on every server, then run 2, ...
        for run in range(1, args.runs + 1):
            for q, target in targets.items():
                for v in variants:
                    assert v.proc is not None
                    pid = v.proc.pid
                    c0, w0, m0 = cpu_seconds(pid), time.monotonic(), machine_cpu()
                    r = wrk(v.port, tokens[v.name], target(v.db), args, args.duration)
                    m1 = machine_cpu()
                    r["server_cpu_pct"] = round(
                        100 * (cpu_seconds(pid) - c0) / (time.monotonic() - w0), 1
                    )
                    r["machine_busy_pct"] = round(100 * (m1[0] - m0[0]) / (m1[1] - m0[1]), 1)
                    r["load1"] = round(os.getloadavg()[0], 2)
                    results.setdefault(v.name, {}).setdefault(q, []).append(r)
                    print(
                        f"run {run} {v.name:20} {q:6} {r['rps']:8.1f} req/s  "
                        f"p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
                        f"server CPU {r['server_cpu_pct']} %  machine {r['machine_busy_pct']} %  "
                        f"errors {r['err_status'] + r['err_timeout'] + r['err_read']}",
                        flush=True,
                    )
        if args.profile:
            # the servers as configured, again, instrumented (the counted runs had no probe)
            for v in variants[: len(dbs)]:
                assert v.proc is not None
                stop_server(v.proc)
                prof = home / v.db / "server.prof"
                v.proc = start_server(configs[v.db], v.port, prof, home / v.db / "server.log")
                wrk(v.port, tokens[v.name], targets["detail"](v.db), args, 3)
                for q, target in targets.items():
                    v.proc.send_signal(signal.SIGUSR1)
                    time.sleep(0.2)
                    r = wrk(v.port, tokens[v.name], target(v.db), args, args.duration)
                    v.proc.send_signal(signal.SIGUSR2)
                    report = Path(f"{prof}.json")
                    for _ in range(100):
                        if report.exists():
                            break
                        time.sleep(0.1)
                    time.sleep(0.5)
                    probe = json.loads(report.read_text())
                    probe["rps_under_profiler"] = r["rps"]
                    probes[f"{v.db} {q}"] = probe
                    (out / f"ticket_reads.profile.{v.db}.{q}.txt").write_text(
                        json.dumps(probe, indent=1) + "\n\n" + top_functions(prof)
                    )
                    report.unlink()
                    print(f"profiled {v.db} {q}: {r['rps']:.0f} req/s under cProfile", flush=True)
    finally:
        for v in variants:
            if v.proc is not None:
                stop_server(v.proc)
        with contextlib.suppress(Exception):
            asyncio.run(_forget_redis(f"{prefix}*"))
        if created_pg:
            pg(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")

    summary = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{os.cpu_count()} cores; wrk, PostgreSQL, Redis and the server share them",
        "wrk": f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --timeout 10s "
        f"-s bench/ticket_reads.lua",
        "tickets": args.tickets,
        "runs": args.runs,
        "what_if": args.what_if,
        "results": results,
        "probes": probes,
    }
    stem = "ticket_reads" + (f"-{args.tag}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1))
    lines = [
        "| query | server | req/s (median) | p50 ms | p99 ms | req/s of each run | server CPU "
        "| machine busy | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for q, label in (("detail", "GET /api/v1/tickets/{code}"), ("list", f"GET {LIST_PATH}")):
        for v in variants:
            rs = results[v.name][q]

            def med(k: str, rs: list[dict[str, Any]] = rs) -> float:
                return statistics.median(r[k] for r in rs)

            errors = sum(r["err_status"] + r["err_timeout"] + r["err_read"] for r in rs)
            lines.append(
                f"| {label} | {v.name} | {med('rps'):.0f} | {med('p50_ms'):.1f} "
                f"| {med('p99_ms'):.1f} | {' / '.join(format(r['rps'], '.0f') for r in rs)} "
                f"| {med('server_cpu_pct'):.0f} % | {med('machine_busy_pct'):.0f} % | {errors} |"
            )
    md = "\n".join(lines)
    note = "".join(
        f"what-if {i} engine options: {json.dumps(e)}\n" for i, e in enumerate(args.what_if, 1)
    )
    (out / f"{stem}.md").write_text(
        f"{summary['when']} — {summary['machine']}\n{summary['wrk']}\n{note}\n{md}\n"
    )
    print()
    print(summary["wrk"])
    print(note + md)


async def _forget_redis(pattern: str) -> None:
    bus = Bus("redis://127.0.0.1:6379/0", "")
    try:
        keys = [k async for k in bus.redis.scan_iter(pattern)]
        if keys:
            await bus.redis.delete(*keys)
    finally:
        await bus.close()


if __name__ == "__main__":
    main()

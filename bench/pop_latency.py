"""Screen-pop latency: from Asterisk's AgentCalled event to the agent's WebSocket.

    sudo .venv/bin/python -m bench.pop_latency                  # the figures in bench/results
    sudo .venv/bin/python -m bench.pop_latency --steady-calls 60 --flood-calls 0   # a quick look

A PBX Asterisk and a carrier Asterisk (127.0.0.2; agents' phones on
127.0.0.3, auto-answering) on loopback, on ports of their own (not the test
lab's, not a running hotline's), and ``hotline run`` as its own process, as
deployed.  One hotline team has ``--agents`` agents on the shift on duty now;
each has an account, and one WebSocket client per agent is signed in with a
bearer token and connected to ``/ws``.  These are aiohttp WebSocket clients in
this process, not browsers: the time a browser takes to parse and draw the pop
is not in the figures.

Calls are placed through the carrier at a steady rate (``--steady-rate``),
then at a flood rate (``--flood-rate``); each caller presses 1, is queued,
the agent's phone rings (``AgentCalled``: the pop) and answers, they talk
``--talk`` seconds and the agent hangs up.  Callers come from a pool of
numbers that each have an earlier ticket, and they call again, so a pop carries
a real history.

For every ``{"type": "pop", "phase": "ringing"}`` message a client receives,
with t = the client's receipt time:

- t - ``ami_timestamp`` (Asterisk's own Timestamp header: Asterisk -> screen),
- t - ``event_at`` (our AMI handler got the event: application -> screen),
- ``event_at`` - ``ami_timestamp`` (Asterisk -> our handler),
- ``sent`` - ``event_at`` (building the pop: call record, history look-ups).

Beside the application, a bare AMI reader in a thread of this process (logged
in as the application's AMI user, so it hears the same filtered events) notes
when each ``AgentCalled`` reached it: Asterisk's own delay in handing out an
event (its manager thread, the machine's scheduler) shows apart from ours,
as "Asterisk event -> a bare AMI reader" and "bare reader -> our handler".

Results are printed and written to bench/results/pop_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import tomli_w
from sqlalchemy import func, select

from accounts.identity import Actor
from accounts.service import AccountService
from callcenter.models import Call
from callcenter.shifts import next_handover, queue_name, shift_at
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Shift, ensure_secrets, load_settings
from hotline import system
from hotline.carrier import Carrier, CarrierAddresses
from tests.lab import Lab, lab_config
from tickets.service import TicketService

# Ports of our own: the test lab uses 15060/15038/14573/15039/18080, a running
# hotline 5060/5038/4573/8080.
PBX_SIP, PBX_AMI, AGI_PORT, PANEL_PORT = 25060, 25038, 24573, 28080
PBX_RTP = (26000, 26999)
CARRIER = CarrierAddresses(sip_port=25060, ami_port=25039, rtp_start=27000, rtp_end=27999)
PASSWORD = "bench-pop-password"
TEAM = "t1022"
HOTLINE = "1022"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (as bench/agi_load.py)."""
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def stats_ms(values: list[float]) -> dict[str, float | int | None]:
    ms = [v * 1000 for v in values]
    if not ms:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p90": round(percentile(ms, 90), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
    }


def port_free(host: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    """Nobody listens there (a port left in TIME_WAIT by the previous run is free:
    the servers bind with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def check_ports() -> None:
    busy = [
        f"{h}:{p}/{'udp' if k == socket.SOCK_DGRAM else 'tcp'}"
        for h, p, k in [
            ("127.0.0.1", PBX_SIP, socket.SOCK_DGRAM),
            ("127.0.0.1", PBX_AMI, socket.SOCK_STREAM),
            ("127.0.0.1", AGI_PORT, socket.SOCK_STREAM),
            ("127.0.0.1", PANEL_PORT, socket.SOCK_STREAM),
            (CARRIER.trunk_ip, CARRIER.sip_port, socket.SOCK_DGRAM),
            (CARRIER.agents_ip, CARRIER.sip_port, socket.SOCK_DGRAM),
            (CARRIER.trunk_ip, CARRIER.ami_port, socket.SOCK_STREAM),
        ]
        if not port_free(h, p, k)
    ]
    if busy:
        raise SystemExit(f"ports in use (another benchmark running?): {', '.join(busy)}")


def bench_config(agents: int, prefix: str, database_url: str | None) -> tuple[dict[str, Any], str]:
    """The lab's configuration on our ports, with ``agents`` agents of the 1022 team on
    the shift on duty now (and one per other shift and team: settings require it)."""
    cfg = lab_config()
    cfg["asterisk"].update(
        sip_port=PBX_SIP, ami_port=PBX_AMI, rtp_start=PBX_RTP[0], rtp_end=PBX_RTP[1]
    )
    cfg["agi"]["port"] = AGI_PORT
    cfg["panel"] = {"port": PANEL_PORT, "redis_prefix": prefix}
    cfg["trunk"]["match"] = [CARRIER.trunk_ip]
    cfg["queues"].update(max_wait_seconds=120, ring_seconds=8, wrapup_seconds=0)
    if database_url:
        cfg["database_url"] = database_url
    shifts = [Shift(**s) for s in cfg["shifts"]]
    tz = ZoneInfo(cfg["timezone"])
    now_shift = shift_at(shifts, datetime.now(UTC), tz).id
    generated = []
    for i in range(agents):  # extensions 3001..: no hotline number is like them
        generated.append(
            {
                "id": f"b{3001 + i}",
                "name": f"Điện thoại viên {i + 1:02d}",
                "extension": str(3001 + i),
                "team": TEAM,
                "shift": now_shift,
            }
        )
    ext = 3901
    for team in (t["id"] for t in cfg["teams"]):
        for s in shifts:
            if team == TEAM and s.id == now_shift:
                continue
            generated.append(
                {
                    "id": f"b{ext}",
                    "name": f"Trực {team} {s.id}",
                    "extension": str(ext),
                    "team": team,
                    "shift": s.id,
                }
            )
            ext += 1
    cfg["agents"] = generated
    return cfg, now_shift


def build_lab(home: Path, cfg: dict[str, Any], talk: int) -> Lab:
    """Lab.build with our own carrier addresses (Lab.build pins the lab's ports)."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(tomli_w.dumps(cfg))
    ensure_secrets(load_settings(path, env={}))
    settings, pbx = system.prepare(path, say=lambda *_: None)
    carrier = Carrier(settings, home / "carrier", pbx.root, CARRIER, agent_talk_seconds=talk)
    return Lab(home, settings, pbx, carrier, pbx.root)


def renice(pid: int, niceness: int) -> None:
    for task in Path(f"/proc/{pid}/task").iterdir():  # nice is per thread on Linux
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


# -- the agents' WebSocket clients --------------------------------------------------


@dataclass
class Pop:
    phase: str  # the benchmark phase it arrived in
    extension: str
    uniqueid: str
    received: float
    event_at: float
    sent: float
    ami_timestamp: float | None
    size: int


@dataclass
class Clients:
    base: str
    pops: list[Pop] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)
    phase: str = "warmup"
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed_early: int = 0

    async def sign_in(self, http: aiohttp.ClientSession, username: str) -> str:
        async with http.post(
            f"{self.base}/api/v1/session", json={"username": username, "password": PASSWORD}
        ) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"sign-in of {username}: {r.status} {body}")
            return str(body["token"])

    async def connect(self, http: aiohttp.ClientSession, extension: str, token: str) -> None:
        ws = await http.ws_connect(
            f"{self.base}/ws", headers={"Authorization": f"Bearer {token}"}, autoping=True
        )
        first = await ws.receive_json(timeout=10)
        if first.get("type") != "hello":
            raise RuntimeError(f"{extension}: first message {first!r}")
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self._read(ws, extension)))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, extension: str) -> None:
        async for msg in ws:
            received = time.time()
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            kind = data.get("type")
            if kind == "pop" and data.get("phase") == "ringing":
                self.pops.append(
                    Pop(
                        phase=self.phase,
                        extension=extension,
                        uniqueid=data.get("uniqueid") or "",
                        received=received,
                        event_at=float(data["event_at"]),
                        sent=float(data["sent"]),
                        ami_timestamp=data.get("ami_timestamp"),
                        size=len(msg.data),
                    )
                )
            else:
                key = f"{kind}:{data.get('phase')}" if kind == "pop" else str(kind)
                self.other[key] = self.other.get(key, 0) + 1
        self.closed_early += 1

    async def close(self) -> None:
        for ws in self.sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class AmiProbe:
    """A bare AMI reader in a thread of its own: when each AgentCalled reached it."""

    def __init__(self, host: str, port: int, user: str, secret: str) -> None:
        self.address, self.user, self.secret = (host, port), user, secret
        self.seen: dict[str, float] = {}  # the caller's Uniqueid -> receipt (time.time())
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="ami-probe", daemon=True)

    def start(self) -> None:
        sock = socket.create_connection(self.address, timeout=10)
        sock.sendall(
            f"Action: Login\r\nUsername: {self.user}\r\nSecret: {self.secret}\r\n"
            "Events: on\r\n\r\n".encode()
        )
        sock.settimeout(None)
        self._sock = sock
        self._thread.start()

    def _run(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.time()
            buf += chunk
            *blocks, buf = buf.split(b"\r\n\r\n")
            for block in blocks:
                if b"Event: AgentCalled\r\n" not in block:
                    continue
                for line in block.split(b"\r\n"):
                    if line.startswith(b"Uniqueid: "):
                        self.seen.setdefault(line[10:].decode(), now)
                        break

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()


# -- the run ------------------------------------------------------------------------


async def start_app_process(home: Path) -> asyncio.subprocess.Process:
    """`hotline run` on our configuration, as its own process (as deployed)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline.cli",
        "--config",
        str(home / "config" / "hotline.toml"),
        "run",
        stdout=(home / "app.log").open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    for _ in range(150):
        if proc.returncode is not None:
            break
        try:
            _, w = await asyncio.open_connection("127.0.0.1", PANEL_PORT)
            w.close()
            return proc
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"hotline run did not start; see {home / 'app.log'}")


async def channels_up(lab: Lab) -> int:
    out = await asyncio.to_thread(lab.pbx.cli, "core show channels count")
    for line in out.splitlines():
        if "active call" in line:
            return int(line.split()[0])
    return 0


async def members_free(lab: Lab, queue: str) -> int:
    out = await asyncio.to_thread(lab.pbx.cli, f"queue show {queue}")
    return sum(1 for line in out.splitlines() if "PJSIP/" in line and "Not in use" in line)


async def run_phase(
    lab: Lab,
    db: Database,
    clients: Clients,
    probe: AmiProbe,
    app_pid: int,
    name: str,
    calls: int,
    rate: float,
    hold: int,
    talk: int,
    pool: list[str],
) -> dict[str, Any]:
    clients.phase = name
    first_pop = len(clients.pops)
    peak = 0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, await channels_up(lab))
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample())
    pbx_pid = int(lab.pbx.pid_path.read_text())
    cpu0 = (cpu_seconds(app_pid), cpu_seconds(pbx_pid), *machine_cpu(), time.monotonic())
    started_at = datetime.now(UTC) - timedelta(seconds=1)
    refused = 0
    t0 = time.perf_counter()
    for i in range(calls):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        try:
            await lab.carrier.call(
                HOTLINE, caller_id=f"<{random.choice(pool)}>", digits="1", wait=1.5, hold=hold
            )
        except Exception:  # noqa: BLE001 - counted
            refused += 1
    offered_for = time.perf_counter() - t0
    # every call over: agents hang up after --talk, callers after --hold at the latest
    deadline = time.perf_counter() + hold + talk + 120
    await asyncio.sleep(5)
    while time.perf_counter() < deadline and await channels_up(lab) > 0:  # noqa: ASYNC110
        await asyncio.sleep(1)
    await asyncio.sleep(2)  # late pops
    stop.set()
    await sampler
    cpu1 = (cpu_seconds(app_pid), cpu_seconds(pbx_pid), *machine_cpu(), time.monotonic())
    wall = cpu1[4] - cpu0[4]
    ended_at = datetime.now(UTC)
    async with db.session() as s:
        answered = await s.scalar(
            select(func.count()).where(
                Call.started_at >= started_at,
                Call.started_at < ended_at,
                Call.answered_at.is_not(None),
            )
        )
        records = await s.scalar(
            select(func.count()).where(Call.started_at >= started_at, Call.started_at < ended_at)
        )
    pops = clients.pops[first_pop:]
    stamped = [p for p in pops if p.ami_timestamp]
    probed = [(p, probe.seen[p.uniqueid]) for p in stamped if p.uniqueid in probe.seen]
    return {
        "phase": name,
        "calls": calls,
        "offered_rate": rate,
        "offered_in_s": round(offered_for, 1),
        "refused": refused,
        "call_records": records,
        "answered": answered,
        "ringing_pops": len(pops),
        "pops_without_ami_timestamp": len(pops) - len(stamped),
        "peak_active_calls": peak,
        "app_cpu_pct": round(100 * (cpu1[0] - cpu0[0]) / wall, 1),
        "asterisk_cpu_pct": round(100 * (cpu1[1] - cpu0[1]) / wall, 1),
        "machine_busy_pct": round(100 * (cpu1[2] - cpu0[2]) / max(1, cpu1[3] - cpu0[3]), 1),
        "pop_bytes_p50": int(percentile([p.size for p in pops], 50)) if pops else None,
        "asterisk_to_ws": stats_ms([p.received - p.ami_timestamp for p in stamped]),
        "handler_to_ws": stats_ms([p.received - p.event_at for p in pops]),
        "asterisk_to_handler": stats_ms([p.event_at - p.ami_timestamp for p in stamped]),
        "asterisk_to_probe": stats_ms([t - (p.ami_timestamp or 0) for p, t in probed]),
        "probe_to_handler": stats_ms([p.event_at - t for p, t in probed]),
        "handler_to_sent": stats_ms([p.sent - p.event_at for p in pops]),
        "sent_to_ws": stats_ms([p.received - p.sent for p in pops]),
    }


async def seed(settings: Any, agents: list[str], pool: list[str]) -> None:
    """Agent accounts, and one earlier ticket per caller of the pool (before the app starts)."""
    db = Database(settings.database)
    clock = Clock()
    try:
        accounts = AccountService(db, settings, clock)
        tickets = TicketService(db, settings, clock)
        admin = await accounts.create_user(
            None,
            {
                "username": "benchadmin",
                "display_name": "Bench",
                "role": "admin",
                "password": PASSWORD,
            },
        )
        for ext in agents:
            await accounts.create_user(
                Actor.of(admin),
                {
                    "username": f"agent{ext}",
                    "display_name": f"Agent {ext}",
                    "role": "agent",
                    "extension": ext,
                    "password": PASSWORD,
                },
            )
        writer = Actor.of(admin)
        for i, number in enumerate(pool):
            await tickets.create(
                writer,
                {
                    "channel": "phone",
                    "citizen_phone": number,
                    "domain": "state",
                    "topic": "flooding",
                    "level": 2,
                    "description": f"Ngập nước đường số {i}, phản ánh lần trước.",
                },
            )
    finally:
        await db.close()


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| phase | calls @ rate/s | answered | ringing pops | peak calls | app CPU | "
        "Asterisk CPU | machine busy | measure | count | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = [
        ("asterisk_to_ws", "Asterisk event → WS (Timestamp)"),
        ("handler_to_ws", "our AMI receipt → WS (event_at)"),
        ("asterisk_to_handler", "Asterisk event → our receipt"),
        ("asterisk_to_probe", "Asterisk event → a bare AMI reader"),
        ("probe_to_handler", "bare AMI reader → our receipt"),
        ("handler_to_sent", "our receipt → sent (building the pop)"),
        ("sent_to_ws", "sent → WS (hub, socket)"),
    ]
    for r in results:
        for i, (key, label) in enumerate(labels):
            s = r[key]
            head = (
                f"| {r['phase']} | {r['calls']} @ {r['offered_rate']:g} | {r['answered']} "
                f"| {r['ringing_pops']} | {r['peak_active_calls']} | {r['app_cpu_pct']} % "
                f"| {r['asterisk_cpu_pct']} % | {r['machine_busy_pct']} % "
                if i == 0
                else "| | | | | | | | "
            )
            rows.append(
                f"{head}| {label} | {s['count']} | {s['p50']} | {s['p90']} | {s['p99']} "
                f"| {s['max']} |"
            )
    return "\n".join(rows)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--warmup-calls", type=int, default=10)
    ap.add_argument("--steady-calls", type=int, default=300)
    ap.add_argument("--steady-rate", type=float, default=1.5)
    ap.add_argument("--flood-calls", type=int, default=240)
    ap.add_argument("--flood-rate", default="4", help="calls/s; several: one phase each (4,8)")
    ap.add_argument("--talk", type=int, default=6, help="seconds the agent talks, then hangs up")
    ap.add_argument("--hold", type=int, default=30, help="the caller hangs up after this at most")
    ap.add_argument("--callers", type=int, default=200, help="caller numbers (each has a ticket)")
    ap.add_argument("--database-url", default=None, help="default: SQLite in --home")
    ap.add_argument("--tag", default="", help="results go to pop_latency[-TAG].{json,md}")
    ap.add_argument("--home", default="/tmp/hotline-bench-pop")
    args = ap.parse_args()

    check_ports()
    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    prefix = f"benchpop{os.getpid()}"
    cfg, shift_id = bench_config(args.agents, prefix, args.database_url)
    expected = (
        args.warmup_calls
        + args.steady_calls / args.steady_rate
        + sum(args.flood_calls / float(r) for r in args.flood_rate.split(","))
        + 4 * (args.talk + 30)
    )
    tz = ZoneInfo(cfg["timezone"])
    handover = next_handover([Shift(**s) for s in cfg["shifts"]], datetime.now(UTC), tz)
    if (handover - datetime.now(UTC)).total_seconds() < expected + 300:
        raise SystemExit(f"the shift changes at {handover:%H:%M %Z}, within the run: wait for it")
    lab = build_lab(home, cfg, args.talk)
    settings = lab.settings
    queue = queue_name(TEAM, shift_id)
    agents = [a.extension for a in settings.agents if a.team == TEAM and a.shift == shift_id]
    pool = [f"09{12000000 + i:08d}" for i in range(args.callers)]
    await seed(settings, agents, pool)
    bus = Bus(settings.panel.redis_url, prefix)
    results: list[dict[str, Any]] = []
    app: asyncio.subprocess.Process | None = None
    clients = Clients(base=f"http://127.0.0.1:{PANEL_PORT}")
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
    )
    db = Database(settings.database)
    probe = AmiProbe(
        "127.0.0.1", PBX_AMI, settings.asterisk.ami_user, settings.ami_secret.get_secret_value()
    )
    try:
        lab.start()
        renice(int(lab.carrier.instance.pid_path.read_text()), 10)  # the harness, as agi_load
        await lab.carrier.connect()
        await lab.carrier.wait_registered(90)
        app = await start_app_process(home)
        probe.start()
        for _ in range(120):  # the scheduler has put every agent of the shift in the queue
            if await members_free(lab, queue) >= len(agents):
                break
            await asyncio.sleep(1)
        else:
            raise RuntimeError(f"only {await members_free(lab, queue)} free members in {queue}")
        tokens = [await clients.sign_in(http, f"agent{ext}") for ext in agents]
        await asyncio.gather(
            *(clients.connect(http, ext, t) for ext, t in zip(agents, tokens, strict=True))
        )
        print(
            f"{len(clients.sockets)} WebSocket clients (aiohttp, not browsers) on /ws; "
            f"{len(agents)} agents free in {queue}",
            flush=True,
        )
        plan = [("warmup", args.warmup_calls, args.steady_rate)]
        plan += [("steady", args.steady_calls, args.steady_rate)]
        if args.flood_calls:
            plan += [
                (f"flood {r}/s", args.flood_calls, float(r)) for r in args.flood_rate.split(",")
            ]
        for name, n, rate in plan:
            if not n:
                continue
            res = await run_phase(
                lab, db, clients, probe, app.pid, name, n, rate, args.hold, args.talk, pool
            )
            print(json.dumps(res, ensure_ascii=False), flush=True)
            if name != "warmup":
                results.append(res)
        still_connected = sum(1 for ws in clients.sockets if not ws.closed)
    finally:
        probe.stop()
        await clients.close()
        await http.close()
        await db.close()
        if app is not None and app.returncode is None:
            app.terminate()
            await app.wait()
        with contextlib.suppress(Exception):
            await lab.carrier.close()
        lab.stop()
        with contextlib.suppress(Exception):
            keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
            if keys:
                await bus.redis.delete(*keys)
        await bus.close()
    log_text = (home / "app.log").read_text(errors="replace")
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores; load average at end {os.getloadavg()}",
        "clients": f"{len(clients.sockets)} aiohttp WebSocket clients (not browsers), "
        f"{still_connected} still connected at the end",
        "agents_on_shift": len(agents),
        "talk_s": args.talk,
        "hold_s": args.hold,
        "caller_pool": args.callers,
        "database": settings.database.split("://")[0],
        "other_messages": clients.other,
        "app_log_errors": sum(1 for line in log_text.splitlines() if " ERROR " in line),
        "app_log_warnings": sum(1 for line in log_text.splitlines() if " WARNING " in line),
        "phases": results,
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stem = "pop_latency" + (f"-{args.tag}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    md = table(results)
    (out / f"{stem}.md").write_text(
        f"{summary['when']} — {summary['machine']}\n{summary['clients']}\n\n{md}\n"
    )
    print()
    print(summary["clients"])
    print(md)


async def _run() -> None:
    # Ctrl-C or kill: main's finally still stops both Asterisk instances and the app.
    task = asyncio.create_task(main())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        print("interrupted; instances stopped")


if __name__ == "__main__":
    asyncio.run(_run())

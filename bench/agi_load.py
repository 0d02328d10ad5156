"""Real load through the real telephony path, and FastAGI against classic AGI.

    sudo .venv/bin/python -m bench.agi_load                      # the README's figures
    sudo .venv/bin/python -m bench.agi_load --waves 50,100 --modes fastagi

A carrier Asterisk (127.0.0.2) originates waves of A-law calls at --rate per
second to the PBX (127.0.0.1); each caller presses 1 in the IVR, waits in the
on-duty queue (5 agents per team and shift, as configured) and stays on the
line --hold seconds; agents (auto-answering phones on 127.0.0.3) talk for
--talk seconds, so the queue is worked through while the wave is held.  Every
answered call must leave both recordings.

For each wave it reports: calls offered, calls failed (see FAILURES), the
most calls up at once on the PBX, the set-up rate (calls entering the IVR per
second) and the AGI cost from connection to route set (p50, p99, max), minus
the time spent waiting on the caller.  The classic one-process-per-call AGI
runs the same IVR code through the same measuring relay, in the same run.
Results are printed and written to bench/results/agi_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.agi_relay import Relay
from callcenter.models import Call, Outcome
from core.db import Database
from core.settings import AgiSettings
from hotline import system
from hotline.pbx import AsteriskInstance
from tests.lab import CARRIER, Lab, lab_config

RELAY_PORT = 14600
# RTP ports for the waves (300 calls, each a caller's and an agent's stream on the
# PBX and on the carrier): the test lab's ranges hold some 60 streams, and ran out
# at 60 calls up.  Apart from the test labs' 16000-17999 and the other benches'.
PBX_RTP = (40000, 43999)
CARRIER_ADDRESSES = replace(CARRIER, rtp_start=44000, rtp_end=47999)
ROUTED = re.compile(r"call (\S+) routed to .* in ([\d.]+) ms of IVR time, ([\d.]+) ms of it")
FAILURES = (
    "no call record; an originate the PBX refused; the IVR losing a caller who pressed 1; "
    "a caller dropped before hanging up; a timeout in the queue; an answered call without "
    "both recording files"
)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def renice(instance: AsteriskInstance, niceness: int) -> None:
    pid = int(instance.pid_path.read_text())
    for task in Path(f"/proc/{pid}/task").iterdir():  # nice is per thread on Linux
        os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def server_route_ms(lab: Lab, uniqueids: set[str]) -> tuple[list[float], list[float]]:
    """From the IVR's 'routed ... in N ms' log lines for these calls: the time
    from Asterisk's connection to route set, and the part of it spent in the
    application (not waiting for Asterisk's replies)."""
    total, ours = [], []
    for line in (lab.home / "app.log").read_text(errors="replace").splitlines():
        m = ROUTED.search(line)
        if m and m.group(1) in uniqueids:
            total.append(float(m.group(2)))
            ours.append(float(m.group(3)))
    return total, ours


async def channels_up(lab: Lab) -> int:
    out = await asyncio.to_thread(lab.pbx.cli, "core show channels count")
    for line in out.splitlines():
        if "active call" in line:
            return int(line.split()[0])
    return 0


async def start_app_process(home: Path) -> asyncio.subprocess.Process:
    """`hotline run` on the lab's configuration, as its own process (as deployed)."""
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
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", 14573)
            w.close()
            await asyncio.sleep(3)  # AMI login and the first shift reconcile
            return proc
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"hotline run did not start; see {home / 'app.log'}")


async def run_wave(
    lab: Lab, db: Database, relay: Relay, mode: str, calls: int, rate: float, hold: int
) -> dict[str, object]:
    relay.mode = mode
    relay.timings = []
    prefix = f"08{int(time.time()) % 100000:05d}"
    numbers = [f"{prefix}{i:04d}" for i in range(calls)]
    peak = 0
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop_sampling.is_set():
            peak = max(peak, await channels_up(lab))
            await asyncio.sleep(1)

    sampler = asyncio.create_task(sample())
    refused = 0
    started = time.perf_counter()
    placed: dict[str, datetime] = {}
    holds: dict[str, int] = {}
    for i, number in enumerate(numbers):
        target = started + i / rate
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
        placed[number] = datetime.now(UTC)
        # callers give up at different times, as people do (80-120 % of --hold)
        holds[number] = round(hold * random.uniform(0.8, 1.2))
        try:
            await lab.carrier.call(
                "1022", caller_id=f"<{number}>", digits="1", wait=1.5, hold=holds[number]
            )
        except Exception:  # noqa: BLE001 - counted as a failed call
            refused += 1
    offered_for = time.perf_counter() - started

    # wait for every call to end
    deadline = time.perf_counter() + hold * 1.2 + 120
    rows: list[Call] = []
    wanted = calls - refused
    while time.perf_counter() < deadline:
        # a count while the wave runs (cheap); the rows once it is over
        async with db.session() as s:
            done = await s.scalar(
                select(func.count()).where(
                    Call.caller_number.in_(numbers), Call.ended_at.is_not(None)
                )
            )
        if done >= wanted:
            break
        await asyncio.sleep(2)
    async with db.session() as s:
        rows = list((await s.scalars(select(Call).where(Call.caller_number.in_(numbers)))).all())
    stop_sampling.set()
    await sampler

    failed = refused + (calls - refused - len(rows))
    reasons: dict[str, int] = {}
    answered = recorded = 0
    for r in rows:
        problem = None
        if r.ended_at is None:
            problem = "still open"
        elif r.outcome == Outcome.ANSWERED:
            answered += 1
            # both files, with audio in them unless the caller left as the agent answered
            # Both files; with audio in them unless the caller left as the agent
            # answered (a WAV header alone is then right).
            connected = (r.ended_at - r.answered_at).total_seconds() if r.answered_at else 0
            least = 44 + (8000 if connected >= 1.5 else 0)
            ok = all(
                p and Path(p).exists() and Path(p).stat().st_size >= least
                for p in (r.recording_caller, r.recording_agent)
            )
            recorded += ok
            problem = None if ok else "answered without recordings"
        elif r.outcome == Outcome.ABANDONED:
            # the caller hangs up 1.5 s (its keys) + hold after it dialled
            lasted = (r.ended_at - placed[r.caller_number]).total_seconds()
            enough = holds[r.caller_number] + 0.5
            problem = None if lasted >= enough else "dropped before the caller hung up"
        else:
            problem = f"outcome {r.outcome}"
        if problem:
            failed += 1
            reasons[problem] = reasons.get(problem, 0) + 1
    accepted = sorted(t.accepted for t in relay.timings)
    setup_rate = (len(accepted) - 1) / (accepted[-1] - accepted[0]) if len(accepted) > 1 else 0.0
    route = [t.route_ms for t in relay.timings if t.route_ms is not None]
    server, ours = (
        server_route_ms(lab, {r.uniqueid for r in rows}) if mode == "fastagi" else ([], [])
    )
    return {
        "mode": mode,
        "calls": calls,
        "offered_rate": rate,
        "offered_in_s": round(offered_for, 1),
        "failed": failed,
        "reasons": reasons,
        "answered": answered,
        "answered_recorded": recorded,
        "peak_active_calls": peak,
        "setup_rate_per_s": round(setup_rate, 1),
        "route_samples": len(route),
        "route_ms_p50": round(percentile(route, 50), 2),
        "route_ms_p99": round(percentile(route, 99), 2),
        "route_ms_max": round(max(route), 2) if route else None,
        "relay_errors": relay.errors,
        # as the FastAGI server logs it (no relay hop): Asterisk's connection to route set
        "server_route_ms_p50": round(percentile(server, 50), 2) if server else None,
        "server_route_ms_p99": round(percentile(server, 99), 2) if server else None,
        "processing_ms_p50": round(percentile(ours, 50), 2) if ours else None,
        "processing_ms_p99": round(percentile(ours, 99), 2) if ours else None,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--waves", default="100,200,250,300", help="calls per wave (FastAGI)")
    ap.add_argument("--classic-waves", default="30", help="calls per flood wave (classic)")
    ap.add_argument("--modes", default="classic,fastagi")
    ap.add_argument("--calm-calls", type=int, default=20, help="calls per calm wave (0: none)")
    ap.add_argument("--calm-rate", type=float, default=1.0, help="new calls per second, calm")
    ap.add_argument("--rate", type=float, default=8.0, help="new calls per second")
    ap.add_argument("--hold", type=int, default=60, help="seconds each caller stays on")
    ap.add_argument("--talk", type=int, default=10, help="seconds each agent talks")
    ap.add_argument("--home", default="/tmp/hotline-bench")
    args = ap.parse_args()

    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    cfg = lab_config()
    cfg["queues"]["max_wait_seconds"] = 900
    # media ports for hundreds of calls: a test lab's slot has some 60 streams
    cfg["asterisk"].update(rtp_start=PBX_RTP[0], rtp_end=PBX_RTP[1])
    lab = Lab.build(home, config=cfg, agent_talk_seconds=args.talk, carrier=CARRIER_ADDRESSES)
    # Asterisk talks to the relay; the relay to the FastAGI server or a process per call.
    via_relay = lab.settings.model_copy(
        update={"agi": AgiSettings(host="127.0.0.1", port=RELAY_PORT)}
    )
    system.write_config(via_relay, lab.pbx)
    lab.start()
    # The carrier is the test harness, not part of the system under test: on a
    # real site it is another machine. Lower its priority so it does not take
    # the PBX's and the application's share of these two cores.
    renice(lab.carrier.instance, 10)
    relay = Relay(
        fastagi=("127.0.0.1", lab.settings.agi.port),
        classic_env={"HOTLINE_CONFIG": str(home / "config" / "hotline.toml")},
    )
    await relay.start("127.0.0.1", RELAY_PORT)
    results = []
    try:
        await lab.carrier.connect()
        await lab.carrier.wait_registered(60)
        app = await start_app_process(home)
        db = Database(lab.settings.database)
        try:
            modes = args.modes.split(",")
            # side by side at a calm rate, where a process per call is not yet
            # overloaded, then at the flood rate; then FastAGI alone, growing
            plan = [(m, args.calm_calls, args.calm_rate) for m in modes if args.calm_calls]
            if "classic" in modes:
                plan += [("classic", int(n), args.rate) for n in args.classic_waves.split(",")]
            if "fastagi" in modes:
                plan += [("fastagi", int(n), args.rate) for n in args.waves.split(",")]
            for mode, n, rate in plan:
                res = await run_wave(lab, db, relay, mode, n, rate, args.hold)
                results.append(res)
                print(json.dumps(res, ensure_ascii=False), flush=True)
                await asyncio.sleep(5)
        finally:
            app.terminate()
            await app.wait()
            await db.close()
        await lab.carrier.close()
    finally:
        await relay.stop()
        lab.stop()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    summary = {
        "machine": f"{os.cpu_count()} cores",
        "rate": args.rate,
        "hold": args.hold,
        "talk": args.talk,
        "failures_counted": FAILURES,
        "waves": results,
    }
    (out / "agi_load.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    ok = [r for r in results if r["mode"] == "fastagi" and r["failed"] == 0]
    if ok:
        best = max(ok, key=lambda r: r["peak_active_calls"])
        print(
            f"most concurrent calls held with 0 failed: {best['peak_active_calls']} "
            f"(wave of {best['calls']})"
        )
    print()
    print(
        "| AGI | calls | offered/s | failed | most up at once | answered (recorded) "
        "| set-up/s | via relay p50 / p99 / max ms | in server p50 / p99 ms "
        "| of it processing p50 / p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['calls']} | {r['offered_rate']:g} | {r['failed']} "
            f"| {r['peak_active_calls']} | {r['answered']} ({r['answered_recorded']}) "
            f"| {r['setup_rate_per_s']} | {r['route_ms_p50']} / {r['route_ms_p99']} / "
            f"{r['route_ms_max']} | {r['server_route_ms_p50'] or '–'} / "
            f"{r['server_route_ms_p99'] or '–'} | {r['processing_ms_p50'] or '–'} / "
            f"{r['processing_ms_p99'] or '–'} |"
        )


async def _run() -> None:
    # Ctrl-C or kill: still stop both Asterisk instances and unmount (main's finally).
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

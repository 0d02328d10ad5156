"""Queue event ingest rate: AMI events per second into Redis (the board) and the database.

    .venv/bin/python -m bench.queue_ingest                        # the figures in bench/results
    .venv/bin/python -m bench.queue_ingest --runs 1 --rounds 300  # a quick look

The events are the ones a real Asterisk sent the application for three calls
(answered; abandoned; timed out while the team was paused, with the ten
pause and unpause events around them): tests/queue_stats/fixtures/
ami_queue_events.json, as panoramisk Messages, exactly what core.ami hands
to handlers.  Each round replays that transcript with fresh uniqueids and
times 3 s later (so every round's rows are new), --rounds rounds per run.

For each database (SQLite in a temporary directory; PostgreSQL a database of
its own, hotline_bench_<random>, dropped at the end) a fresh schema is
migrated, then the real handlers run on the real Redis (127.0.0.1:6379, a key
prefix of its own, deleted at the end): the live state (callcenter.live:
Redis hash and ``board`` publications, agents' states) and QueueIngest ->
EventWriter (batched INSERT ... ON CONFLICT DO NOTHING), each event handed to
both as their two AMI lanes would.  Events arrive in bursts of --burst (what one TCP read of the AMI
socket holds under load) and the dispatch yields between bursts, as core.ami's
does.  The clock runs from the first event to the moment every row is
committed and the board is written; the run then checks that the table holds
exactly the rows expected (nothing lost, nothing twice).

Reports per database the median over --runs of events/s and rows/s, and the
median time one event takes through both handlers (what the other events
of their lanes wait for).  Results go to bench/results/queue_ingest.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from panoramisk.message import Message
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from callcenter.live import LiveState
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from hotline.system import PROJECT_ROOT, alembic_config
from queue_stats.ingest import QueueIngest
from queue_stats.live import LiveQueues
from queue_stats.models import QueueEvent
from queue_stats.storage import EventWriter

HERE = Path(__file__).parent
FIXTURE = PROJECT_ROOT / "tests" / "queue_stats" / "fixtures" / "ami_queue_events.json"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
ROUND_SECONDS = 3


def transcript() -> list[dict[str, Any]]:
    """One round: the recorded calls and pauses (the start-up QueueMemberAdded left out)."""
    events = json.loads(FIXTURE.read_text())
    return [e for e in events if e["Event"] != "QueueMemberAdded"]


def rounds(n: int, tag: str) -> list[Message]:
    """``n`` rounds of the transcript, each with its own uniqueids and 3 s later."""
    template = transcript()
    t0 = min(float(e["Timestamp"]) for e in template)
    out = []
    for i in range(n):
        shift = i * ROUND_SECONDS
        for e in template:
            e2 = dict(e)
            e2["Timestamp"] = f"{float(e['Timestamp']) - t0 + 1_900_000_000 + shift:.6f}"
            if e2.get("Uniqueid"):
                e2["Uniqueid"] = f"{tag}-{i}.{e2['Uniqueid'].rsplit('.', 1)[1]}"
            out.append(Message(e2))
    return out


def expected_rows() -> int:
    """Rows one round gives (counted by feeding it to nothing but the key rules)."""
    kinds = Counter(e["Event"] for e in transcript())
    # JOIN, CONNECT, COMPLETE*, ABANDON / EXITWITHTIMEOUT, PAUSE, UNPAUSE
    return (
        kinds["QueueCallerJoin"]
        + kinds["AgentConnect"]
        + kinds["AgentComplete"]
        + kinds["QueueCallerAbandon"]
        + kinds["QueueMemberPause"]
    )


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


async def one_run(url: str, n_rounds: int, burst: int) -> dict[str, Any]:
    db = Database(url)
    bus = Bus(REDIS_URL, f"benchqi{uuid.uuid4().hex[:8]}")
    events = rounds(n_rounds, f"pbx-bench{uuid.uuid4().hex[:6]}")
    live = LiveState(bus, Clock())
    board_reader = LiveQueues(bus, Clock())
    writer = EventWriter(db)
    ingest = QueueIngest(writer, Clock())
    await live.start()
    await writer.start()
    handler_ns: list[int] = []
    try:
        started = time.perf_counter()
        for i in range(0, len(events), burst):
            for e in events[i : i + burst]:
                t = time.perf_counter_ns()
                await ingest.on_event(e)
                await live.on_event(e)
                handler_ns.append(time.perf_counter_ns() - t)
            await asyncio.sleep(0)  # the next read of the AMI socket
        await writer.drained()
        await live.stop()
        elapsed = time.perf_counter() - started
        await writer.stop()
        async with db.session() as s:
            stored = await s.scalar(select(func.count()).select_from(QueueEvent))
        board = await board_reader.snapshot()
    finally:
        keys = [k async for k in bus.redis.scan_iter(f"{bus.prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()
    want = expected_rows() * n_rounds
    if stored != want:
        raise SystemExit(f"{url.split(':')[0]}: {stored} rows stored, {want} expected")
    if any(q["waiting"] for q in board["queues"].values()):
        raise SystemExit("callers left waiting on the board after the run")
    return {
        "events": len(events),
        "rows": stored,
        "seconds": elapsed,
        "events_per_s": len(events) / elapsed,
        "rows_per_s": stored / elapsed,
        "handler_us_p50": statistics.median(handler_ns) / 1000,
        "handler_us_p99": sorted(handler_ns)[int(len(handler_ns) * 0.99)] / 1000,
        "db_batches": writer.batches,
        "redis_writes": live.writes,
    }


def pg_database() -> tuple[str, str]:
    name = f"hotline_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_pg(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1500, help="transcript replays per run")
    ap.add_argument("--burst", type=int, default=50, help="events per AMI read")
    ap.add_argument("--databases", default="sqlite,postgresql")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-queue-ingest-") as tmp:
        for run in range(args.runs):
            # a fresh database per run, the databases interleaved (noise falls alike)
            for kind in args.databases.split(","):
                if kind == "sqlite":
                    url, pg = f"sqlite:///{tmp}/run{run}.db", None
                else:
                    pg, url = pg_database()
                try:
                    await asyncio.to_thread(migrate, url)
                    r = await one_run(url, args.rounds, args.burst)
                finally:
                    if pg:
                        drop_pg(pg)
                results.setdefault(kind, []).append(r)
                print(
                    f"{kind:10} run {run + 1}: {r['events']} events in {r['seconds']:.2f} s = "
                    f"{r['events_per_s']:,.0f} events/s, {r['rows_per_s']:,.0f} rows/s, "
                    f"handler p50 {r['handler_us_p50']:.1f} us, {r['db_batches']} DB batches, "
                    f"{r['redis_writes']} Redis writes",
                    flush=True,
                )

    summary = {
        kind: {
            key: statistics.median(r[key] for r in runs)
            for key in (
                "events_per_s",
                "rows_per_s",
                "handler_us_p50",
                "handler_us_p99",
                "seconds",
                "db_batches",
                "redis_writes",
            )
        }
        | {"events": runs[0]["events"], "rows": runs[0]["rows"], "runs": len(runs)}
        for kind, runs in results.items()
    }
    command_line = (
        f".venv/bin/python -m bench.queue_ingest --runs {args.runs} --rounds {args.rounds} "
        f"--burst {args.burst} --databases {args.databases}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "queue_ingest.json").write_text(
        json.dumps({"command": command_line, "summary": summary, "runs": results}, indent=1) + "\n"
    )
    lines = [
        "# Queue event ingest (bench/queue_ingest.py)",
        "",
        f"`{command_line}`; medians of {args.runs} runs; target >= 5,000 events/s.",
        "",
        "| database | events/run | events/s | rows/s | handler p50 (us) | handler p99 (us) "
        "| DB batches | Redis writes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, s in summary.items():
        lines.append(
            f"| {kind} | {s['events']} | {s['events_per_s']:,.0f} | {s['rows_per_s']:,.0f} "
            f"| {s['handler_us_p50']:.1f} | {s['handler_us_p99']:.1f} | {s['db_batches']:.0f} "
            f"| {s['redis_writes']:.0f} |"
        )
    (args.out / "queue_ingest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())

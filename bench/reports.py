"""Time of the daily and weekly reports over a year of history (1M calls), on SQLite and PostgreSQL.

    .venv/bin/python -m bench.reports                       # 1M calls, both databases
    .venv/bin/python -m bench.reports --calls 100000 --db sqlite --runs 3

For each database it migrates a fresh one (SQLite in a temporary directory;
PostgreSQL a database of its own, hotline_bench_<random>, on $HOTLINE_TEST_PG
or postgresql://postgres@127.0.0.1:5432/test, dropped at the end) and fills it
fast (executemany on SQLite, COPY on PostgreSQL) with:

- --calls calls over the 365 days before 2026-11-23, busier by day than by
  night: 80 % answered, 11 % abandoned, 5 % timed out, 4 % hung up in the menu;
- their queue events (JOIN, CONNECT / ABANDON / EXITWITHTIMEOUT, COMPLETE*),
  two ring-no-answers in a hundred calls, and each agent's ADDMEMBER /
  REMOVEMEMBER at the start and end of every shift;
- a ticket for one call in three (topics and levels spread, level 2 forwarded
  to one of 60 agencies, most answered, some late) with its history lines.

Then it times, over the real code (``queue_stats.reports``), the daily report
of a day in the last week and the weekly report of the last full week, one
warm-up then --runs runs each, interleaved, and prints the medians.  The
target is at most 500 ms per report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from core.db import Database
from core.settings import Settings
from hotline.system import PROJECT_ROOT
from queue_stats import reports
from tests.helpers import settings_in

PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
LAST_DAY = date(2026, 11, 22)  # a Sunday: the last full week ends here
TOPICS = ["urban", "traffic", "flooding", "electricity", "water", "trees", "other"]
SHIFTS = [("morning", 6, 14), ("afternoon", 14, 22), ("night", 22, 6)]
TZ_OFFSET = timedelta(hours=7)
AGENCIES = 60
T_AGENCY = "2025-01-01 00:00:00.000000"

CALL_COLS = [
    "id",
    "uniqueid",
    "hotline_number",
    "caller_number",
    "ivr_path",
    "ivr_choice",
    "route_source",
    "team_id",
    "shift_id",
    "queue",
    "agent_extension",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "hold_seconds",
    "talk_seconds",
    "outcome",
]
EVENT_COLS = ["key", "at", "queue", "uniqueid", "agent", "event", "wait_seconds", "talk_seconds"]
TICKET_COLS = [
    "id",
    "code",
    "call_id",
    "channel",
    "domain",
    "topic",
    "level",
    "description",
    "status",
    "agency_id",
    "forwarded_at",
    "deadline_at",
    "escalations",
    "created_at",
    "updated_at",
    "version",
]
TEVENT_COLS = ["ticket_id", "at", "actor_name", "action", "from_status", "to_status", "details"]


def alembic_cfg(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    return cfg


def shift_of(local_hour: int) -> str:
    for sid, a, b in SHIFTS:
        if (a <= local_hour < b) if a < b else (local_hour >= a or local_hour < b):
            return sid
    raise AssertionError


def generate(
    n_calls: int, seed: int = 7
) -> tuple[list[tuple], list[tuple], list[tuple], list[tuple]]:
    """Rows of calls, queue events, tickets and ticket events (UTC datetimes, aware)."""
    rnd = random.Random(seed)
    first = datetime.combine(LAST_DAY - timedelta(days=364), datetime.min.time(), UTC) - TZ_OFFSET
    span = 365 * 86400
    # busier by day: draw local hours with weights
    weights = [1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 9, 7, 8, 9, 9, 9, 8, 6, 5, 4, 3, 2, 1]
    hours = rnd.choices(range(24), weights=weights, k=n_calls)
    days = [rnd.randrange(365) for _ in range(n_calls)]
    starts = sorted(
        first + timedelta(days=d, hours=h, seconds=rnd.randrange(3600))
        for d, h in zip(days, hours, strict=True)
    )
    del span
    calls, events, tickets, tevents = [], [], [], []
    tid = 0
    for i, start in enumerate(starts, 1):
        local_hour = (start + TZ_OFFSET).hour
        shift = shift_of(local_hour)
        party = rnd.random() < 0.15
        team = "party" if party else "t1022"
        hotline = "0888247247" if party else "1022"
        queue = f"{team}-{shift}"
        r = rnd.random()
        outcome = (
            "answered"
            if r < 0.80
            else "abandoned"
            if r < 0.91
            else "timeout"
            if r < 0.96
            else "hangup_ivr"
        )
        uid = f"pbx-{i}.1"
        queued = start + timedelta(seconds=8) if outcome != "hangup_ivr" else None
        hold = talk = agent = answered = None
        base = {"morning": 1001, "afternoon": 1006, "night": 1011}[shift] + (20 if party else 0)
        if outcome == "answered":
            hold = int(rnd.expovariate(1 / 15))
            talk = 30 + int(rnd.expovariate(1 / 150))
            agent = str(base + rnd.randrange(5))
            answered = queued + timedelta(seconds=hold)  # type: ignore[operator]
            ended = answered + timedelta(seconds=talk)
        elif outcome == "abandoned":
            hold = int(rnd.expovariate(1 / 40))
            ended = queued + timedelta(seconds=hold)  # type: ignore[operator]
        elif outcome == "timeout":
            hold = 600
            ended = queued + timedelta(seconds=hold + 5)  # type: ignore[operator]
        else:
            ended = start + timedelta(seconds=6)
        calls.append(
            (
                i,
                uid,
                hotline,
                f"09{rnd.randrange(10**8):08d}",
                "1:agent",
                "agent",
                "agi",
                team,
                shift,
                queue if queued else None,
                agent,
                start,
                queued,
                answered,
                ended,
                hold,
                talk,
                outcome,
            )
        )
        if queued:
            events.append((f"{uid}:JOIN", queued, queue, uid, None, "JOIN", None, None))
            if rnd.random() < 0.02:
                events.append(
                    (
                        f"{uid}:RNA",
                        queued + timedelta(seconds=1),
                        queue,
                        uid,
                        str(base + rnd.randrange(5)),
                        "RINGNOANSWER",
                        None,
                        None,
                    )
                )
            if outcome == "answered":
                events.append(
                    (f"{uid}:CONNECT", answered, queue, uid, agent, "CONNECT", hold, None)
                )
                events.append(
                    (f"{uid}:COMPLETE", ended, queue, uid, agent, "COMPLETECALLER", hold, talk)
                )
            else:
                kind = "ABANDON" if outcome == "abandoned" else "EXITWITHTIMEOUT"
                events.append((f"{uid}:{kind}", ended, queue, uid, None, kind, hold, None))
        if outcome == "answered" and rnd.random() < 0.33:
            tid += 1
            level = rnd.choices([1, 2, 3, 4, 5], weights=[50, 35, 8, 2, 5])[0]
            created = ended
            agency = forwarded = deadline = None
            status = "closed" if level == 1 else "new"
            tevents.append((tid, created, "agent", "created", None, status, "{}"))
            if level == 2:
                agency = 1 + rnd.randrange(AGENCIES)
                forwarded = created
                deadline = created + timedelta(hours=72)
                status = "forwarded"
                r2 = rnd.random()
                if r2 < 0.85:
                    took = timedelta(hours=rnd.expovariate(1 / 30))
                    status = "answered"
                    tevents.append(
                        (tid, created + took, "officer", "answered", "forwarded", "answered", "{}")
                    )
            tickets.append(
                (
                    tid,
                    f"B{tid:07d}",
                    i,
                    "phone",
                    "state",
                    rnd.choice(TOPICS),
                    level,
                    "bench",
                    status,
                    agency,
                    forwarded,
                    deadline,
                    0,
                    created,
                    created,
                    1,
                )
            )
    # agents logged in for their shifts
    for d in range(365):
        day = LAST_DAY - timedelta(days=364 - d)
        for sid, a, b in SHIFTS:
            s_local = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=a)
            e_local = s_local + timedelta(hours=(b - a) % 24)
            for team, off in (("t1022", 0), ("party", 20)):
                base = {"morning": 1001, "afternoon": 1006, "night": 1011}[sid] + off
                for k in range(5):
                    ext = str(base + k)
                    q = f"{team}-{sid}"
                    for kind, at in (("ADDMEMBER", s_local), ("REMOVEMEMBER", e_local)):
                        events.append(
                            (
                                f"{q}:{ext}:{kind}:{at:%Y%m%d%H}",
                                at - TZ_OFFSET,
                                q,
                                None,
                                ext,
                                kind,
                                None,
                                None,
                            )
                        )
    return calls, events, tickets, tevents


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def chunks(rows: list[tuple], size: int = 50_000) -> Iterator[list[tuple]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def fill_sqlite(path: Path, data: tuple[list[tuple], ...]) -> None:
    calls, events, tickets, tevents = data
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.executemany(
        "INSERT INTO agencies (id, kind, code, name, active, created_at, updated_at, version) "
        "VALUES (?, 'ward', ?, ?, 1, ?, ?, 1)",
        [(i, f"ag{i}", f"Phường {i}", T_AGENCY, T_AGENCY) for i in range(1, AGENCIES + 1)],
    )
    for table, cols, rows in (
        ("calls", CALL_COLS, calls),
        ("queue_events", EVENT_COLS, events),
        ("tickets", TICKET_COLS, tickets),
        ("ticket_events", TEVENT_COLS, tevents),
    ):
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        for part in chunks(rows):
            con.executemany(sql, [tuple(_sqlite_value(v) for v in r) for r in part])
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()


def fill_postgres(url: str, data: tuple[list[tuple], ...]) -> None:
    calls, events, tickets, tevents = data
    with psycopg.connect(url) as con:
        with con.cursor() as cur:
            cols = "id, kind, code, name, active, created_at, updated_at, version"
            with cur.copy(f"COPY agencies ({cols}) FROM STDIN") as cp:
                t = datetime(2025, 1, 1, tzinfo=UTC)
                for i in range(1, AGENCIES + 1):
                    cp.write_row((i, "ward", f"ag{i}", f"Phường {i}", True, t, t, 1))
            for table, cols, rows in (
                ("calls", CALL_COLS, calls),
                ("queue_events", EVENT_COLS, events),
                ("tickets", TICKET_COLS, tickets),
                ("ticket_events", TEVENT_COLS, tevents),
            ):
                with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
            for table in ("agencies", "calls", "tickets", "ticket_events", "queue_events"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE")


async def time_reports(url: str, settings: Settings, runs: int) -> dict[str, list[float]]:
    db = Database(url)
    day = LAST_DAY - timedelta(days=3)
    now = datetime.combine(LAST_DAY + timedelta(days=1), datetime.min.time(), UTC)
    times: dict[str, list[float]] = {"daily": [], "weekly": []}
    try:
        for i in range(runs + 1):
            for kind in ("daily", "weekly"):
                t = time.perf_counter()
                if kind == "daily":
                    r = await reports.daily(db, settings, day, now)
                else:
                    r = await reports.weekly(db, settings, LAST_DAY, now)
                took = time.perf_counter() - t
                if i == 0:
                    print(
                        f"  {kind}: {r.total.offered} offered, {len(r.by_agent)} agents, "
                        f"{r.tickets_total} tickets, {len(r.agencies)} agencies "
                        f"(warm-up {took * 1000:.0f} ms)"
                    )
                else:
                    times[kind].append(took)
    finally:
        await db.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    t = time.perf_counter()
    data = generate(args.calls)
    print(
        f"generated {len(data[0])} calls, {len(data[1])} queue events, {len(data[2])} tickets, "
        f"{len(data[3])} ticket events in {time.perf_counter() - t:.0f} s"
    )
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_in(Path(tmp))
        results = {}
        for kind in kinds:
            name = None
            if kind == "sqlite":
                url = f"sqlite:///{tmp}/bench.db"
            else:
                name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
                    con.execute(f'CREATE DATABASE "{name}"')
                url = (
                    make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
                )
            try:
                command.upgrade(alembic_cfg(url), "head")
                t = time.perf_counter()
                if kind == "sqlite":
                    fill_sqlite(Path(tmp) / "bench.db", data)
                else:
                    fill_postgres(url.replace("postgresql+psycopg", "postgresql"), data)
                print(f"{kind}: filled in {time.perf_counter() - t:.0f} s")
                results[kind] = asyncio.run(time_reports(url, settings, args.runs))
            finally:
                if name:
                    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
                        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"\nmedians over {args.runs} runs, {args.calls} calls of history:")
    for kind, times in results.items():
        for report, ts in times.items():
            print(
                f"  {kind:10s} {report:6s} median {statistics.median(ts) * 1000:6.0f} ms "
                f"(min {min(ts) * 1000:.0f}, max {max(ts) * 1000:.0f})"
            )


if __name__ == "__main__":
    main()

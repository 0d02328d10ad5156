"""SMS throughput through the real Kannel: intake into the inbox, and notifications out.

    .venv/bin/python -m bench.sms_throughput                   # 3 runs of 3,000 each way
    .venv/bin/python -m bench.sms_throughput --count 500 --runs 1 --database postgresql

The test SMSC (tests/sms/smsc.py, SMPP over TCP) and Debian's Kannel (bearerbox,
smsbox) on loopback ports of their own (slot 9 of the test lab's scheme), the
panel's web application (the one Kannel calls) on SQLite or PostgreSQL, and Redis.

- **Intake**: the SMSC delivers ``--count`` SMS (``deliver_sm``) from distinct
  numbers, ``--window`` unanswered at once, as a carrier does; Kannel stores each in
  its store file, smsbox calls ``/sms/kannel/in``, the application stores it in
  ``messages``.  The rate is the count over the time from the first delivery to the
  last row stored; then the rows are counted: every one there, each once.
- **Out**: ``--count`` notifications are written due now (the planner's own
  ``add``); the dispatcher sends them (``notify.concurrency`` at once) through the
  inbox's outgoing path (a row of ``messages``, Kannel's sendsms with delivery
  reports); the rate is the count over the time until the SMSC has every one.

Each run has a fresh database.  Medians over ``--runs`` are printed with the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

os.environ.setdefault("HOTLINE_LAB_SLOT", "9")

from core.bus import Bus  # noqa: E402
from core.clock import Clock  # noqa: E402
from core.db import Database  # noqa: E402
from hotline.app import notify_dispatcher, panel_context  # noqa: E402
from hotline.system import migrate  # noqa: E402
from inbox.models import Direction, Message  # noqa: E402
from notify.models import NotifyChannel  # noqa: E402
from notify.planner import Target  # noqa: E402
from panel.app import make_app  # noqa: E402
from sms.kannel import Kannel  # noqa: E402
from tests.sms.conftest import PORTS, SMSC_PASSWORD, sms_settings  # noqa: E402
from tests.sms.smsc import SMSC  # noqa: E402


def _pg_url() -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


async def one_run(
    kind: str, count: int, window: int, concurrency: int, home: Path
) -> tuple[float, float, str]:
    from aiohttp import web

    url = f"sqlite:///{home / 'bench.db'}" if kind == "sqlite" else _pg_url()
    prefix = f"smsbench{uuid.uuid4().hex[:8]}"
    settings = sms_settings(
        home,
        url,
        prefix,
        {
            "notify": {
                "enabled": True,
                "hours": "00:00-23:59",
                "concurrency": concurrency,
                "retry_minutes": 0.01,
            }
        },
        flood_per_minute=10000,
    )
    migrate(settings)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    ctx = panel_context(settings, db=db, bus=bus, clock=Clock(), control=None)
    runner = web.AppRunner(make_app(ctx), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", PORTS["panel"]).start()
    smsc = SMSC("127.0.0.1", PORTS["smsc"], "hotline", SMSC_PASSWORD)
    await smsc.start()
    kannel = Kannel(settings)
    dispatcher = notify_dispatcher(ctx, interval=3600)
    try:
        await asyncio.to_thread(kannel.start)
        await asyncio.wait_for(smsc.bound.wait(), 30)

        # -- intake ----------------------------------------------------------------
        sem = asyncio.Semaphore(window)

        async def deliver(i: int) -> None:
            async with sem:
                status = await smsc.deliver(f"09{i:08d}", "1022", f"Phan anh so {i}".encode())
                assert status == 0, status

        async def stored() -> int:
            async with db.session() as s:
                n = await s.scalar(
                    select(func.count(Message.id)).where(Message.direction == Direction.IN)
                )
            return int(n or 0)

        t0 = time.monotonic()
        await asyncio.gather(*(deliver(i) for i in range(count)))
        while await stored() < count:
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"intake: {await stored()} of {count} after 600 s")
            await asyncio.sleep(0.05)
        intake = count / (time.monotonic() - t0)
        async with db.session() as s:
            distinct = await s.scalar(
                select(func.count(func.distinct(Message.external_id))).where(
                    Message.direction == Direction.IN
                )
            )
            bodies = set((await s.scalars(select(Message.body))).all())
        lost = count - len({f"Phan anh so {i}" for i in range(count)} & bodies)
        assert distinct == count and lost == 0, (distinct, lost)

        # -- notifications out ------------------------------------------------------
        planner = dispatcher.planner
        now = ctx.clock.now()
        async with db.session() as s:
            for i in range(count):
                await planner.add(
                    s,
                    dedupe=f"bench:{i}",
                    kind="code",
                    target=Target(NotifyChannel.SMS, f"08{i:08d}"),
                    body=f"Tong dai 1022 da tiep nhan phan anh cua ban. So phan anh: {i}",
                    now=now,
                    ticket_id=None,
                )
        before = len(smsc.submitted)
        t0 = time.monotonic()
        while len(smsc.submitted) - before < count:
            await dispatcher.round()  # again: a try refused meanwhile is due again soon
            if time.monotonic() - t0 > 600:
                raise SystemExit(f"out: {len(smsc.submitted) - before} of {count} after 600 s")
            await asyncio.sleep(0.05)
        out = count / (time.monotonic() - t0)
        return intake, out, url
    finally:
        await asyncio.to_thread(kannel.stop)
        await smsc.stop()
        await runner.cleanup()
        keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()
        if kind == "postgresql":
            _drop(url)


def _drop(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = make_url(url).database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--window", type=int, default=100, help="deliveries unanswered at once")
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--concurrency", type=int, default=10, help="notify.concurrency")
    args = ap.parse_args()
    intakes, outs = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            intake, out, _url = await one_run(
                args.database, args.count, args.window, args.concurrency, Path(home)
            )
        intakes.append(intake)
        outs.append(out)
        print(f"run {run + 1}: intake {intake:.0f} SMS/s, out {out:.0f} SMS/s", flush=True)
    print(
        f"{args.database}, {args.count} SMS each way, {args.runs} runs: "
        f"intake median {statistics.median(intakes):.0f} SMS/s "
        f"(min {min(intakes):.0f}, max {max(intakes):.0f}), none lost; "
        f"out median {statistics.median(outs):.0f} SMS/s "
        f"(min {min(outs):.0f}, max {max(outs):.0f})"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

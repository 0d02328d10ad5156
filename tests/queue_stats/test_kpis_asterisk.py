"""Real calls through the real Asterisk: the service level and the abandon rate that
the board, the report page, its CSV and ``/metrics`` give are the ones worked out
by hand from Asterisk's own queue_log for the same calls.

The application runs on a database of its own (SQLite and PostgreSQL), so
today's figures of the queue are those of this run's calls alone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from accounts.identity import Actor
from callcenter.queue_log import QueueLogReader
from callcenter.shifts import on_duty_queue
from core.clock import Clock
from core.settings import Settings
from hotline.app import Application
from hotline.system import migrate
from tests.agi.test_calls import ended_record, new_number
from tests.callcenter.test_no_agent import set_paused
from tests.lab import Lab, eventually
from tests.panel.conftest import PASSWORD, login_form_token
from tests.queue_stats.test_catchup_restart import started
from tests.queue_stats.test_kpis import rates_everywhere

pytestmark = pytest.mark.asterisk


def by_hand(settings: Settings, numbers: set[str]) -> tuple[float, float] | None:
    """(service level, abandon rate) of the calls from ``numbers``, from queue_log
    alone (None while a call's outcome is not written yet).

    ``epoch|callid|queue|agent|EVENT|data…``: ENTERQUEUE gives the caller's number
    (data 2), CONNECT the wait (data 1), ABANDON and EXITWITHTIMEOUT the wait
    (data 3)."""
    lines = [line.split("|") for line in settings.queue_log.read_text().splitlines()]
    entered = {p[1] for p in lines if len(p) > 6 and p[4] == "ENTERQUEUE" and p[6] in numbers}
    waits: dict[str, tuple[str, int]] = {}
    for p in lines:
        if p[1] not in entered:
            continue
        if p[4] == "CONNECT":
            waits[p[1]] = ("answered", int(p[5]))
        elif p[4] in ("ABANDON", "EXITWITHTIMEOUT"):
            waits[p[1]] = (p[4], int(p[7]))
    if len(entered) != len(numbers) or set(waits) != entered:
        return None
    sl, short = settings.stats.service_level_seconds, settings.stats.short_abandon_seconds
    in_time = sum(1 for kind, w in waits.values() if kind == "answered" and w <= sl)
    short_abandons = sum(1 for kind, w in waits.values() if kind == "ABANDON" and w < short)
    gave_up = sum(1 for kind, w in waits.values() if kind == "ABANDON" and w >= short)
    timed_out = sum(1 for kind, _ in waits.values() if kind == "EXITWITHTIMEOUT")
    counted = len(entered) - short_abandons
    assert short_abandons == 1 and gave_up == 1 and timed_out == 1, waits  # the run's plan
    return round(100 * in_time / counted, 1), round(100 * (gave_up + timed_out) / counted, 1)


async def test_the_views_agree_with_queue_log(carrier: Lab, database_url: str):
    settings = carrier.settings.model_copy(update={"database_url": database_url})
    now = datetime.now(UTC)
    queue, _ = on_duty_queue(settings, "party", now)
    later = now + timedelta(minutes=3)
    if on_duty_queue(settings, "party", later)[0] != queue:
        pytest.skip("a shift handover falls within the test: the calls would split")
    if later.astimezone(settings.tz).date() != now.astimezone(settings.tz).date():
        pytest.skip("midnight falls within the test: today's figures would split")
    await asyncio.to_thread(migrate, settings)
    # The lab's queue_log holds earlier tests' calls, which a fresh database
    # would take in at start (the catch-up after an outage, as it should): this
    # database starts from now, so that today's figures are this test's calls.
    for name in ("queue_log.offset.json", "queue_stats.offset.json"):
        reader = QueueLogReader(settings.queue_log, settings.state_dir / name)
        reader.commit(reader.read_new()[1])
    app = await started(Application(settings, clock=Clock(), scheduler_interval=2))
    try:
        admin = Actor.of(
            await app.panel.accounts.create_user(
                None,
                {
                    "username": "admin",
                    "display_name": "Admin",
                    "role": "admin",
                    "password": PASSWORD,
                },
            )
        )
        await app.panel.accounts.create_user(
            admin,
            {
                "username": "giamsat",
                "display_name": "Giám sát",
                "role": "supervisor",
                "password": PASSWORD,
            },
        )
        # answered at once; then, nobody free: a short abandon (about 1 s in the
        # queue), a caller who gives up after about 10 s, one who waits it out
        answers, short, leaves, waits = (new_number() for _ in range(4))
        await carrier.carrier.call("0888247247", caller_id=f"<{answers}>", digits="1", hold=4)
        await ended_record(app, answers, timeout=60)
        await set_paused(app, "party", True)
        try:
            for number, hold in (
                (short, 4),
                (leaves, 14),
                (waits, settings.queues.max_wait_seconds + 20),
            ):
                await carrier.carrier.call(
                    "0888247247", caller_id=f"<{number}>", digits="1", hold=hold
                )
            await asyncio.gather(
                *(
                    ended_record(app, n, timeout=settings.queues.max_wait_seconds + 40)
                    for n in (short, leaves, waits)
                )
            )
        finally:
            await set_paused(app, "party", False)

        want = await eventually(
            lambda: asyncio.to_thread(by_hand, settings, {answers, short, leaves, waits}), 30
        )
        day = datetime.now(UTC).astimezone(settings.tz).date().isoformat()
        base = f"http://127.0.0.1:{settings.panel.port}"
        async with aiohttp.ClientSession(
            base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as client:
            token = await login_form_token(client)
            r = await client.post(
                "/login",
                data={"_csrf": token, "username": "giamsat", "password": PASSWORD},
                allow_redirects=False,
            )
            assert r.status == 303, await r.text()
            got = await rates_everywhere(client, queue, day)
        assert got == dict.fromkeys(("board", "board total", "report", "csv", "metrics"), want)
    finally:
        await app.stop()

"""Queue figures on real SQLite and PostgreSQL, checked against values worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from callcenter.models import Call, Direction, Outcome
from core.db import Database
from core.settings import Settings
from queue_stats.figures import buckets, figures, hourly
from queue_stats.models import QueueEvent
from tests.helpers import settings_in

# 08:00 on 25/11/2026 in Ho Chi Minh City (UTC+7): the morning shift.
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
DAY = date(2026, 11, 25)
Q = "t1022-morning"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_in(tmp_path)  # service level 20 s, short abandon 5 s, wrap-up 5 s


_n = 0


def call(
    minute: float,
    outcome: Outcome,
    hold: int | None = None,
    talk: int | None = None,
    agent: str | None = None,
    queue: str | None = Q,
    hotline: str = "1022",
) -> Call:
    global _n
    _n += 1
    start = T0 + timedelta(minutes=minute)
    queued = start + timedelta(seconds=10) if queue else None
    answered = queued + timedelta(seconds=hold or 0) if outcome == Outcome.ANSWERED else None
    return Call(
        uniqueid=f"pbx-{_n}.1",
        hotline_number=hotline,
        started_at=start,
        queued_at=queued,
        answered_at=answered,
        ended_at=start + timedelta(seconds=300),
        queue=queue,
        shift_id=queue.partition("-")[2] if queue else None,
        team_id=queue.partition("-")[0] if queue else None,
        agent_extension=agent,
        hold_seconds=hold,
        talk_seconds=talk,
        outcome=outcome,
        ivr_path="",
    )


def event(minutes: float, kind: str, agent: str, queue: str = Q) -> QueueEvent:
    return QueueEvent(
        key=f"{kind}-{agent}-{queue}-{minutes}",
        at=T0 + timedelta(minutes=minutes),
        queue=queue,
        agent=agent,
        event=kind,
        data=json.dumps({}),
    )


async def seed(db: Database) -> None:
    async with db.session() as s:
        s.add_all(
            [
                call(0, Outcome.ANSWERED, hold=5, talk=60, agent="1001"),
                call(10, Outcome.ANSWERED, hold=25, talk=120, agent="1002"),
                call(20, Outcome.ANSWERED, hold=20, talk=None, agent="1001"),  # exactly the SL
                call(30, Outcome.ABANDONED, hold=3),  # a short abandon
                call(40, Outcome.ABANDONED, hold=40),
                call(50, Outcome.ABANDONED, hold=12),  # abandoned within the SL
                call(70, Outcome.TIMEOUT, hold=30),
                call(80, Outcome.HANGUP_IVR, queue=None),  # never queued: not offered
                call(
                    90,
                    Outcome.ANSWERED,
                    hold=2,
                    talk=30,
                    agent="2001",
                    queue="party-morning",
                    hotline="0888247247",
                ),
                call(-5, Outcome.ANSWERED, hold=1, talk=10, agent="1001"),  # the day before 08:00
                call(24 * 60, Outcome.ABANDONED, hold=50),  # the next day
            ]
        )
        s.add_all(
            [
                event(-60, "ADDMEMBER", "1001"),  # logged in before the period
                event(240, "REMOVEMEMBER", "1001"),  # 4 h staffed
                event(120, "ADDMEMBER", "1002"),  # staffed from 10:00 to 10:30 (the end)
                event(100, "RINGNOANSWER", "1002"),
                event(101, "RINGNOANSWER", "1002"),
                event(102, "RINGNOANSWER", "1001"),
                event(-120, "ADDMEMBER", "2001", "party-morning"),
                event(-90, "REMOVEMEMBER", "2001", "party-morning"),  # gone before the period
            ]
        )


async def test_totals_worked_out_by_hand(db: Database, settings: Settings):
    await seed(db)
    end = T0 + timedelta(hours=4, minutes=30)  # 12:30
    [f] = await figures(db, settings, T0, end)
    assert f.key is None
    assert (f.offered, f.answered, f.abandoned, f.timed_out) == (8, 4, 3, 1)
    assert f.short_abandoned == 1 and f.abandoned_long == 2
    assert f.answered_in_sl == 3  # 5, 20 and 2 s (20 counts, as in app_queue: <=)
    assert f.abandoned_in_sl == 2  # 3 and 12 s
    assert f.asterisk_abandoned == 4  # app_queue counts the timeout too
    assert f.service_level_perf == 75.0  # 3 / 4
    assert f.service_level_perf2 == 62.5  # (3 + 2) / (4 + 4)
    # ours: over the 7 calls counted (8 offered, less the short abandon)
    assert f.waiting == 0 and f.counted == 7
    assert f.service_level == 42.9  # 3 / 7
    assert f.abandon_rate == 42.9  # (2 abandoned after 5 s + 1 timed out) / 7
    assert f.asa == 13.0  # (5 + 25 + 20 + 2) / 4
    assert f.talk_seconds == 210 and f.talk_calls == 3
    assert f.avg_talk == 70.0 and f.aht == 75.0  # plus 5 s wrap-up
    assert f.longest_wait == 40
    assert f.calls_per_hour == round(8 / 4.5, 2)
    # 1001 from 08:00 to 12:00, 1002 from 10:00 to 12:30; 2001 left before.
    assert f.staffed_seconds == 4 * 3600 + 2.5 * 3600
    assert f.occupancy == round(100 * 210 / (6.5 * 3600), 1)
    assert f.ring_no_answer == 3


async def test_calls_still_waiting_and_called_back(db: Database, settings: Settings):
    """A call still in the queue is not counted yet; one that left for a callback
    was not answered in time and is not an abandon."""
    async with db.session() as s:
        s.add_all(
            [
                call(0, Outcome.ANSWERED, hold=5, talk=60, agent="1001"),
                call(1, Outcome.QUEUED, hold=None),
                call(2, Outcome.CALLBACK, hold=30),
                call(3, Outcome.ABANDONED, hold=4),  # short: under 5 s
                call(4, Outcome.ABANDONED, hold=5),  # not short
            ]
        )
    [f] = await figures(db, settings, T0, T0 + timedelta(hours=1), staffing=False)
    assert (f.offered, f.waiting, f.short_abandoned) == (5, 1, 1)
    assert f.counted == 3  # answered, callback, 5 s abandon
    assert f.service_level == 33.3 and f.abandon_rate == 33.3
    assert f.service_level_perf == 100.0  # app_queue's: abandons do not lower it


async def test_calls_agents_place_to_citizens_count_in_no_figure(db: Database, settings: Settings):
    """An agent's call to a citizen from a ticket (outbound, talked and recorded, shown
    with the hotline's number) is no queue call: no figure, no agent row, no hotline's."""
    await seed(db)
    end = T0 + timedelta(hours=4, minutes=30)
    before = {by: await figures(db, settings, T0, end, by=by) for by in ("agent", "hotline")}
    placed = call(30, Outcome.OUTBOUND, talk=95, agent="1001", queue=None)
    placed.direction, placed.answered_at = Direction.OUTBOUND, placed.started_at
    other = call(31, Outcome.OUTBOUND, talk=40, agent="1003", queue=None)
    other.direction = Direction.OUTBOUND
    async with db.session() as s:
        s.add_all([placed, other])
    # 1003 placed a call and took none: no row of theirs, nothing added to 1001's or 1022's
    for by, was in before.items():
        assert await figures(db, settings, T0, end, by=by) == was, by  # type: ignore[arg-type]
    [f] = await figures(db, settings, T0, end)
    assert (f.offered, f.answered, f.talk_seconds, f.talk_calls) == (8, 4, 210, 3)


async def test_by_queue_agent_shift_and_hotline(db: Database, settings: Settings):
    await seed(db)
    end = T0 + timedelta(hours=4, minutes=30)
    by_queue = {f.key: f for f in await figures(db, settings, T0, end, by="queue")}
    assert set(by_queue) == {Q, "party-morning"}
    assert (by_queue[Q].offered, by_queue[Q].answered) == (7, 3)
    assert by_queue[Q].staffed_seconds == 6.5 * 3600
    assert by_queue["party-morning"].staffed_seconds == 0
    assert by_queue["party-morning"].service_level_perf == 100.0

    by_agent = {f.key: f for f in await figures(db, settings, T0, end, by="agent")}
    assert set(by_agent) == {"1001", "1002", "2001"}  # unanswered calls have no agent
    a1 = by_agent["1001"]
    assert (a1.answered, a1.talk_seconds, a1.asa) == (2, 60, 12.5)
    assert a1.staffed_seconds == 4 * 3600 and a1.ring_no_answer == 1
    assert a1.occupancy == round(100 * 60 / (4 * 3600), 1)
    assert by_agent["1002"].ring_no_answer == 2

    by_hotline = {f.key: f for f in await figures(db, settings, T0, end, by="hotline")}
    assert by_hotline["1022"].offered == 7 and by_hotline["0888247247"].offered == 1
    assert by_hotline["1022"].staffed_seconds is None  # agents staff queues, not numbers

    by_shift = {f.key: f for f in await figures(db, settings, T0, end, by="shift")}
    assert set(by_shift) == {"morning"} and by_shift["morning"].offered == 8

    [only] = await figures(db, settings, T0, end, agent="1002")
    assert only.answered == 1 and only.staffed_seconds == 2.5 * 3600

    with pytest.raises(ValueError, match="by: must be one of"):
        await figures(db, settings, T0, end, by="team")  # type: ignore[arg-type]


async def test_hourly_splits_the_local_day(db: Database, settings: Settings):
    await seed(db)
    hours = await hourly(db, settings, DAY)
    assert len(hours) == 24 and [h["hour"] for h in hours] == list(range(24))
    assert hours[0]["start"] == "2026-11-25T00:00:00+07:00"
    # 07:55 (the day before's call, 5 min before T0), 08:00-08:59, 09:00-09:59
    assert hours[7]["offered"] == 1 and hours[7]["answered"] == 1
    h8 = hours[8]
    assert (h8["offered"], h8["answered"], h8["abandoned"]) == (6, 3, 3)
    # 5 and 20 s in; 25 s out; the 3 s abandon is short, 40 and 12 s count
    assert h8["counted"] == 5 and h8["short_abandoned"] == 1
    assert h8["service_level"] == 40.0  # 2 / 5
    assert h8["abandon_rate"] == 40.0  # 2 / 5
    assert h8["service_level_perf"] == round(100 * 2 / 3, 1)  # app_queue's: over answered
    assert h8["asa"] == round(50 / 3, 1)
    h9 = hours[9]
    assert (h9["offered"], h9["timed_out"], h9["answered"]) == (2, 1, 1)
    assert h9["longest_wait"] == 30
    assert sum(h["offered"] for h in hours) == 9
    assert all(h["service_level"] is None for h in hours[10:])

    # the sum of the hours is the day
    day = await buckets(db, settings, T0 - timedelta(hours=8), T0 + timedelta(hours=16))
    [total] = await figures(
        db, settings, T0 - timedelta(hours=8), T0 + timedelta(hours=16), staffing=False
    )
    acc = day[0]
    for b in day[1:]:
        acc.add(b)
    assert acc.as_dict() == total.as_dict()

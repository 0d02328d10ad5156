"""The ingest on real Redis and real SQLite / PostgreSQL, fed AMI events recorded from the lab.

``fixtures/ami_queue_events.json`` holds the queue events a real Asterisk sent
for three calls (answered, abandoned, timed out while every agent of the team
was paused), ``fixtures/queue_log.txt`` the queue_log lines it wrote for them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from panoramisk.message import Message
from sqlalchemy import select

from callcenter.live import LiveState
from callcenter.queue_log import QueueLogReader, parse_line
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from queue_stats.catchup import QueueLogCatchUp, row_from_entry
from queue_stats.ingest import QueueIngest
from queue_stats.live import LiveQueues
from queue_stats.models import QueueEvent
from queue_stats.storage import EventWriter, Row, event_key, insert_rows
from tests.helpers import REDIS_URL, forget_keys
from tests.lab import eventually

FIXTURES = Path(__file__).parent / "fixtures"
ANSWERED, ABANDONED, TIMED_OUT = "pbx-1795613283.1", "pbx-1795613283.2", "pbx-1795613283.0"


def recorded_events() -> list[Message]:
    """The events as core.ami hands them to handlers (panoramisk Messages)."""
    return [Message(e) for e in json.loads((FIXTURES / "ami_queue_events.json").read_text())]


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    b = Bus(REDIS_URL, f"qstest{uuid.uuid4().hex[:8]}")
    yield b
    await forget_keys(b)
    await b.close()


async def rows(db: Database) -> list[QueueEvent]:
    async with db.session() as s:
        return list(await s.scalars(select(QueueEvent).order_by(QueueEvent.id)))


def fact(r: QueueEvent | Row) -> tuple[Any, ...]:
    return (r.key, r.event, r.queue, r.uniqueid, r.agent, r.wait_seconds, r.talk_seconds)


async def ingest_recorded(db: Database, bus: Bus) -> tuple[QueueIngest, LiveState]:
    live = LiveState(bus, Clock(), names={"2006": "Lâm Thị Kim"})
    writer = EventWriter(db)
    ingest = QueueIngest(writer, Clock())
    await live.start()
    await writer.start()
    for e in recorded_events():
        await ingest.on_event(e)
        await live.on_event(e)
    await writer.stop()
    await live.stop()
    return ingest, live


async def test_recorded_calls_become_rows_named_as_queue_log_names_them(db: Database, bus: Bus):
    await ingest_recorded(db, bus)
    got = await rows(db)

    def of(uniqueid: str) -> list[tuple[str, int | None, int | None, str | None]]:
        return [
            (r.event, r.wait_seconds, r.talk_seconds, r.agent)
            for r in got
            if r.uniqueid == uniqueid
        ]

    assert of(ANSWERED) == [
        ("JOIN", None, None, None),
        ("CONNECT", 0, None, "1006"),
        ("COMPLETECALLER", 0, 4, "1006"),
    ]
    assert of(ABANDONED) == [("JOIN", None, None, None), ("ABANDON", 5, None, None)]
    # Asterisk sends QueueCallerAbandon at the maximum wait too: the Hangup's
    # QUEUESTATUS=TIMEOUT makes it the timeout it was.
    assert of(TIMED_OUT) == [("JOIN", None, None, None), ("EXITWITHTIMEOUT", 30, None, None)]
    members = [(r.event, r.agent, r.data) for r in got if r.uniqueid is None]
    assert sorted(e for e, _, _ in members) == ["ADDMEMBER"] * 10 + ["PAUSE"] * 5 + ["UNPAUSE"] * 5
    assert {d for e, _, d in members if e == "PAUSE"} == {'{"reason": "test break"}'}
    assert all(r.at.tzinfo is not None for r in got)

    # the very keys queue_log gives the same happenings: nothing could count twice
    from_log = [
        row_from_entry(e)
        for e in map(parse_line, (FIXTURES / "queue_log.txt").read_text().splitlines())
    ]
    assert sorted(r.key for r in got) == sorted(r.key for r in from_log if r is not None)
    log_facts = {fact(r) for r in from_log if r is not None}
    assert {fact(r) for r in got} == log_facts


async def test_the_board_shows_callers_and_members_and_is_published(db: Database, bus: Bus):
    received: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async for _topic, data in bus.listen(["board"], ready):
            received.append(json.loads(data))

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    # the live state hears the same events as the ingest, on its own lane
    live = LiveState(bus, Clock(), names={"2006": "Lâm Thị Kim"})
    board = LiveQueues(bus, Clock())
    writer = EventWriter(db)
    ingest = QueueIngest(writer, Clock())
    await live.start()
    await writer.start()
    events = recorded_events()
    # up to the moment the second caller of the paused team is waiting
    cut = next(
        i
        for i, e in enumerate(events)
        if e["Event"] == "QueueCallerJoin" and e["Uniqueid"] == ABANDONED
    )
    for e in events[: cut + 1]:
        await ingest.on_event(e)
        await live.on_event(e)
    await live.flush()
    party = await board.queue("party-afternoon")
    assert [(c["uniqueid"], c["position"], c["caller"]) for c in party["waiting"]] == [
        (TIMED_OUT, 1, "0985092427"),
        (ABANDONED, 2, "0929811840"),
    ]
    kim = next(m for m in party["members"] if m["extension"] == "2006")
    assert kim == {
        "extension": "2006",
        "name": "Lâm Thị Kim",
        "state": "paused",
        "since": kim["since"],
        "reason": "test break",
    }
    assert datetime.fromisoformat(kim["since"]) == datetime.fromtimestamp(1795613283.904240, UTC)
    for e in events[cut + 1 :]:
        await ingest.on_event(e)
        await live.on_event(e)
    await writer.stop()
    await live.stop()
    snap = await board.snapshot()
    assert set(snap["queues"]) == {"party-afternoon", "t1022-afternoon"}
    assert all(not q["waiting"] for q in snap["queues"].values())
    assert {m["state"] for m in snap["queues"]["party-afternoon"]["members"]} == {"free"}
    assert len(snap["queues"]["t1022-afternoon"]["members"]) == 5

    async def published() -> bool:
        return any(m["queue"] == "party-afternoon" and not m["state"]["waiting"] for m in received)

    await eventually(published, 5, 0.05)
    assert all(m["type"] == "queue" for m in received)
    listener.cancel()
    await bus.stop_listening()
    await asyncio.gather(listener, return_exceptions=True)


async def test_replaying_events_and_queue_log_adds_nothing(db: Database, bus: Bus, tmp_path: Path):
    await ingest_recorded(db, bus)
    first = {fact(r) for r in await rows(db)}
    ingest, _ = await ingest_recorded(db, bus)  # the same events again
    assert ingest.writer.written == 0
    log = tmp_path / "queue_log"
    log.write_text((FIXTURES / "queue_log.txt").read_text())
    catchup = QueueLogCatchUp(QueueLogReader(log, tmp_path / "offset.json"), db)
    assert await catchup.run_once() == 0
    assert {fact(r) for r in await rows(db)} == first


async def test_catch_up_alone_gives_the_rows_the_live_path_gives(
    db: Database, bus: Bus, tmp_path: Path
):
    log = tmp_path / "queue_log"
    text = (FIXTURES / "queue_log.txt").read_text()
    half = len(text.splitlines()) // 2
    log.write_text("".join(text.splitlines(keepends=True)[:half]))
    catchup = QueueLogCatchUp(QueueLogReader(log, tmp_path / "offset.json"), db)
    first = await catchup.run_once()
    assert first > 0
    log.write_text(text)  # Asterisk appended the rest
    assert await catchup.run_once() + first == len(await rows(db))
    assert await catchup.run_once() == 0  # the offset moved on
    caught = {fact(r) for r in await rows(db)}

    # a second database fed live from AMI has the very same rows
    await ingest_recorded(db, bus)
    assert {fact(r) for r in await rows(db)} == caught


async def test_a_member_event_a_second_apart_is_the_same_event(db: Database):
    at = datetime(2026, 11, 25, 8, 0, 0, 999_000, tzinfo=UTC)

    def pause(moment: datetime) -> Row:
        key = event_key("PAUSE", "t1022-morning", None, "1001", moment)
        return Row(key, moment, "t1022-morning", "PAUSE", agent="1001")

    async with db.session() as s:
        assert await insert_rows(s, [pause(at)]) == 1
    async with db.session() as s:  # queue_log's clock read it in the next second
        assert await insert_rows(s, [pause(at + timedelta(milliseconds=2))]) == 0
    async with db.session() as s:  # a pause a minute later is another one
        assert await insert_rows(s, [pause(at + timedelta(minutes=1))]) == 1
    assert len(await rows(db)) == 2


async def test_the_table_is_append_only(db: Database, bus: Bus):
    await ingest_recorded(db, bus)
    for sql in ("UPDATE queue_events SET event = 'X'", "DELETE FROM queue_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.session() as s:
                await s.execute(sa.text(sql))
    assert len(await rows(db)) == 27  # 28 queue_log lines, QUEUESTART is none of ours


async def test_a_row_the_database_refuses_does_not_hold_up_the_others(
    db: Database, database_url: str
):
    at = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

    def join(uniqueid: str, queue: str) -> Row:
        return Row(event_key("JOIN", queue, uniqueid, None, at), at, queue, "JOIN", uniqueid)

    writer = EventWriter(db)
    await writer.start()
    writer.put(join("pbx-1.1", "t1022-morning"))
    writer.put(join("pbx-1.2", "q" * 200))  # longer than the column: PostgreSQL refuses it
    writer.put(join("pbx-1.3", "t1022-morning"))
    await asyncio.wait_for(writer.drained(), 10)
    await writer.stop()
    stored = {r.uniqueid for r in await rows(db)}
    if database_url.startswith("postgresql"):
        assert stored == {"pbx-1.1", "pbx-1.3"}
    else:  # SQLite does not enforce VARCHAR lengths
        assert stored == {"pbx-1.1", "pbx-1.2", "pbx-1.3"}


async def test_rings_not_answered_are_one_row_each_from_either_source(
    db: Database, bus: Bus, tmp_path: Path
):
    # an agent rung twice in one call without answering: each ring its own row
    writer = EventWriter(db)
    ingest = QueueIngest(writer, Clock())
    for ts, ring_ms in (("1795613290.120000", 8002), ("1795613300.450000", 8001)):
        ingest.handle(
            Message(
                {
                    "Event": "AgentRingNoAnswer",
                    "Timestamp": ts,
                    "Uniqueid": "pbx-1795613283.7",
                    "Queue": "t1022-afternoon",
                    "Interface": "PJSIP/1007",
                    "MemberName": "1007 Châu Văn Lộc",
                    "RingTime": str(ring_ms),
                }
            )
        )
    await writer.stop()
    assert [(r.event, r.agent, r.data) for r in await rows(db)] == [
        ("RINGNOANSWER", "1007", '{"ring_ms": 8002}'),
        ("RINGNOANSWER", "1007", '{"ring_ms": 8001}'),
    ]
    log = tmp_path / "queue_log"
    log.write_text(
        "1795613291|pbx-1795613283.7|t1022-afternoon|1007 Châu Văn Lộc|RINGNOANSWER|8002\n"
        "1795613300|pbx-1795613283.7|t1022-afternoon|1007 Châu Văn Lộc|RINGNOANSWER|8001\n"
    )
    catchup = QueueLogCatchUp(QueueLogReader(log, tmp_path / "offset.json"), db)
    assert await catchup.run_once() == 0

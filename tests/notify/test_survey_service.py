"""The SMS survey's rules on SQLite and PostgreSQL, with the clock in the test's hand:
a reply counts within survey_days of the survey going out, once; a 9 reopens only
after a 1 or 2; the night holds the result until morning.  The SMS gateway here is a
recorder (the Kannel lab tests send through the real one: test_sms_notifications)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from core.bus import Bus
from core.clock import FakeClock
from core.db import Database
from hotline.app import inbox_service
from inbox.models import MessageChannel, State
from inbox.service import InboxService
from notify.dispatcher import NotifyDispatcher
from notify.models import Notification, NotifyState, SmsSurvey, SurveyState
from notify.planner import Planner
from notify.service import NotifySender
from notify.survey import SurveyReplies
from tests.schema import migrated
from tests.sms.conftest import sms_settings
from tickets.agencies import AgencyService
from tickets.models import Rating, Status, Ticket
from tickets.queries import TicketQueries
from tickets.ratings import RatingService
from tickets.service import TicketService

# 10:00 in Ho Chi Minh City: within the default hours 07:00-21:00
DAY = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@dataclass
class World:
    clock: FakeClock
    db: Database
    tickets: TicketService
    inbox: InboxService
    dispatcher: NotifyDispatcher
    sent: list[tuple[str, str]]
    officer: Actor
    agency_id: int

    async def answered(self, number: str) -> Ticket:
        t = await self.tickets.create(
            SYSTEM,
            {
                "channel": "phone",
                "citizen_phone": number,
                "domain": "state",
                "topic": "flooding",
                "level": 2,
                "description": "Ngập",
                "agency_id": self.agency_id,
            },
        )
        return await self.tickets.answer(self.officer, t.id, t.version, "Đã xử lý xong")

    async def reply(self, number: str, text: str):  # type: ignore[no-untyped-def]
        msg, _new = await self.inbox.receive(
            MessageChannel.SMS, uuid.uuid4().hex, number, "1022", text
        )
        await self.dispatcher.round()
        return msg

    async def survey(self, ticket_id: int) -> SmsSurvey:
        async with self.db.session() as s:
            sv = await s.scalar(select(SmsSurvey).where(SmsSurvey.ticket_id == ticket_id))
        assert sv is not None
        return sv


@pytest.fixture
async def w(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    prefix = f"surveytest{uuid.uuid4().hex[:8]}"
    settings = sms_settings(
        tmp_path, database_url, prefix, {"notify": {"enabled": True, "survey_days": 3}}
    )
    migrated(settings.database)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    clock = FakeClock(DAY)
    tickets = TicketService(db, settings, clock)
    inbox = inbox_service(
        settings,
        db=db,
        bus=bus,
        clock=clock,
        tickets=tickets,
        ticket_queries=TicketQueries(db, settings, clock),
    )
    sent: list[tuple[str, str]] = []

    async def gateway(message_id: int, to: str, text: str) -> None:
        sent.append((to, text))

    inbox.senders["sms"] = gateway
    planner = Planner(db, settings, clock)
    tickets.on_written.append(planner.written)
    inbox.responders.append(SurveyReplies(db, clock, planner, RatingService(db, clock), tickets))
    sender = NotifySender(db, settings, clock, inbox, None)
    dispatcher = NotifyDispatcher(planner, sender, clock)
    agency = await AgencyService(db, clock).create(
        SYSTEM, {"kind": "ward", "code": "p-ben-nghe", "name": "Phường Bến Nghé"}
    )
    officer = Actor(id=None, name="officer", role=Role.AGENCY, agency_id=agency.id)
    try:
        yield World(clock, db, tickets, inbox, dispatcher, sent, officer, agency.id)
    finally:
        await bus.close()
        await db.close()


async def test_a_reply_counts_once_and_9_reopens_only_after_1_or_2(w: World) -> None:
    t = await w.answered("0908000001")
    await w.dispatcher.round()
    assert [to for to, _ in w.sent] == ["0908000001"] * 4  # code, forwarded, result, survey
    sv = await w.survey(t.id)
    assert sv.expires_at == DAY + timedelta(days=3)
    # "9" before any rating: an ordinary SMS (attached to the open report, no reopening)
    await w.reply("0908000001", "9")
    assert (await w.survey(t.id)).state == SurveyState.WAITING
    msg = await w.reply("0908000001", "1.")
    assert msg.state == State.ATTACHED and msg.ticket_id == t.id
    assert (await w.survey(t.id)).state == SurveyState.LOW
    # the same digit again: not a second rating
    await w.reply("0908000001", "1")
    async with w.db.session() as s:
        ratings = (await s.scalars(select(Rating).where(Rating.ticket_id == t.id))).all()
    assert [r.rating for r in ratings] == [1]
    await w.reply("0908000001", "9")
    async with w.db.session() as s:
        ticket = await s.get(Ticket, t.id)
    assert ticket is not None and ticket.status == Status.REOPENED
    assert "9" in w.sent[4][1] and "mở lại" in w.sent[5][1]


async def test_a_reply_after_survey_days_is_no_rating(w: World) -> None:
    t = await w.answered("0908000002")
    await w.dispatcher.round()
    w.clock.advance(timedelta(days=3, minutes=1))
    msg = await w.reply("0908000002", "5")
    assert (await w.survey(t.id)).state == SurveyState.WAITING
    async with w.db.session() as s:
        assert (await s.scalars(select(Rating))).all() == []
    assert msg.body == "5"  # kept like any SMS


async def test_the_result_waits_for_the_morning(w: World) -> None:
    w.clock.set(datetime(2026, 12, 7, 16, 0, tzinfo=UTC))  # 23:00 local
    t = await w.answered("0908000003")
    await w.dispatcher.round()
    async with w.db.session() as s:
        rows = (await s.scalars(select(Notification).where(Notification.ticket_id == t.id))).all()
    states = {r.kind: r.state for r in rows}
    assert states["code"] == NotifyState.SENT  # at once, even at night
    assert states["result"] == states["survey"] == NotifyState.PENDING
    w.clock.set(datetime(2026, 12, 8, 0, 1, tzinfo=UTC))  # 07:01
    await w.dispatcher.round()
    async with w.db.session() as s:
        rows = (await s.scalars(select(Notification).where(Notification.ticket_id == t.id))).all()
    assert {r.state for r in rows} == {NotifyState.SENT}


async def test_two_dispatchers_never_send_one_notification_twice(w: World) -> None:
    """Each claim takes its rows with one conditional UPDATE: two dispatchers (two
    processes) claiming at once share 120 due notifications without overlap, every
    one is sent exactly once, and each is marked sent with its message."""
    import asyncio

    from notify.models import NotifyChannel
    from notify.planner import Target

    planner = w.dispatcher.planner
    async with w.db.session() as s:
        for i in range(120):
            await planner.add(
                s,
                dedupe=f"claim-test:{i}",
                kind="code",
                target=Target(NotifyChannel.SMS, f"0907{i:06d}"),
                body=f"Mã phản ánh {i}",
                now=w.clock.now(),
                ticket_id=None,
            )
    sender = w.dispatcher.sender
    claims = await asyncio.gather(*(sender.claim(25) for _ in range(6)))
    ids = [n.id for batch in claims for n in batch]
    assert len(ids) == len(set(ids)) == 120  # 6 x 25 asked: each of the 120 once
    assert all(n.state == NotifyState.SENDING and n.attempts == 1 for b in claims for n in b)
    assert await sender.claim(25) == []
    # put back, then two dispatchers send them side by side
    assert await sender.recover() == 120
    other = NotifyDispatcher(planner, sender, w.clock, concurrency=7)
    counts = await asyncio.gather(w.dispatcher.round(), other.round())
    assert sum(counts) == 120
    assert sorted(to for to, _ in w.sent) == [f"0907{i:06d}" for i in range(120)]
    async with w.db.session() as s:
        rows = (
            await s.scalars(select(Notification).where(Notification.dedupe.like("claim-test:%")))
        ).all()
    assert {r.state for r in rows} == {NotifyState.SENT}
    assert len({r.message_id for r in rows}) == 120 and None not in {r.message_id for r in rows}

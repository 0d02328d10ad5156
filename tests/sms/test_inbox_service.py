"""The inbox's rules on SQLite and PostgreSQL: one row per gateway id, floods
flagged, which open ticket an SMS joins, who may decide a message, and the
states delivery reports move a message out through.  The gateway here is a
Kannel that is not running: its refusal must leave a failed row with the
reason (tests/sms/test_kannel_lab.py sends through a running one)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from core.bus import Bus
from core.clock import FakeClock
from hotline.app import inbox_service
from inbox.exceptions import MessageTaken, NotSendable
from inbox.models import Flag, MessageChannel, State
from inbox.service import InboxService
from tests.schema import migrated
from tests.sms.conftest import sms_settings
from tickets.queries import TicketQueries
from tickets.service import TicketService

AGENT_A = Actor(id=None, name="a", role=Role.AGENT)
AGENT_B = Actor(id=None, name="b", role=Role.AGENT)


@pytest.fixture
async def inbox(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from core.db import Database

    prefix = f"inboxtest{uuid.uuid4().hex[:8]}"
    settings = sms_settings(tmp_path, database_url, prefix, flood_per_minute=3, attach_days=7)
    migrated(settings.database)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    clock = FakeClock(datetime.now(UTC))
    tickets = TicketService(db, settings, clock)
    svc = inbox_service(
        settings,
        db=db,
        bus=bus,
        clock=clock,
        tickets=tickets,
        ticket_queries=TicketQueries(db, settings, clock),
    )
    # two desk agents with accounts (claimed_by is a user id)
    from accounts.service import AccountService

    accounts = AccountService(db, settings, clock, None)  # type: ignore[arg-type]
    users = []
    for name, ext in (("a", settings.agents[0].extension), ("b", settings.agents[1].extension)):
        u = await accounts.create_user(
            None,
            {
                "username": f"desk{name}",
                "display_name": name,
                "role": "agent",
                "password": "correct horse battery",
                "extension": ext,
            },
        )
        users.append(Actor.of(u))
    svc.test_users = users  # type: ignore[attr-defined]
    yield svc
    keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
    if keys:
        await bus.redis.delete(*keys)
    await bus.close()
    await db.close()


async def _ticket(svc: InboxService, phone: str, **extra: object):  # type: ignore[no-untyped-def]
    return await svc.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": phone,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập",
            **extra,
        },
    )


async def test_one_row_per_gateway_id(inbox: InboxService) -> None:
    first, new = await inbox.receive(MessageChannel.SMS, "k-1", "0901000001", "1022", "Xin chao")
    again, new_again = await inbox.receive(MessageChannel.SMS, "k-1", "0901000001", "1022", "x")
    assert new and not new_again and again.id == first.id and again.body == "Xin chao"
    # the same id on another channel is another message
    other, new_other = await inbox.receive(
        MessageChannel.EMAIL, "k-1", "a@b.vn", "hotline@city.vn", "Hello"
    )
    assert new_other and other.id != first.id


async def test_a_flood_is_kept_and_flagged(inbox: InboxService) -> None:
    rows = [
        (await inbox.receive(MessageChannel.SMS, f"f-{i}", "0901000002", "1022", f"m{i}"))[0]
        for i in range(5)
    ]
    assert [m.flag for m in rows] == [None, None, None, Flag.FLOOD, Flag.FLOOD]
    inbox.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    later, _ = await inbox.receive(MessageChannel.SMS, "f-9", "0901000002", "1022", "again")
    assert later.flag is None


async def test_which_open_ticket_an_sms_joins(inbox: InboxService) -> None:
    ticket = await _ticket(inbox, "0901000003")
    msg, _ = await inbox.receive(MessageChannel.SMS, "t-1", "+84901000003", "1022", "Con ngap")
    assert (msg.state, msg.ticket_id) == (State.ATTACHED, ticket.id)
    # older than attach_days: it waits on the desk
    inbox.clock.advance(timedelta(days=8))  # type: ignore[attr-defined]
    msg, _ = await inbox.receive(MessageChannel.SMS, "t-2", "0901000003", "1022", "Van ngap")
    assert (msg.state, msg.ticket_id) == (State.NEW, None)
    # an empty SMS is never attached
    await _ticket(inbox, "0901000004")
    msg, _ = await inbox.receive(MessageChannel.SMS, "t-3", "0901000004", "1022", "  ")
    assert (msg.state, msg.flag) == (State.NEW, Flag.EMPTY)


async def test_a_claimed_message_is_its_agents(inbox: InboxService) -> None:
    a, b = inbox.test_users  # type: ignore[attr-defined]
    msg, _ = await inbox.receive(MessageChannel.SMS, "c-1", "0901000005", "0888247247", "Hoi")
    assert msg.team == "party"  # the number's hotline's team
    await inbox.claim(a, msg.id)
    await inbox.claim(a, msg.id)  # again: still theirs
    with pytest.raises(MessageTaken):
        await inbox.claim(b, msg.id)
    with pytest.raises(MessageTaken):
        await inbox.no_content(b, msg.id)
    done = await inbox.no_content(a, msg.id)
    assert done.state == State.NO_CONTENT and done.claimed_by == a.id
    with pytest.raises(MessageTaken):
        await inbox.claim(a, msg.id)


async def test_a_reply_the_gateway_refuses_is_kept_failed_with_the_reason(
    inbox: InboxService,
) -> None:
    a, _b = inbox.test_users  # type: ignore[attr-defined]
    msg, _ = await inbox.receive(MessageChannel.SMS, "r-1", "0901000006", "1022", "Hoi")
    out = await inbox.reply(a, msg.id, "Cảm ơn bạn")
    assert (out.state, out.coding, out.parts) == (State.FAILED, "ucs2", 1)
    assert "sendsms does not answer" in (out.error or "")
    with pytest.raises(NotSendable) as e:
        await inbox.reply(a, msg.id, "   ")
    assert e.value.field == "text"
    with pytest.raises(NotSendable) as e:
        await inbox.reply(a, msg.id, "đ" * 500)  # 8 parts: more than max_parts
    assert e.value.field == "text" and "8 SMS parts" in e.value.problem


@contextlib.contextmanager
def counted_commits(inbox: InboxService) -> Iterator[list[int]]:
    """The commits of the inbox's engine while in the block (``[n]``)."""
    from sqlalchemy import event

    commits = [0]

    def committed(_conn) -> None:  # type: ignore[no-untyped-def]
        commits[0] += 1

    engine = inbox.db.engine.sync_engine
    event.listen(engine, "commit", committed)
    try:
        yield commits
    finally:
        event.remove(engine, "commit", committed)


async def _queued(inbox: InboxService, parts: int) -> int:
    """A message out as the gateway took it (queued), written as the service writes one."""
    from inbox.models import Message

    now = inbox.clock.now()
    async with inbox.db.session() as s:
        m = Message(
            channel="sms",
            direction="out",
            citizen="0901000007",
            service_address="1022",
            body="x",
            state=State.QUEUED,
            coding="ucs2",
            parts=parts,
            created_at=now,
            updated_at=now,
            version=1,
        )
        s.add(m)
    return m.id


async def test_delivery_reports_move_a_message_out(inbox: InboxService) -> None:
    two = await _queued(inbox, 2)
    assert (await inbox.delivery_report(two, 4, "queued")).state == State.SENT
    assert (await inbox.delivery_report(two, 8, "ACK/")).state == State.SENT
    # Kannel sends one final report for the whole of a split message
    assert (await inbox.delivery_report(two, 1, "stat:DELIVRD")).state == State.DELIVERED
    assert (await inbox.delivery_report(two, 8, "late ACK/")).state == State.DELIVERED
    assert [r.status for r in await inbox.deliveries(two)] == [4, 8, 1, 8]
    lost = await _queued(inbox, 1)
    failed = await inbox.delivery_report(lost, 2, "stat:UNDELIV")
    assert failed.state == State.FAILED and failed.error == "stat:UNDELIV"
    # a later "delivered" does not hide a failed part
    assert (await inbox.delivery_report(lost, 1, None)).state == State.FAILED


async def test_reports_arriving_together_are_applied_together_in_order(
    inbox: InboxService,
) -> None:
    """Reports that arrive together go in one transaction, in their order (the states
    are those of one by one), a report for no message gets MessageNotFound alone,
    and none is lost."""
    import asyncio

    from inbox.exceptions import MessageNotFound

    ids = [await _queued(inbox, 1) for _ in range(30)]
    with counted_commits(inbox) as commits:
        calls = [inbox.delivery_report(i, 8, "ACK/") for i in ids]
        calls += [inbox.delivery_report(i, 1, "stat:DELIVRD") for i in ids]
        calls.append(inbox.delivery_report(ids[0], 16, "rejected"))
        calls.append(inbox.delivery_report(10**9, 1, None))
        got = await asyncio.gather(*calls, return_exceptions=True)
    assert commits[0] <= 2  # 62 reports together (BATCH is 200), or the first alone
    assert isinstance(got[-1], MessageNotFound)
    # each caller has its message as its batch left it
    assert [m.id for m in got[:30]] == ids and [m.id for m in got[30:60]] == ids
    assert got[60].state == State.FAILED and got[60].error == "rejected"
    assert {m.state for m in got[31:60]} == {State.DELIVERED}
    assert [r.status for r in await inbox.deliveries(ids[0])] == [8, 1, 16]
    for i in ids[1:]:
        assert [r.status for r in await inbox.deliveries(i)] == [8, 1]
        assert (await inbox.get(i)).state == State.DELIVERED


async def test_messages_out_sent_together_are_stored_together_and_a_bad_one_alone(
    inbox: InboxService,
) -> None:
    """Notifications going out at once are stored in one transaction (each handed to
    the gateway with its own id); one that cannot be stored (its ticket does not
    exist) fails alone, the others are stored and sent."""
    import asyncio

    from sqlalchemy.exc import IntegrityError

    handed: list[tuple[int, str]] = []

    async def gateway(message_id: int, citizen: str, text: str) -> None:
        handed.append((message_id, citizen))

    inbox.senders["sms"] = gateway
    with counted_commits(inbox) as commits:
        got = await asyncio.gather(
            *(inbox.notify(f"09010000{i:02d}", f"Mã phản ánh {i}") for i in range(20))
        )
    assert commits[0] <= 2  # 20 together (or the first alone, then the rest)
    assert len({m.id for m in got}) == 20
    assert sorted(handed) == sorted((m.id, m.citizen) for m in got)
    assert all(m.state == State.QUEUED for m in got)

    handed.clear()
    calls = [inbox.notify(f"09020000{i:02d}", "ok") for i in range(5)]
    calls.insert(2, inbox.notify("0903000000", "no such ticket", ticket_id=10**9))
    got = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(got[2], IntegrityError)
    stored = [m for i, m in enumerate(got) if i != 2]
    assert all(m.state == State.QUEUED for m in stored)  # type: ignore[union-attr]
    assert sorted(c for _, c in handed) == [f"09020000{i:02d}" for i in range(5)]
    for m in stored:
        assert (await inbox.get(m.id)).body == "ok"  # type: ignore[union-attr]

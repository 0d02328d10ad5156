"""Email notifications sent by the hotline's one SMTP sender (``[email]``, STARTTLS and
a login) into the email tests' private Postfix: the citizen who reported by email, the
agency (forwarded, reminder, overdue) and its parent (escalation), and the
supervisors' daily digest.  SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from accounts.identity import SYSTEM
from core.clock import FakeClock
from notify.models import Kind, Notification, NotifyState
from tests.email.servers import needs_dovecot
from tests.notify.conftest import HOTLINE, NotifyLab, make_notify_lab
from tests.sms.conftest import eventually, needs_kannel
from tickets.alerts import OverdueWatch
from tickets.numbers import format_number
from tickets.service import event_details

pytestmark = [needs_kannel, needs_dovecot]

# the private Postfix delivers mail for example.org and example.net
SUPERVISORS = "truc-ban@example.net"


@pytest.fixture
async def mail_lab(database_url: str, tmp_path: Path) -> AsyncIterator[NotifyLab]:
    async for lab in make_notify_lab(
        database_url,
        tmp_path,
        mail=True,
        agency_reminder_hours=720,  # every forwarded ticket is "due soon"
        digest_to=[SUPERVISORS],
        digest_at="00:00",
    ):
        yield lab


async def _mails(lab: NotifyLab, address: str, count: int = 1):  # type: ignore[no-untyped-def]
    async def arrived():  # type: ignore[no-untyped-def]
        found = lab.smtp.to(address)
        return found if len(found) >= count else None

    return await eventually(arrived, timeout=30, what=f"{count} mail(s) to {address}")


async def test_a_citizen_who_wrote_by_email_gets_the_number_by_email(mail_lab: NotifyLab) -> None:
    lab = mail_lab
    ticket = await lab.ctx.tickets.create(
        SYSTEM,
        {
            "channel": "email",
            "reporter_email": "dan@example.org",
            "domain": "state",
            "topic": "trees",
            "level": 3,
            "description": "Cây đổ chắn ngang đường Pasteur",
        },
    )
    [mail] = await _mails(lab, "dan@example.org")
    assert str(mail["Subject"]).startswith(f"[{ticket.code}] ")  # as shown, dashed once
    assert format_number(ticket.number) in mail.get_content()
    # from the [email] address, marked as no person's (RFC 3834)
    assert mail["From"].addresses[0].addr_spec == HOTLINE
    assert mail["Auto-Submitted"] == "auto-generated"
    assert lab.sms.smsc.messages() == []  # nobody is texted: the channel was email


async def test_agency_emails_forwarded_reminder_overdue_and_escalation(
    mail_lab: NotifyLab,
) -> None:
    lab = mail_lab
    district = await lab.agency(email="quan1@example.net")
    ward = await lab.agency(email="phuong@example.org", parent_id=district.id)
    ticket = await lab.report("0907000010", agency_id=ward.id)
    [forwarded] = await _mails(lab, "phuong@example.org")
    assert "Phản ánh chuyển đến" in str(forwarded["Subject"])
    body = forwarded.get_content()
    assert "Cống bị tắc" in body and f"/tickets/{ticket.code}" in body
    # the code as the panel shows it, dashed once
    assert str(forwarded["Subject"]).startswith(f"[{ticket.code}] ")
    assert f"Mã / Code: {ticket.code} / " in body and "--" not in body
    # the reminder, once the sweep comes (its deadline is within agency_reminder_hours)
    await lab.dispatcher.planner.periodic()  # (or the dispatcher's own sweep did)
    lab.dispatcher.wake()
    mails = await _mails(lab, "phuong@example.org", 2)
    assert any("Nhắc hạn xử lý" in str(m["Subject"]) for m in mails)
    assert await lab.dispatcher.planner.periodic() == 0  # once per deadline
    # past the deadline: the overdue watch escalates; the ward and the district are told
    assert ticket.deadline_at is not None
    later = FakeClock(ticket.deadline_at + timedelta(minutes=1))
    watch = OverdueWatch(lab.ctx.tickets, lab.ctx.agencies, lab.ctx.bus, later, 60)
    watch.on_escalated.append(lab.dispatcher.planner.escalated)
    [escalated] = await watch.check()
    assert escalated.id == ticket.id
    mails = await _mails(lab, "phuong@example.org", 3)
    assert any("quá hạn" in str(m["Subject"]) for m in mails)
    [parent] = await _mails(lab, "quan1@example.net")
    assert "đơn vị trực thuộc" in str(parent["Subject"])
    assert "Phường Đa Kao" in parent.get_content()

    # each is a line of the ticket's history
    async def all_sent():  # type: ignore[no-untyped-def]
        history = await lab.ctx.ticket_queries.history(ticket.id)
        notes = [event_details(e) for e in history if e.action == "notified"]
        return notes if len([n for n in notes if n["channel"] == "email"]) == 4 else None

    notes = await eventually(all_sent, what="the four emails on the history")
    assert {n["notice"] for n in notes if n["channel"] == "email"} == {
        Kind.AGENCY_FORWARDED,
        Kind.AGENCY_REMINDER,
        Kind.AGENCY_OVERDUE,
        Kind.AGENCY_ESCALATION,
    }


async def test_the_daily_digest_lists_overdue_and_reopened(mail_lab: NotifyLab) -> None:
    lab = mail_lab
    agency = await lab.agency()
    ticket = await lab.report("0907000011", agency_id=agency.id)
    ticket = await lab.ctx.tickets.answer(
        lab.officers[agency.id], ticket.id, ticket.version, "Xong"
    )
    ticket = await lab.ctx.tickets.reopen(SYSTEM, ticket.id, ticket.version, "Chưa xong")
    async with lab.ctx.db.session() as s:
        for row in (
            await s.scalars(select(Notification).where(Notification.kind == "digest"))
        ).all():
            await s.delete(row)  # the one the dispatcher's first round may have written
    await lab.dispatcher.planner.periodic()
    lab.dispatcher.wake()

    async def digest_with_it():  # type: ignore[no-untyped-def]
        found = [m for m in lab.smtp.to(SUPERVISORS) if f"- {ticket.code}  " in m.get_content()]
        return found or None

    [digest] = await eventually(digest_with_it, what="the digest naming the reopened ticket")
    assert "1 mở lại" in str(digest["Subject"])
    assert await lab.dispatcher.planner.periodic() == 0  # once a day

    async def digest_states():  # type: ignore[no-untyped-def]
        # the mail reaches the server before the dispatcher writes it "sent"
        async with lab.ctx.db.session() as s:
            rows = (
                await s.scalars(select(Notification).where(Notification.kind == "digest"))
            ).all()
        states = [r.state for r in rows]
        return states if NotifyState.SENDING not in states else None

    assert await eventually(digest_states, what="the digest written sent") == [NotifyState.SENT]

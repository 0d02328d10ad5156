"""Each notification to a citizen through the real Kannel to the test SMSC (SMPP), with
its delivery report, its row and its line on the ticket's history; the SMS survey's
replies coming back the same way (a 2 then a 9 reopens the report); a flood from one
number rate-limited and flagged, nothing dropped.  SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from inbox.models import Flag, State
from notify.models import Kind, Notification, NotifyState, SmsSurvey, SurveyState
from tests.notify.conftest import PUBLIC_URL, NotifyLab
from tests.sms.conftest import eventually, needs_kannel
from tickets.models import Rating, Status
from tickets.numbers import format_number
from tickets.service import event_details

pytestmark = needs_kannel


async def _rows(lab: NotifyLab, ticket_id: int) -> list[Notification]:
    async with lab.ctx.db.session() as s:
        rows = await s.scalars(
            select(Notification)
            .where(Notification.ticket_id == ticket_id)
            .order_by(Notification.id)
        )
        return list(rows.all())


async def _texts(lab: NotifyLab, number: str, count: int) -> list[str]:
    async def arrived():  # type: ignore[no-untyped-def]
        texts = lab.sent_to(number)
        return texts if len(texts) >= count else None

    return await eventually(arrived, timeout=30, what=f"{count} SMS to {number} at the SMSC")


def _with(texts: list[str], needle: str) -> str:
    """The one text holding ``needle`` (the dispatcher sends in parallel: order may vary)."""
    [found] = [t for t in texts if needle in t]
    return found


async def test_the_citizen_receives_the_tracking_number_at_creation(notify_lab: NotifyLab) -> None:
    lab = notify_lab
    ticket = await lab.report("0907000001", level=3)  # level 3: pending approval, no "forwarded"
    [text] = await _texts(lab, "0907000001", 1)
    assert format_number(ticket.number) in text
    assert f"{PUBLIC_URL}/status" in text
    assert "Tổng đài" in text  # Vietnamese with diacritics: UCS-2
    [(_t, parts)] = [m for m in lab.sms.smsc.messages() if m[1][0].destination == "0907000001"]
    assert all(p.data_coding == 8 for p in parts)

    async def delivered():  # type: ignore[no-untyped-def]
        [row] = await _rows(lab, ticket.id)
        if row.state != NotifyState.SENT or row.message_id is None:
            return None
        msg = await lab.sms.inbox.get(row.message_id)
        return (row, msg) if msg.state == State.DELIVERED else None

    row, msg = await eventually(delivered, what="the code's delivery report")
    assert row.kind == Kind.CODE and row.recipient == "0907000001" and row.attempts == 1
    assert msg.ticket_id == ticket.id and msg.coding == "ucs2"
    # on the ticket's history, with the channel and the number
    history = await lab.ctx.ticket_queries.history(ticket.id)
    [line] = [e for e in history if e.action == "notified"]
    d = event_details(line)
    assert (d["notice"], d["channel"], d["to"], d["sent"]) == ("code", "sms", "0907000001", True)


async def test_forwarded_result_and_survey_then_2_then_9_reopens(notify_lab: NotifyLab) -> None:
    lab = notify_lab
    number = "0907000002"
    agency = await lab.agency()
    ticket = await lab.report(number, agency_id=agency.id)
    assert ticket.status == Status.FORWARDED
    texts = await _texts(lab, number, 2)
    assert format_number(ticket.number) in _with(texts, "Tổng đài 1022 đã tiếp nhận")
    assert format_number(ticket.number) in _with(texts, "đã được chuyển tới Phường Bến Nghé")
    officer = lab.officers[agency.id]
    result = "Đã nạo vét cống và khơi thông dòng chảy trên đường Lê Lợi vào sáng nay."
    ticket = await lab.ctx.tickets.answer(officer, ticket.id, ticket.version, result)
    texts = await _texts(lab, number, 4)
    assert f"{PUBLIC_URL}/status" in _with(texts, result)
    _with(texts, "Trả lời 1")

    async def survey_open():  # type: ignore[no-untyped-def]
        async with lab.ctx.db.session() as s:
            sv = await s.scalar(select(SmsSurvey).where(SmsSurvey.ticket_id == ticket.id))
        return sv if sv is not None and sv.expires_at is not None else None

    await eventually(survey_open, what="the survey sent")
    # the citizen replies 2: the rating is recorded, the reopening offered
    assert await lab.sms.smsc.deliver(number, "1022", b"2") == 0
    texts = await _texts(lab, number, 5)
    assert "trả lời 9" in texts[-1]
    async with lab.ctx.db.session() as s:
        [rating] = (await s.scalars(select(Rating).where(Rating.ticket_id == ticket.id))).all()
        sv = await s.scalar(select(SmsSurvey).where(SmsSurvey.ticket_id == ticket.id))
    assert (rating.rating, rating.source, rating.agency_id) == (2, "sms", agency.id)
    assert sv is not None and sv.state == SurveyState.LOW and sv.rating_id == rating.id
    # the reply is kept, attached to the ticket, not left on a desk
    replies = [m for m in await lab.sms.messages_in() if m.citizen == number]
    assert [(m.body, m.state, m.ticket_id) for m in replies] == [("2", State.ATTACHED, ticket.id)]
    # then 9: the report is reopened, as the phone survey does
    assert await lab.sms.smsc.deliver(number, "1022", b"9") == 0
    texts = await _texts(lab, number, 6)
    assert "mở lại" in texts[-1]
    after = await lab.ctx.ticket_queries.get(ticket.id)
    assert after.status == Status.REOPENED and after.reopens == 1
    history = await lab.ctx.ticket_queries.history(ticket.id)
    [reopened] = [e for e in history if e.action == "reopened"]
    assert event_details(reopened)["via"] == "sms_survey"
    assert event_details(reopened)["rating"] == 2
    kinds = [r.kind for r in await _rows(lab, ticket.id)]
    assert kinds == ["code", "forwarded", "result", "survey", "survey_low", "reopened"]
    assert all(r.state == NotifyState.SENT for r in await _rows(lab, ticket.id))
    notified = [event_details(e)["notice"] for e in history if e.action == "notified"]
    assert sorted(notified) == sorted(kinds)
    # a second 9 reopens nothing more and waits on the desk like any SMS
    assert await lab.sms.smsc.deliver(number, "1022", b"9") == 0

    async def three():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.sms.messages_in() if m.citizen == number]
        return rows if len(rows) == 3 else None

    await eventually(three, what="the third reply stored")
    assert (await lab.ctx.ticket_queries.get(ticket.id)).reopens == 1


async def test_a_rating_of_4_is_thanked_and_nothing_is_reopened(notify_lab: NotifyLab) -> None:
    lab = notify_lab
    number = "0907000003"
    agency = await lab.agency()
    ticket = await lab.report(number, agency_id=agency.id)
    ticket = await lab.ctx.tickets.answer(
        lab.officers[agency.id], ticket.id, ticket.version, "Đã xử lý xong."
    )
    await _texts(lab, number, 4)

    async def survey_open():  # type: ignore[no-untyped-def]
        async with lab.ctx.db.session() as s:
            sv = await s.scalar(select(SmsSurvey).where(SmsSurvey.ticket_id == ticket.id))
        return sv if sv is not None and sv.expires_at is not None else None

    await eventually(survey_open, what="the survey sent")
    await lab.sms.smsc.deliver(number, "1022", b" 4 ")
    texts = await _texts(lab, number, 5)
    assert "Cảm ơn bạn đã đánh giá" in texts[-1]
    await lab.sms.smsc.deliver(number, "1022", b"9")  # no offer was made: just an SMS

    async def two():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.sms.messages_in() if m.citizen == number]
        return rows if len(rows) == 2 else None

    rows = await eventually(two, what="both replies stored")
    assert (await lab.ctx.ticket_queries.get(ticket.id)).status == Status.ANSWERED
    assert sorted(m.body.strip() for m in rows) == ["4", "9"]


async def test_a_flood_from_one_number_is_flagged_kept_and_sent_no_number(
    notify_lab: NotifyLab,
) -> None:
    lab = notify_lab
    number = "0907000004"
    for i in range(25):
        assert await lab.sms.smsc.deliver(number, "1022", f"tin rac {i}".encode()) == 0

    async def all_in():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.sms.messages_in() if m.citizen == number]
        return rows if len(rows) == 25 else None

    rows = await eventually(all_in, what="the 25 SMS stored")
    assert sorted(m.body for m in rows) == sorted(f"tin rac {i}" for i in range(25))
    assert sum(m.flag == Flag.FLOOD for m in rows) == 15  # past 10 a minute
    # a ticket an agent makes for that number now sends no tracking number
    ticket = await lab.report(number, channel="sms", level=3)
    assert await _rows(lab, ticket.id) == []
    # another number, meanwhile, gets its own at once
    other = await lab.report("0907000005", level=3)
    [text] = await _texts(lab, "0907000005", 1)
    assert format_number(other.number) in text
    assert lab.sent_to(number) == []


async def test_a_refused_sms_is_tried_again_then_given_up_on_the_history(
    notify_lab: NotifyLab,
) -> None:
    lab = notify_lab
    await asyncio.to_thread(lab.sms.kannel.stop)  # sendsms does not answer
    try:
        ticket = await lab.report("0907000006", level=3)

        async def given_up():  # type: ignore[no-untyped-def]
            rows = await _rows(lab, ticket.id)
            return rows if rows and rows[0].state == NotifyState.FAILED else None

        [row] = await eventually(given_up, timeout=40, what="the code given up")
        assert row.attempts == lab.sms.settings.notify.max_attempts
        assert "sendsms does not answer" in (row.error or "")
        history = await lab.ctx.ticket_queries.history(ticket.id)
        [line] = [e for e in history if e.action == "notified"]
        assert event_details(line)["sent"] is False
    finally:
        await asyncio.to_thread(lab.sms.kannel.start)

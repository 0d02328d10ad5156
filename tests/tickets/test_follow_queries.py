"""The IVR follow-up's reads (tickets/follow.py) on real SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.tickets import test_tickets_service as base
from tests.tickets.test_tickets_service import World, make
from tickets.exceptions import InvalidCode, TicketNotFound
from tickets.follow import Followed, FollowQueries, caller_phone
from tickets.models import Status
from tickets.numbers import new_number

# the tickets tests' world: agencies, people, a clock (SQLite and PostgreSQL)
w = base.w


async def test_open_reports_of_the_caller_newest_first_with_the_agency(w: World):
    q = FollowQueries(w.db)
    old = await make(w, 2, citizen_phone="0901 234 567", agency_id=w.dept)
    w.clock.advance(timedelta(hours=1))
    pending = await make(w, 3, citizen_phone="0901234567", agency_id=w.dept)
    w.clock.advance(timedelta(hours=1))
    closed = await make(w, 1, citizen_phone="0901234567")
    await make(w, 2, citizen_phone="0907654321")  # someone else's
    assert closed.status == Status.CLOSED

    found = await q.open_reports("0901234567", 5)
    assert found.total == 2
    assert [r.number for r in found.reports] == [pending.number, old.number]
    newest, oldest = found.reports
    # level 3 only pre-filled with an agency: not sent, so no agency is named
    assert newest.status == Status.PENDING_APPROVAL and newest.agency is None
    assert oldest.status == Status.FORWARDED and oldest.agency == "Agency so-gtvt"
    assert oldest.deadline_at is not None and oldest.topic == "flooding"

    # the caller ID as the carrier sends it is normalised as for the screen-pop
    assert [r.number for r in (await q.open_reports("0901-234-567", 5)).reports] == [
        pending.number,
        old.number,
    ]
    for nobody in (None, "", "anonymous", "abc"):
        assert await q.open_reports(nobody, 5) == type(found)([], 0)


async def test_every_form_of_the_number_is_the_same_caller(w: World):
    q = FollowQueries(w.db)
    typed = await make(w, 2, citizen_phone="+84 90 123 4567", agency_id=w.dept)
    assert typed.citizen_phone == "0901234567"
    for caller_id in ("0901234567", "+84901234567", "84901234567", "0084901234567"):
        assert [r.number for r in (await q.open_reports(caller_id, 5)).reports] == [typed.number]


async def test_a_hundred_open_reports_read_the_newest_few(w: World):
    q = FollowQueries(w.db)
    made = []
    for _ in range(100):
        made.append(await make(w, 2, citizen_phone="0912000111"))
        w.clock.advance(timedelta(minutes=1))
    found = await q.open_reports("0912000111", 3)
    assert found.total == 100
    assert [r.number for r in found.reports] == [t.number for t in reversed(made[-3:])]


async def test_by_number_any_status_never_personal_data(w: World):
    q = FollowQueries(w.db)
    t = await make(w, 2, citizen_phone="0901234567", agency_id=w.dept)
    t = await w.svc.answer(w.dept_officer, t.id, t.version, "Đã nạo vét cống.")
    got = await q.by_number(t.number)
    assert (got.status, got.result, got.agency) == (
        "answered",
        "Đã nạo vét cống.",
        "Agency so-gtvt",
    )
    # keyed with separators, as read out
    assert (await q.by_number(f"{t.number[:3]} {t.number[3:6]}-{t.number[6:]}")) == got
    # what may be read holds nothing of the citizen
    fields = {f.name for f in dataclasses.fields(Followed)}
    assert not {f for f in fields if "citizen" in f or f in ("phone", "name", "address")}

    wrong = t.number[:-1] + str((int(t.number[-1]) + 1) % 10)
    with pytest.raises(InvalidCode):
        await q.by_number(wrong)
    with pytest.raises(InvalidCode):
        await q.by_number("123")
    unused = new_number()
    while unused == t.number:
        unused = new_number()
    with pytest.raises(TicketNotFound):
        await q.by_number(unused)


def test_caller_phone():
    assert caller_phone("+84 90 123 4567") == "0901234567"
    assert caller_phone("84901234567") == "0901234567"
    assert caller_phone("0901234567") == "0901234567"
    assert caller_phone(None) is None and caller_phone("anonymous") is None

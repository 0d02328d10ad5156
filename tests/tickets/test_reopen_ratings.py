"""Reopening a report and recording satisfaction ratings, on real SQLite and PostgreSQL."""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from accounts.identity import CITIZEN, SYSTEM
from callcenter.models import Call

# the fixture "w" (the tickets' world) is shared with the workflow's tests: pytest finds it
# by its name here, which ruff takes for a redefinition in every test's arguments
from tests.tickets.test_tickets_service import T0, World, _in_state, make, w  # noqa: F401
from tickets.exceptions import (
    NOT_ALLOWED,
    REQUIRED,
    UNKNOWN,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    VersionConflict,
)
from tickets.models import Rating, Status, Ticket
from tickets.queries import TicketFilter
from tickets.ratings import RatingService
from tickets.service import TicketService, event_details

REOPENABLE_STATES = ("answered", "closed")
NOT_REOPENABLE = (
    "new",
    "pending_approval",
    "forwarded",
    "accepted",
    "returned",
    "meeting_pending",
    "meeting_scheduled",
    "proposal",
    "reopened, level 2",
)


@pytest.mark.parametrize("state", REOPENABLE_STATES)
async def test_reopen_from_each_allowed_status(w: World, state: str):
    for actor in (w.supervisor, w.admin, w.agent, CITIZEN):
        t = await _in_state(w, state)
        before = t.status
        w.clock.advance(timedelta(minutes=5))
        t = await w.svc.reopen(actor, t.id, t.version, "  Công dân chưa hài lòng  ")
        assert t.status == Status.REOPENED and t.reopens == 1
        assert t.closed_at is None and t.deadline_at is None
        last = (await w.q.history(t.id))[-1]
        assert (last.action, last.from_status, last.to_status) == ("reopened", before, "reopened")
        assert last.actor_id == actor.id and last.actor_name == actor.name
        details = event_details(last)
        assert details["reopen_reason"] == "Công dân chưa hài lòng" and details["reopens"] == 1
        assert last.at == w.clock.now()


@pytest.mark.parametrize("state", NOT_REOPENABLE)
async def test_reopen_refused_from_other_statuses(w: World, state: str):
    t = await _in_state(w, state)
    with pytest.raises(InvalidTransition):
        await w.svc.reopen(w.supervisor, t.id, t.version, "Chưa hài lòng")
    with pytest.raises(InvalidTransition):
        await w.svc.reopen(w.agent, t.id, t.version, "Chưa hài lòng")  # the creator
    assert (await w.q.get(t.id)).version == t.version


async def test_reopen_needs_a_reason_and_the_right_person(w: World):
    t = await make(w, 1)
    with pytest.raises(InvalidInput) as e:
        await w.svc.reopen(w.supervisor, t.id, 1, "   ")
    assert [(f.field, f.message) for f in e.value.errors] == [("reason", REQUIRED)]
    with pytest.raises(Forbidden):
        await w.svc.reopen(w.agent2, t.id, 1, "Không phải phiếu của tôi")
    with pytest.raises(Forbidden):
        await w.svc.reopen(w.ward_officer, t.id, 1, "Đơn vị không mở lại")
    with pytest.raises(VersionConflict):
        await w.svc.reopen(w.supervisor, t.id, 7, "Phiên bản cũ")
    assert (await w.q.get(t.id)).status == Status.CLOSED


async def test_reopened_twice_counts_and_goes_back_to_the_supervisors(w: World):
    t = await _in_state(w, "answered")
    t = await w.svc.reopen(w.agent, t.id, t.version, "Cống vẫn ngập", via="callback")
    assert t.agency_id == w.ward
    # the supervisors see it in their list of reopened reports, not the agent's "needs me"
    rows, total = await w.q.search(
        TicketFilter(status=(Status.REOPENED,)), actor=SYSTEM, page=1, per_page=50
    )
    assert [r.id for r in rows] == [t.id] and total == 1
    t = await w.svc.forward(w.supervisor, t.id, t.version, w.dept, "Giao Sở")
    assert t.status == Status.FORWARDED and t.deadline_at is not None
    t = await w.svc.answer(w.dept_officer, t.id, t.version, "Đã xử lý lại")
    t = await w.svc.close(w.agent, t.id, t.version)
    t = await w.svc.reopen(w.supervisor, t.id, t.version, "Vẫn chưa xong")
    assert t.reopens == 2
    events = [e for e in await w.q.history(t.id) if e.action == "reopened"]
    assert [event_details(e)["reopens"] for e in events] == [1, 2]
    assert event_details(events[0])["via"] == "callback"
    assert [event_details(e)["agency"] for e in events] == [w.ward, w.dept]
    # closing it again without following it up needs a note
    with pytest.raises(InvalidInput) as e:
        await w.svc.close(w.supervisor, t.id, t.version)
    assert e.value.fields() == ["note"]
    t = await w.svc.close(w.supervisor, t.id, t.version, note="Đã giải thích cho công dân")
    assert t.status == Status.CLOSED and t.reopens == 2


async def test_two_concurrent_reopens_exactly_one_wins(w: World, monkeypatch):
    t = await make(w, 1)
    both_read = asyncio.Barrier(2)
    load = TicketService._load

    async def load_and_wait(self, s, ticket_id):
        ticket = await load(self, s, ticket_id)
        await asyncio.wait_for(both_read.wait(), 10)
        return ticket

    monkeypatch.setattr(TicketService, "_load", load_and_wait)
    results = await asyncio.gather(
        w.svc.reopen(w.supervisor, t.id, 1, "Giám sát viên mở lại"),
        w.svc.reopen(CITIZEN, t.id, 1, "Công dân bấm phím 9", via="survey", rating=1),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert sorted(type(r).__name__ for r in results) == ["Ticket", "VersionConflict"], results
    final = await w.q.get(t.id)
    assert final.status == Status.REOPENED and final.reopens == 1 and final.version == 2
    assert [e.action for e in await w.q.history(t.id)] == ["created", "reopened"]


# -- ratings -----------------------------------------------------------------------


async def _call(w: World, uniqueid: str, extension: str = "1001") -> int:
    async with w.db.session() as s:
        call = Call(
            uniqueid=uniqueid,
            caller_number="0909000222",
            started_at=T0,
            agent_extension=extension,
            agent_name="Nguyễn Thị Lan",
        )
        s.add(call)
        await s.flush()
        return call.id


async def test_a_rating_is_stored_with_the_call_agent_and_ticket(w: World):
    ratings = RatingService(w.db, w.clock)
    call_id = await _call(w, "pbx-1.1")
    ticket = await w.svc.create(w.agent, _form(agency_id=w.ward), call_id=call_id)
    made, new = await ratings.record(4, "after_call", call_id=call_id)
    assert new and made.rating == 4 and made.source == "after_call" and made.at == T0
    assert made.ticket_id == ticket.id and made.agency_id == w.ward
    assert (made.topic, made.level) == ("flooding", 2)
    assert (made.agent_extension, made.agent_name) == ("1001", "Nguyễn Thị Lan")
    # the same call again: the first answer stands
    again, new = await ratings.record("1", "after_call", call_id=call_id)
    assert not new and again.id == made.id and again.rating == 4
    # a call without a ticket is rated too
    other = await _call(w, "pbx-1.2", "1002")
    lone, new = await ratings.record("5", "after_call", call_id=other)
    assert new and lone.ticket_id is None and lone.agency_id is None
    async with w.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Rating)) == 2


def _form(**kw) -> dict:
    data = {
        "channel": "phone",
        "domain": "state",
        "topic": "flooding",
        "level": 2,
        "description": "Ngập nước đường Nguyễn Huệ",
    }
    return data | kw


@pytest.mark.parametrize("bad", [0, 6, -1, "", "abc", "3.5", None, True, 2.0, "10"])
async def test_a_rating_must_be_1_to_5(w: World, bad):
    ratings = RatingService(w.db, w.clock)
    call_id = await _call(w, f"pbx-2.{abs(hash(repr(bad))) % 1000}")
    with pytest.raises(InvalidInput) as e:
        await ratings.record(bad, "after_call", call_id=call_id)
    assert [(f.field, f.message) for f in e.value.errors] == [("rating", NOT_ALLOWED)]
    assert await ratings.for_call(call_id) is None


async def test_a_rating_names_its_bad_source_call_or_ticket(w: World):
    ratings = RatingService(w.db, w.clock)
    with pytest.raises(InvalidInput) as e:
        await ratings.record(3, "fax", call_id=None)
    assert e.value.fields() == ["source"]
    with pytest.raises(InvalidInput) as e:
        await ratings.record(3, "after_call")
    assert [(f.field, f.message) for f in e.value.errors] == [("call_id", REQUIRED)]
    with pytest.raises(InvalidInput) as e:
        await ratings.record(3, "result_call")
    assert [(f.field, f.message) for f in e.value.errors] == [("ticket_id", REQUIRED)]
    with pytest.raises(InvalidInput) as e:
        await ratings.record(3, "result_call", call_id=999999)
    assert [(f.field, f.message) for f in e.value.errors] == [("call_id", UNKNOWN)]
    with pytest.raises(InvalidInput) as e:
        await ratings.record(3, "web", ticket_id=999999)
    assert [(f.field, f.message) for f in e.value.errors] == [("ticket_id", UNKNOWN)]
    t = await make(w, 1)
    web, new = await ratings.record(5, "web", ticket_id=t.id)
    assert new and web.call_id is None and web.ticket_id == t.id
    result, new = await ratings.record(2, "result_call", ticket_id=t.id)
    assert new and result.source == "result_call" and result.topic == "flooding"


async def test_the_same_call_rated_twice_at_once_keeps_one(w: World):
    ratings = RatingService(w.db, w.clock)
    call_id = await _call(w, "pbx-3.1")
    results = await asyncio.gather(
        *(ratings.record(r, "after_call", call_id=call_id) for r in (1, 5, 3))
    )
    assert len({made.id for made, _ in results}) == 1
    assert sum(new for _, new in results) == 1
    async with w.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Rating)) == 1


async def test_the_database_refuses_a_rating_out_of_range(w: World):
    with pytest.raises(IntegrityError, match="(?i)check|ck_ratings_rating"):
        async with w.db.session() as s:
            s.add(Rating(rating=7, source="web", at=T0))
            await s.flush()


async def test_a_ticket_counts_its_reopens_from_zero(w: World):
    t = await make(w, 2)
    async with w.db.session() as s:
        assert (await s.get(Ticket, t.id)).reopens == 0

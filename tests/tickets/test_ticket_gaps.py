"""The tickets' remaining gaps, on real SQLite and PostgreSQL: a report made restricted
while an agency not cleared for it holds it, each co-handling agency's own deadline, and
a ticket closed with parts of it still open.

The world is the tickets tests' (tests/tickets/test_tickets_service.py) with the agency
tree of tests/tickets/test_handling.py, plus the Party Committee Office ("vp-thanh-uy",
cleared for restricted reports) and a ward below it that is not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from accounts.identity import Actor
from accounts.models import Role, User
from queue_stats.reports import agency_timeliness
from tests.tickets.test_handling import Tree, part_of, version
from tests.tickets.test_handling import t as _tree  # noqa: F401 (the fixture "t")
from tests.tickets.test_tickets_service import HOURS, T0, form
from tests.tickets.test_tickets_service import w as _world  # noqa: F401 (the fixture "w")
from tickets.confidential import RESTRICTION_REFUSED, history_seen_by
from tickets.exceptions import (
    BEYOND_LEAD,
    HELD_UNCLEARED,
    IN_PAST,
    NEEDS_TIME_ZONE,
    NOT_CLEARED,
    NOT_CO,
    InvalidInput,
)
from tickets.handling.models import State
from tickets.models import Agency, AgencyKind, Status, Ticket
from tickets.review.reminders import DeadlineReminders
from tickets.review.service import ReviewService
from tickets.service import event_details


@dataclass
class Office:
    """The world with the Party Committee Office cleared for restricted reports."""

    t: Tree
    office: int  # vp-thanh-uy: cleared
    office_ward: int  # below the office, not cleared
    office_officer: Actor
    office_ward_officer: Actor
    reader: Actor  # a supervisor named in readers


def _cleared(settings, agencies: list[str], readers: list[str]):  # type: ignore[no-untyped-def]
    c = settings.tickets.confidential.model_copy(update={"agencies": agencies, "readers": readers})
    tickets = settings.tickets.model_copy(update={"confidential": c})
    return settings.model_copy(update={"tickets": tickets})


@pytest.fixture
async def o(_tree: Tree) -> Office:  # noqa: F811 - the fixture imported above
    t = _tree
    w = t.w
    async with w.db.session() as s:
        office = Agency(
            code="vp-thanh-uy",
            kind=AgencyKind.OTHER.value,
            name="Văn phòng Thành ủy",
            active=True,
            created_at=T0,
            updated_at=T0,
            version=1,
        )
        s.add(office)
        await s.flush()
        ward = Agency(
            code="vp-thanh-uy-to1",
            kind=AgencyKind.OTHER.value,
            name="Tổ 1 Văn phòng",
            parent_id=office.id,
            active=True,
            created_at=T0,
            updated_at=T0,
            version=1,
        )
        s.add(ward)
        await s.flush()
        actors = {}
        for name, role, agency_id in (
            ("office_officer", Role.AGENCY, office.id),
            ("office_ward_officer", Role.AGENCY, ward.id),
            ("giamsat", Role.SUPERVISOR, None),
        ):
            u = User(
                username=name,
                display_name=name,
                role=role.value,
                password_hash="x",
                agency_id=agency_id,
                created_at=T0,
                password_changed_at=T0,
            )
            s.add(u)
            await s.flush()
            actors[name] = Actor(id=u.id, name=name, role=role, agency_id=agency_id, username=name)
        ids = office.id, ward.id
    settings = _cleared(w.svc.settings, ["vp-thanh-uy"], ["giamsat"])
    w.svc.settings = settings
    w.q.settings = settings
    return Office(
        t=t,
        office=ids[0],
        office_ward=ids[1],
        office_officer=actors["office_officer"],
        office_ward_officer=actors["office_ward_officer"],
        reader=actors["giamsat"],
    )


async def forwarded(o: Office, agency: int, co: list[int] | None = None, **kw) -> Ticket:
    w = o.t.w
    ticket = await w.svc.create(w.agent, form(2, **kw))
    return await w.svc.forward(w.supervisor, ticket.id, 1, agency, co_agency_ids=co)


def errors(e: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(x.field, x.message) for x in e.value.errors]


# -- a report made restricted while an agency not cleared for it holds it ----------------


async def test_a_report_is_not_made_restricted_while_an_uncleared_agency_holds_it(o: Office):
    w = o.t.w
    ticket = await forwarded(o, w.district)
    # the district (not cleared) holds it: the topic is refused, naming the agency
    with pytest.raises(InvalidInput) as e:
        await w.svc.update(w.supervisor, ticket.id, 2, {"topic": "corruption"})
    assert errors(e) == [("topic", HELD_UNCLEARED)]
    assert e.value.errors[0].params == {"agencies": "Agency q1"}
    now = await w.q.get(ticket.id)
    assert (now.topic, now.version) == ("flooding", 2)
    # the refusal is in the history, for the hotline's eyes only
    events = await w.q.history(ticket.id)
    [refused] = [x for x in events if x.action == RESTRICTION_REFUSED]
    assert event_details(refused) == {"topic": ["flooding", "corruption"], "agencies": [w.district]}
    assert refused.actor_name == "supervisor"
    shown = history_seen_by(w.district_officer, now, events)
    assert RESTRICTION_REFUSED not in [x.action for x in shown]
    assert RESTRICTION_REFUSED in [x.action for x in history_seen_by(w.supervisor, now, events)]
    # the domain alike, and both at once name both
    with pytest.raises(InvalidInput) as e:
        await w.svc.update(w.supervisor, ticket.id, 2, {"domain": "party", "topic": "complaints"})
    assert errors(e) == [("domain", HELD_UNCLEARED), ("topic", HELD_UNCLEARED)]
    # another change of an unrestricted topic is not concerned
    ticket = await w.svc.update(w.supervisor, ticket.id, 2, {"topic": "trees"})
    assert ticket.topic == "trees"

    # once the agency has sent it back it holds it no more: the change is made, and said
    await w.svc.send_back(w.district_officer, ticket.id, 3, "Không thuộc thẩm quyền")
    ticket = await w.svc.update(w.supervisor, ticket.id, 4, {"topic": "corruption"})
    assert ticket.topic == "corruption"
    [updated] = [x for x in await w.q.history(ticket.id) if x.action == "updated"][-1:]
    assert event_details(updated) == {"topic": ["trees", "corruption"], "restricted": [False, True]}
    # and the district no longer sees it
    assert not await w.q.can_see(w.district_officer, ticket)


async def test_a_co_handling_or_delegated_agency_not_cleared_holds_it_too(o: Office):
    w = o.t.w
    # the office (cleared) leads, the department (not cleared) co-handles
    ticket = await forwarded(o, o.office, [w.dept])
    with pytest.raises(InvalidInput) as e:
        await w.svc.update(w.supervisor, ticket.id, 2, {"domain": "party"})
    assert errors(e) == [("domain", HELD_UNCLEARED)]
    assert e.value.errors[0].params == {"agencies": "Agency so-gtvt"}
    # the department answers its part: it holds it no more
    dept = await part_of(o.t, ticket.id, w.dept)
    await o.t.h.answer(w.dept_officer, ticket.id, 2, dept.id, "Sở: không liên quan")
    # the office delegates to its ward (not cleared, the report being unrestricted)
    await o.t.h.delegate(o.office_officer, ticket.id, 3, o.office_ward)
    with pytest.raises(InvalidInput) as e:
        await w.svc.update(w.supervisor, ticket.id, 4, {"domain": "party"})
    assert e.value.errors[0].params == {"agencies": "Tổ 1 Văn phòng"}
    # the office takes its delegation back: now only cleared agencies hold it
    ward = await part_of(o.t, ticket.id, o.office_ward)
    await o.t.h.withdraw(o.office_officer, ticket.id, 4, ward.id)
    ticket = await w.svc.update(w.supervisor, ticket.id, 5, {"domain": "party"})
    assert ticket.domain == "party"
    refused = [x for x in await w.q.history(ticket.id) if x.action == RESTRICTION_REFUSED]
    assert [event_details(x)["agencies"] for x in refused] == [[w.dept], [o.office_ward]]


async def test_a_restricted_report_goes_to_no_uncleared_co_agency_or_sub_agency(o: Office):
    w = o.t.w
    ticket = await w.svc.create(w.agent, form(2, topic="corruption"))
    with pytest.raises(InvalidInput) as e:
        await w.svc.forward(w.supervisor, ticket.id, 1, o.office, co_agency_ids=[w.dept])
    assert errors(e) == [("co_agency_ids", NOT_CLEARED)]
    ticket = await w.svc.forward(w.supervisor, ticket.id, 1, o.office)
    with pytest.raises(InvalidInput) as e:
        await o.t.h.delegate(o.office_officer, ticket.id, 2, o.office_ward)
    assert errors(e) == [("agency_id", NOT_CLEARED)]
    assert await o.t.h.parts(ticket.id) == []


async def test_an_answer_is_not_sent_back_to_an_agency_no_longer_cleared(o: Office):
    w = o.t.w
    ticket = await forwarded(o, w.district)
    ticket = await w.svc.answer(w.district_officer, ticket.id, 2, "Đã xử lý")
    # answered: the district holds it no more, the report may become restricted
    ticket = await w.svc.update(w.supervisor, ticket.id, 3, {"topic": "corruption"})
    review = ReviewService(w.svc, w.db, w.svc.settings, w.clock)
    with pytest.raises(InvalidInput) as e:
        await review.refuse_answer(w.supervisor, ticket.id, 4, "Chưa đạt")
    assert errors(e) == [("agency_id", NOT_CLEARED)]
    assert (await w.q.get(ticket.id)).status == Status.ANSWERED


# -- each co-handling agency's own deadline -----------------------------------------------


async def test_each_co_agency_gets_the_deadline_the_supervisor_sets(o: Office):
    t, w = o.t, o.t.w
    ticket = await w.svc.create(w.agent, form(3))
    lead_deadline = T0 + timedelta(hours=HOURS[3])
    own = T0 + timedelta(hours=24)
    local = own.astimezone(w.svc.settings.tz)
    ticket = await w.svc.approve(
        w.supervisor,
        ticket.id,
        1,
        w.district,
        co_agency_ids=[w.dept, t.other],
        co_deadlines={w.dept: local},
    )
    assert ticket.deadline_at == lead_deadline
    dept, other = await part_of(t, ticket.id, w.dept), await part_of(t, ticket.id, t.other)
    assert (dept.deadline_at, other.deadline_at) == (own, lead_deadline)
    [approved] = [x for x in await w.q.history(ticket.id) if x.action == "approved"]
    assert event_details(approved)["co_deadlines"] == {str(w.dept): own.isoformat()}

    # the department's part escalates by its own deadline, the other's not yet
    marked = await t.h.escalate_overdue(own + timedelta(minutes=1))
    assert [(p.agency_id, x.id) for p, x in marked] == [(w.dept, ticket.id)]


async def test_a_co_agencys_deadline_is_refused_by_its_field(o: Office):
    t, w = o.t, o.t.w
    ticket = await w.svc.create(w.agent, form(2))
    tz = w.svc.settings.tz
    lead = T0 + timedelta(hours=HOURS[2])
    late = lead + timedelta(hours=1)
    with pytest.raises(InvalidInput) as e:
        await w.svc.forward(
            w.supervisor,
            ticket.id,
            1,
            w.district,
            co_agency_ids=[w.dept, t.other, t.ward2],
            co_deadlines={
                w.dept: late.astimezone(tz),
                t.other: T0 - timedelta(hours=1),
                t.ward2: datetime(2026, 11, 26, 10, 0),  # no time zone
                w.ward: T0 + timedelta(hours=5),  # not a co-agency
            },
        )
    assert sorted(errors(e)) == sorted(
        [
            (f"co_deadlines.{w.dept}", BEYOND_LEAD),
            (f"co_deadlines.{t.other}", IN_PAST),
            (f"co_deadlines.{t.ward2}", NEEDS_TIME_ZONE),
            (f"co_deadlines.{w.ward}", NOT_CO),
        ]
    )
    beyond = next(x for x in e.value.errors if x.message == BEYOND_LEAD)
    assert beyond.params == {"deadline": lead.astimezone(tz).strftime("%d/%m/%Y %H:%M")}
    # nothing was written
    assert (await w.q.get(ticket.id)).status == Status.NEW
    assert await t.h.parts(ticket.id) == []

    # the lead's deadline itself is allowed; forwarded again, a kept co-agency's moves
    ticket = await w.svc.forward(
        w.supervisor, ticket.id, 1, w.district, co_agency_ids=[w.dept], co_deadlines={w.dept: lead}
    )
    assert (await part_of(t, ticket.id, w.dept)).deadline_at == lead
    await w.svc.send_back(w.district_officer, ticket.id, 2, "Cần bổ sung")
    w.clock.advance(timedelta(hours=1))
    sooner = w.clock.now() + timedelta(hours=10)
    ticket = await w.svc.forward(
        w.supervisor, ticket.id, 3, w.district, co_deadlines={w.dept: sooner}
    )
    [part] = await t.h.parts(ticket.id)
    assert (part.agency_id, part.status, part.deadline_at) == (w.dept, "forwarded", sooner)


# -- closing a ticket whose parts are open ------------------------------------------------


async def test_closing_closes_the_open_parts_with_the_reason_and_nothing_is_due_after(o: Office):
    t, w = o.t, o.t.w
    ticket = await forwarded(o, w.district, [w.dept, t.other])
    dept = await part_of(t, ticket.id, w.dept)
    other = await part_of(t, ticket.id, t.other)
    await t.h.answer(t.other_officer, ticket.id, 2, other.id, "Quận 3: đã xử lý phần mình")
    await t.h.delegate(w.district_officer, ticket.id, 3, w.ward)
    ward = await part_of(t, ticket.id, w.ward)
    # the lead sends it back; the department's part and the ward's stay open
    await w.svc.send_back(w.district_officer, ticket.id, 4, "Không thuộc thẩm quyền")
    assert {p.status for p in await t.h.parts(ticket.id)} == {"forwarded", "answered"}

    w.clock.advance(timedelta(hours=1))
    note = "Trùng phản ánh đã giải quyết ở phiếu khác"
    closed = await w.svc.close(w.supervisor, ticket.id, 5, note)
    assert closed.status == Status.CLOSED
    rows = {p.id: p for p in await t.h.parts(ticket.id)}
    assert (rows[dept.id].status, rows[dept.id].end_reason) == (State.CLOSED, note)
    assert (rows[ward.id].status, rows[ward.id].end_reason) == (State.CLOSED, note)
    assert rows[dept.id].ended_at == w.clock.now()
    assert rows[other.id].status == State.ANSWERED and rows[other.id].end_reason is None
    [line] = [x for x in await w.q.history(ticket.id) if x.action == "closed"]
    assert event_details(line) == {"note": note, "parts_closed": sorted([dept.id, ward.id])}

    # the agencies still see the ticket and why their part ended (not "withdrawn")
    assert await w.q.can_see(w.dept_officer, closed)
    assert await w.q.can_see(w.ward_officer, closed)
    tree = await t.h.tree(w.dept_officer, closed)
    [co_view] = [p for p in tree if p.row is not None and p.row.id == dept.id]
    assert co_view.status == "closed" and co_view.moves == []
    assert co_view.row is not None and co_view.row.end_reason == note
    assert closed.id not in {x.id for x in await w.q.inbox(w.dept_officer)}

    # past every deadline: no part escalates, no reminder is due
    later = T0 + timedelta(hours=HOURS[2] + 5)
    assert await t.h.escalate_overdue(later) == []
    assert await w.svc.escalate_overdue(later) == []
    reminders = DeadlineReminders(w.db, w.svc.settings, w.clock, None)  # type: ignore[arg-type]
    for hours_before in range(0, HOURS[2], 12):
        assert await reminders.due(T0 + timedelta(hours=hours_before)) == []

    # the agencies' timeliness: a part closed before its deadline counts neither way
    rows_now = {
        r.agency_id: r for r in await agency_timeliness(w.db, T0, T0 + timedelta(days=1), later)
    }
    assert w.dept not in rows_now and w.ward not in rows_now
    assert rows_now[t.other].forwarded == 1 and rows_now[t.other].on_time == 1


async def test_a_part_closed_after_its_deadline_still_counts_as_overdue(o: Office):
    t, w = o.t, o.t.w
    ticket = await forwarded(o, w.district, [w.dept])
    await w.svc.send_back(w.district_officer, ticket.id, 2, "Không thuộc thẩm quyền")
    w.clock.advance(timedelta(hours=HOURS[2] + 1))
    await w.svc.close(w.supervisor, ticket.id, 3, "Đóng sau hạn")
    rows = {
        r.agency_id: r
        for r in await agency_timeliness(w.db, T0, T0 + timedelta(days=1), w.clock.now())
    }
    assert (rows[w.dept].forwarded, rows[w.dept].overdue) == (1, 1)
    assert json.loads((await w.q.history(ticket.id))[-1].details)["parts_closed"] == [
        (await part_of(t, ticket.id, w.dept)).id
    ]
    assert await version(t, ticket.id) == 4

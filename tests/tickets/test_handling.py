"""Several agencies and delegation down the tree (tickets.handling) on real SQLite and
PostgreSQL: co-handling agencies and the lead's combined answer, delegation and its
refusals, who sees what, concurrent writers on the same ticket, and the reports."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from accounts.identity import Actor
from accounts.models import Role, User
from queue_stats.reports import agency_timeliness
from tests.tickets.test_tickets_service import HOURS, T0, World, form
from tests.tickets.test_tickets_service import w as _world  # noqa: F401 (the fixture "w")
from tickets.exceptions import (
    BEFORE_BELOW,
    BEYOND_LEAD,
    BEYOND_PARENT,
    CO_PENDING,
    HOLDS_PART,
    IN_PAST,
    INACTIVE,
    LEAD_AS_CO,
    NEEDS_TIME_ZONE,
    NOT_DESCENDANT,
    REQUIRED,
    UNKNOWN,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    VersionConflict,
)
from tickets.handling.models import Assignment, State
from tickets.handling.service import AssignmentService
from tickets.models import Agency, AgencyKind, Status, Ticket
from tickets.queries import TicketFilter
from tickets.service import TicketService, event_details


@dataclass
class Tree:
    """The world of the ticket tests, with the service of parts, a second ward of the
    district (a sub-ward below it) and an agency unrelated to any of them."""

    w: World
    h: AssignmentService
    ward2: int
    subward: int
    other: int
    ward2_officer: Actor
    subward_officer: Actor
    other_officer: Actor


@pytest.fixture
async def t(_world: World) -> Tree:  # noqa: F811 - the fixture imported above
    w = _world
    async with w.db.session() as s:

        def agency(code: str, kind: AgencyKind, parent: int | None) -> Agency:
            a = Agency(
                code=code,
                kind=kind.value,
                name=f"Agency {code}",
                parent_id=parent,
                active=True,
                created_at=T0,
                updated_at=T0,
                version=1,
            )
            s.add(a)
            return a

        ward2 = agency("q1-p-da-kao", AgencyKind.WARD, w.district)
        other = agency("q3", AgencyKind.DISTRICT, None)
        await s.flush()
        subward = agency("q1-p-da-kao-kp2", AgencyKind.OTHER, ward2.id)
        await s.flush()
        actors = {}
        for name, agency_id in (
            ("ward2_officer", ward2.id),
            ("subward_officer", subward.id),
            ("other_officer", other.id),
        ):
            u = User(
                username=name,
                display_name=name,
                role=Role.AGENCY.value,
                password_hash="x",
                agency_id=agency_id,
                created_at=T0,
                password_changed_at=T0,
            )
            s.add(u)
            await s.flush()
            actors[name] = Actor(id=u.id, name=name, role=Role.AGENCY, agency_id=agency_id)
        ids = (ward2.id, subward.id, other.id)
    return Tree(
        w=w,
        h=AssignmentService(w.db, w.svc, w.clock),
        ward2=ids[0],
        subward=ids[1],
        other=ids[2],
        **actors,
    )


async def forwarded(t: Tree, agency: int, co: list[int] | None = None, level: int = 2) -> Ticket:
    ticket = await t.w.svc.create(t.w.agent, form(level))
    if level == 3:
        return await t.w.svc.approve(t.w.supervisor, ticket.id, 1, agency, co_agency_ids=co)
    return await t.w.svc.forward(t.w.supervisor, ticket.id, 1, agency, co_agency_ids=co)


async def version(t: Tree, ticket_id: int) -> int:
    return (await t.w.q.get(ticket_id)).version


async def part_of(t: Tree, ticket_id: int, agency: int) -> Assignment:
    rows = [r for r in await t.h.parts(ticket_id) if r.agency_id == agency]
    return rows[-1]


async def sees(t: Tree, actor: Actor, ticket: Ticket) -> bool:
    """Whether the actor sees the ticket, asked both ways (one ticket, the inbox)."""
    one = await t.w.q.can_see(actor, ticket)
    listed = ticket.id in {x.id for x in await t.w.q.inbox(actor, include_closed=True)}
    assert one == listed, (actor.name, one, listed)
    return one


# -- several agencies -------------------------------------------------------------------


async def test_the_lead_combines_once_every_co_agency_has_answered(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept, t.other], level=3)
    assert ticket.status == Status.FORWARDED and ticket.agency_id == w.district
    deadline = T0 + timedelta(hours=HOURS[3])
    dept = await part_of(t, ticket.id, w.dept)
    other = await part_of(t, ticket.id, t.other)
    assert (dept.role, dept.status, dept.deadline_at) == ("co", "forwarded", deadline)
    [approved] = [e for e in await w.q.history(ticket.id) if e.action == "approved"]
    assert event_details(approved)["co_agencies"] == [[], sorted([w.dept, t.other])]

    # the lead cannot answer before the co-agencies: refused on its answer, naming them
    with pytest.raises(InvalidInput) as e:
        await w.svc.answer(w.district_officer, ticket.id, 2, "Đã xử lý")
    assert e.value.errors[0].field == "result" and e.value.errors[0].message == CO_PENDING
    assert e.value.errors[0].params == {"agencies": "Agency q3, Agency so-gtvt"}

    # each co-agency its own part: another agency's part is not theirs
    with pytest.raises(Forbidden):
        await t.h.accept(w.dept_officer, ticket.id, 2, other.id)
    await t.h.accept(w.dept_officer, ticket.id, 2, dept.id)
    w.clock.advance(timedelta(hours=1))
    await t.h.answer(w.dept_officer, ticket.id, 3, dept.id, "Sở GTVT: đã sửa đèn tín hiệu")
    with pytest.raises(InvalidTransition):  # answered: no second answer
        await t.h.answer(w.dept_officer, ticket.id, 4, dept.id, "Lần nữa")
    with pytest.raises(InvalidInput) as e:
        await w.svc.answer(w.district_officer, ticket.id, 4, "Đã xử lý")
    assert e.value.errors[0].params == {"agencies": "Agency q3"}
    await t.h.answer(t.other_officer, ticket.id, 4, other.id, "Quận 3: không liên quan")

    combined = "Tổng hợp: Sở GTVT đã sửa đèn; Quận 3 không liên quan"
    ticket = await w.svc.answer(w.district_officer, ticket.id, 5, combined)
    assert ticket.status == Status.ANSWERED and ticket.result == combined
    events = await w.q.history(ticket.id)
    assert [e.action for e in events] == [
        "created", "approved", "part_accepted", "part_answered", "part_answered", "answered",
    ]  # fmt: skip
    assert event_details(events[3]) == {
        "part": dept.id,
        "agency": w.dept,
        "result": "Sở GTVT: đã sửa đèn tín hiệu",
        "late": False,
    }
    assert event_details(events[-1])["combined"] == [dept.id, other.id]
    # every part's move is a line with the ticket's status, and bumped the version
    assert all(e.from_status == e.to_status == "forwarded" for e in events[2:5])
    assert ticket.version == 6


async def test_supervisors_add_and_remove_co_agencies_when_forwarding(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept, t.other])
    assert await sees(t, t.other_officer, ticket)
    # the lead sends it back; forwarded again without q3 and with the second ward
    await w.svc.send_back(w.district_officer, ticket.id, 2, "Cần thêm đơn vị phối hợp")
    w.clock.advance(timedelta(hours=2))
    ticket = await w.svc.forward(
        w.supervisor, ticket.id, 3, w.district, co_agency_ids=[w.dept, t.ward2]
    )
    parts = {(r.agency_id, r.status) for r in await t.h.parts(ticket.id)}
    assert parts == {(w.dept, "forwarded"), (t.other, "withdrawn"), (t.ward2, "forwarded")}
    forwards = [e for e in await w.q.history(ticket.id) if e.action == "forwarded"]
    assert event_details(forwards[-1])["co_agencies"] == [
        sorted([w.dept, t.other]),
        sorted([w.dept, t.ward2]),
    ]
    # the kept one keeps its part (and its first deadline); the removed one sees nothing
    assert (await part_of(t, ticket.id, w.dept)).deadline_at == T0 + timedelta(hours=72)
    assert not await sees(t, t.other_officer, ticket)
    assert await sees(t, t.ward2_officer, ticket)

    # forwarding without the list leaves them; refusals name the field
    await w.svc.send_back(w.district_officer, ticket.id, 4, "Chưa rõ")
    for co, message in (
        ([w.district], LEAD_AS_CO),
        ([w.retired], INACTIVE),
        ([999999], UNKNOWN),
    ):
        with pytest.raises(InvalidInput) as e:
            await w.svc.forward(w.supervisor, ticket.id, 5, w.district, co_agency_ids=co)
        assert e.value.fields() == ["co_agency_ids"] and e.value.errors[0].message == message
    assert (await w.q.get(ticket.id)).version == 5  # nothing written
    await w.svc.forward(w.supervisor, ticket.id, 5, w.district)
    assert len([r for r in await t.h.parts(ticket.id) if r.status == "forwarded"]) == 2


async def test_a_co_agency_sending_its_part_back_no_longer_holds_up_the_lead(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept])
    dept = await part_of(t, ticket.id, w.dept)
    with pytest.raises(InvalidInput) as e:
        await t.h.send_back(w.dept_officer, ticket.id, 2, dept.id, "  ")
    assert e.value.fields() == ["reason"]
    await t.h.send_back(w.dept_officer, ticket.id, 2, dept.id, "Không thuộc thẩm quyền")
    dept = await part_of(t, ticket.id, w.dept)
    assert dept.status == "returned" and dept.return_reason == "Không thuộc thẩm quyền"
    ticket = await w.svc.answer(w.district_officer, ticket.id, 3, "Quận 1 đã xử lý")
    assert ticket.status == Status.ANSWERED


# -- delegation -------------------------------------------------------------------------


async def test_the_district_delegates_to_a_ward_which_answers_and_the_district_adopts(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district)
    ticket = await w.svc.accept(w.district_officer, ticket.id, 2)
    assert not await sees(t, w.ward_officer, ticket)  # nothing delegated yet
    soon = T0 + timedelta(hours=24)
    part = await t.h.delegate(
        w.district_officer, ticket.id, 3, w.ward, soon, note="Phường kiểm tra thực tế"
    )
    assert (part.role, part.status, part.parent_id) == ("delegated", "forwarded", None)
    assert (part.from_agency_id, part.deadline_at) == (w.district, soon)
    # the ward sees it; the district still does; the other ward, the department and an
    # unrelated district do not
    assert await sees(t, w.ward_officer, ticket)
    assert await sees(t, w.district_officer, ticket)
    for outsider in (t.ward2_officer, w.dept_officer, t.other_officer):
        assert not await sees(t, outsider, ticket)

    # the ward answers its part, not the ticket
    with pytest.raises(Forbidden):
        await w.svc.answer(w.ward_officer, ticket.id, 4, "Phường trả lời")
    await t.h.accept(w.ward_officer, ticket.id, 4, part.id)
    w.clock.advance(timedelta(hours=30))  # past the ward's deadline, within the district's
    await t.h.answer(w.ward_officer, ticket.id, 5, part.id, "Phường đã khơi thông cống")
    ticket = await w.q.get(ticket.id)
    assert ticket.status == Status.ACCEPTED  # the district's part is still open

    # only the delegating agency adopts; the district makes the ward's answer its own
    with pytest.raises(Forbidden):
        await t.h.adopt(w.ward_officer, ticket.id, 6, part.id)
    ticket = await t.h.adopt(w.district_officer, ticket.id, 6, part.id)
    assert isinstance(ticket, Ticket)
    assert ticket.status == Status.ANSWERED and ticket.result == "Phường đã khơi thông cống"
    assert (await part_of(t, ticket.id, w.ward)).status == "adopted"
    events = await w.q.history(ticket.id)
    assert [e.action for e in events] == [
        "created", "forwarded", "accepted", "delegated", "part_accepted", "part_answered",
        "answered",
    ]  # fmt: skip
    assert event_details(events[3]) == {
        "part": part.id,
        "agency": [w.district, w.ward],
        "deadline": soon.isoformat(),
        "note": "Phường kiểm tra thực tế",
    }
    assert event_details(events[5])["late"] is True
    assert event_details(events[-1])["adopted"] == part.id
    # the ward still sees what it worked on
    assert await sees(t, w.ward_officer, ticket)
    # the staff's list by agency finds it under the ward too
    rows, total = await w.q.search(TicketFilter(agency_id=w.ward), actor=w.supervisor)
    assert [r.id for r in rows] == [ticket.id] and total == 1


async def test_delegation_is_refused_outside_the_tree_and_beyond_the_deadline(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district)
    own = ticket.deadline_at
    assert own is not None

    async def refused(field: str, message: str, agency: int, **kw) -> None:
        with pytest.raises(InvalidInput) as e:
            await t.h.delegate(w.district_officer, ticket.id, 2, agency, **kw)
        assert e.value.fields() == [field] and e.value.errors[0].message == message, e.value

    await refused("agency_id", NOT_DESCENDANT, w.dept)
    await refused("agency_id", NOT_DESCENDANT, w.district)  # itself
    await refused("agency_id", NOT_DESCENDANT, t.other)
    await refused("agency_id", UNKNOWN, 999999)
    await refused("deadline_at", BEYOND_PARENT, w.ward, deadline_at=own + timedelta(minutes=1))
    await refused("deadline_at", IN_PAST, w.ward, deadline_at=T0 - timedelta(minutes=1))
    await refused("deadline_at", NEEDS_TIME_ZONE, w.ward, deadline_at=own.replace(tzinfo=None))
    with pytest.raises(InvalidInput) as e:
        await t.h.delegate(w.district_officer, ticket.id, 2, w.ward, own + timedelta(hours=1))
    assert e.value.errors[0].params == {"deadline": "28/11/2026 10:00"}  # local time
    # not the lead's officer: Forbidden, and nothing written
    with pytest.raises(Forbidden):
        await t.h.delegate(w.ward_officer, ticket.id, 2, w.ward)
    assert (await w.q.get(ticket.id)).version == 2 and await t.h.parts(ticket.id) == []

    # the second ward, then further down by its officer: within the ward's own deadline
    ward2_part = await t.h.delegate(
        w.district_officer, ticket.id, 2, t.ward2, T0 + timedelta(hours=10)
    )
    with pytest.raises(InvalidInput) as e:
        await t.h.delegate(
            t.ward2_officer,
            ticket.id,
            3,
            t.subward,
            T0 + timedelta(hours=11),
            part_id=ward2_part.id,
        )
    assert e.value.fields() == ["deadline_at"] and e.value.errors[0].message == BEYOND_PARENT
    # none given: the delegating part's own
    sub = await t.h.delegate(t.ward2_officer, ticket.id, 3, t.subward, part_id=ward2_part.id)
    assert (sub.parent_id, sub.from_agency_id) == (ward2_part.id, t.ward2)
    assert sub.deadline_at == T0 + timedelta(hours=10)
    assert await sees(t, t.subward_officer, ticket) and await sees(t, t.ward2_officer, ticket)
    # an agency with an open part already: refused, whoever delegates
    with pytest.raises(InvalidInput) as e:
        await t.h.delegate(w.district_officer, ticket.id, 4, t.subward)
    assert e.value.fields() == ["agency_id"] and e.value.errors[0].message == HOLDS_PART


async def test_answering_itself_the_lead_overtakes_its_open_delegations(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district)
    part = await t.h.delegate(w.district_officer, ticket.id, 2, w.ward)
    ticket = await w.svc.answer(w.district_officer, ticket.id, 3, "Quận đã tự xử lý")
    assert ticket.status == Status.ANSWERED
    assert (await part_of(t, ticket.id, w.ward)).status == "withdrawn"
    assert event_details((await w.q.history(ticket.id))[-1])["withdrawn"] == [part.id]
    assert not await sees(t, w.ward_officer, ticket)
    with pytest.raises(InvalidTransition):
        await t.h.answer(w.ward_officer, ticket.id, 4, part.id, "Muộn")


async def test_a_co_agency_delegates_its_part_adopts_the_answer_and_the_lead_combines(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.dept, [w.district])
    co = await part_of(t, ticket.id, w.district)
    sub = await t.h.delegate(w.district_officer, ticket.id, 2, w.ward, part_id=co.id)
    assert sub.parent_id == co.id and sub.from_agency_id == w.district
    assert await sees(t, w.ward_officer, ticket) and not await sees(t, t.ward2_officer, ticket)
    # the ward may not take the delegation back: that is the district's
    with pytest.raises(Forbidden):
        await t.h.withdraw(w.ward_officer, ticket.id, 3, sub.id)
    await t.h.answer(w.ward_officer, ticket.id, 3, sub.id, "Phường: đã xử lý")
    part = await t.h.adopt(w.district_officer, ticket.id, 4, sub.id, "Quận 1 (qua phường): xong")
    assert isinstance(part, Assignment)
    assert (part.id, part.status, part.answer) == (co.id, "answered", "Quận 1 (qua phường): xong")
    assert (await part_of(t, ticket.id, w.ward)).status == "adopted"
    ticket = await w.svc.answer(w.dept_officer, ticket.id, 5, "Tổng hợp")
    assert ticket.status == Status.ANSWERED


async def test_the_delegating_agency_takes_a_delegation_back(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district)
    part = await t.h.delegate(w.district_officer, ticket.id, 2, w.ward)
    await t.h.withdraw(w.district_officer, ticket.id, 3, part.id, "Giao nhầm phường")
    assert (await part_of(t, ticket.id, w.ward)).status == "withdrawn"
    assert not await sees(t, w.ward_officer, ticket)
    # and gives it to the right ward
    await t.h.delegate(w.district_officer, ticket.id, 4, t.ward2)
    assert await sees(t, t.ward2_officer, ticket)


async def test_an_overdue_part_is_escalated_once_per_deadline(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept])
    part = await t.h.delegate(w.district_officer, ticket.id, 2, w.ward, T0 + timedelta(hours=5))
    assert await t.h.escalate_overdue(T0 + timedelta(hours=4)) == []
    later = T0 + timedelta(hours=6)
    [(marked, of)] = await t.h.escalate_overdue(later)
    assert (marked.id, marked.escalated_at, of.id) == (part.id, later, ticket.id)
    assert await t.h.escalate_overdue(later + timedelta(hours=1)) == []
    # the co-agency's part (the lead's deadline) too, once that passes
    [(co, _)] = await t.h.escalate_overdue(T0 + timedelta(hours=73))
    assert co.agency_id == w.dept
    # the system's line in the history; the version is not bumped: no one is refused
    [line, _co_line] = [e for e in await w.q.history(ticket.id) if e.action == "part_escalated"]
    assert line.actor_id is None and event_details(line)["part"] == part.id
    assert (await w.q.get(ticket.id)).version == 3
    await t.h.answer(w.ward_officer, ticket.id, 3, part.id, "Muộn nhưng xong")


async def test_who_gave_a_part_moves_its_deadline_with_a_reason(t: Tree):
    """The supervisors move a co-agency's deadline, the delegating agency a delegation's,
    each with a reason, within the giver's own deadline and not before what was delegated
    below; nobody else may; the overdue watch looks at the new deadline afresh."""
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept])
    lead = ticket.deadline_at
    assert lead is not None
    co = await part_of(t, ticket.id, w.dept)
    h = timedelta(hours=1)

    async def refused(actor: Actor, part: int, field: str, message: str, **kw) -> None:
        v = await version(t, ticket.id)
        args = {"deadline_at": T0 + 48 * h, "reason": "Cần sớm hơn", **kw}
        with pytest.raises(InvalidInput) as e:
            await t.h.move_deadline(actor, ticket.id, v, part, args["deadline_at"], args["reason"])
        assert [(f.field, f.message) for f in e.value.errors] == [(field, message)]

    # a co-agency's part: the supervisors', not its own agency's nor the lead's
    for other in (w.dept_officer, w.district_officer, w.agent):
        with pytest.raises(Forbidden):
            await t.h.move_deadline(other, ticket.id, 2, co.id, T0 + 48 * h, "x")
    await refused(w.supervisor, co.id, "deadline_at", BEYOND_LEAD, deadline_at=lead + h)
    await refused(w.supervisor, co.id, "deadline_at", IN_PAST, deadline_at=T0 - h)
    await refused(w.supervisor, co.id, "deadline_at", REQUIRED, deadline_at=None)
    await refused(
        w.supervisor, co.id, "deadline_at", NEEDS_TIME_ZONE, deadline_at=datetime(2026, 12, 1)
    )
    await refused(w.supervisor, co.id, "reason", REQUIRED, reason="  ")
    moved = await t.h.move_deadline(w.supervisor, ticket.id, 2, co.id, T0 + 48 * h, "Họp HĐND")
    assert moved.deadline_at == T0 + 48 * h
    [line] = [e for e in await w.q.history(ticket.id) if e.action == "part_deadline_moved"]
    assert event_details(line) == {
        "part": co.id,
        "agency": w.dept,
        "deadline": [lead.isoformat(), (T0 + 48 * h).isoformat()],
        "reason": "Họp HĐND",
    }
    assert line.actor_name == w.supervisor.name
    # overdue at the new deadline, once; moved again, overdue again at that one
    [(late, _)] = await t.h.escalate_overdue(T0 + 49 * h)
    assert late.id == co.id
    again = await t.h.move_deadline(w.admin, ticket.id, 3, co.id, T0 + 60 * h, "Gia hạn")
    assert again.escalated_at is None
    assert await t.h.escalate_overdue(T0 + 59 * h) == []
    [(late, _)] = await t.h.escalate_overdue(T0 + 61 * h)
    assert late.id == co.id

    # a delegation: the district moves its ward's, the ward its sub-ward's
    v = await version(t, ticket.id)
    ward2 = await t.h.delegate(w.district_officer, ticket.id, v, t.ward2, T0 + 24 * h)
    await t.h.accept(t.ward2_officer, ticket.id, v + 1, ward2.id)
    sub = await t.h.delegate(
        t.ward2_officer, ticket.id, v + 2, t.subward, T0 + 20 * h, part_id=ward2.id
    )
    for other in (t.ward2_officer, w.supervisor, t.other_officer):
        with pytest.raises(Forbidden):
            await t.h.move_deadline(other, ticket.id, v + 3, ward2.id, T0 + 30 * h, "x")
    await refused(w.district_officer, ward2.id, "deadline_at", BEYOND_PARENT, deadline_at=lead + h)
    await refused(
        w.district_officer, ward2.id, "deadline_at", BEFORE_BELOW, deadline_at=T0 + 19 * h
    )
    moved = await t.h.move_deadline(
        w.district_officer, ticket.id, v + 3, ward2.id, T0 + 30 * h, "Chờ kết quả kiểm tra"
    )
    assert moved.deadline_at == T0 + 30 * h
    await refused(t.ward2_officer, sub.id, "deadline_at", BEYOND_PARENT, deadline_at=T0 + 31 * h)
    sub = await t.h.move_deadline(t.ward2_officer, ticket.id, v + 4, sub.id, T0 + 28 * h, "Thêm")
    assert sub.deadline_at == T0 + 28 * h
    # a stale version is refused like every move
    with pytest.raises(VersionConflict):
        await t.h.move_deadline(t.ward2_officer, ticket.id, v + 4, sub.id, T0 + 27 * h, "x")
    # answered parts keep their deadline
    await t.h.accept(t.subward_officer, ticket.id, v + 5, sub.id)
    await t.h.answer(t.subward_officer, ticket.id, v + 6, sub.id, "Xong")
    with pytest.raises(InvalidTransition):
        await t.h.move_deadline(t.ward2_officer, ticket.id, v + 7, sub.id, T0 + 27 * h, "x")


# -- concurrent writers ------------------------------------------------------------------


def hold_loads(monkeypatch) -> None:
    """From now on every writer reads the ticket, then waits for the other: both hold the
    same version when they write."""
    barrier = asyncio.Barrier(2)
    load = TicketService._load

    async def load_and_wait(self, s, ticket_id):
        ticket = await load(self, s, ticket_id)
        await asyncio.wait_for(barrier.wait(), 10)
        return ticket

    monkeypatch.setattr(TicketService, "_load", load_and_wait)


async def test_the_lead_combining_while_a_co_agency_answers_never_misses_the_answer(
    t: Tree, monkeypatch
):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept])
    dept = await part_of(t, ticket.id, w.dept)
    hold_loads(monkeypatch)
    results = await asyncio.gather(
        t.h.answer(w.dept_officer, ticket.id, 2, dept.id, "Sở: đã xử lý"),
        w.svc.answer(w.district_officer, ticket.id, 2, "Tổng hợp (thiếu Sở?)"),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert isinstance(results[0], Assignment), results
    # the lead read the part open (refused: not combined yet) or answered and lost the
    # version race: either way the ticket is not answered without the Sở's answer
    assert isinstance(results[1], (VersionConflict, InvalidInput)), results
    ticket = await w.q.get(ticket.id)
    assert ticket.status == Status.FORWARDED and ticket.version == 3
    assert (await part_of(t, ticket.id, w.dept)).status == "answered"
    # reloaded, the lead sees the answer and combines
    ticket = await w.svc.answer(w.district_officer, ticket.id, 3, "Tổng hợp: Sở đã xử lý")
    assert ticket.status == Status.ANSWERED


async def test_a_ward_answering_while_the_district_answers_itself_one_wins(t: Tree, monkeypatch):
    w = t.w
    ticket = await forwarded(t, w.district)
    part = await t.h.delegate(w.district_officer, ticket.id, 2, w.ward)
    hold_loads(monkeypatch)
    results = await asyncio.gather(
        t.h.answer(w.ward_officer, ticket.id, 3, part.id, "Phường: xong"),
        w.svc.answer(w.district_officer, ticket.id, 3, "Quận: xong"),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert sorted(type(r).__name__ for r in results) in (
        ["Assignment", "VersionConflict"],
        ["Ticket", "VersionConflict"],
    ), results
    ticket = await w.q.get(ticket.id)
    ward = await part_of(t, ticket.id, w.ward)
    if isinstance(results[0], Assignment):  # the ward won: the district's part is open
        assert ticket.status == Status.FORWARDED and ward.status == "answered"
    else:  # the district won: the ward's part was overtaken
        assert ticket.status == Status.ANSWERED and ward.status == "withdrawn"
    assert ticket.version == 4
    assert len(await w.q.history(ticket.id)) == 4  # created, forwarded, delegated, winner


async def test_two_officers_of_a_co_agency_answering_at_once_one_wins(t: Tree, monkeypatch):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept])
    dept = await part_of(t, ticket.id, w.dept)
    hold_loads(monkeypatch)
    results = await asyncio.gather(
        t.h.answer(w.dept_officer, ticket.id, 2, dept.id, "Trả lời A"),
        t.h.answer(w.dept_officer, ticket.id, 2, dept.id, "Trả lời B"),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert sorted(type(r).__name__ for r in results) == ["Assignment", "VersionConflict"]
    won = next(r for r in results if isinstance(r, Assignment))
    assert (await part_of(t, ticket.id, w.dept)).answer == won.answer
    answered = [e for e in await w.q.history(ticket.id) if e.action == "part_answered"]
    assert len(answered) == 1


# -- the reports ---------------------------------------------------------------------------


async def test_each_part_counts_for_its_own_agency_and_the_parent_stays_accountable(t: Tree):
    w = t.w
    ticket = await forwarded(t, w.district, [w.dept])
    part = await t.h.delegate(w.district_officer, ticket.id, 2, w.ward, T0 + timedelta(hours=5))
    w.clock.advance(timedelta(hours=6))  # the ward answers late
    await t.h.answer(w.ward_officer, ticket.id, 3, part.id, "Phường: xong")
    dept = await part_of(t, ticket.id, w.dept)
    await t.h.answer(w.dept_officer, ticket.id, 4, dept.id, "Sở: xong")

    async def rows(now):
        found = await agency_timeliness(w.db, T0, T0 + timedelta(days=1), now)
        return {r.agency_id: (r.forwarded, r.on_time, r.late, r.overdue, r.pending) for r in found}

    now = w.clock.now()
    # the district has not answered: its part is pending even though the ward answered
    assert await rows(now) == {
        w.district: (1, 0, 0, 0, 1),
        w.dept: (1, 1, 0, 0, 0),
        w.ward: (1, 0, 1, 0, 0),
    }
    assert (await rows(T0 + timedelta(hours=100)))[w.district] == (1, 0, 0, 1, 0)
    await t.h.adopt(w.district_officer, ticket.id, 5, part.id)
    assert (await rows(w.clock.now()))[w.district] == (1, 1, 0, 0, 0)


async def test_parts_are_only_rows_of_their_own_table(t: Tree):
    """A single-agency ticket has no part: the existing path writes nothing new."""
    w = t.w
    ticket = await forwarded(t, w.dept)
    await w.svc.answer(w.dept_officer, ticket.id, 2, "Xong")
    async with w.db.session() as s:
        assert (await s.scalars(select(Assignment))).all() == []
    assert State.ADOPTED.value == "adopted"

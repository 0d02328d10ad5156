"""The tickets workflow on real SQLite and PostgreSQL: levels, roles, versions,
escalation, searches and the agency directory."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.identity import SYSTEM, Actor
from accounts.models import Role, User
from callcenter.models import Call
from core.clock import FakeClock
from core.db import Base, Database, sync_url
from tests.helpers import settings_in
from tickets.agencies import AgencyService
from tickets.codes import ALPHABET, new_code
from tickets.exceptions import (
    CODE_CHECK,
    CYCLE,
    HELD_UNCLEARED,
    INACTIVE,
    NEEDED_NOW,
    NOT_ALLOWED,
    NOT_NOW,
    NUMBER_CHECK,
    SECOND_FOR_CALL,
    TAKEN,
    TOO_LONG,
    UNKNOWN,
    AgencyNotFound,
    Forbidden,
    InvalidCode,
    InvalidInput,
    InvalidTransition,
    TicketNotFound,
    VersionConflict,
)
from tickets.models import Agency, AgencyKind, Status, Ticket, TicketEvent
from tickets.numbers import format_number, new_number
from tickets.queries import TicketFilter, TicketQueries
from tickets.service import Action, TicketService, event_details

# 10:00 in Ho Chi Minh City.
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
HOURS = {2: 72, 3: 120, 4: 240, 5: 360}  # the default deadlines (settings.tickets)
EVIL = "Robert'); DROP TABLE tickets; -- \" \\ % _ <script>alert('x')</script> &amp; ằ"


@dataclass
class World:
    svc: TicketService
    q: TicketQueries
    agencies: AgencyService
    clock: FakeClock
    db: Database
    agent: Actor
    agent2: Actor
    supervisor: Actor
    admin: Actor
    district_officer: Actor  # the ward's parent
    ward_officer: Actor
    dept_officer: Actor
    district: int
    ward: int
    dept: int
    retired: int  # an inactive agency
    call_id: int


def _seed(url: str) -> dict[str, int]:
    """Tables from the models (not the migration) and the people and agencies of the tests.

    The imports above of accounts, callcenter and tickets models register their tables.
    """
    engine = create_engine(sync_url(url))
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as s:

            def agency(code: str, kind: AgencyKind, parent: Agency | None = None, active=True):
                a = Agency(
                    code=code,
                    kind=kind.value,
                    name=f"Agency {code}",
                    parent_id=parent.id if parent else None,
                    active=active,
                    created_at=T0,
                    updated_at=T0,
                    version=1,
                )
                s.add(a)
                s.flush()
                return a

            district = agency("q1", AgencyKind.DISTRICT)
            ward = agency("q1-p-ben-nghe", AgencyKind.WARD, district)
            dept = agency("so-gtvt", AgencyKind.DEPARTMENT)
            retired = agency("old-unit", AgencyKind.OTHER, active=False)
            ids = {"district": district.id, "ward": ward.id, "dept": dept.id, "retired": retired.id}
            people = [
                ("agent", Role.AGENT, None, "1001"),
                ("agent2", Role.AGENT, None, "1002"),
                ("supervisor", Role.SUPERVISOR, None, None),
                ("admin", Role.ADMIN, None, None),
                ("district_officer", Role.AGENCY, district.id, None),
                ("ward_officer", Role.AGENCY, ward.id, None),
                ("dept_officer", Role.AGENCY, dept.id, None),
            ]
            for username, role, agency_id, ext in people:
                u = User(
                    username=username,
                    display_name=username.replace("_", " ").title(),
                    role=role.value,
                    password_hash="x",
                    extension=ext,
                    agency_id=agency_id,
                    created_at=T0,
                    password_changed_at=T0,
                )
                s.add(u)
                s.flush()
                ids[username] = u.id
            call = Call(uniqueid="pbx-1795344736.14", caller_number="0909000111", started_at=T0)
            s.add(call)
            s.flush()
            ids["call"] = call.id
            s.commit()
    finally:
        engine.dispose()
    return ids


@pytest.fixture
async def w(database_url: str, tmp_path: Path):
    ids = _seed(database_url)
    settings = settings_in(tmp_path)
    db = Database(database_url)
    clock = FakeClock(T0)

    def actor(name: str, role: Role, agency: str | None = None) -> Actor:
        agency_id = ids[agency] if agency else None
        return Actor(id=ids[name], name=name, role=role, agency_id=agency_id)

    world = World(
        svc=TicketService(db, settings, clock),
        q=TicketQueries(db, settings, clock),
        agencies=AgencyService(db, clock),
        clock=clock,
        db=db,
        agent=actor("agent", Role.AGENT),
        agent2=actor("agent2", Role.AGENT),
        supervisor=actor("supervisor", Role.SUPERVISOR),
        admin=actor("admin", Role.ADMIN),
        district_officer=actor("district_officer", Role.AGENCY, "district"),
        ward_officer=actor("ward_officer", Role.AGENCY, "ward"),
        dept_officer=actor("dept_officer", Role.AGENCY, "dept"),
        district=ids["district"],
        ward=ids["ward"],
        dept=ids["dept"],
        retired=ids["retired"],
        call_id=ids["call"],
    )
    try:
        yield world
    finally:
        await db.close()


def form(level: int, **kw) -> dict:
    data = {
        "channel": "phone",
        "domain": "state",
        "topic": "flooding",
        "level": level,
        "description": f"Báo cáo cấp độ {level}",
        "citizen_phone": "0901234567",
        "citizen_name": "Trần Thị B",
    }
    if level == 1:
        data["guidance"] = "Hướng dẫn nộp hồ sơ tại UBND phường"
    return data | kw


async def make(w: World, level: int, actor: Actor | None = None, **kw) -> Ticket:
    return await w.svc.create(actor or w.agent, form(level, **kw))


async def actions(w: World, ticket_id: int) -> list[str]:
    return [e.action for e in await w.q.history(ticket_id)]


async def count_tickets(w: World) -> int:
    async with w.db.session() as s:
        return await s.scalar(select(func.count()).select_from(Ticket)) or 0


# -- the five levels ------------------------------------------------------------


async def test_level_1_is_closed_at_once(w: World):
    t = await make(w, 1)
    assert t.status == Status.CLOSED and t.closed_at == T0
    assert t.guidance == "Hướng dẫn nộp hồ sơ tại UBND phường"
    assert t.deadline_at is None and t.version == 1 and t.created_by == w.agent.id
    assert (await w.q.get_by_code(t.code.lower().replace("-", " "))).id == t.id
    [event] = await w.q.history(t.id)
    assert (event.action, event.from_status, event.to_status) == ("created", None, "closed")
    assert event.actor_id == w.agent.id and event.actor_name == "agent"
    with pytest.raises(InvalidInput) as e:
        await w.svc.create(w.agent, form(1, guidance=""))
    assert e.value.fields() == ["guidance"]


async def test_level_2_forward_accept_return_forward_answer_close(w: World):
    t = await make(w, 2)
    assert t.status == Status.NEW and t.agency_id is None and t.deadline_at is None

    w.clock.advance(timedelta(minutes=10))
    t = await w.svc.forward(w.supervisor, t.id, 1, w.dept, note="Giao Sở GTVT")
    assert t.status == Status.FORWARDED and t.agency_id == w.dept and t.version == 2
    assert t.forwarded_at == w.clock.now()
    assert t.deadline_at == w.clock.now() + timedelta(hours=HOURS[2])

    t = await w.svc.accept(w.dept_officer, t.id, 2)
    assert t.status == Status.ACCEPTED
    t = await w.svc.send_back(w.dept_officer, t.id, 3, "Không thuộc thẩm quyền của Sở")
    assert t.status == Status.RETURNED and t.return_reason == "Không thuộc thẩm quyền của Sở"

    w.clock.advance(timedelta(hours=1))
    t = await w.svc.forward(w.supervisor, t.id, 4, w.ward)
    assert t.status == Status.FORWARDED and t.agency_id == w.ward and t.return_reason is None
    assert t.deadline_at == w.clock.now() + timedelta(hours=HOURS[2])

    t = await w.svc.answer(w.ward_officer, t.id, 5, "Đã khơi thông cống thoát nước")
    assert t.status == Status.ANSWERED and t.result == "Đã khơi thông cống thoát nước"
    # The agent who took the call tells the citizen, then closes.
    t = await w.svc.close(w.agent, t.id, 6, note="Đã gọi lại cho công dân")
    assert t.status == Status.CLOSED and t.closed_at == w.clock.now() and t.version == 7
    assert t.closing_note == "Đã gọi lại cho công dân"

    events = await w.q.history(t.id)
    assert [e.action for e in events] == [
        "created", "forwarded", "accepted", "returned", "forwarded", "answered", "closed",
    ]  # fmt: skip
    assert [(e.from_status, e.to_status) for e in events][1:3] == [
        ("new", "forwarded"),
        ("forwarded", "accepted"),
    ]
    assert event_details(events[1]) == {
        "agency": [None, w.dept],
        "deadline": (T0 + timedelta(minutes=10, hours=72)).isoformat(),
        "note": "Giao Sở GTVT",
    }
    assert event_details(events[3]) == {"reason": "Không thuộc thẩm quyền của Sở"}
    assert event_details(events[4])["agency"] == [w.dept, w.ward]
    assert event_details(events[4])["return_reason"] == "Không thuộc thẩm quyền của Sở"
    assert event_details(events[5]) == {"result": "Đã khơi thông cống thoát nước", "late": False}


async def test_level_2_with_an_agency_is_forwarded_at_creation(w: World):
    t = await make(w, 2, agency_id=w.ward)
    assert t.status == Status.FORWARDED and t.agency_id == w.ward and t.forwarded_at == T0
    assert t.deadline_at == T0 + timedelta(hours=HOURS[2])
    with pytest.raises(InvalidInput) as e:
        await make(w, 2, agency_id=w.retired)
    assert e.value.errors[0].field == "agency_id" and e.value.errors[0].message == INACTIVE
    with pytest.raises(InvalidInput) as e:
        await make(w, 2, agency_id=99999)
    assert e.value.errors[0].message == UNKNOWN


async def test_level_3_waits_for_approval_then_is_forwarded(w: World):
    t = await make(w, 3, agency_id=w.ward)
    assert t.status == Status.PENDING_APPROVAL and t.agency_id == w.ward
    assert t.forwarded_at is None and t.deadline_at is None
    # Pre-filled, not sent: the agency neither sees nor can act on it yet.
    assert not await w.q.can_see(w.ward_officer, t)
    assert await w.q.inbox(w.ward_officer) == []
    with pytest.raises(Forbidden):
        await w.svc.accept(w.ward_officer, t.id, 1)
    with pytest.raises(InvalidTransition):
        await w.svc.forward(w.supervisor, t.id, 1, w.ward)  # not before approval

    t = await w.svc.approve(w.supervisor, t.id, 1, note="Lãnh đạo đồng ý")
    assert t.status == Status.FORWARDED and t.approved_by == w.supervisor.id
    assert t.deadline_at == T0 + timedelta(hours=HOURS[3])
    assert await w.q.can_see(w.ward_officer, t)
    t = await w.svc.answer(w.ward_officer, t.id, 2, "Đã xử lý")
    t = await w.svc.close(w.supervisor, t.id, 3)
    assert t.status == Status.CLOSED
    assert await actions(w, t.id) == ["created", "approved", "answered", "closed"]

    # Approved without an agency: NEW, then forwarded like a level 2.
    u = await make(w, 3)
    u = await w.svc.approve(w.admin, u.id, 1)
    assert u.status == Status.NEW and u.approved_by == w.admin.id and u.agency_id is None
    u = await w.svc.forward(w.supervisor, u.id, 2, w.dept)
    assert u.status == Status.FORWARDED and u.deadline_at == T0 + timedelta(hours=HOURS[3])


async def test_level_3_refused_approval_is_closed_with_a_note(w: World):
    t = await make(w, 3)
    with pytest.raises(InvalidInput) as e:
        await w.svc.close(w.supervisor, t.id, 1)
    assert e.value.fields() == ["note"] and e.value.errors[0].message == NEEDED_NOW
    t = await w.svc.close(w.supervisor, t.id, 1, note="Lãnh đạo không đồng ý: trùng phản ánh")
    assert t.status == Status.CLOSED and t.closing_note.startswith("Lãnh đạo không")
    assert t.approved_by is None


async def test_level_4_meeting_is_arranged_rescheduled_and_held(w: World):
    t = await make(w, 4, description="Xin gặp lãnh đạo thành phố")
    assert t.status == Status.MEETING_PENDING
    assert t.deadline_at == T0 + timedelta(hours=HOURS[4])
    at = datetime(2026, 12, 2, 8, 30, tzinfo=w.svc.settings.tz)
    t = await w.svc.schedule_meeting(
        w.supervisor, t.id, 1, at, "Ban Tiếp công dân, 86 Lê Thánh Tôn"
    )
    assert t.status == Status.MEETING_SCHEDULED and t.meeting_at == at
    assert t.meeting_at.tzinfo is not None
    later = at + timedelta(days=1)
    t = await w.svc.schedule_meeting(w.admin, t.id, 2, later, "Phòng họp số 2")
    assert t.meeting_at == later and t.meeting_place == "Phòng họp số 2"
    events = await w.q.history(t.id)
    assert event_details(events[-1])["meeting_place"] == [
        "Ban Tiếp công dân, 86 Lê Thánh Tôn",
        "Phòng họp số 2",
    ]
    with pytest.raises(InvalidInput) as e:
        await w.svc.schedule_meeting(w.admin, t.id, 3, datetime(2026, 12, 3, 8, 0), "X")
    assert e.value.fields() == ["at"]
    t = await w.svc.close(w.supervisor, t.id, 3, note="Đã tiếp công dân")
    assert t.status == Status.CLOSED


async def test_level_5_proposal_is_closed_with_a_thank_you_letter(w: World):
    t = await make(w, 5, domain="party", topic="other", description="Đề xuất thêm tuyến buýt")
    assert t.status == Status.PROPOSAL and t.deadline_at == T0 + timedelta(hours=HOURS[5])
    with pytest.raises(InvalidInput) as e:
        await w.svc.close(w.supervisor, t.id, 1)
    assert e.value.fields() == ["letter"]
    letter = "Kính gửi ông/bà,\nThành phố trân trọng cảm ơn đề xuất của ông/bà."
    t = await w.svc.close(w.supervisor, t.id, 1, letter=letter)
    assert t.status == Status.CLOSED and t.letter == letter
    assert event_details((await w.q.history(t.id))[-1]) == {"letter": letter}


async def test_a_letter_is_only_for_proposals(w: World):
    t = await make(w, 3)
    with pytest.raises(InvalidInput) as e:
        await w.svc.close(w.supervisor, t.id, 1, note="trùng", letter="Cảm ơn")
    assert e.value.errors[0].field == "letter" and e.value.errors[0].message == NOT_NOW


# -- permissions and transitions ------------------------------------------------


async def test_every_role_is_refused_what_it_may_not_do(w: World):
    new = await make(w, 2)
    pending = await make(w, 3)
    meeting = await make(w, 4)
    fwd = await make(w, 2, agency_id=w.ward)
    answered = await make(w, 2, agency_id=w.ward, actor=w.agent2)
    answered = await w.svc.answer(w.ward_officer, answered.id, 1, "Xong")
    officers = (w.ward_officer, w.district_officer, w.dept_officer)

    refused = []
    for officer in officers:
        refused += [
            (officer, lambda a: w.svc.create(a, form(2))),
            (officer, lambda a: w.svc.forward(a, new.id, 1, w.ward)),
            (officer, lambda a: w.svc.approve(a, pending.id, 1)),
            (officer, lambda a: w.svc.schedule_meeting(a, meeting.id, 1, T0, "X")),
            (officer, lambda a: w.svc.close(a, answered.id, 2)),
            (officer, lambda a: w.svc.update(a, fwd.id, 1, {"citizen_name": "X"})),
        ]
    for staff in (w.agent, w.supervisor, w.admin):
        refused += [
            (staff, lambda a: w.svc.accept(a, fwd.id, 1)),
            (staff, lambda a: w.svc.answer(a, fwd.id, 1, "x")),
            (staff, lambda a: w.svc.send_back(a, fwd.id, 1, "x")),
            (staff, lambda a: w.q.inbox(a)),
        ]
    # Other agencies, including the ward's parent, do not act for the ward.
    for officer in (w.district_officer, w.dept_officer):
        refused += [
            (officer, lambda a: w.svc.accept(a, fwd.id, 1)),
            (officer, lambda a: w.svc.answer(a, fwd.id, 1, "x")),
            (officer, lambda a: w.svc.send_back(a, fwd.id, 1, "x")),
            (officer, lambda a: w.svc.comment(a, fwd.id, "x")),
        ]
    refused += [
        (w.agent, lambda a: w.svc.forward(a, new.id, 1, w.ward)),
        (w.agent, lambda a: w.svc.approve(a, pending.id, 1)),
        (w.agent, lambda a: w.svc.schedule_meeting(a, meeting.id, 1, T0, "X")),
        (w.agent, lambda a: w.svc.close(a, answered.id, 2)),  # created by agent2
        (w.agent, lambda a: w.svc.close(a, new.id, 1, note="x")),  # own, but not answered
        (w.agent2, lambda a: w.svc.update(a, new.id, 1, {"citizen_name": "X"})),
    ]
    for a in (w.agent, w.supervisor, w.dept_officer):
        refused += [
            (a, lambda a: w.agencies.create(a, {"kind": "ward", "code": "x1", "name": "X"})),
            (a, lambda a: w.agencies.update(a, w.ward, 1, {"name": "X"})),
            (a, lambda a: w.agencies.deactivate(a, w.ward, 1)),
        ]
    for actor, attempt in refused:
        with pytest.raises(Forbidden) as e:
            await attempt(actor)
        assert e.value.role == actor.role

    # Nothing was written by any of them.
    for t in (new, pending, meeting, fwd):
        assert (await w.q.get(t.id)).version == 1
    assert (await w.q.get(answered.id)).version == 2
    assert await count_tickets(w) == 5

    # And what they may do, they may: the creating agent updates and closes.
    assert (await w.svc.update(w.agent, new.id, 1, {"citizen_name": "Lê C"})).version == 2
    assert (await w.svc.close(w.agent2, answered.id, 2)).status == Status.CLOSED


async def test_wrong_status_is_an_invalid_transition(w: World):
    new = await make(w, 2)
    fwd = await make(w, 2, agency_id=w.ward)
    meeting = await make(w, 4)
    closed = await make(w, 1)
    checks = [
        lambda: w.svc.forward(w.supervisor, fwd.id, 1, w.dept),
        lambda: w.svc.forward(w.supervisor, meeting.id, 1, w.dept),
        lambda: w.svc.approve(w.supervisor, new.id, 1),
        lambda: w.svc.schedule_meeting(w.supervisor, new.id, 1, T0, "X"),
        lambda: w.svc.close(w.supervisor, fwd.id, 1, note="x"),
        lambda: w.svc.close(w.supervisor, closed.id, 1, note="x"),
        lambda: w.svc.update(w.supervisor, closed.id, 1, {"citizen_name": "X"}),
        lambda: w.svc.update(w.supervisor, fwd.id, 1, {"level": 3}),
    ]
    for attempt in checks:
        with pytest.raises(InvalidTransition):
            await attempt()
    fwd = await w.svc.accept(w.ward_officer, fwd.id, 1)
    with pytest.raises(InvalidTransition) as e:
        await w.svc.accept(w.ward_officer, fwd.id, 2)
    assert (e.value.action, e.value.status) == ("accept", "accepted")
    fwd = await w.svc.answer(w.ward_officer, fwd.id, 2, "Xong")
    for attempt in (
        lambda: w.svc.answer(w.ward_officer, fwd.id, 3, "Lần nữa"),
        lambda: w.svc.send_back(w.ward_officer, fwd.id, 3, "Trả lại"),
    ):
        with pytest.raises(InvalidTransition):
            await attempt()


async def _in_state(w: World, state: str) -> Ticket:
    """A ticket created by ``w.agent`` and brought to ``state`` through the service."""
    sup = w.supervisor
    if state == "new":
        return await make(w, 2)
    if state == "new, reclassified to 3":
        t = await make(w, 2)
        return await w.svc.update(sup, t.id, 1, {"level": 3})
    if state == "new, approved":
        t = await make(w, 3)
        return await w.svc.approve(sup, t.id, 1)
    if state == "new, reclassified to 4":
        t = await make(w, 2)
        return await w.svc.update(sup, t.id, 1, {"level": 4})
    if state == "pending_approval":
        return await make(w, 3, agency_id=w.ward)
    if state == "pending_approval, reclassified to 4":
        t = await make(w, 3)
        return await w.svc.update(sup, t.id, 1, {"level": 4})
    if state == "forwarded":
        return await make(w, 2, agency_id=w.ward)
    if state == "accepted":
        t = await make(w, 2, agency_id=w.ward)
        return await w.svc.accept(w.ward_officer, t.id, 1)
    if state == "answered":
        t = await make(w, 2, agency_id=w.ward)
        return await w.svc.answer(w.ward_officer, t.id, 1, "Xong")
    if state == "returned":
        t = await make(w, 2, agency_id=w.ward)
        return await w.svc.send_back(w.ward_officer, t.id, 1, "Không thuộc thẩm quyền")
    if state == "meeting_pending":
        return await make(w, 4)
    if state == "meeting_scheduled":
        t = await make(w, 4)
        return await w.svc.schedule_meeting(sup, t.id, 1, T0 + timedelta(days=2), "UBND")
    if state == "proposal":
        return await make(w, 5)
    if state.startswith("reopened"):
        # "reopened, level N": a report of that level reopened after it was done
        level = int(state.rsplit(" ", 1)[1])
        t = await _in_state(
            w, {1: "closed", 2: "answered", 3: "answered, level 3"}.get(level, "closed")
        )
        if level == 4:
            t = await make(w, 4)
            t = await w.svc.schedule_meeting(sup, t.id, 1, T0 + timedelta(days=2), "UBND")
            t = await w.svc.close(sup, t.id, 2)
        if level == 5:
            t = await make(w, 5)
            t = await w.svc.close(sup, t.id, 1, letter="Cảm ơn")
        return await w.svc.reopen(sup, t.id, t.version, "Chưa hài lòng")
    if state == "answered, level 3":
        t = await make(w, 3, agency_id=w.ward)
        t = await w.svc.approve(sup, t.id, 1)
        return await w.svc.answer(w.ward_officer, t.id, 2, "Xong")
    assert state == "closed"
    return await make(w, 1)


STATES = (
    "new",
    "new, reclassified to 3",
    "new, approved",
    "new, reclassified to 4",
    "pending_approval",
    "pending_approval, reclassified to 4",
    "forwarded",
    "accepted",
    "answered",
    "returned",
    "meeting_pending",
    "meeting_scheduled",
    "proposal",
    "closed",
    "reopened, level 1",
    "reopened, level 2",
    "reopened, level 3",
    "reopened, level 4",
    "reopened, level 5",
)


async def test_the_panel_offers_exactly_what_the_service_accepts(w: World):
    """For every status (and level, approval) and every kind of user, the ticket page's
    buttons and edit form are exactly the actions the service then accepts."""
    from panel.views.tickets import actions_for, can_edit

    def attempt(action: str, actor: Actor, t: Ticket):
        v = t.version
        calls = {
            "forward": lambda: w.svc.forward(actor, t.id, v, w.dept, "x"),
            "approve": lambda: w.svc.approve(actor, t.id, v),
            "accept": lambda: w.svc.accept(actor, t.id, v),
            "answer": lambda: w.svc.answer(actor, t.id, v, "Xong"),
            "send_back": lambda: w.svc.send_back(actor, t.id, v, "Trả lại"),
            "schedule_meeting": lambda: w.svc.schedule_meeting(actor, t.id, v, T0, "UBND"),
            "close": lambda: w.svc.close(
                actor, t.id, v, "x", "Cảm ơn" if t.status == Status.PROPOSAL else None
            ),
            "update": lambda: w.svc.update(actor, t.id, v, {"citizen_name": "Lê C"}),
            "reopen": lambda: w.svc.reopen(actor, t.id, v, "Công dân chưa hài lòng"),
        }
        return calls[action]()

    actions = ("forward", "approve", "accept", "answer", "send_back", "schedule_meeting")
    actions += ("close", "update", "reopen")
    people = (
        w.agent,  # the creator
        w.agent2,
        w.supervisor,
        w.admin,
        w.ward_officer,  # the agency it is (or may be) forwarded to
        w.district_officer,  # the ward's parent
        w.dept_officer,
    )
    seen_offered = set()
    for state in STATES:
        for action in actions:
            t = await _in_state(w, state)
            for actor in people:
                offered = set(actions_for(actor, t)) | ({"update"} if can_edit(actor, t) else set())
                try:
                    await attempt(action, actor, t)
                except (Forbidden, InvalidTransition):
                    accepted = False
                else:
                    accepted = True
                    t = await _in_state(w, state)  # a fresh one for the next person
                assert accepted == (action in offered), (state, action, actor.name)
                if accepted:
                    seen_offered.add(action)
    assert seen_offered == set(actions)


async def test_update_records_each_changed_field(w: World):
    t = await make(w, 2, agency_id=w.ward)
    same = await w.svc.update(w.supervisor, t.id, 1, {"topic": "flooding", "level": "2"})
    assert same.version == 1  # nothing changed, nothing written
    # the Party-building domain would make it restricted while the ward, not cleared for
    # restricted reports, holds it: refused, and nothing else of the edit is written
    with pytest.raises(InvalidInput) as e:
        await w.svc.update(w.supervisor, t.id, 1, {"topic": "water", "domain": "party"})
    assert [(x.field, x.message) for x in e.value.errors] == [("domain", HELD_UNCLEARED)]
    t = await w.svc.update(
        w.supervisor,
        t.id,
        1,
        {"topic": "water", "citizen_name": "", "citizen_phone": "0903 333 444"},
    )
    assert (t.topic, t.citizen_name, t.citizen_phone, t.domain) == (
        "water",
        None,
        "0903333444",
        "state",
    )
    event = (await w.q.history(t.id))[-1]
    assert event.action == "updated" and event.from_status == event.to_status == "forwarded"
    assert event_details(event) == {
        "citizen_name": ["Trần Thị B", None],
        "citizen_phone": ["0901234567", "0903333444"],
        "topic": ["flooding", "water"],
    }
    with pytest.raises(InvalidInput) as e:
        await w.svc.update(w.supervisor, t.id, 2, {"topic": "weather"})
    assert e.value.errors[0].field == "topic" and e.value.errors[0].message == NOT_ALLOWED
    with pytest.raises(InvalidInput):
        await w.svc.create(w.agent, form(2, topic="weather"))
    # The level may change while nothing has been sent anywhere.
    n = await make(w, 2)
    n = await w.svc.update(w.agent, n.id, 1, {"level": 3})
    assert n.level == 3 and n.status == Status.NEW
    with pytest.raises(InvalidTransition):  # now a level 3: the leaders approve first
        await w.svc.forward(w.supervisor, n.id, 2, w.ward)
    n = await w.svc.approve(w.supervisor, n.id, 2, agency_id=w.ward)
    assert n.status == Status.FORWARDED


async def test_comments_go_to_the_history_only(w: World):
    t = await make(w, 2, agency_id=w.ward)
    event = await w.svc.comment(w.ward_officer, t.id, "Đang cử cán bộ xuống hiện trường")
    assert event.action == Action.COMMENTED and event.actor_id == w.ward_officer.id
    assert (await w.q.get(t.id)).version == 1
    assert event_details((await w.q.history(t.id))[-1]) == {
        "note": "Đang cử cán bộ xuống hiện trường"
    }
    with pytest.raises(InvalidInput):
        await w.svc.comment(w.agent, t.id, "  ")


async def test_not_found_and_bad_codes(w: World):
    with pytest.raises(TicketNotFound):
        await w.q.get(424242)
    with pytest.raises(TicketNotFound):
        await w.q.history(424242)
    with pytest.raises(TicketNotFound):
        await w.svc.forward(w.supervisor, 424242, 1, w.ward)
    with pytest.raises(TicketNotFound) as e:
        await w.q.get_by_code(new_code())
    assert isinstance(e.value.ticket, str)
    with pytest.raises(InvalidCode):
        await w.q.get_by_code("K7M-4QX9")
    with pytest.raises(InvalidInput) as e2:
        await w.svc.create(w.agent, form(2), call_id=424242)
    assert e2.value.fields() == ["call_id"]


# -- versions -------------------------------------------------------------------


async def test_two_concurrent_writers_exactly_one_wins(w: World, monkeypatch):
    t = await make(w, 2)
    # Both writers read the ticket (version 1) in their own transaction, and
    # only then do both write: the interleaving the version column is for.
    both_read = asyncio.Barrier(2)
    load = TicketService._load

    async def load_and_wait(self, s, ticket_id):
        ticket = await load(self, s, ticket_id)
        await asyncio.wait_for(both_read.wait(), 10)
        return ticket

    monkeypatch.setattr(TicketService, "_load", load_and_wait)
    results = await asyncio.gather(
        w.svc.update(w.supervisor, t.id, 1, {"citizen_name": "Nguyễn Văn A"}),
        w.svc.update(w.admin, t.id, 1, {"citizen_name": "Phạm Văn B"}),
        return_exceptions=True,
    )
    monkeypatch.undo()

    won = [r for r in results if isinstance(r, Ticket)]
    lost = [r for r in results if isinstance(r, VersionConflict)]
    assert len(won) == 1 and len(lost) == 1, results
    assert (lost[0].ticket_id, lost[0].expected, lost[0].actual) == (t.id, 1, 2)
    final = await w.q.get(t.id)
    assert final.version == 2 and final.citizen_name == won[0].citizen_name
    updates = [e for e in await w.q.history(t.id) if e.action == "updated"]
    assert len(updates) == 1
    assert event_details(updates[0]) == {"citizen_name": ["Trần Thị B", final.citizen_name]}


async def test_two_concurrent_workflow_actions_exactly_one_wins(w: World, monkeypatch):
    t = await make(w, 2)
    both_read = asyncio.Barrier(2)
    load = TicketService._load

    async def load_and_wait(self, s, ticket_id):
        ticket = await load(self, s, ticket_id)
        await asyncio.wait_for(both_read.wait(), 10)
        return ticket

    monkeypatch.setattr(TicketService, "_load", load_and_wait)
    results = await asyncio.gather(
        w.svc.forward(w.supervisor, t.id, 1, w.ward),
        w.svc.close(w.admin, t.id, 1, note="Trùng phản ánh"),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert sorted(type(r).__name__ for r in results) == ["Ticket", "VersionConflict"], results
    final = await w.q.get(t.id)
    winner = next(r for r in results if isinstance(r, Ticket))
    assert final.status == winner.status and final.version == 2
    assert len(await w.q.history(t.id)) == 2  # created + the winner's line


async def test_a_stale_version_is_refused(w: World):
    t = await make(w, 2, agency_id=w.ward)
    await w.svc.accept(w.ward_officer, t.id, 1)
    with pytest.raises(VersionConflict) as e:
        await w.svc.send_back(w.ward_officer, t.id, 1, "Không thuộc thẩm quyền")
    assert (e.value.expected, e.value.actual) == (1, 2)
    with pytest.raises(VersionConflict):
        await w.svc.update(w.supervisor, t.id, 1, {"citizen_name": "X"})
    assert (await w.q.get(t.id)).status == Status.ACCEPTED


# -- stored literally, refused when too big ---------------------------------------


async def test_sql_metacharacters_and_html_are_stored_literally(w: World):
    t = await w.svc.create(
        w.agent,
        form(2, description=EVIL, citizen_name=EVIL[:200], citizen_address="<b>12 Lê Lợi</b>"),
    )
    again = await w.q.get(t.id)
    assert again.description == EVIL and again.citizen_name == EVIL[:200]
    assert again.citizen_address == "<b>12 Lê Lợi</b>"
    await w.svc.comment(w.supervisor, t.id, EVIL)
    assert event_details((await w.q.history(t.id))[-1])["note"] == EVIL
    found, total = await w.q.search(TicketFilter(q="'); DROP TABLE"), actor=SYSTEM)
    assert total == 1 and found[0].id == t.id
    found, total = await w.q.search(TicketFilter(q="<script>alert('x')"), actor=SYSTEM)
    assert total == 1
    assert await count_tickets(w) == 1  # and the table is still there


async def test_oversized_fields_are_refused_with_their_name(w: World):
    cases = [
        ("citizen_name", form(2, citizen_name="x" * 201), 200),
        ("citizen_address", form(2, citizen_address="x" * 301), 300),
        ("description", form(2, description="x" * 5001), 5000),
        ("citizen_phone", form(2, citizen_phone="9" * 21), 20),
    ]
    for field, data, limit in cases:
        with pytest.raises(InvalidInput) as e:
            await w.svc.create(w.agent, data)
        [err] = e.value.errors
        assert (err.field, err.message, err.params) == (field, TOO_LONG, {"max": limit})
    assert await count_tickets(w) == 0

    t = await make(w, 2, agency_id=w.ward)
    for field, attempt in [
        ("result", lambda: w.svc.answer(w.ward_officer, t.id, 1, "x" * 5001)),
        ("reason", lambda: w.svc.send_back(w.ward_officer, t.id, 1, "x" * 5001)),
        ("note", lambda: w.svc.comment(w.agent, t.id, "x" * 5001)),
        ("citizen_address", lambda: w.svc.update(w.agent, t.id, 1, {"citizen_address": "a" * 301})),
    ]:
        with pytest.raises(InvalidInput) as e:
            await attempt()
        assert e.value.fields() == [field]
    m = await make(w, 4)
    with pytest.raises(InvalidInput) as e:
        await w.svc.schedule_meeting(w.supervisor, m.id, 1, T0, "p" * 301)
    assert e.value.fields() == ["place"]
    assert (await w.q.get(t.id)).version == 1 and len(await w.q.history(t.id)) == 1


# -- deadlines ------------------------------------------------------------------


async def test_each_deadline_escalates_exactly_once(w: World):
    t = await make(w, 2, agency_id=w.ward)
    deadline = T0 + timedelta(hours=HOURS[2])
    w.clock.set(deadline - timedelta(seconds=1))
    assert await w.svc.escalate_overdue() == []
    w.clock.set(deadline + timedelta(minutes=1))
    [hit] = await w.svc.escalate_overdue()
    assert hit.id == t.id and hit.escalations == 1 and hit.escalated_at == w.clock.now()
    for _ in range(3):  # the periodic check runs again and again
        w.clock.advance(timedelta(hours=5))
        assert await w.svc.escalate_overdue() == []
    t = await w.q.get(t.id)
    assert t.escalations == 1 and t.version == 1  # system columns only: no version bump
    [event] = [e for e in await w.q.history(t.id) if e.action == "escalated"]
    assert event.actor_id is None and event.actor_name == SYSTEM.name
    assert event_details(event) == {"deadline": deadline.isoformat(), "agency": w.ward}

    # Sent back and forwarded again: a new deadline, which escalates once more.
    t = await w.svc.send_back(w.ward_officer, t.id, 1, "Sai địa bàn")
    assert await w.svc.escalate_overdue() == []  # returned: no deadline runs
    t = await w.svc.forward(w.supervisor, t.id, 2, w.dept)
    assert t.escalated_at is None and t.escalations == 1
    new_deadline = w.clock.now() + timedelta(hours=HOURS[2])
    assert await w.svc.escalate_overdue(new_deadline) == []  # not passed yet: "<", not "<="
    [hit] = await w.svc.escalate_overdue(new_deadline + timedelta(seconds=1))
    assert hit.escalations == 2
    assert await w.svc.escalate_overdue(new_deadline + timedelta(days=9)) == []


async def test_escalation_covers_meetings_and_proposals_not_answered_tickets(w: World):
    meeting = await make(w, 4)
    proposal = await make(w, 5)
    scheduled = await make(w, 4)
    await w.svc.schedule_meeting(w.supervisor, scheduled.id, 1, T0 + timedelta(days=3), "UBND")
    answered = await make(w, 2, agency_id=w.ward)
    await w.svc.answer(w.ward_officer, answered.id, 1, "Xong")
    accepted = await make(w, 3, agency_id=w.ward)
    await w.svc.approve(w.supervisor, accepted.id, 1)
    await w.svc.accept(w.ward_officer, accepted.id, 2)
    hit = await w.svc.escalate_overdue(T0 + timedelta(days=365))
    assert {t.id for t in hit} == {meeting.id, proposal.id, accepted.id}
    assert await w.svc.escalate_overdue(T0 + timedelta(days=366)) == []


async def test_concurrent_escalation_runs_escalate_once(w: World):
    for _ in range(3):
        await make(w, 2, agency_id=w.ward)
    later = T0 + timedelta(days=4)
    a, b = await asyncio.gather(w.svc.escalate_overdue(later), w.svc.escalate_overdue(later))
    assert len(a) + len(b) == 3
    async with w.db.session() as s:
        n = await s.scalar(select(func.count()).where(TicketEvent.action == "escalated"))
    assert n == 3


# -- finding tickets --------------------------------------------------------------


async def test_search_filters(w: World):
    hcm = w.svc.settings.tz
    # Around local midnights (UTC+7): 23:59 on the 25th, 00:30 and 23:30 on the
    # 26th, 00:00 on the 27th; in UTC the first two are on the same day.
    w.clock.set(datetime(2026, 11, 25, 23, 59, tzinfo=hcm))
    t1 = await make(
        w, 2, citizen_name="Nguyễn 100% Văn A", citizen_phone="090 111 1111", topic="trees"
    )
    w.clock.set(datetime(2026, 11, 26, 0, 30, tzinfo=hcm))
    t2 = await make(
        w,
        3,
        actor=w.agent2,
        domain="party",
        topic="corruption",
        description="Phản ánh under_score",
        citizen_address="1000 Lê Lợi",
    )
    w.clock.set(datetime(2026, 11, 26, 23, 30, tzinfo=hcm))
    t3 = await make(w, 2, actor=w.supervisor, agency_id=w.ward, description="underXscore")
    w.clock.set(datetime(2026, 11, 27, 0, 0, tzinfo=hcm))
    t4 = await w.svc.create(w.agent, form(1, citizen_phone=""), call_id=w.call_id)
    assert t1.created_at.date() == t2.created_at.date()  # same UTC day, different local days

    async def ids(**kw) -> list[int]:
        found, total = await w.q.search(TicketFilter(**kw), actor=SYSTEM)
        assert total == len(found)
        return [t.id for t in found]

    assert await ids() == [t4.id, t3.id, t2.id, t1.id]  # newest first
    assert await ids(status=[Status.NEW]) == [t1.id]
    assert await ids(status=["forwarded", "closed"]) == [t4.id, t3.id]
    assert await ids(level=3) == [t2.id]
    assert await ids(domain="party") == [t2.id]
    assert await ids(topic="trees") == [t1.id]
    assert await ids(agency_id=w.ward) == [t3.id]
    assert await ids(created_by=w.agent2.id) == [t2.id]
    assert await ids(call_id=w.call_id) == [t4.id]
    assert await ids(created_from=date(2026, 11, 26), created_to=date(2026, 11, 26)) == [
        t3.id,
        t2.id,
    ]
    assert await ids(created_to=date(2026, 11, 25)) == [t1.id]
    assert await ids(created_from=date(2026, 11, 27)) == [t4.id]
    # % and _ are literal: "100%" is not "1000...", "under_score" is not "underXscore".
    assert await ids(q="100%") == [t1.id]
    assert await ids(q="under_score") == [t2.id]
    assert await ids(q="nguyễn 100") == [t1.id]
    assert await ids(q="090 111 1111") == [t1.id]
    assert await ids(q="1111") == [t1.id]
    assert await ids(q=t3.code.lower().replace("-", " ")) == [t3.id]
    assert await ids(q="lê lợi") == [t2.id]
    assert await ids(level=2, topic="flooding") == [t3.id]
    assert await ids(q="nothing like this") == []

    assert await ids(overdue=True) == []
    w.clock.set(t3.deadline_at + timedelta(minutes=1))
    assert await ids(overdue=True) == [t3.id]
    assert await ids(overdue=False) == [t4.id, t2.id, t1.id]

    page, total = await w.q.search(TicketFilter(), actor=SYSTEM, page=2, per_page=3)
    assert total == 4 and [t.id for t in page] == [t1.id]


async def test_search_ignores_accents_and_case_both_ways(w: World):
    """Names, addresses and reports typed with accents are found without, and the other way."""
    canh = await make(
        w,
        2,
        citizen_name="Nguyễn Hữu Cảnh",
        citizen_address="Đường Điện Biên Phủ, Bình Thạnh",
        description="Cây đổ chắn ngang đường",
    )
    w.clock.advance(timedelta(minutes=1))
    # an SMS typed without accents, in capitals, with a line break
    sms = await make(
        w,
        2,
        channel="sms",
        citizen_name="NGUYEN HUU CANH",
        citizen_address="duong Dien Bien Phu",
        description="Ngap nuoc\n  tai hem 12",
    )
    w.clock.advance(timedelta(minutes=1))
    other = await make(w, 2, citizen_name="Trần Văn Đức", description="Đèn đường hỏng")

    async def ids(q: str) -> list[int]:
        found, total = await w.q.search(TicketFilter(q=q), actor=SYSTEM)
        assert total == len(found)
        return [t.id for t in found]

    both = [sms.id, canh.id]  # newest first
    for q in (
        "nguyen huu canh",
        "NGUYEN HUU CANH",
        "Nguyễn Hữu Cảnh",
        unicodedata.normalize("NFD", "nguyễn hữu cảnh"),
        "huu canh",
        "điện biên phủ",
        "DIEN BIEN",
    ):
        assert await ids(q) == both, q
    assert await ids("Đường") == [other.id, sms.id, canh.id]  # in an address, a report
    assert await ids("duong") == [other.id, sms.id, canh.id]
    assert await ids("Đức") == [other.id]
    assert await ids("duc") == [other.id]
    assert await ids("ngập nước tại hẻm") == [sms.id]  # the line break is a space
    assert await ids("cay do") == [canh.id]
    # one column at a time: the end of a name and the start of an address are not a phrase
    assert await ids("canh duong") == []

    # an edit is searchable at once, the old text no longer
    edited = await w.svc.update(
        w.supervisor, other.id, other.version, {"citizen_name": "Lê Thị Hồng"}
    )
    assert edited.version == other.version + 1
    assert await ids("le thi hong") == [other.id]
    assert await ids("tran van duc") == []
    assert await ids("den duong hong") == [other.id]  # the report did not change


async def test_a_code_with_a_wrong_check_symbol_is_said_to_be_invalid(w: World):
    t = await make(w, 2, description="Khu phố 3 K7M mất điện")
    raw = t.code.replace("-", "")
    wrong = next(raw[:6] + c for c in ALPHABET if c != raw[6])
    shown = f"{wrong[:3]}-{wrong[3:]}"
    for typed in (shown, shown.lower(), wrong, f"{wrong[:3]} {wrong[3:]}".lower()):
        with pytest.raises(InvalidInput) as refused:
            await w.q.search(TicketFilter(q=typed), actor=SYSTEM)
        [error] = refused.value.errors
        assert (error.field, error.message, error.params) == ("q", CODE_CHECK, {"code": shown})
    # the right code, however typed, finds its ticket; words and numbers stay searches
    for typed in (t.code, raw.lower(), f"{raw[:3]} {raw[3:]}".lower()):
        assert [x.id for x in (await w.q.search(TicketFilter(q=typed), actor=SYSTEM))[0]] == [t.id]
    for text in ("khu pho", "K7M", "0901234", "2345678", "members", "anh tran"):
        await w.q.search(TicketFilter(q=text), actor=SYSTEM)  # not refused


async def test_for_phone_lists_the_callers_earlier_tickets(w: World):
    first = await make(w, 2, citizen_phone="0909000111")
    w.clock.advance(timedelta(hours=1))
    # From the live call: no number typed, the caller's is taken.
    second = await w.svc.create(w.agent, form(1, citizen_phone=None), call_id=w.call_id)
    assert second.citizen_phone == "0909000111" and second.call_id == w.call_id
    await make(w, 2, citizen_phone="0909000222")
    w.clock.advance(timedelta(hours=1))
    # A withheld number stays unknown (SMS: the call's number is not used either).
    sms = await w.svc.create(w.agent, form(2, channel="sms", citizen_phone=""), call_id=w.call_id)
    assert sms.citizen_phone is None
    assert [t.id for t in await w.q.for_phone("0909 000 111", actor=SYSTEM)] == [
        second.id,
        first.id,
    ]
    assert [t.id for t in await w.q.for_phone("0909000111", actor=SYSTEM, limit=1)] == [second.id]
    assert await w.q.for_phone(None, actor=SYSTEM) == []
    assert await w.q.for_phone("anonymous", actor=SYSTEM) == []


async def test_a_second_ticket_on_a_call_is_refused_unless_confirmed(w: World):
    first = await w.svc.create(w.agent, form(1), call_id=w.call_id, first_for_call=True)
    with pytest.raises(InvalidInput) as e:
        await w.svc.create(w.agent, form(2), call_id=w.call_id, first_for_call=True)
    (err,) = e.value.errors
    assert (err.field, err.message) == ("call_id", SECOND_FOR_CALL)
    assert err.params == {"code": first.code}
    assert [t.id for t in (await w.q.search(TicketFilter(call_id=w.call_id), actor=SYSTEM))[0]] == [
        first.id
    ]
    # confirmed (the form's box ticked), or a caller that does not ask: made
    second = await w.svc.create(w.agent, form(2), call_id=w.call_id)
    assert second.call_id == w.call_id and second.code != first.code


async def test_inbox_has_the_agencys_tickets_and_escalated_ones_of_its_wards(w: World):
    mine = await make(w, 2, agency_id=w.district)
    ward_t = await make(w, 2, agency_id=w.ward)
    other = await make(w, 2, agency_id=w.dept)
    done = await make(w, 2, agency_id=w.district)
    await w.svc.answer(w.district_officer, done.id, 1, "Xong")
    await w.svc.close(w.supervisor, done.id, 2)

    assert [t.id for t in await w.q.inbox(w.district_officer)] == [mine.id]
    assert {t.id for t in await w.q.inbox(w.district_officer, include_closed=True)} == {
        mine.id,
        done.id,
    }
    assert [t.id for t in await w.q.inbox(w.ward_officer)] == [ward_t.id]
    assert not await w.q.can_see(w.district_officer, ward_t)
    assert not await w.q.can_see(w.dept_officer, mine)

    await w.svc.escalate_overdue(T0 + timedelta(hours=HOURS[2], seconds=1))
    ward_t = await w.q.get(ward_t.id)
    inbox = [t.id for t in await w.q.inbox(w.district_officer)]
    assert sorted(inbox) == sorted([mine.id, ward_t.id])
    assert await w.q.can_see(w.district_officer, ward_t)
    assert not await w.q.can_see(w.dept_officer, ward_t)
    assert other.id not in inbox
    # The parent follows it up (a note) but does not answer for the ward.
    await w.svc.comment(w.district_officer, ward_t.id, "Đề nghị phường xử lý ngay")
    with pytest.raises(Forbidden):
        await w.svc.answer(w.district_officer, ward_t.id, 1, "x")
    # The dept officer's inbox is untouched by any of this; staff see everything.
    assert [t.id for t in await w.q.inbox(w.dept_officer)] == [other.id]
    for staff in (w.agent, w.supervisor, w.admin):
        assert await w.q.can_see(staff, ward_t)


async def test_the_inbox_and_can_see_apply_the_same_rule(w: World, monkeypatch):
    """Every officer's inbox holds exactly the open tickets they may open, escalated or not;
    a ticket only pre-filled with an agency (a meeting, a level 3 awaiting approval) is in
    nobody's.  Staff may see any ticket without a database query."""
    tickets = [
        await make(w, 2, agency_id=w.ward),
        await make(w, 2, agency_id=w.district),
        await make(w, 3, agency_id=w.ward),  # pending approval: not sent yet
        await make(w, 4, agency_id=w.ward),  # a meeting, its deadline running
        await make(w, 2),
    ]
    officers = (w.ward_officer, w.district_officer, w.dept_officer)
    for moment in (T0, T0 + timedelta(hours=HOURS[4], seconds=1)):
        await w.svc.escalate_overdue(moment)
        for officer in officers:
            inbox = {t.id for t in await w.q.inbox(officer)}
            seen = {t.id for t in tickets if await w.q.can_see(officer, await w.q.get(t.id))}
            assert inbox == seen, officer.name
    assert {t.id for t in await w.q.inbox(w.district_officer)} == {tickets[0].id, tickets[1].id}

    def no_session():
        raise AssertionError("a session opened for staff")

    monkeypatch.setattr(w.db, "session", no_session)
    for staff in (w.agent, w.supervisor, w.admin):
        assert await w.q.can_see(staff, tickets[3])


async def test_a_code_collision_is_retried(w: World, monkeypatch):
    first = await make(w, 2)
    fresh = new_code()
    codes = iter([first.code, first.code, fresh])
    svc = TicketService(w.db, w.svc.settings, w.clock, code_factory=lambda: next(codes))
    t = await svc.create(w.agent, form(2))
    assert t.code == fresh

    # The race: the code was free when looked up, taken by the time of the insert.
    lookups = iter([first.code, new_code()])

    async def racing_lookup(self, s, column, factory):
        return next(lookups) if column is Ticket.code else factory()

    monkeypatch.setattr(TicketService, "_free", racing_lookup)
    t = await w.svc.create(w.agent, form(2))
    assert t.code != first.code and await count_tickets(w) == 3


# -- ticket numbers -------------------------------------------------------------------


def _wrong_check(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


async def test_every_ticket_gets_a_number_found_with_or_without_separators(w: World):
    t = await make(w, 2)
    assert len(t.number) == 10 and t.number.isdigit() and t.number[0] != "0"
    shown = format_number(t.number)
    for typed in (t.number, shown, shown.replace(" ", "-"), f" {shown} "):
        assert (await w.q.get_by_code(typed)).id == t.id, typed
        found, total = await w.q.search(TicketFilter(q=typed), actor=SYSTEM)
        assert [x.id for x in found] == [t.id] and total == 1, typed
    # a valid number nobody has: not found, like a code
    free = next(n for n in iter(new_number, None) if n != t.number)
    with pytest.raises(TicketNotFound):
        await w.q.get_by_code(free)


async def test_a_number_with_a_wrong_check_digit_is_refused_not_looked_up(w: World, monkeypatch):
    t = await make(w, 2)
    wrong = _wrong_check(t.number)
    monkeypatch.setattr(w.db, "session", lambda: pytest.fail("looked up"))
    for field, call in (
        ("code", lambda text: w.q.get_by_code(text)),
        ("q", lambda text: w.q.search(TicketFilter(q=text), actor=SYSTEM)),
    ):
        for typed in (wrong, format_number(wrong)):
            with pytest.raises(InvalidInput) as e:
                await call(typed)
            (error,) = e.value.errors
            assert (error.field, error.message) == (field, NUMBER_CHECK)
            assert error.params == {"number": format_number(wrong)}
            assert "please key it again" in NUMBER_CHECK


async def test_numbers_are_unique(w: World):
    first, second = await make(w, 2), await make(w, 2)
    async with w.db.session() as s:
        other = await s.get(Ticket, second.id)
        assert other is not None
        other.number = first.number
        with pytest.raises(IntegrityError):
            await s.flush()
        await s.rollback()
    # a drawn number that is taken is drawn again
    fresh = new_number()
    numbers = iter([first.number, fresh])
    svc = TicketService(w.db, w.svc.settings, w.clock, number_factory=lambda: next(numbers))
    assert (await svc.create(w.agent, form(2))).number == fresh


async def test_concurrent_creation_gives_distinct_numbers(w: World, monkeypatch):
    # Several writers draw the same number at once: one insert wins, the others retry.
    first = new_number()
    drawn: dict[int, int] = {}

    def racing_number() -> str:
        task = id(asyncio.current_task())
        drawn[task] = drawn.get(task, 0) + 1
        return first if drawn[task] == 1 else new_number()

    svc = TicketService(w.db, w.svc.settings, w.clock, number_factory=racing_number)
    made = await asyncio.gather(*(svc.create(w.agent, form(2)) for _ in range(6)))
    numbers = [t.number for t in made]
    assert len(set(numbers)) == 6 and first in numbers
    assert len({t.code for t in made}) == 6 and await count_tickets(w) == 6


# -- the agency directory -----------------------------------------------------------


async def test_agency_directory(w: World):
    a = w.agencies
    p = await a.create(
        w.admin,
        {"parent_id": w.district, "kind": "ward", "code": "Q1-P-Da-Kao", "name": "Phường Đa Kao"},
    )
    assert p.code == "q1-p-da-kao" and p.parent_id == w.district and p.version == 1 and p.active
    with pytest.raises(InvalidInput) as e:
        await a.create(w.admin, {"kind": "ward", "code": "q1-p-da-kao", "name": "Trùng"})
    assert (e.value.errors[0].field, e.value.errors[0].message) == ("code", TAKEN)
    with pytest.raises(InvalidInput) as e:
        await a.create(w.admin, {"kind": "ward", "code": "x-1", "name": "X", "parent_id": 9999})
    assert (e.value.errors[0].field, e.value.errors[0].message) == ("parent_id", UNKNOWN)
    with pytest.raises(InvalidInput) as e:
        await a.create(
            w.admin, {"kind": "ward", "code": "x-2", "name": "X", "parent_id": w.retired}
        )
    assert e.value.errors[0].message == INACTIVE

    # No agency under itself or under one of its own descendants.
    for agency_id, parent in [(w.district, p.id), (w.district, w.ward), (w.ward, w.ward)]:
        current = await a.get(agency_id)
        with pytest.raises(InvalidInput) as e:
            await a.update(w.admin, agency_id, current.version, {"parent_id": parent})
        assert (e.value.errors[0].field, e.value.errors[0].message) == ("parent_id", CYCLE)
    with pytest.raises(InvalidInput) as e:
        await a.update(w.admin, p.id, 1, {"code": "q1"})
    assert e.value.errors[0].message == TAKEN

    # Moving the ward under the department is fine; a stale version is not.
    p = await a.update(w.admin, p.id, 1, {"parent_id": w.dept, "email": "pdk@hcmc.gov.vn"})
    assert p.parent_id == w.dept and p.email == "pdk@hcmc.gov.vn" and p.version == 2
    with pytest.raises(VersionConflict) as e2:
        await a.update(w.admin, p.id, 1, {"name": "Cũ"})
    assert (e2.value.agency_id, e2.value.expected, e2.value.actual) == (p.id, 1, 2)
    assert (await a.update(w.admin, p.id, 2, {"name": "Phường Đa Kao"})).version == 2

    assert [x.code for x in await a.list()] == ["so-gtvt", "q1", "q1-p-ben-nghe", "q1-p-da-kao"]
    tree = await a.tree()
    assert [(n.agency.code, [c.agency.code for c in n.children]) for n in tree] == [
        ("so-gtvt", ["q1-p-da-kao"]),
        ("q1", ["q1-p-ben-nghe"]),
    ]
    p = await a.deactivate(w.admin, p.id, 2)
    assert not p.active and p.version == 3
    assert "q1-p-da-kao" not in [x.code for x in await a.list()]
    assert "old-unit" in [x.code for x in await a.list(include_inactive=True)]
    with pytest.raises(InvalidInput) as e:
        await w.svc.create(w.agent, form(2, agency_id=p.id))
    assert e.value.errors[0].message == INACTIVE
    p = await a.reactivate(w.admin, p.id, 3)
    assert p.active and (await w.svc.create(w.agent, form(2, agency_id=p.id))).agency_id == p.id
    # The admin page switches the flag without a version: nobody's edit is at stake.
    p = await a.deactivate(w.admin, p.id)
    assert not p.active and p.version == 5
    assert (await a.deactivate(w.admin, p.id)).version == 5  # twice changes nothing
    with pytest.raises(AgencyNotFound):
        await a.get(9999)


async def test_history_json_is_valid_and_ordered(w: World):
    t = await make(w, 2, agency_id=w.ward)
    for i in range(3):
        w.clock.advance(timedelta(seconds=1))
        await w.svc.comment(w.agent, t.id, f"ghi chú {i}")
    events = await w.q.history(t.id)
    assert [json.loads(e.details).get("note") for e in events] == [
        None,
        "ghi chú 0",
        "ghi chú 1",
        "ghi chú 2",
    ]
    assert all(e.at.tzinfo is not None for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)

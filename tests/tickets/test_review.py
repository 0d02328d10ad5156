"""The supervisors' review on real SQLite and PostgreSQL: an answer refused, deadline
extensions asked for, granted and refused, concurrent writers, the per-agency counts of
the report, and files attached by staff and officers."""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from queue_stats.reports import agency_timeliness

# the fixture "w" (the tickets' world) is shared with the workflow's tests: pytest finds it
# by its name here, which ruff takes for a redefinition in every test's arguments
from tests.tickets.test_tickets_service import T0, World, _in_state, make, w  # noqa: F401
from tickets.attachments import FILE_TOO_MANY, NewAttachment, path_of
from tickets.exceptions import (
    NOT_LATER,
    REQUIRED,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    VersionConflict,
)
from tickets.models import ResultCall, Status, Ticket
from tickets.queries import TicketFilter
from tickets.review.models import AnswerRefusal, DeadlineExtension, ExtensionState
from tickets.review.service import ReviewService
from tickets.service import TicketService, event_details
from tickets.workflow import available

HOURS_2 = 72  # the default level-2 deadline


def review(w: World) -> ReviewService:
    return ReviewService(w.svc, w.db, w.svc.settings, w.clock)


async def answered(w: World, result: str = "Đã nạo vét cống") -> Ticket:
    t = await make(w, 2, agency_id=w.ward)
    t = await w.svc.accept(w.ward_officer, t.id, t.version)
    return await w.svc.answer(w.ward_officer, t.id, t.version, result)


# -- refusing an answer ------------------------------------------------------------


async def test_a_refused_answer_goes_back_to_the_agency_and_is_kept(w: World):
    r = review(w)
    t = await answered(w)
    assert "refuse_answer" in available(w.supervisor, t)
    assert "refuse_answer" not in available(w.agent, t)
    w.clock.advance(timedelta(hours=1))
    t = await r.refuse_answer(w.supervisor, t.id, t.version, "  Chưa nêu thời gian hoàn thành ")
    assert t.status == Status.ACCEPTED and t.result is None and t.agency_id == w.ward
    assert t.deadline_at == T0 + timedelta(hours=HOURS_2), "the deadline does not move"
    last = (await w.q.history(t.id))[-1]
    assert (last.action, last.from_status, last.to_status) == (
        "answer_refused",
        "answered",
        "accepted",
    )
    assert event_details(last) == {
        "answer": "Đã nạo vét cống",
        "reason": "Chưa nêu thời gian hoàn thành",
        "agency": w.ward,
    }
    [row] = await r.refusals(t.id)
    assert (row.agency_id, row.answer, row.reason, row.refused_by) == (
        w.ward,
        "Đã nạo vét cống",
        "Chưa nêu thời gian hoàn thành",
        w.supervisor.id,
    )
    # the officer answers again; the admin may refuse that one too
    assert "answer" in available(w.ward_officer, t)
    t = await w.svc.answer(w.ward_officer, t.id, t.version, "Đã nạo vét xong ngày 26/11")
    t = await r.refuse_answer(w.admin, t.id, t.version, "Thiếu ảnh")
    assert len(await r.refusals(t.id)) == 2


@pytest.mark.parametrize(
    "state", ["new", "forwarded", "accepted", "returned", "closed", "meeting_scheduled"]
)
async def test_refusing_an_answer_is_refused_elsewhere(w: World, state: str):
    t = await _in_state(w, state)
    with pytest.raises(InvalidTransition):
        await review(w).refuse_answer(w.supervisor, t.id, t.version, "Chưa đạt")
    assert (await w.q.get(t.id)).version == t.version


async def test_refusing_needs_a_reason_and_a_supervisor(w: World):
    r = review(w)
    t = await answered(w)
    with pytest.raises(InvalidInput) as e:
        await r.refuse_answer(w.supervisor, t.id, t.version, "   ")
    assert [(f.field, f.message) for f in e.value.errors] == [("reason", REQUIRED)]
    for who in (w.agent, w.ward_officer, w.district_officer):
        with pytest.raises(Forbidden):
            await r.refuse_answer(who, t.id, t.version, "Chưa đạt")
    with pytest.raises(VersionConflict):
        await r.refuse_answer(w.supervisor, t.id, t.version - 1, "Chưa đạt")
    assert (await w.q.get(t.id)).status == Status.ANSWERED


async def test_the_result_call_of_a_refused_answer_is_taken_back(w: World):
    settings = w.svc.settings.model_copy(
        update={"result_calls": w.svc.settings.result_calls.model_copy(update={"enabled": True})}
    )
    svc = TicketService(w.db, settings, w.clock)
    r = ReviewService(svc, w.db, settings, w.clock)
    t = await svc.create(w.agent, {**_form(w), "agency_id": w.ward})
    t = await svc.answer(w.ward_officer, t.id, t.version, "Xong")
    async with w.db.session() as s:
        assert len((await s.scalars(select(ResultCall))).all()) == 1
    t = await r.refuse_answer(w.supervisor, t.id, t.version, "Chưa đạt")
    async with w.db.session() as s:
        assert (await s.scalars(select(ResultCall))).all() == [], "never tried: gone"
    t = await svc.answer(w.ward_officer, t.id, t.version, "Đã xử lý xong")
    async with w.db.session() as s:
        [call] = (await s.scalars(select(ResultCall))).all()
    assert call.state == "pending" and call.ticket_id == t.id, "the new answer has its call"


def _form(w: World) -> dict:
    return {
        "channel": "phone",
        "domain": "state",
        "topic": "flooding",
        "level": 2,
        "description": "Cống nghẹt",
        "citizen_phone": "0901234567",
    }


# -- extensions --------------------------------------------------------------------


async def test_an_extension_asked_and_granted_moves_the_deadline(w: World):
    r = review(w)
    t = await make(w, 2, agency_id=w.ward)
    old = t.deadline_at
    assert old is not None
    until = old + timedelta(days=3)
    assert "request_extension" in available(w.ward_officer, t)
    assert "grant_extension" not in available(w.supervisor, t)
    t = await r.request_extension(w.ward_officer, t.id, t.version, until, "Chờ vật tư")
    assert t.extension_until == until and t.deadline_at == old
    # the supervisors' list of requests to decide
    other = await make(w, 2, agency_id=w.ward)
    listed, n = await w.q.search(TicketFilter(extension_open=True), actor=w.supervisor)
    assert [x.id for x in listed] == [t.id] and n == 1
    listed, _n = await w.q.search(TicketFilter(extension_open=False), actor=w.supervisor)
    assert other.id in [x.id for x in listed] and t.id not in [x.id for x in listed]
    assert "request_extension" not in available(w.ward_officer, t), "one at a time"
    assert {"grant_extension", "refuse_extension"} <= set(available(w.supervisor, t))
    with pytest.raises(InvalidTransition):
        await r.request_extension(w.ward_officer, t.id, t.version, until, "Lần nữa")
    w.clock.advance(timedelta(hours=2))
    t = await r.grant_extension(w.supervisor, t.id, t.version, "Đồng ý")
    assert t.deadline_at == until and t.extension_until is None
    [row] = await r.extensions(t.id)
    assert (row.state, row.old_deadline, row.proposed_deadline) == ("granted", old, until)
    assert row.decided_by == w.supervisor.id and row.decided_at == T0 + timedelta(hours=2)
    lines = [e for e in await w.q.history(t.id) if e.action.startswith("extension")]
    assert [e.action for e in lines] == ["extension_requested", "extension_granted"]
    assert event_details(lines[1])["deadline"] == [old.isoformat(), until.isoformat()]
    # past the old deadline, not the new one: nothing escalates
    early = await w.svc.escalate_overdue(old + timedelta(hours=1))
    assert [x.id for x in early] == [other.id], "the other ticket's deadline did not move"
    assert [x.id for x in await w.svc.escalate_overdue(until + timedelta(minutes=1))] == [t.id]
    # a second request may follow the decision
    assert "request_extension" in available(w.ward_officer, await w.q.get(t.id))


async def test_an_extension_refused_keeps_the_deadline(w: World):
    r = review(w)
    t = await _in_state(w, "accepted")
    old = t.deadline_at
    assert old is not None
    t = await r.request_extension(
        w.ward_officer, t.id, t.version, old + timedelta(days=1), "Thiếu người"
    )
    with pytest.raises(InvalidInput) as e:
        await r.refuse_extension(w.supervisor, t.id, t.version, "")
    assert e.value.fields() == ["reason"]
    t = await r.refuse_extension(w.supervisor, t.id, t.version, "Việc gấp, không gia hạn")
    assert t.deadline_at == old and t.extension_until is None and t.status == Status.ACCEPTED
    [row] = await r.extensions(t.id)
    assert (row.state, row.decision_note) == ("refused", "Việc gấp, không gia hạn")


async def test_extension_input_and_who_may_ask(w: World):
    r = review(w)
    t = await make(w, 2, agency_id=w.ward)
    assert t.deadline_at is not None
    with pytest.raises(InvalidInput) as e:
        await r.request_extension(w.ward_officer, t.id, t.version, t.deadline_at, "Chờ")
    assert [(f.field, f.message) for f in e.value.errors] == [("until", NOT_LATER)]
    with pytest.raises(InvalidInput) as e:
        await r.request_extension(w.ward_officer, t.id, t.version, None, "Chờ")
    assert e.value.fields() == ["until"]
    with pytest.raises(InvalidInput) as e:
        await r.request_extension(
            w.ward_officer, t.id, t.version, t.deadline_at.replace(tzinfo=None), "Chờ"
        )
    assert e.value.fields() == ["until"]
    later = t.deadline_at + timedelta(days=1)
    for who in (w.dept_officer, w.district_officer, w.agent, w.supervisor):
        with pytest.raises(Forbidden):
            await r.request_extension(who, t.id, t.version, later, "Chờ")
    with pytest.raises(Forbidden):
        await r.grant_extension(w.ward_officer, t.id, t.version)
    # nothing open: nothing to decide
    with pytest.raises(InvalidTransition):
        await r.grant_extension(w.supervisor, t.id, t.version)
    assert (await w.q.get(t.id)).version == t.version


async def test_answering_withdraws_an_open_request(w: World):
    r = review(w)
    t = await make(w, 2, agency_id=w.ward)
    assert t.deadline_at is not None
    t = await r.request_extension(
        w.ward_officer, t.id, t.version, t.deadline_at + timedelta(days=1), "Chờ"
    )
    t = await w.svc.answer(w.ward_officer, t.id, t.version, "Xong sớm")
    assert t.extension_until is None
    [row] = await r.extensions(t.id)
    assert row.state == ExtensionState.WITHDRAWN
    # refused back to the agency: no request is open, a new one may be asked
    t = await r.refuse_answer(w.supervisor, t.id, t.version, "Chưa đạt")
    assert "request_extension" in available(w.ward_officer, t)


# -- concurrent writers --------------------------------------------------------------


async def _both_read(monkeypatch, *calls):
    """Run the writers so that both read the ticket before either writes."""
    both_read = asyncio.Barrier(len(calls))
    load = TicketService._load

    async def load_and_wait(self, s, ticket_id):
        ticket = await load(self, s, ticket_id)
        await asyncio.wait_for(both_read.wait(), 10)
        return ticket

    monkeypatch.setattr(TicketService, "_load", load_and_wait)
    try:
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        monkeypatch.undo()


async def test_refusing_while_the_agent_closes_exactly_one_wins(w: World, monkeypatch):
    r = review(w)
    t = await answered(w)
    results = await _both_read(
        monkeypatch,
        r.refuse_answer(w.supervisor, t.id, t.version, "Chưa đạt"),
        w.svc.close(w.agent, t.id, t.version),
    )
    assert sorted(type(x).__name__ for x in results) == ["Ticket", "VersionConflict"], results
    winner = next(x for x in results if isinstance(x, Ticket))
    final = await w.q.get(t.id)
    assert final.status == winner.status and final.version == t.version + 1
    async with w.db.session() as s:
        refusals = (await s.scalars(select(AnswerRefusal))).all()
    # the loser's refusal row went with its transaction
    assert len(refusals) == (1 if final.status == Status.ACCEPTED else 0)


async def test_an_officer_answering_while_an_extension_is_granted(w: World, monkeypatch):
    r = review(w)
    t = await _in_state(w, "accepted")
    assert t.deadline_at is not None
    t = await r.request_extension(
        w.ward_officer, t.id, t.version, t.deadline_at + timedelta(days=2), "Chờ"
    )
    results = await _both_read(
        monkeypatch,
        w.svc.answer(w.ward_officer, t.id, t.version, "Đã xử lý"),
        r.grant_extension(w.supervisor, t.id, t.version),
    )
    assert sorted(type(x).__name__ for x in results) == ["Ticket", "VersionConflict"], results
    final = await w.q.get(t.id)
    [row] = await r.extensions(t.id)
    if final.status == Status.ANSWERED:
        assert row.state == "withdrawn" and final.deadline_at == t.deadline_at
    else:
        assert row.state == "granted" and final.deadline_at == t.extension_until
    assert final.extension_until is None


async def test_two_requests_at_once_leave_one_open(w: World, monkeypatch):
    r = review(w)
    t = await make(w, 2, agency_id=w.ward)
    assert t.deadline_at is not None
    results = await _both_read(
        monkeypatch,
        r.request_extension(w.ward_officer, t.id, t.version, t.deadline_at + timedelta(1), "A"),
        r.request_extension(w.ward_officer, t.id, t.version, t.deadline_at + timedelta(2), "B"),
    )
    assert sorted(type(x).__name__ for x in results) == ["Ticket", "VersionConflict"], results
    async with w.db.session() as s:
        rows = (await s.scalars(select(DeadlineExtension))).all()
    assert [x.state for x in rows] == ["open"]


# -- the report's counts ---------------------------------------------------------------


async def test_the_timeliness_report_counts_refusals_and_extensions(w: World):
    r = review(w)
    t = await answered(w)
    await r.refuse_answer(w.supervisor, t.id, t.version, "Chưa đạt")
    u = await make(w, 2, agency_id=w.ward)
    assert u.deadline_at is not None
    u = await r.request_extension(
        w.ward_officer, u.id, u.version, u.deadline_at + timedelta(1), "A"
    )
    u = await r.grant_extension(w.supervisor, u.id, u.version)
    assert u.deadline_at is not None
    u = await r.request_extension(
        w.ward_officer, u.id, u.version, u.deadline_at + timedelta(1), "B"
    )
    await r.refuse_extension(w.supervisor, u.id, u.version, "Không")
    v = await make(w, 2, agency_id=w.dept)
    rows = await agency_timeliness(w.db, T0, T0 + timedelta(days=1), T0 + timedelta(hours=1))
    by = {a.agency_id: a for a in rows}
    ward, dept = by[w.ward], by[w.dept]
    assert (ward.forwarded, ward.sent_back, ward.extensions_asked, ward.extensions_granted) == (
        2,
        1,
        2,
        1,
    )
    assert (dept.sent_back, dept.extensions_asked, dept.extensions_granted) == (0, 0, 0)
    # the refused answer is no answer: nothing answered on time, both still pending
    assert (ward.on_time, ward.late, ward.pending) == (0, 0, 2)
    assert v.agency_id == w.dept
    # a refusal in another period is not counted in this one
    later = await agency_timeliness(
        w.db, T0 + timedelta(days=1), T0 + timedelta(days=2), T0 + timedelta(days=1)
    )
    assert all(a.sent_back == 0 for a in later)


# -- attachments --------------------------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def _file(name: str, data: bytes = PNG) -> NewAttachment:
    return NewAttachment(kind="photo", content_type="image/png", data=data, original_name=name)


async def test_staff_and_officers_attach_files_to_tickets_they_see(w: World):
    r = review(w)
    t = await make(w, 2, agency_id=w.ward)
    [a] = await r.attach(w.ward_officer, t.id, [_file("hien-truong.png")])
    w.clock.advance(timedelta(minutes=1))
    [b] = await r.attach(w.agent, t.id, [_file("anh.png")])
    files = await w.q.attachments(t.id)
    assert [(f.id, f.added_by, f.added_by_name) for f in files] == [
        (a.id, w.ward_officer.id, "ward_officer"),
        (b.id, w.agent.id, "agent"),
    ]
    assert path_of(w.svc.settings, a.id).read_bytes() == PNG
    assert (await w.q.get(t.id)).version == t.version, "attaching does not stale a form"
    last = (await w.q.history(t.id))[-1]
    assert last.action == "attached" and event_details(last) == {"files": "anh.png"}
    with pytest.raises(Forbidden):
        await r.attach(w.dept_officer, t.id, [_file("x.png")])
    with pytest.raises(InvalidInput) as e:
        await r.attach(w.agent, t.id, [])
    assert e.value.fields() == ["attachment"]


async def test_attachments_per_ticket_are_limited(w: World):
    settings = w.svc.settings.model_copy(
        update={"tickets": w.svc.settings.tickets.model_copy(update={"attachments_per_ticket": 2})}
    )
    r = ReviewService(w.svc, w.db, settings, w.clock)
    t = await make(w, 2)
    await r.attach(w.agent, t.id, [_file("1.png"), _file("2.png")])
    with pytest.raises(InvalidInput) as e:
        await r.attach(w.agent, t.id, [_file("3.png")])
    assert [(f.field, f.message, f.params) for f in e.value.errors] == [
        ("attachment", FILE_TOO_MANY, {"max": 2})
    ]
    assert len(await w.q.attachments(t.id)) == 2

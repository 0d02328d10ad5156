"""Repeat reports on real SQLite and PostgreSQL: suggestions (folded words, phone, topic,
district, the window), linking and unlinking with their rules, groups merged, concurrent
linking, the level-3 flag, and the group's result reaching every citizen in it."""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.tickets.test_result_calls import enabled
from tests.tickets.test_tickets_service import World, make, w  # noqa: F401
from tickets import repeats as repeats_module
from tickets.exceptions import (
    IN_GROUP,
    NOT_LINKED,
    SAME_TICKET,
    UNKNOWN,
    Forbidden,
    InvalidInput,
    VersionConflict,
)
from tickets.models import ResultCall, Status, Ticket, TicketTerm
from tickets.queries import TicketFilter
from tickets.repeats import Draft, RepeatService
from tickets.service import TicketService, event_details
from tickets.terms import terms

FLOOD = "Ngập nước sâu trên đường Nguyễn Hữu Cảnh, xe máy chết máy hàng loạt"
TREE = "Cây đổ chắn ngang đường Lê Lợi trước chợ Bến Thành"
LAMP = "Đèn đường hỏng cả tuần ở hẻm 42 Trần Hưng Đạo"


def service(w: World, **tickets: object) -> RepeatService:
    settings = w.svc.settings
    if tickets:
        t = settings.tickets.model_copy(update=tickets)
        settings = settings.model_copy(update={"tickets": t})
    return RepeatService(w.db, settings, w.clock, w.svc)


async def history(w: World, ticket_id: int) -> list[tuple[str, dict]]:
    return [(e.action, event_details(e)) for e in await w.q.history(ticket_id)]


# -- the terms: pure ---------------------------------------------------------------
def test_terms_are_the_same_with_or_without_diacritics():
    assert terms(FLOOD) == terms(
        "ngap nuoc sau tren duong nguyen huu canh, xe may chet may hang loat"
    )
    assert terms("Đường  Lê Lợi") == terms("DUONG le loi") == ["duong le", "le loi"]
    # function words never make a term; one word alone is its own term
    assert terms("bị ở và của") == []
    assert terms("Ngập") == ["ngap"]
    # the address is indexed after the report
    assert terms("Ngập nước", "12 Lê Lợi") == ["ngap nuoc", "12 le", "le loi"]


# -- suggestions ---------------------------------------------------------------------
async def test_a_report_typed_without_diacritics_finds_the_earlier_one(w: World):
    flood = await make(w, 2, description=FLOOD, citizen_phone="0901000001", district="q-bt")
    await make(w, 2, description=TREE, topic="trees", citizen_phone="0901000002")
    await make(w, 2, description=LAMP, topic="electricity", citizen_phone="0901000003")
    rs = service(w)
    found = await rs.suggest(
        w.agent,
        Draft(
            description="ngap nuoc duong nguyen huu canh",
            citizen_phone="0988 777 666",
            topic="flooding",
            district="q-bt",
        ),
    )
    assert [s.ticket.id for s in found] == [flood.id]
    assert found[0].reasons == ("text", "topic", "district") and found[0].reports == 1
    # a few unrelated words find nothing
    assert await rs.suggest(w.agent, Draft(description="hỏi thủ tục cấp hộ chiếu")) == []


async def test_the_same_phone_is_suggested_whatever_the_words(w: World):
    first = await make(w, 2, description=TREE, topic="trees", citizen_phone="0909123456")
    w.clock.advance(timedelta(minutes=5))
    second = await make(w, 2, description=LAMP, topic="electricity", citizen_phone="0909123456")
    found = await service(w).suggest(w.agent, Draft(citizen_phone="+84 909 123 456"))
    assert [s.ticket.id for s in found] == [second.id, first.id]
    assert all(s.reasons == ("phone",) for s in found)


async def test_only_reports_of_the_window_are_suggested(w: World):
    await make(w, 2, description=FLOOD)
    w.clock.advance(timedelta(days=181))
    rs = service(w)
    assert await rs.suggest(w.agent, Draft(description=FLOOD)) == []
    assert (
        len(await service(w, repeat_window_days=200).suggest(w.agent, Draft(description=FLOOD)))
        == 1
    )


async def test_an_edited_report_is_found_by_its_new_words(w: World):
    t = await make(w, 2, description=TREE, topic="trees")
    rs = service(w)
    assert len(await rs.suggest(w.agent, Draft(description=TREE))) == 1
    await w.svc.update(w.supervisor, t.id, 1, {"description": LAMP})
    assert await rs.suggest(w.agent, Draft(description=TREE)) == []
    assert [s.ticket.id for s in await rs.suggest(w.agent, Draft(description=LAMP))] == [t.id]
    async with w.db.session() as s:
        stored = set(
            (await s.scalars(select(TicketTerm.term).where(TicketTerm.ticket_id == t.id))).all()
        )
    assert stored == set(terms(LAMP, t.citizen_address))


async def test_a_group_is_suggested_once_by_its_first_report(w: World):
    lead = await make(w, 2, description=FLOOD)
    member = await make(w, 2, description=FLOOD, citizen_phone="0901000009")
    rs = service(w)
    await rs.link(w.agent, member.id, 1, lead.id)
    new = await make(w, 2, description=FLOOD, citizen_phone="0901000010")
    found = await rs.similar_to(w.agent, new)
    assert [(s.ticket.id, s.reports) for s in found] == [(lead.id, 2)]
    # a ticket's own page never suggests its own group, nor later reports
    assert await rs.similar_to(w.agent, await w.q.get(lead.id)) == []


async def test_agencies_get_no_suggestions(w: World):
    with pytest.raises(Forbidden):
        await service(w).suggest(w.ward_officer, Draft(description=FLOOD))


def read_together(monkeypatch, writers: int) -> None:  # type: ignore[no-untyped-def]
    """Make ``writers`` links read their ticket, then all go on together: the interleaving
    the locks are for.  Only each link's first read waits (a link that looks again after
    a group changed goes straight on)."""
    gate = asyncio.Barrier(writers)
    load = repeats_module.load_ticket
    seen: set[asyncio.Task] = set()  # type: ignore[type-arg]

    async def load_and_wait(s, ticket_id):  # type: ignore[no-untyped-def]
        ticket = await load(s, ticket_id)
        task = asyncio.current_task()
        if task not in seen:
            seen.add(task)  # type: ignore[arg-type]
            await asyncio.wait_for(gate.wait(), 10)
        return ticket

    monkeypatch.setattr(repeats_module, "load_ticket", load_and_wait)


# -- linking ---------------------------------------------------------------------------
async def test_link_and_unlink_keep_the_group_and_its_history(w: World):
    lead = await make(w, 2, description=FLOOD)
    a = await make(w, 2, description=FLOOD)
    b = await make(w, 2, description=FLOOD, actor=w.agent2)
    rs = service(w)
    a = await rs.link(w.agent, a.id, 1, lead.id)
    assert (a.repeat_of, a.version) == (lead.id, 2)
    # linking to a member joins its group
    b = await rs.link(w.agent2, b.id, 1, a.id)
    assert b.repeat_of == lead.id
    lead = await w.q.get(lead.id)
    # the group's ticket counts them, its version untouched (nobody's form is refused)
    assert (lead.repeats, lead.version) == (2, 1)
    assert await history(w, a.id) == [
        ("created", {"level": 2}),
        ("linked", {"repeat_of": [None, lead.code]}),
    ]
    assert [d for act, d in await history(w, lead.id) if act == "repeat_added"] == [
        {"ticket": a.code, "reports": 2},
        {"ticket": b.code, "reports": 3},
    ]
    a = await rs.unlink(w.agent, a.id, 2)
    assert (a.repeat_of, a.version) == (None, 3)
    assert (await w.q.get(lead.id)).repeats == 1
    assert (await history(w, a.id))[-1] == ("unlinked", {"repeat_of": [lead.code, None]})


async def test_what_linking_refuses(w: World):
    lead = await make(w, 2, description=FLOOD)
    mine = await make(w, 2, description=FLOOD)
    theirs = await make(w, 2, description=FLOOD, actor=w.agent2)
    rs = service(w)

    async def refused(exc, call, field=None, message=None):  # type: ignore[no-untyped-def]
        with pytest.raises(exc) as e:
            await call
        if field:
            assert [(x.field, x.message) for x in e.value.errors] == [(field, message)]

    await refused(InvalidInput, rs.link(w.agent, mine.id, 1, mine.id), "repeat_of", SAME_TICKET)
    await refused(InvalidInput, rs.link(w.agent, mine.id, 1, 10**6), "repeat_of", UNKNOWN)
    # another agent's ticket, an agency: not theirs to link
    await refused(Forbidden, rs.link(w.agent, theirs.id, 1, lead.id))
    await refused(Forbidden, rs.link(w.ward_officer, mine.id, 1, lead.id))
    await refused(VersionConflict, rs.link(w.agent, mine.id, 7, lead.id))
    await rs.link(w.agent, mine.id, 1, lead.id)
    await refused(InvalidInput, rs.link(w.agent, mine.id, 2, lead.id), "repeat_of", IN_GROUP)
    # the group's own ticket is in no group of its own to leave
    await refused(InvalidInput, rs.unlink(w.supervisor, lead.id, 1), "repeat_of", NOT_LINKED)
    await refused(InvalidInput, rs.link(w.supervisor, lead.id, 1, mine.id), "repeat_of", IN_GROUP)
    # a supervisor links anyone's
    assert (await rs.link(w.supervisor, theirs.id, 1, lead.id)).repeat_of == lead.id
    assert (await w.q.get(lead.id)).repeats == 2


async def test_a_group_linked_to_another_moves_with_its_reports(w: World):
    old = await make(w, 2, description=FLOOD)
    lead = await make(w, 2, description=FLOOD)
    member = await make(w, 2, description=FLOOD)
    rs = service(w)
    await rs.link(w.agent, member.id, 1, lead.id)
    await rs.link(w.supervisor, lead.id, 1, old.id)
    rows = {t.id: t for t in [await w.q.get(i) for i in (old.id, lead.id, member.id)]}
    assert rows[lead.id].repeat_of == old.id and rows[member.id].repeat_of == old.id
    assert (rows[old.id].repeats, rows[lead.id].repeats) == (2, 0)
    assert (await history(w, lead.id))[-1] == (
        "linked",
        {"repeat_of": [None, old.code], "moved": member.code},
    )


async def test_two_agents_linking_the_same_ticket_at_once_one_wins(w: World, monkeypatch):
    g1 = await make(w, 2, description=FLOOD)
    g2 = await make(w, 2, description=TREE, topic="trees")
    t = await make(w, 2, description=FLOOD)
    rs = service(w)
    read_together(monkeypatch, 2)
    results = await asyncio.gather(
        rs.link(w.supervisor, t.id, 1, g1.id),
        rs.link(w.admin, t.id, 1, g2.id),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert sorted(type(r).__name__ for r in results) == ["Ticket", "VersionConflict"], results
    won = next(r for r in results if isinstance(r, Ticket))
    final = await w.q.get(t.id)
    assert final.repeat_of == won.repeat_of and final.version == 2
    g1, g2 = await w.q.get(g1.id), await w.q.get(g2.id)
    assert sorted([g1.repeats, g2.repeats]) == [0, 1]
    assert [a for a, _ in await history(w, t.id)].count("linked") == 1


async def test_concurrent_links_into_one_group_are_all_counted_and_never_chained(
    w: World, monkeypatch
):
    lead = await make(w, 2, description=FLOOD)
    other = await make(w, 2, description=FLOOD)
    members = [await make(w, 2, description=FLOOD) for _ in range(3)]
    rs = service(w)
    read_together(monkeypatch, 4)
    # three reports join the group while its ticket itself joins another group
    results = await asyncio.gather(
        *(rs.link(w.supervisor, m.id, 1, lead.id) for m in members),
        rs.link(w.admin, lead.id, 1, other.id),
        return_exceptions=True,
    )
    monkeypatch.undo()
    assert all(isinstance(r, Ticket) for r in results), results
    rows = [await w.q.get(t.id) for t in (lead, other, *members)]
    # no chains: every linked ticket points at a ticket in no group
    by_id = {t.id: t for t in rows}
    assert all(by_id[t.repeat_of].repeat_of is None for t in rows if t.repeat_of)
    assert {t.repeat_of for t in rows if t.id != other.id} == {other.id}
    async with w.db.session() as s:
        linked = await s.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.repeat_of == other.id)
        )
    assert by_id[other.id].repeats == linked == 4 and by_id[lead.id].repeats == 0


# -- the level-3 flag ---------------------------------------------------------------
async def test_a_matter_reported_three_times_unanswered_is_flagged_once(w: World):
    lead = await make(w, 2, description=FLOOD)
    others = [await make(w, 2, description=FLOOD) for _ in range(3)]
    rs = service(w, repeat_flag_after=3)
    alerts: list[tuple[str, int]] = []

    async def alert(ticket, reports):  # type: ignore[no-untyped-def]
        alerts.append((ticket.code, reports))

    rs.on_flagged.append(alert)
    await rs.link(w.agent, others[0].id, 1, lead.id)
    assert alerts == [] and (await w.q.get(lead.id)).repeat_flagged_at is None
    await rs.link(w.agent, others[1].id, 1, lead.id)
    await rs.link(w.agent, others[2].id, 1, lead.id)
    assert alerts == [(lead.code, 3)]
    flagged = await w.q.get(lead.id)
    assert flagged.repeat_flagged_at == w.clock.now() and flagged.version == 1
    assert [d for a, d in await history(w, lead.id) if a == "repeat_flagged"] == [{"reports": 3}]
    rows, total = await w.q.search(TicketFilter(flagged=True), actor=w.supervisor)
    assert [t.id for t in rows] == [lead.id] and total == 1
    # once at level 3 (reclassified, approved...) the supervisors' mark goes
    await w.svc.update(w.supervisor, lead.id, 1, {"level": 3})
    assert (await w.q.search(TicketFilter(flagged=True), actor=w.supervisor))[1] == 0


async def test_an_answered_or_level_3_matter_is_not_flagged(w: World):
    rs = service(w, repeat_flag_after=2)
    high = await make(w, 3, description=FLOOD)
    await rs.link(w.agent, (await make(w, 2, description=FLOOD)).id, 1, high.id)
    assert (await w.q.get(high.id)).repeat_flagged_at is None
    done = await make(w, 2, description=TREE, agency_id=w.ward)
    done = await w.svc.answer(w.ward_officer, done.id, done.version, "Đã xử lý")
    await rs.link(w.agent, (await make(w, 2, description=TREE)).id, 1, done.id)
    assert (await w.q.get(done.id)).repeat_flagged_at is None


# -- the group's result reaches every citizen -----------------------------------------
async def test_the_groups_result_reaches_every_citizen_in_it(w: World):
    settings = enabled(w.svc.settings)
    svc = TicketService(w.db, settings, w.clock)
    rs = RepeatService(w.db, settings, w.clock, svc)
    told: list[tuple[str, str]] = []
    woken: list[int] = []

    async def creator(ticket, action):  # type: ignore[no-untyped-def]
        told.append((ticket.code, str(action)))

    async def wake(ticket):  # type: ignore[no-untyped-def]
        woken.append(ticket.id)

    svc.on_creator_needed.append(creator)
    svc.on_result_recorded.append(wake)
    lead = await svc.create(w.agent, {**_form(FLOOD, "0901000100"), "agency_id": w.ward})
    new = await svc.create(w.agent2, _form(FLOOD, "0901000101"))
    forwarded = await svc.create(w.agent, {**_form(FLOOD, "0901000102"), "agency_id": w.dept})
    closed = await svc.create(w.agent, _form(FLOOD, "0901000103"))
    closed = await svc.close(w.supervisor, closed.id, 1, note="Trùng")
    question = await svc.create(
        w.agent, {**_form(FLOOD, "0901000104"), "level": 1, "guidance": "Đã hướng dẫn"}
    )
    for t in (new, forwarded, closed, question):
        await rs.link(w.supervisor, t.id, t.version, lead.id)

    w.clock.advance(timedelta(hours=5))
    answer = "Đã nạo vét cống, nước rút hết lúc 14:00"
    lead = await svc.answer(w.ward_officer, lead.id, lead.version, answer)

    rows = {t.id: await w.q.get(t.id) for t in (lead, new, forwarded, closed, question)}
    for t in (lead, new, forwarded):
        assert (rows[t.id].status, rows[t.id].result) == (Status.ANSWERED, answer)
    # closed before, and the level-1 question: not reopened by the group's answer
    assert rows[closed.id].status == Status.CLOSED and rows[closed.id].result is None
    assert rows[question.id].status == Status.CLOSED
    assert (await history(w, new.id))[-1] == (
        "answered",
        {"result": answer, "group": lead.code, "by": "ward_officer"},
    )
    # each citizen gets a result call of their own, and each creator is told
    async with w.db.session() as s:
        calls = {c.ticket_id: c.number for c in (await s.scalars(select(ResultCall))).all()}
    assert calls == {lead.id: "0901000100", new.id: "0901000101", forwarded.id: "0901000102"}
    assert sorted(woken) == sorted(calls)
    assert sorted(told) == sorted((rows[i].code, "answered") for i in calls)

    # a report linked later to the answered group gets the result as it joins
    late = await svc.create(w.agent, _form(FLOOD, "0901000105"))
    late = await rs.link(w.agent, late.id, late.version, new.id)
    assert (late.status, late.result, late.repeat_of) == (Status.ANSWERED, answer, lead.id)
    async with w.db.session() as s:
        assert await s.scalar(select(ResultCall.number).where(ResultCall.ticket_id == late.id)) == (
            "0901000105"
        )
    assert late.id in woken


def _form(description: str, phone: str) -> dict:
    return {
        "channel": "phone",
        "domain": "state",
        "topic": "flooding",
        "level": 2,
        "description": description,
        "citizen_phone": phone,
    }

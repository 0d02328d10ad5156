"""The weekly reconciliation on real SQLite and PostgreSQL (and real Redis for the alert):
which tickets are on an agency's week, confirming and disputing with who may, two
officers deciding the same line at once, lists made by readers at once, the
supervisors' overview and the pages."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from accounts.identity import Actor
from tests.panel.conftest import PASSWORD, Panel, panel  # noqa: F401 - the fixture
from tickets.exceptions import Forbidden, InvalidInput
from tickets.reconciliation.exceptions import ItemChanged
from tickets.reconciliation.models import Reconciliation, ReconciliationItem
from tickets.reconciliation.service import week_of

# Wednesday 25/11/2026, 10:00 in Ho Chi Minh City: the week of Monday 23/11.
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
WEEK = date(2026, 11, 23)


async def seed(p: Panel) -> dict[str, str]:
    """Tickets forwarded to the department (so-gtvt) and the district (q1) around the week."""
    svc, clock = p.ctx.tickets, p.ctx.clock
    sup = Actor.of(p.users["sup"])
    officer = Actor.of(p.users["officer"])
    gtvt, q1 = p.agency_ids["so-gtvt"], p.agency_ids["q1"]
    base = {
        "channel": "phone",
        "domain": "state",
        "topic": "traffic",
        "level": 2,
        "citizen_phone": "0901234567",
    }
    clock.set(T0)  # type: ignore[attr-defined]
    at_once = await svc.create(sup, base | {"description": "Đèn tín hiệu hỏng", "agency_id": gtvt})
    later = await svc.create(sup, base | {"description": "Ổ gà trên đường"})
    clock.set(T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    later = await svc.forward(sup, later.id, later.version, gtvt)
    elsewhere = await svc.create(sup, base | {"description": "Lấn chiếm vỉa hè", "agency_id": q1})
    moved = await svc.create(sup, base | {"description": "Cây đổ", "agency_id": gtvt})
    clock.set(T0 + timedelta(hours=2))  # type: ignore[attr-defined]
    moved = await svc.send_back(officer, moved.id, moved.version, "Không thuộc thẩm quyền")
    moved = await svc.forward(sup, moved.id, moved.version, q1)
    clock.set(T0 + timedelta(days=7))  # type: ignore[attr-defined]
    next_week = await svc.create(sup, base | {"description": "Tuần sau", "agency_id": gtvt})
    clock.set(T0 + timedelta(days=8))  # type: ignore[attr-defined]
    return {
        "at_once": at_once.code,
        "later": later.code,
        "elsewhere": elsewhere.code,
        "moved": moved.code,
        "next_week": next_week.code,
    }


async def test_the_week_lists_what_was_forwarded_to_the_agency(panel: Panel):  # noqa: F811
    codes = await seed(panel)
    rec = panel.ctx.reconciliation
    gtvt = await rec.week(panel.agency_ids["so-gtvt"], date(2026, 11, 27))
    assert gtvt.week_start == WEEK
    # forwarded at creation, forwarded later, and sent back then sent elsewhere: all three
    assert [line.code for line in gtvt.lines] == [codes["at_once"], codes["later"], codes["moved"]]
    assert {line.code: line.status for line in gtvt.lines}[codes["moved"]] == "forwarded"
    assert all(line.item.decision == "pending" for line in gtvt.lines)
    q1 = await rec.week(panel.agency_ids["q1"], WEEK)
    assert [line.code for line in q1.lines] == [codes["elsewhere"], codes["moved"]]
    nxt = await rec.week(panel.agency_ids["so-gtvt"], WEEK + timedelta(days=7))
    assert [line.code for line in nxt.lines] == [codes["next_week"]]
    # looking again adds nothing
    again = await rec.week(panel.agency_ids["so-gtvt"], WEEK)
    assert [line.item.id for line in again.lines] == [line.item.id for line in gtvt.lines]


async def test_readers_making_the_list_at_once_make_one(panel: Panel):  # noqa: F811
    await seed(panel)
    rec = panel.ctx.reconciliation
    gtvt = panel.agency_ids["so-gtvt"]
    await asyncio.gather(*(rec.week(gtvt, WEEK) for _ in range(4)), rec.overview(WEEK))
    async with panel.ctx.db.session() as s:
        lists = (await s.execute(Reconciliation.__table__.select())).all()
        items = (await s.execute(ReconciliationItem.__table__.select())).all()
    assert sorted((r.agency_id, r.week_start) for r in lists) == sorted(
        [(gtvt, WEEK), (panel.agency_ids["q1"], WEEK)]
    )
    assert len(items) == 5  # three for the department, two for the district
    assert len({(i.reconciliation_id, i.ticket_id) for i in items}) == 5


async def test_officers_confirm_and_dispute_and_supervisors_see_it(panel: Panel):  # noqa: F811
    codes = await seed(panel)
    rec, bus = panel.ctx.reconciliation, panel.ctx.bus
    officer, officer_q1 = Actor.of(panel.users["officer"]), Actor.of(panel.users["officer_q1"])
    sup = Actor.of(panel.users["sup"])
    alerts: list[dict] = []

    async def heard(topic: str, data: str) -> None:
        alerts.append(json.loads(data))

    undeliver = bus.deliver_here(["alerts"], heard)
    try:
        week = await rec.week(panel.agency_ids["so-gtvt"], WEEK)
        lines = {line.code: line for line in week.lines}
        first, second = lines[codes["at_once"]], lines[codes["later"]]
        # only the agency's own officers decide; a dispute needs its reason
        with pytest.raises(Forbidden):
            await rec.decide(officer_q1, first.item.id, 1, "confirmed", status_seen="forwarded")
        with pytest.raises(Forbidden):
            await rec.decide(sup, first.item.id, 1, "confirmed")
        with pytest.raises(InvalidInput) as e:
            await rec.decide(officer, second.item.id, 1, "disputed", "  ")
        assert e.value.fields() == ["reason"]
        with pytest.raises(InvalidInput) as e:
            await rec.decide(officer, second.item.id, 1, "maybe")
        assert e.value.fields() == ["decision"]
        # the officer saw "forwarded"; the ticket was accepted since: shown again
        t = await panel.ctx.ticket_queries.get_by_code(codes["at_once"])
        await panel.ctx.tickets.accept(officer, t.id, t.version)
        with pytest.raises(ItemChanged):
            await rec.decide(officer, first.item.id, 1, "confirmed", status_seen="forwarded")
        item = await rec.decide(officer, first.item.id, 1, "confirmed", status_seen="accepted")
        assert (item.decision, item.status_seen, item.version) == ("confirmed", "accepted", 2)
        assert alerts == []
        item = await rec.decide(
            officer, second.item.id, 1, "disputed", "Chưa nhận được phiếu này", "forwarded"
        )
        assert item.decision == "disputed" and item.reason == "Chưa nhận được phiếu này"
        assert alerts == [
            {
                "type": "reconciliation",
                "code": codes["later"],
                "agency_id": panel.agency_ids["so-gtvt"],
                "agency": "Sở Giao thông Vận tải",
                "week": "2026-11-23",
                "reason": "Chưa nhận được phiếu này",
            }
        ]
        # a stale form is refused
        with pytest.raises(ItemChanged):
            await rec.decide(officer, second.item.id, 1, "confirmed")

        states = {s.agency_name: s for s in await rec.overview(WEEK)}
        g = states["Sở Giao thông Vận tải"]
        assert (g.lines, g.confirmed, g.disputed, g.unresolved, g.pending) == (3, 1, 1, 1, 1)
        assert g.state == "disputed" and [d.code for d in g.disputes] == [codes["later"]]
        assert states["UBND Quận 1"].state == "not_started"
        assert [s.agency_name for s in await rec.overview(WEEK)][0] == "Sở Giao thông Vận tải"

        # a supervisor resolves it; the officer can no longer change that line
        with pytest.raises(Forbidden):
            await rec.resolve(officer, second.item.id, 2, "Đã gửi lại")
        with pytest.raises(InvalidInput):
            await rec.resolve(sup, first.item.id, 2, "Không có gì")  # not disputed
        done = await rec.resolve(sup, second.item.id, 2, "Đã chuyển lại qua email")
        assert done.resolved_by_name == "Sup" and done.version == 3
        with pytest.raises(InvalidInput):
            await rec.decide(officer, second.item.id, 3, "confirmed")
        third = lines[codes["moved"]]
        await rec.decide(officer, third.item.id, 1, "confirmed")
        g = {s.agency_name: s for s in await rec.overview(WEEK)}["Sở Giao thông Vận tải"]
        assert (g.state, g.pending, g.unresolved) == ("settled", 0, 0)
        assert await rec.unresolved() == 0
    finally:
        undeliver()


async def test_two_officers_deciding_one_line_at_once(panel: Panel):  # noqa: F811
    """Of two officers of the agency deciding the same line from the same page, one
    decision is stored and the other is told; never both, never neither."""
    codes = await seed(panel)
    ctx = panel.ctx
    second_officer = await ctx.accounts.create_user(
        Actor.of(panel.users["admin"]),
        {
            "username": "officer2",
            "display_name": "Officer Hai",
            "role": "agency",
            "password": PASSWORD,
            "agency_id": panel.agency_ids["so-gtvt"],
        },
    )
    a, b = Actor.of(panel.users["officer"]), Actor.of(second_officer)
    week = await ctx.reconciliation.week(panel.agency_ids["so-gtvt"], WEEK)
    for line in week.lines:
        results = await asyncio.gather(
            ctx.reconciliation.decide(a, line.item.id, 1, "confirmed"),
            ctx.reconciliation.decide(b, line.item.id, 1, "disputed", "Không có trong sổ"),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, ReconciliationItem)]
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], ItemChanged)
        stored = {x.code: x for x in (await ctx.reconciliation.week(week.agency_id, WEEK)).lines}
        item = stored[line.code].item
        assert (item.decision, item.version) == (won[0].decision, 2)
        assert item.decided_by_name == (
            "Officer" if won[0].decision == "confirmed" else "Officer Hai"
        )
    assert set(codes) >= {"at_once"}


def _csrf(html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def test_the_pages_for_the_officer_and_the_supervisors(panel: Panel):  # noqa: F811
    codes = await seed(panel)
    c = panel.client
    await panel.login("officer")
    r = await c.get("/reconciliation?week=2026-11-25")
    page = await r.text()
    assert r.status == 200 and codes["at_once"] in page and codes["elsewhere"] not in page
    week = await panel.ctx.reconciliation.week(panel.agency_ids["so-gtvt"], WEEK)
    line = next(x for x in week.lines if x.code == codes["later"])
    form = {
        "_csrf": _csrf(page),
        "version": "1",
        "status_seen": "forwarded",
        "week": "2026-11-23",
        "decision": "disputed",
        "reason": "",
    }
    r = await c.post(f"/reconciliation/items/{line.item.id}/decide", data=form)
    assert r.status == 422 and "aria-invalid" in await r.text()
    form["reason"] = "Đơn vị chưa nhận"
    r = await c.post(
        f"/reconciliation/items/{line.item.id}/decide", data=form, allow_redirects=False
    )
    assert r.status == 303 and r.headers["Location"] == "/reconciliation?week=2026-11-23"
    # the same form again: decided meanwhile, back to the list with a message
    r = await c.post(
        f"/reconciliation/items/{line.item.id}/decide", data=form, allow_redirects=False
    )
    assert r.status == 303 and "hotline_flash" in r.cookies
    # supervisors' pages are not the officer's
    r = await c.get(f"/reconciliation/agencies/{panel.agency_ids['q1']}?week=2026-11-23")
    assert r.status == 403

    async with await panel.new_client() as sup:
        await panel.login("sup", sup)
        r = await sup.get("/reconciliation?week=2026-11-23")
        page = await r.text()
        assert r.status == 200 and 'data-state="disputed"' in page
        assert "Đơn vị chưa nhận" in page and codes["later"] in page
        r = await sup.post(
            f"/reconciliation/items/{line.item.id}/decide",
            data={"_csrf": _csrf(page), "version": "2", "decision": "confirmed"},
        )
        assert r.status == 403
        r = await sup.get(f"/reconciliation/agencies/{panel.agency_ids['so-gtvt']}?week=2026-11-23")
        assert r.status == 200 and "Đơn vị chưa nhận" in await r.text()
        assert 'class="decide"' not in await r.text()  # read-only for supervisors
    async with await panel.new_client() as agent:
        await panel.login("agent1", agent)
        assert (await agent.get("/reconciliation")).status == 403


def test_weeks_start_on_monday():
    assert week_of(date(2026, 11, 29)) == WEEK
    assert week_of(WEEK) == WEEK

"""Several agencies and delegation through the JSON API and the ticket page (aiohttp test
client, real Redis, SQLite and PostgreSQL): co-handling agencies set when forwarding, a
delegation refused with errors naming its fields, the sub-agency's answer adopted, and
what an agency that has no part sees (nothing)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from accounts.identity import Actor
from tests.panel.conftest import PASSWORD
from tests.panel.test_api import API, call, new_ticket, tokens
from tickets.alerts import OverdueWatch


async def _more_agencies(panel: Any) -> dict[str, int]:
    """A ward under q1 and an unrelated district, each with an officer (once the hub
    listens: see tests/panel/test_api.py's ``panel``)."""
    ctx = panel.ctx
    await asyncio.wait_for(ctx.hub.ready.wait(), 5)
    admin = Actor.of(panel.users["admin"])
    ward = await ctx.agencies.create(
        admin,
        {
            "kind": "ward",
            "code": "q1-p1",
            "name": "UBND Phường 1",
            "parent_id": panel.agency_ids["q1"],
        },
    )
    other = await ctx.agencies.create(
        admin, {"kind": "district", "code": "q3", "name": "UBND Quận 3"}
    )
    for username, agency in (("officer_p1", ward.id), ("officer_q3", other.id)):
        await ctx.accounts.create_user(
            admin,
            {
                "username": username,
                "display_name": username,
                "role": "agency",
                "password": PASSWORD,
                "agency_id": agency,
            },
        )
    return {"p1": ward.id, "q3": other.id}


async def test_co_agencies_delegation_and_adoption_through_the_api(panel):
    more = await _more_agencies(panel)
    agent, sup, officer, officer_q1, officer_p1, officer_q3 = await tokens(
        panel, "agent1", "sup", "officer", "officer_q1", "officer_p1", "officer_q3"
    )
    root, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    t = await new_ticket(panel, agent, level=2)
    code = t["code"]
    bad = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/forward",
        sup,
        {"version": 1, "agency_id": root, "co_agency_ids": [root]},
        422,
    )
    assert set(bad["fields"]) == {"co_agency_ids"}
    t = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/forward",
        sup,
        {"version": 1, "agency_id": root, "co_agency_ids": [more["q3"]]},
    )
    parts = await call(panel, "GET", f"{API}/tickets/{code}/parts", officer)
    assert [(p["role"], p["agency"]["id"]) for p in parts["items"]] == [
        ("lead", root),
        ("co", more["q3"]),
    ]
    assert parts["items"][0]["moves"] == ["delegate"] and parts["version"] == 2
    q3_part = parts["items"][1]["id"]

    # the lead delegates down its tree only, within its own deadline: 422 naming the field
    deadline = t["deadline_at"]
    for body, field in (
        ({"agency_id": more["q3"]}, "agency_id"),
        ({"agency_id": root}, "agency_id"),
        ({"agency_id": q1, "deadline_at": "2099-01-01T00:00:00Z"}, "deadline_at"),
    ):
        bad = await call(
            panel, "POST", f"{API}/tickets/{code}/delegate", officer, {"version": 2, **body}, 422
        )
        assert set(bad["fields"]) == {field}, bad
    # the lead's part is not the co-agency's to delegate
    await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/delegate",
        officer_q3,
        {"version": 2, "agency_id": q1},
        403,
    )
    parts = await call(
        panel, "POST", f"{API}/tickets/{code}/delegate", officer, {"version": 2, "agency_id": q1}
    )
    q1_part = parts["items"][1]
    assert (q1_part["role"], q1_part["agency"]["id"], q1_part["parent_id"]) == (
        "delegated",
        q1,
        None,
    )
    assert q1_part["deadline_at"] == deadline and parts["version"] == 3
    # q1 delegates further down to its ward
    parts = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{q1_part['id']}/delegate",
        officer_q1,
        {"version": 3, "agency_id": more["p1"]},
    )
    p1_part = next(p for p in parts["items"] if p["agency"]["id"] == more["p1"])

    # who sees it: the lead, q1, the ward, q3 (a co-agency); the ward's inbox lists it
    for h in (officer, officer_q1, officer_p1, officer_q3):
        await call(panel, "GET", f"{API}/tickets/{code}", h)
    inbox = await call(panel, "GET", f"{API}/inbox", officer_p1)
    assert [i["code"] for i in inbox["items"]] == [code]

    # a stale version is refused; the ward answers, q1 adopts, q3 answers, the lead adopts
    await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{p1_part['id']}/answer",
        officer_p1,
        {"version": 3, "result": "x"},
        409,
    )
    await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{p1_part['id']}/answer",
        officer_p1,
        {"version": 4, "result": "Phường 1: đã dọn rác"},
    )
    parts = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{p1_part['id']}/adopt",
        officer_q1,
        {"version": 5},
    )
    assert next(p for p in parts["items"] if p["id"] == q1_part["id"])["answer"] == (
        "Phường 1: đã dọn rác"
    )
    # the lead cannot adopt while q3 has not answered: 409 naming the field
    pending = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{q1_part['id']}/adopt",
        officer,
        {"version": 6},
        409,
    )
    assert set(pending["fields"]) == {"result"}
    await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{q3_part}/answer",
        officer_q3,
        {"version": 6, "result": "Quận 3: không liên quan"},
    )
    parts = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/parts/{q1_part['id']}/adopt",
        officer,
        {"version": 7, "result": "Tổng hợp: Phường 1 đã dọn rác; Quận 3 không liên quan"},
    )
    assert parts["items"][0]["status"] == "answered"
    t = await call(panel, "GET", f"{API}/tickets/{code}", officer)
    assert t["status"] == "answered" and t["result"].startswith("Tổng hợp")
    history = await call(panel, "GET", f"{API}/tickets/{code}/history", officer)
    assert [e["action"] for e in history["items"]] == [
        "created", "forwarded", "delegated", "delegated", "part_answered", "adopted",
        "part_answered", "answered",
    ]  # fmt: skip


async def test_an_agency_without_a_part_sees_nothing(panel):
    more = await _more_agencies(panel)
    agent, sup, officer, officer_p1, officer_q3 = await tokens(
        panel, "agent1", "sup", "officer", "officer_p1", "officer_q3"
    )
    root, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    t = await new_ticket(panel, agent, level=2)
    code = t["code"]
    await call(
        panel, "POST", f"{API}/tickets/{code}/forward", sup, {"version": 1, "agency_id": root}
    )
    await call(
        panel, "POST", f"{API}/tickets/{code}/delegate", officer, {"version": 2, "agency_id": q1}
    )
    for h in (officer_p1, officer_q3):
        await call(panel, "GET", f"{API}/tickets/{code}", h, status=403)
        await call(panel, "GET", f"{API}/tickets/{code}/parts", h, status=403)
        await call(panel, "GET", f"{API}/tickets/{code}/history", h, status=403)
        inbox = await call(panel, "GET", f"{API}/inbox", h)
        assert inbox["items"] == []
    assert more  # both agencies exist, and see nothing


async def test_an_overdue_delegation_alerts_the_supervisors_the_ward_and_the_delegator(panel):
    ctx = panel.ctx
    more = await _more_agencies(panel)
    root, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    ticket = await ctx.tickets.create(
        Actor.of(panel.users["agent1"]),
        {
            "channel": "phone",
            "citizen_phone": "0909000111",
            "domain": "state",
            "topic": "traffic",
            "level": 2,
            "description": "Đèn tín hiệu hỏng",
            "agency_id": root,
        },
    )
    soon = ctx.clock.now() + timedelta(hours=2)
    part = await ctx.handling.delegate(Actor.of(panel.users["officer"]), ticket.id, 1, q1, soon)
    got: dict[str, list[dict]] = {"alerts": [], f"agency.{q1}": [], f"agency.{root}": []}
    unrelated = f"agency.{more['q3']}"
    got[unrelated] = []
    ready = asyncio.Event()

    async def listen():
        async for topic, data in ctx.bus.listen(list(got), ready):
            got[topic].append(json.loads(data))

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    watch = OverdueWatch(
        ctx.tickets, ctx.agencies, ctx.bus, ctx.clock, interval=60, parts=ctx.handling
    )
    try:
        await watch.check()
        ctx.clock.advance(timedelta(hours=3))  # the ward's deadline, not the lead's
        assert await watch.check() == []  # no ticket escalated: only the part

        async def arrived():
            while not all(v for k, v in got.items() if k != unrelated):  # noqa: ASYNC110
                await asyncio.sleep(0.02)

        await asyncio.wait_for(arrived(), 5)
        alert = got["alerts"][0]
        assert (alert["code"], alert["part"], alert["agency"]) == (
            ticket.code,
            part.id,
            "UBND Quận 1",
        )
        assert got[f"agency.{root}"][0]["part"] == part.id
        await watch.check()
        await asyncio.sleep(0.2)
        assert len(got["alerts"]) == 1, "one deadline escalates once"
        assert got[unrelated] == []
    finally:
        task.cancel()
        await ctx.bus.stop_listening()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_part_s_deadline_moved_through_the_api_and_the_page(panel):
    """A supervisor moves a co-agency's deadline (the API, then the ticket page's form):
    the co-agency may not, a missing reason and a deadline past the lead's are refused
    naming their fields, and the history keeps the reason."""
    more = await _more_agencies(panel)
    agent, sup, officer_q3 = await tokens(panel, "agent1", "sup", "officer_q3")
    root = panel.agency_ids["so-gtvt"]
    t = await new_ticket(panel, agent, level=2)
    code = t["code"]
    t = await call(
        panel,
        "POST",
        f"{API}/tickets/{code}/forward",
        sup,
        {"version": 1, "agency_id": root, "co_agency_ids": [more["q3"]]},
    )
    parts = await call(panel, "GET", f"{API}/tickets/{code}/parts", sup)
    co = parts["items"][1]
    assert co["moves"] == ["deadline"] and co["deadline_at"] == t["deadline_at"]
    path = f"{API}/tickets/{code}/parts/{co['id']}/deadline"
    await call(
        panel, "POST", path, officer_q3, {"version": 2, "deadline_at": "2099-01-01T00:00:00Z",
                                            "reason": "x"}, 403,
    )  # fmt: skip
    for body, field in (
        ({"deadline_at": "2099-01-01T00:00:00Z", "reason": "Họp"}, "deadline_at"),
        ({"deadline_at": t["deadline_at"], "reason": ""}, "reason"),
        ({"reason": "Họp"}, "deadline_at"),
    ):
        bad = await call(panel, "POST", path, sup, {"version": 2, **body}, 422)
        assert set(bad["fields"]) == {field}, bad
    earlier = (
        datetime.fromisoformat(t["deadline_at"].replace("Z", "+00:00")) - timedelta(hours=24)
    ).isoformat()
    parts = await call(
        panel, "POST", path, sup, {"version": 2, "deadline_at": earlier, "reason": "Họp HĐND"}
    )
    moved = next(p for p in parts["items"] if p["id"] == co["id"])
    assert datetime.fromisoformat(moved["deadline_at"].replace("Z", "+00:00")) == (
        datetime.fromisoformat(earlier)
    )
    history = await call(panel, "GET", f"{API}/tickets/{code}/history", sup)
    line = history["items"][-1]
    assert line["action"] == "part_deadline_moved" and line["details"]["reason"] == "Họp HĐND"

    # the ticket page offers the form to the supervisor and takes it (local time)
    client = await panel.new_client()
    try:
        csrf = await panel.login("sup", client)
        async with client.get(f"/tickets/{code}") as page:
            html = await page.text()
        assert f'id="part-{co["id"]}-deadline"' in html
        async with client.post(
            f"/tickets/{code}/parts/{co['id']}/deadline",
            data={"_csrf": csrf, "version": "3", "deadline_at": "", "reason": "Họp"},
        ) as page:
            assert page.status == 422
            html = await page.text()
            # the form of this move shows its field's error (the page is in Vietnamese)
            form_html = html.split(f'id="part-{co["id"]}-deadline"')[1].split("</form>")[0]
            assert "là bắt buộc" in form_html
        local = datetime.fromisoformat(earlier).astimezone(panel.ctx.settings.tz) - timedelta(
            hours=1
        )
        async with client.post(
            f"/tickets/{code}/parts/{co['id']}/deadline",
            data={
                "_csrf": csrf,
                "version": "3",
                "deadline_at": local.strftime("%d/%m/%Y %H:%M"),
                "reason": "Sớm hơn",
            },
            allow_redirects=False,
        ) as page:
            assert page.status in (302, 303), await page.text()
    finally:
        await client.close()
    parts = await call(panel, "GET", f"{API}/tickets/{code}/parts", sup)
    moved = next(p for p in parts["items"] if p["id"] == co["id"])
    assert datetime.fromisoformat(moved["deadline_at"].replace("Z", "+00:00")) == (
        local.replace(second=0, microsecond=0)
    )

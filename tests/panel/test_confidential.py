"""Confidentiality (tickets.confidential) through the real panel, on SQLite and PostgreSQL.

The main test seeds a restricted report (corruption), a Party-building one, and two
ordinary reports with an agency (one whose citizen agreed to be known to it, one not),
each carrying distinctive markers in its text and in the citizen's name, phone, email
and address; the restricted report's call has a transcript with a marker too.  Then,
for every role, it fetches **every GET route of the panel's route table** (its path
parameters filled with the seeded tickets, calls and known words; the lists also with a
search) and looks for the markers in each answer: a restricted report, or an identity
withheld from an agency, must not be in any of them for a role that may not see it.
A route added later is covered without touching this test.  Positive controls (what
each role must find somewhere) keep the search honest.

The oversight role must be refused (403) by every route that writes, taken from the
same route table; only signing in and out and its own account are its to change.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select, text

from accounts.identity import SYSTEM, Actor
from hotline.app import SCREEN_POP
from inbox.models import Message
from tests.panel.conftest import PASSWORD
from tests.panel.recorded import add_call, segments
from tickets.audit import View, ViewFilter
from tickets.confidential import (
    pseudonym,
    restricted,
    restricted_clause,
    seen_by,
)
from tickets.exceptions import NOT_CLEARED, Forbidden, InvalidInput
from tickets.models import Ticket
from tickets.queries import TicketFilter

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
QUERY = "hối lộ"  # searched in the lists: in the restricted report, not one of the markers

R_DESC = "Tố cáo RMARKDESC nhận hối lộ ở phường"
R_SAID = "Tôi tố cáo RMARKSAID nhận hối lộ"
P_DESC = "Đảng viên PMARKDESC vi phạm, hối lộ"
O_DESC = "Ngập sâu OMARKDESC sau mưa"
C_DESC = "Cây đổ CMARKDESC trước trường"

R_ID = {
    "citizen_name": "Lê RMARKNAME",
    "citizen_phone": "0911 222 333",
    "reporter_email": "rmarkmail@example.vn",
    "citizen_address": "12 Ngõ RMARKADDR",
}
O_ID = {
    "citizen_name": "Phạm OMARKNAME",
    "citizen_phone": "0922 444 555",
    "reporter_email": "omarkmail@example.vn",
    "citizen_address": "34 Hẻm OMARKADDR",
}
C_ID = {
    "citizen_name": "Trần CMARKNAME",
    "citizen_phone": "0933 666 777",
    "reporter_email": "cmarkmail@example.vn",
    "citizen_address": "56 Đường CMARKADDR",
}


def identity_markers(prefix: str, phone: str) -> list[str]:
    digits = phone.replace(" ", "")
    return [f"{prefix}MARKNAME", f"{prefix.lower()}markmail", f"{prefix}MARKADDR", digits[-6:]]


R_WHO = identity_markers("R", R_ID["citizen_phone"])
O_WHO = identity_markers("O", O_ID["citizen_phone"])
SMS_IN = "Tôi bổ sung RMARKSMS về vụ hối lộ"
SMS_OUT = "Tổng đài đã nhận RMARKREPLY"
R_WHAT = ["RMARKDESC", "RMARKSAID", "RMARKSMS", "RMARKREPLY"]
P_WHAT = ["PMARKDESC"]

# What each account must never be shown.  "sup" is a named reader and "so-gtvt" a cleared
# agency (tests/panel/conftest.py); "sup2" is a supervisor who is not named.
FORBIDDEN = {
    "sup": [],
    "sup2": R_WHAT + R_WHO + P_WHAT,
    "agent2": R_WHAT + R_WHO + P_WHAT,
    "admin": R_WHAT + R_WHO + P_WHAT,
    # forwarded to their agency (cleared): its text, never who reported it
    "officer": R_WHO + P_WHAT + ["OMARKDESC"] + O_WHO,
    "officer_q1": R_WHAT + R_WHO + P_WHAT + O_WHO,
    "inspector": [],
}
# What each must find somewhere (else the search above proves nothing).
FOUND = {
    "sup": ["RMARKDESC", "RMARKNAME", "PMARKDESC", "RMARKSAID", "RMARKSMS", "RMARKREPLY"],
    "sup2": ["OMARKDESC", "OMARKNAME"],
    "agent2": ["OMARKDESC"],
    "admin": ["OMARKNAME"],
    "officer": ["RMARKDESC"],
    "officer_q1": ["OMARKDESC", "CMARKNAME", "cmarkmail", "CMARKADDR"],
    "inspector": ["RMARKDESC", "PMARKDESC", "RMARKNAME"],
}
# GET routes that are not pages or data of the panel's users
SKIPPED = ("/ws", "/sms/kannel/", "/static", "/healthz", "/readyz", "/api/docs", "/login")
# the writes a signed-in oversight account may make: its own session and account
OWN = {
    ("POST", "/logout"),
    ("POST", "/account/password"),
    ("POST", "/account/totp"),
    ("POST", "/account/totp/confirm"),
    ("DELETE", "/api/v1/session"),
}


async def seed(panel) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    ctx = panel.ctx
    admin = Actor.of(panel.users["admin"])
    panel.users["sup2"] = await ctx.accounts.create_user(
        admin,
        {"username": "sup2", "display_name": "Sup Two", "role": "supervisor", "password": PASSWORD},
    )
    agent = Actor.of(panel.users["agent1"])
    sup = Actor.of(panel.users["sup"])
    call = await add_call(
        ctx,
        None,
        started=NOW,
        agent="1001",
        transcript=segments(SimpleNamespace(seconds=6.0), R_SAID),
    )

    async def make(**fields: Any) -> Ticket:
        return await ctx.tickets.create(
            agent, {"channel": "phone", "level": 2, "domain": "state", **fields}
        )

    so_gtvt, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    r = await ctx.tickets.create(
        agent,
        {"channel": "phone", "level": 2, "domain": "state", "topic": "corruption",
         "description": R_DESC, "agency_id": so_gtvt, **R_ID},
        call_id=call.id,
    )  # fmt: skip
    p = await make(domain="party", topic="other", description=P_DESC, **R_ID)
    o = await make(topic="flooding", description=O_DESC, agency_id=q1, **O_ID)
    c = await make(topic="trees", description=C_DESC, agency_id=q1, identity_consent=True, **C_ID)
    # the history holds identity too: an edit of the name, a call to the number
    o = await ctx.tickets.update(agent, o.id, o.version, {"citizen_address": "35 Hẻm OMARKADDR"})
    await ctx.tickets.comment(sup, r.id, "Đã xem xét")
    # the citizen's SMS attached to the restricted report on a team's desk, and the
    # desk's answer to it (an answer is of the ticket of the message it answers)
    async with ctx.db.session() as s:
        sms = Message(
            channel="sms", direction="in", citizen="0911222333", service_address="1022",
            team=ctx.settings.teams[0].id, body=SMS_IN, state="attached", ticket_id=r.id,
            created_at=NOW, updated_at=NOW, version=1,
        )  # fmt: skip
        s.add(sms)
        await s.flush()
        answer = Message(
            channel="sms", direction="out", citizen="0911222333", service_address="1022",
            team=sms.team, body=SMS_OUT, state="sent", reply_to_id=sms.id,
            created_at=NOW, updated_at=NOW, version=1,
        )  # fmt: skip
        s.add(answer)
    return SimpleNamespace(r=r, p=p, o=o, c=c, call=call, sms=sms, answer=answer)


def found_in(body: str, marker: str) -> bool:
    return marker.casefold() in body.casefold()


def paths_of(app, values: dict[str, list[str]], method: str = "GET") -> Iterable[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    """Every route of ``method`` in the route table, its parameters filled with each
    combination of ``values`` (by name; else every value) that its pattern accepts."""
    everything = sorted({v for vs in values.values() for v in vs})
    for route in app.router.routes():
        if route.method != method or route.resource is None:
            continue
        template = route.resource.canonical
        names = re.findall(r"{(\w+)}", template)
        if not names:
            yield template, route
            continue
        pattern = route.resource.get_info().get("pattern")
        choices = [values.get(n, everything) for n in names]
        for combo in itertools.product(*choices):
            path = template
            for name, value in zip(names, combo, strict=True):
                path = path.replace("{" + name + "}", quote(value, safe=""), 1)
            if pattern is None or pattern.fullmatch(path):
                yield path, route


async def test_no_list_search_export_or_answer_shows_what_a_role_may_not_see(panel):
    ctx = panel.ctx
    seeded = await seed(panel)
    r, p, o, c = seeded.r, seeded.p, seeded.o, seeded.c
    app = panel.client.server.app
    values = {
        "code": [r.code, p.code, o.code, c.code],
        "call_id": [str(seeded.call.id)],
        "id": [str(seeded.call.id), str(r.id), "1", str(seeded.sms.id), str(seeded.answer.id)],
        "attachment": ["x"],
        "extension": ["1001"],
    }
    words = ["daily", "weekly", "handover", "used", "not-found", "1"]
    values_any = {**values, **{k: words for k in ("kind", "what", "n", "card_id")}}
    checked: dict[str, int] = {}
    for who, forbidden in FORBIDDEN.items():
        client = await panel.new_client()
        try:
            await panel.login(who, client)  # type: ignore[arg-type]
            bodies: list[tuple[str, str]] = []
            for path, _route in paths_of(app, values_any):
                if path.startswith(SKIPPED) or path.endswith(("/audio", "/download")):
                    continue
                variants = [path]
                if "{" not in _route.resource.canonical:  # a list: searched too
                    variants += [f"{path}?q={quote(QUERY)}", f"{path}?closed=1"]
                for url in variants:
                    async with client.get(url, allow_redirects=False) as answer:
                        bodies.append((url, await answer.text(errors="replace")))
            leaks = [
                f"{who} sees {m!r} at {url}"
                for url, body in bodies
                for m in forbidden
                if found_in(body, m)
            ]
            assert not leaks, "\n".join(leaks[:20])
            missing = [m for m in FOUND[who] if not any(found_in(b, m) for _, b in bodies)]
            assert not missing, f"{who} never saw {missing}: the search proves nothing"
            checked[who] = len(bodies)
        finally:
            await client.close()
    assert all(n > 60 for n in checked.values()), checked

    # the agency reads a stable pseudonym instead of the citizen (and the API says so)
    officer = Actor.of(panel.users["officer"])
    shown = seen_by(officer, r)
    assert shown.citizen_name == pseudonym(r.id) == seen_by(officer, r).citizen_name
    assert shown.citizen_phone is None and shown.reporter_email is None
    assert r.citizen_name == R_ID["citizen_name"]  # the stored ticket is untouched
    token = await panel.token("officer")
    async with panel.client.get(f"/api/v1/tickets/{r.code}", headers=token) as answer:
        data = await answer.json()
    assert data["citizen_name"].startswith("Công dân #") and data["citizen_phone"] is None
    assert (await ctx.ticket_queries.get(r.id)).citizen_phone == "0911222333"

    # every showing of the restricted reports was written down; what was refused, not
    views, total = await ctx.ticket_views.search(
        ViewFilter(ticket_id=r.id), actor=SYSTEM, settings=ctx.settings.tickets, per_page=500
    )
    by = {v.view.user_name for v in views}
    assert {"Sup", "Officer", "Inspector"} <= by and total == len(views)
    assert not {"Sup Two", "Agent2", "Officer_Q1"} & by  # refused: nothing shown
    assert {v.view.how for v in views} >= {"page", "api", "list"}
    assert not (await ctx.ticket_views.search(
        ViewFilter(ticket_id=o.id), actor=SYSTEM, settings=ctx.settings.tickets
    ))[1]  # fmt: skip


async def test_the_oversight_role_reads_and_every_write_refuses_it(panel):
    ctx = panel.ctx
    seeded = await seed(panel)
    r = seeded.r
    app = panel.client.server.app
    client = await panel.new_client()
    try:
        csrf = await panel.login("inspector", client)  # type: ignore[arg-type]
        # it reads the restricted report and the lists (page and API)
        async with client.get(f"/tickets/{r.code}") as answer:
            page = await answer.text()
            assert answer.status == 200 and "RMARKDESC" in page
        assert 'id="action-comment"' not in page and 'id="action-edit"' not in page
        assert 'class="action"' not in page  # no workflow button at all
        async with client.get(f"/api/v1/tickets?q={quote(QUERY)}") as answer:
            codes = {t["code"] for t in (await answer.json())["items"]}
            assert {r.code, seeded.p.code} <= codes
        values = {
            "code": [r.code],
            "call_id": [str(seeded.call.id)],
            "id": [str(seeded.call.id)],
            "extension": ["1001"],
            "action": ["comment", "close", "forward", "edit", "withhold", "complete", "cancel"],
        }
        writes = {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.method in ("POST", "PUT", "PATCH", "DELETE")
            and not getattr(route.handler, "public", False)
            and (route.method, route.resource.canonical) not in OWN
        }
        tried: set[tuple[str, str]] = set()
        refused = 0
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for path, route in paths_of(app, values, method):
                key = (method, route.resource.canonical)
                if key not in writes or (key in tried and "{action}" not in key[1]):
                    continue  # one filling of each route is enough (every action, though)
                tried.add(key)
                async with client.request(
                    method, path, json={}, headers={"X-CSRF-Token": csrf}, allow_redirects=False
                ) as answer:
                    assert answer.status == 403, (method, path, answer.status)
                refused += 1
        # every write route of the table was tried (a new one is, without editing this test)
        assert tried == writes
        assert refused > 60
        # nothing was written
        assert (await ctx.ticket_queries.get(r.id)).version == r.version
        history = await ctx.ticket_queries.history(r.id)
        assert [e.action for e in history] == ["created", "commented"]
        # and the service refuses it too, whatever the web layer does
        inspector = Actor.of(panel.users["inspector"])
        with pytest.raises(Forbidden):
            await ctx.tickets.comment(inspector, r.id, "Ý kiến")
        with pytest.raises(Forbidden):
            await ctx.tickets.close(inspector, r.id, r.version, "Đóng")
    finally:
        await client.close()


async def test_the_rule_once_the_clearance_and_forwarding_a_restricted_report(panel):
    ctx = panel.ctx
    seeded = await seed(panel)
    tickets = [seeded.r, seeded.p, seeded.o, seeded.c]
    settings = ctx.settings.tickets
    # the SQL clause and the test on a loaded ticket agree
    async with ctx.db.session() as s:
        ids = set(await s.scalars(select(Ticket.id).where(restricted_clause(settings))))
    assert ids == {t.id for t in tickets if restricted(t, settings)} == {seeded.r.id, seeded.p.id}
    # who sees which, one at a time (the same rule the lists use)
    sees = {
        "sup": {"r", "p", "o", "c"},
        "sup2": {"o", "c"},
        "agent1": {"r", "p", "o", "c"},  # they took the calls
        "agent2": {"o", "c"},
        "admin": {"o", "c"},
        "officer": {"r"},
        "officer_q1": {"o", "c"},
        "inspector": {"r", "p", "o", "c"},
    }
    for who, expected in sees.items():
        actor = Actor.of(panel.users[who])
        got = {
            name
            for name in ("r", "p", "o", "c")
            if await ctx.ticket_queries.can_see(actor, getattr(seeded, name))
        }
        assert got == expected, who
        # the lists (SQL) and the single ticket (decided in Python for all but agencies) agree
        q = ctx.ticket_queries
        listed = (
            await q.inbox(actor, include_closed=True)
            if actor.role == "agency"
            else (await q.search(TicketFilter(), actor=actor, per_page=200))[0]
        )
        names = {getattr(seeded, n).id: n for n in ("r", "p", "o", "c")}
        assert {names[t.id] for t in listed} == expected, who
    # a restricted report goes only to a cleared agency
    sup = Actor.of(panel.users["sup"])
    p = seeded.p
    with pytest.raises(InvalidInput) as refused:
        await ctx.tickets.forward(sup, p.id, p.version, panel.agency_ids["q1"])
    assert [(e.field, e.message) for e in refused.value.errors] == [("agency_id", NOT_CLEARED)]
    p = await ctx.tickets.forward(sup, p.id, p.version, panel.agency_ids["so-gtvt"])
    assert await ctx.ticket_queries.can_see(Actor.of(panel.users["officer"]), p)
    with pytest.raises(InvalidInput):
        await ctx.tickets.create(
            Actor.of(panel.users["agent1"]),
            {"channel": "phone", "level": 2, "domain": "party", "topic": "other",
             "description": "x", "agency_id": panel.agency_ids["q1"]},
        )  # fmt: skip
    # the screen-pop never names a restricted report, whoever answers
    pop = await ctx.ticket_queries.for_phone("0911222333", actor=SCREEN_POP)
    assert pop == []
    assert {t.id for t in await ctx.ticket_queries.for_phone("0911222333", actor=SYSTEM)} == {
        seeded.r.id,
        p.id,
    }
    # the audit log is append-only
    await ctx.ticket_views.record(sup, [seeded.r.id], View.PAGE, address="127.0.0.1")
    with pytest.raises(Exception, match="append-only"):
        async with ctx.db.session() as s:
            await s.execute(text("DELETE FROM ticket_views"))

"""The tickets' remaining gaps through the real panel (aiohttp server, Redis, SQLite and
PostgreSQL): a ticket's files through the JSON API and the citizen's consent to be known
to the agency, alerts that reach only those who may see a restricted report, the
co-handling agencies' own deadlines and a reclassification refused in the API, and a
ticket closed with open parts that alerts no one afterwards.

The accounts are tests/panel/conftest.py's: "sup" is named in ``readers``, "so-gtvt" and
"q7" are the agencies cleared for restricted reports; "q1" (below so-gtvt) is not.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from PIL import Image
from sqlalchemy import select

from accounts.identity import Actor
from notify.models import Notification
from notify.planner import Planner
from public.report import WEB_FORM
from tickets.alerts import OverdueWatch
from tickets.attachments import check_photo
from tickets.audit import ViewFilter
from tickets.codes import format_code
from tickets.handling.models import State
from tickets.models import Ticket
from tickets.review.reminders import DeadlineReminders

API = "/api/v1"
END = {"type": "end"}


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def pdf() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 50), (30, 30, 200)).save(buf, format="PDF")
    return buf.getvalue()


async def citizens_report(panel, *, consent: bool, agency: str = "q1", **kw: Any) -> Ticket:  # type: ignore[no-untyped-def]
    """A report from the public web form with the citizen's own photo."""
    s = panel.ctx.settings
    photo = check_photo(
        png(), max_bytes=s.web_report.photo_max_bytes, max_pixels=s.web_report.photo_max_pixels
    )
    data = {
        "channel": "web",
        "citizen_name": "Nguyễn Thị Lan",
        "citizen_phone": "0912345678",
        "domain": "state",
        "topic": "flooding",
        "level": 2,
        "description": "Nước ngập sâu trước nhà số 8",
        "agency_id": panel.agency_ids[agency],
        "identity_consent": consent,
        **kw,
    }
    return await panel.ctx.tickets.create(WEB_FORM, data, attachments=[photo])


async def api_upload(panel, who: str, code: str, *files: tuple[str, bytes, str]):  # type: ignore[no-untyped-def]
    form = aiohttp.FormData()
    for name, data, ctype in files:
        form.add_field("attachment", io.BytesIO(data), filename=name, content_type=ctype)
    return await panel.client.post(
        f"{API}/tickets/{code}/attachments", data=form, headers=await panel.token(who)
    )


# -- files through the API, and the citizen's consent -------------------------------------


async def test_files_through_the_api_with_the_limits_the_rules_and_the_record(panel):
    ctx = panel.ctx
    hidden = await citizens_report(panel, consent=False)
    shown = await citizens_report(panel, consent=True)
    [photo] = await ctx.ticket_queries.attachments(hidden.id)
    assert photo.added_by is None  # the citizen's own
    officer = await panel.token("officer_q1")

    # the agency reads no file of a citizen who did not agree to be known to it
    r = await panel.client.get(f"{API}/tickets/{hidden.code}/attachments", headers=officer)
    assert r.status == 200, await r.text()
    assert await r.json() == {"ticket": hidden.code, "items": [], "withheld": 1}
    r = await panel.client.get(
        f"{API}/tickets/{hidden.code}/attachments/{photo.id}", headers=officer
    )
    assert r.status == 404 and (await r.json())["error"] == "no such attachment"
    # with the citizen's consent it does
    r = await panel.client.get(f"{API}/tickets/{shown.code}/attachments", headers=officer)
    listed = await r.json()
    assert listed["withheld"] == 0 and [i["added_by"] for i in listed["items"]] == [None]
    r = await panel.client.get(listed["items"][0]["url"], headers=officer)
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert await r.read() == png()

    # the officer attaches a PDF and a photo in one request: both, named, in the history
    document = pdf()  # (Pillow writes the time in a PDF: made once)
    r = await api_upload(
        panel,
        "officer_q1",
        hidden.code,
        ("bien-ban.pdf", document, "application/pdf"),
        ("hien-truong.png", png((0, 120, 0)), "image/png"),
    )
    assert r.status == 201, await r.text()
    added = (await r.json())["items"]
    assert sorted((i["kind"], i["original_name"], i["added_by"]) for i in added) == [
        ("document", "bien-ban.pdf", "Officer_Q1"),
        ("photo", "hien-truong.png", "Officer_Q1"),
    ]
    history = await ctx.ticket_queries.history(hidden.id)
    assert history[-1].action == "attached"
    assert json.loads(history[-1].details)["files"] == "bien-ban.pdf, hien-truong.png"
    assert (await ctx.ticket_queries.get(hidden.id)).version == hidden.version

    # staff's and officers' files are the agency's to read; the citizen's still not
    r = await panel.client.get(f"{API}/tickets/{hidden.code}/attachments", headers=officer)
    listed = await r.json()
    # (files added at the same instant come in their ids' order)
    names = sorted(i["original_name"] for i in listed["items"])
    assert names == ["bien-ban.pdf", "hien-truong.png"]
    assert listed["withheld"] == 1
    [doc] = [i for i in listed["items"] if i["kind"] == "document"]
    r = await panel.client.get(doc["url"], headers=officer)
    assert r.status == 200 and r.headers["Content-Type"] == "application/pdf"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{doc["filename"]}"'
    assert await r.read() == document
    # the agent reads every file, the citizen's photo inline
    agent = await panel.token("agent1")
    r = await panel.client.get(f"{API}/tickets/{hidden.code}/attachments", headers=agent)
    assert len((await r.json())["items"]) == 3
    r = await panel.client.get(f"{API}/tickets/{hidden.code}/attachments/{photo.id}", headers=agent)
    assert r.status == 200 and r.headers["Content-Disposition"].startswith("inline;")

    # refused as the page refuses them, naming the field; nothing stored
    exe = b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode." * 10
    r = await api_upload(panel, "officer_q1", hidden.code, ("hoa-don.pdf", exe, "application/pdf"))
    assert r.status == 422
    assert "JPEG, PNG, WebP, PDF" in (await r.json())["fields"]["attachment"]
    big = pdf() + b"%" * ctx.settings.tickets.attachment_max_bytes
    r = await api_upload(panel, "officer_q1", hidden.code, ("lon.pdf", big, "application/pdf"))
    assert r.status == 422 and "10 MB" in (await r.json())["fields"]["attachment"]
    r = await panel.client.post(
        f"{API}/tickets/{hidden.code}/attachments", json={"attachment": "x"}, headers=officer
    )
    assert r.status == 415
    form = aiohttp.FormData()
    form.add_field("note", "no file")
    form.add_field("other", io.BytesIO(b"x"), filename="x.txt")
    r = await panel.client.post(
        f"{API}/tickets/{hidden.code}/attachments", data=form, headers=officer
    )
    assert r.status == 422 and set((await r.json())["fields"]) == {"attachment"}
    # an agency that does not hold the ticket may neither read nor add
    stranger = await panel.token("officer")
    r = await panel.client.get(f"{API}/tickets/{hidden.code}/attachments", headers=stranger)
    assert r.status == 403
    r = await api_upload(panel, "officer", hidden.code, ("x.pdf", pdf(), "application/pdf"))
    assert r.status == 403
    assert len(await ctx.ticket_queries.attachments(hidden.id)) == 3


async def test_the_agencys_page_shows_no_file_of_a_citizen_who_did_not_agree(panel):
    ctx = panel.ctx
    hidden = await citizens_report(panel, consent=False)
    shown = await citizens_report(panel, consent=True)
    [photo] = await ctx.ticket_queries.attachments(hidden.id)
    [other] = await ctx.ticket_queries.attachments(shown.id)
    href = f"/tickets/{hidden.code}/attachments/{photo.id}"
    officer = await panel.new_client()
    try:
        await panel.login("officer_q1", officer)  # type: ignore[arg-type]
        page = await (await officer.get(f"/tickets/{hidden.code}")).text()
        assert photo.id not in page and 'id="attachments-kept"' in page
        assert (await officer.get(href, allow_redirects=False)).status == 404
        page = await (await officer.get(f"/tickets/{shown.code}")).text()
        assert f'<img src="/tickets/{shown.code}/attachments/{other.id}"' in page
        assert 'id="attachments-kept"' not in page
    finally:
        await officer.close()
    await panel.login("agent1")
    page = await (await panel.client.get(f"/tickets/{hidden.code}")).text()
    assert f'<img src="{href}"' in page and 'id="attachments-kept"' not in page
    assert (await panel.client.get(href)).status == 200


async def test_reading_a_restricted_reports_files_is_audited(panel):
    ctx = panel.ctx
    secret = await citizens_report(panel, consent=True, agency="so-gtvt", topic="corruption")
    [photo] = await ctx.ticket_queries.attachments(secret.id)
    officer = await panel.token("officer")
    r = await panel.client.get(f"{API}/tickets/{secret.code}/attachments", headers=officer)
    assert r.status == 200 and len((await r.json())["items"]) == 1
    r = await panel.client.get(
        f"{API}/tickets/{secret.code}/attachments/{photo.id}", headers=officer
    )
    assert r.status == 200
    # a supervisor not named may not (403), and is not written down
    await ctx.accounts.create_user(
        Actor.of(panel.users["admin"]),
        {"username": "sup2", "display_name": "Sup Two", "role": "supervisor",
         "password": "correct horse battery"},
    )  # fmt: skip
    r = await panel.client.get(
        f"{API}/tickets/{secret.code}/attachments", headers=await panel.token("sup2")
    )
    assert r.status == 403
    views, _total = await ctx.ticket_views.search(
        ViewFilter(ticket_id=secret.id), actor=Actor.of(panel.users["sup"]),
        settings=ctx.settings.tickets,
    )  # fmt: skip
    assert sorted((v.view.user_name, v.view.how) for v in views) == [
        ("Officer", "api"),
        ("Officer", "file"),
    ]


# -- alerts reach only those who may see the ticket --------------------------------------


class Heard:
    """Every message on the alerts', users' and agencies' topics, until :meth:`settle`."""

    def __init__(self, bus) -> None:  # type: ignore[no-untyped-def]
        self.bus = bus
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heard:
        async def listen() -> None:
            async for topic, data in self.bus.listen(["alerts", "user.*", "agency.*"], self.ready):
                self.got.append((topic, json.loads(data)))

        self.task = asyncio.create_task(listen())
        await asyncio.wait_for(self.ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await self.bus.stop_listening(self.task)
        await asyncio.gather(self.task, return_exceptions=True)

    async def settle(self) -> list[tuple[str, dict[str, Any]]]:
        """What arrived before a last message published now (Redis keeps their order)."""
        await self.bus.publish("alerts", END)

        async def ended() -> None:
            while ("alerts", END) not in self.got:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.02)

        await asyncio.wait_for(ended(), 5)
        got = [m for m in self.got if m[1] != END]
        self.got.clear()
        return got

    @staticmethod
    def about(got: list[tuple[str, dict[str, Any]]], code: str) -> list[tuple[str, str]]:
        return sorted((topic, m["type"]) for topic, m in got if m.get("code") == code)


async def _q7(panel) -> int:  # type: ignore[no-untyped-def]
    """A ward below q1, cleared for restricted reports (its parent is not)."""
    ctx = panel.ctx
    q7 = await ctx.agencies.create(
        Actor.of(panel.users["admin"]),
        {"kind": "ward", "code": "q7", "name": "Phường 7", "parent_id": panel.agency_ids["q1"],
         "email": "p7@example.vn"},
    )  # fmt: skip
    q1 = await ctx.agencies.get(panel.agency_ids["q1"])
    await ctx.agencies.update(
        Actor.of(panel.users["admin"]), q1.id, q1.version, {"email": "q1@example.vn"}
    )
    return q7.id


async def test_a_restricted_reports_alerts_reach_only_those_cleared_for_it(panel):
    ctx = panel.ctx
    q7, q1, root = await _q7(panel), panel.agency_ids["q1"], panel.agency_ids["so-gtvt"]
    agent, sup = Actor.of(panel.users["agent1"]), panel.users["sup"]
    base = {"channel": "phone", "domain": "state", "level": 2, "citizen_phone": "0909000111"}
    secret = await ctx.tickets.create(
        agent, {**base, "topic": "corruption", "description": "Tố cáo nhận tiền", "agency_id": q7}
    )
    plain = await ctx.tickets.create(
        agent, {**base, "topic": "trees", "description": "Cây đổ", "agency_id": q7}
    )
    # a restricted report led by the cleared department, with q7 co-handling
    shared = await ctx.tickets.create(
        agent, {**base, "topic": "complaints", "description": "Khiếu nại", "level": 2}
    )
    shared = await ctx.tickets.forward(
        Actor.of(sup), shared.id, 1, root, co_agency_ids=[q7],
        co_deadlines={q7: ctx.clock.now() + timedelta(hours=30)},
    )  # fmt: skip
    watch = OverdueWatch(
        ctx.tickets,
        ctx.agencies,
        ctx.bus,
        ctx.clock,
        interval=60,
        parts=ctx.handling,
        reminders=DeadlineReminders(ctx.db, ctx.settings, ctx.clock, ctx.bus),
    )
    async with Heard(ctx.bus) as heard:
        # the co-agency's own deadline passes first: its part is alerted to the named
        # supervisor and to q7 (cleared), never on the supervisors' shared topic
        ctx.clock.advance(timedelta(hours=31))
        assert await watch.check() == []
        got = await heard.settle()
        assert Heard.about(got, shared.code) == sorted(
            [(f"agency.{q7}", "overdue"), (f"user.{sup.id}", "overdue")]
        )
        assert {m["agency_id"] for _t, m in got if m.get("code") == shared.code} == {q7}
        # then the leads' deadlines
        ctx.clock.advance(timedelta(hours=ctx.settings.tickets.deadline(2)))
        escalated = await watch.check()
        got = await heard.settle()
    assert {t.code for t in escalated} == {secret.code, plain.code, shared.code}
    # the unrestricted report: every supervisor, q7 and its parent q1, as ever
    assert Heard.about(got, plain.code) == sorted(
        [(f"agency.{q1}", "overdue"), (f"agency.{q7}", "overdue"), ("alerts", "overdue")]
    )
    # the restricted one: the named supervisor on their own topic and the cleared ward;
    # neither the supervisors' shared topic nor the parent q1, which may not see it
    assert Heard.about(got, secret.code) == sorted(
        [(f"agency.{q7}", "overdue"), (f"user.{sup.id}", "overdue")]
    )
    assert not await ctx.ticket_queries.can_see(Actor.of(panel.users["officer_q1"]), secret)

    # the agencies' emails alike: q1 hears of the plain report's escalation only
    settings = ctx.settings.model_copy(
        update={"notify": ctx.settings.notify.model_copy(update={"enabled": True})}
    )
    planner = Planner(ctx.db, settings, ctx.clock)
    await planner.escalated([t for t in escalated if t.code in (secret.code, plain.code)])
    async with ctx.db.session() as s:
        mails = (await s.execute(select(Notification.ticket_id, Notification.kind,
                                        Notification.recipient))).all()  # fmt: skip
    assert sorted((tid == secret.id, kind, to) for tid, kind, to in mails) == [
        (False, "agency_escalation", "q1@example.vn"),
        (False, "agency_overdue", "p7@example.vn"),
        (True, "agency_overdue", "p7@example.vn"),
    ]


async def test_the_daily_digest_counts_restricted_reports_and_lists_none(panel):
    ctx = panel.ctx
    q7 = await _q7(panel)
    agent = Actor.of(panel.users["agent1"])
    base = {"channel": "phone", "domain": "state", "level": 2, "agency_id": q7}
    secret = await ctx.tickets.create(
        agent, {**base, "topic": "corruption", "description": "Tố cáo RMARK nhận tiền"}
    )
    plain = await ctx.tickets.create(agent, {**base, "topic": "trees", "description": "Cây đổ"})
    ctx.clock.advance(timedelta(hours=ctx.settings.tickets.deadline(2) + 1))
    notify = ctx.settings.notify.model_copy(
        update={"enabled": True, "digest_to": ["lanhdao@example.vn"], "digest_at": "00:00"}
    )
    planner = Planner(ctx.db, ctx.settings.model_copy(update={"notify": notify}), ctx.clock)
    assert await planner.periodic() >= 1
    async with ctx.db.session() as s:
        digest = await s.scalar(select(Notification).where(Notification.kind == "digest"))
    assert digest is not None
    body = digest.body + (digest.subject or "")
    assert format_code(plain.code) in body
    assert format_code(secret.code) not in body and "RMARK" not in body
    assert "Quá hạn / Overdue: 1" in body
    assert re.search(
        r"Restricted reports overdue or reopened \(not listed, see the panel\): 1", body
    )


# -- several agencies, and a reclassification, through the API ---------------------------


async def test_co_agencies_deadlines_and_a_refused_reclassification_in_the_api(panel):
    ctx = panel.ctx
    q1, root = panel.agency_ids["q1"], panel.agency_ids["so-gtvt"]
    agent, sup = await panel.token("agent1"), await panel.token("sup")
    r = await panel.client.post(
        f"{API}/tickets",
        json={"channel": "phone", "domain": "state", "topic": "water", "level": 2,
              "description": "Mất nước ba ngày", "citizen_phone": "0901111222"},
        headers=agent,
    )  # fmt: skip
    code = (await r.json())["code"]
    officer = await panel.token("officer_q1")  # before the page's sign-in on this client
    tz = ctx.settings.tz
    lead = ctx.clock.now() + timedelta(hours=ctx.settings.tickets.deadline(2))
    beyond = (lead + timedelta(days=1)).astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    body = {"version": 1, "agency_id": root, "co_agency_ids": [q1]}
    r = await panel.client.post(
        f"{API}/tickets/{code}/forward", json={**body, "co_deadlines": {str(q1): beyond}},
        headers=sup,
    )  # fmt: skip
    assert r.status == 422, await r.text()
    refused = await r.json()
    field = f"co_deadlines.{q1}"
    assert list(refused["fields"]) == [field]
    assert refused["fields"][field].startswith("phải không muộn hơn hạn của đơn vị chủ trì")
    assert refused["labels"][field] == "Hạn xử lý của đơn vị phối hợp"
    # a deadline for an agency that is not a co-handling one: a conflict
    r = await panel.client.post(
        f"{API}/tickets/{code}/forward",
        json={**body, "co_deadlines": {str(q1 + root + 100): beyond}},
        headers=sup,
    )
    assert r.status == 409 and list((await r.json())["fields"]) == [
        f"co_deadlines.{q1 + root + 100}"
    ]
    # shape refused by the contract: not an agency's id
    r = await panel.client.post(
        f"{API}/tickets/{code}/forward", json={**body, "co_deadlines": {"abc": beyond}},
        headers=sup,
    )  # fmt: skip
    assert r.status == 422

    own = (ctx.clock.now() + timedelta(hours=20)).astimezone(tz).replace(second=0, microsecond=0)
    r = await panel.client.post(
        f"{API}/tickets/{code}/forward",
        json={**body, "co_deadlines": {str(q1): own.strftime("%Y-%m-%dT%H:%M")}},  # local time
        headers=sup,
    )
    assert r.status == 200, await r.text()
    version = (await r.json())["version"]
    r = await panel.client.get(f"{API}/tickets/{code}/parts", headers=sup)
    parts = {p["role"]: p for p in (await r.json())["items"]}
    assert parts["co"]["agency"]["id"] == q1
    got = datetime.fromisoformat(parts["co"]["deadline_at"].replace("Z", "+00:00"))
    assert got == own
    lead_got = datetime.fromisoformat(parts["lead"]["deadline_at"].replace("Z", "+00:00"))
    assert lead_got == lead

    # the lead (so-gtvt) is cleared, the co-agency q1 is not: no restricted topic now
    r = await panel.client.patch(
        f"{API}/tickets/{code}", json={"version": version, "topic": "corruption"}, headers=sup
    )
    assert r.status == 409, await r.text()
    said = (await r.json())["fields"]["topic"]
    assert "UBND Quận 1" in said
    r = await panel.client.get(f"{API}/tickets/{code}", headers=sup)
    assert (await r.json())["topic"] == "water"
    # the ticket page's edit form says it by the field
    csrf = await panel.login("sup")
    r = await panel.client.post(
        f"/tickets/{code}/edit",
        data={"_csrf": csrf, "version": str(version), "domain": "party"},
        allow_redirects=False,
    )
    assert r.status == 422
    err = re.search(r'id="err-domain">([^<]*)<', await r.text())
    assert err and "UBND Quận 1" in err.group(1) and "hạn chế" in err.group(1)
    # the agencies do not read the refusal in the history; the supervisors do
    r = await panel.client.get(f"{API}/tickets/{code}/history", headers=sup)
    assert "restriction_refused" in [e["action"] for e in (await r.json())["items"]]
    r = await panel.client.get(f"{API}/tickets/{code}/history", headers=officer)
    assert "restriction_refused" not in [e["action"] for e in (await r.json())["items"]]


# -- closing a ticket whose parts are open -----------------------------------------------


async def test_a_closed_tickets_open_parts_are_closed_and_alert_no_one_after(panel):
    ctx = panel.ctx
    q1, root = panel.agency_ids["q1"], panel.agency_ids["so-gtvt"]
    agent, sup = Actor.of(panel.users["agent1"]), Actor.of(panel.users["sup"])
    soon = ctx.clock.now() + timedelta(hours=5)

    async def two_agencies(text: str) -> Ticket:
        t = await ctx.tickets.create(
            agent,
            {"channel": "phone", "domain": "state", "topic": "traffic", "level": 2,
             "description": text},
        )  # fmt: skip
        return await ctx.tickets.forward(
            sup, t.id, 1, q1, co_agency_ids=[root], co_deadlines={root: soon}
        )

    closed = await two_agencies("Đèn tín hiệu hỏng ngã tư")
    kept = await two_agencies("Biển báo bị che khuất")  # the control: still with its agencies
    # the lead sends one back; the co-agency's part stays open; the supervisor closes it
    closed = await ctx.tickets.send_back(
        Actor.of(panel.users["officer_q1"]), closed.id, closed.version, "Không thuộc thẩm quyền"
    )
    closed = await ctx.tickets.close(sup, closed.id, closed.version, "Đã xử lý qua phiếu khác")
    [part] = await ctx.handling.parts(closed.id)
    assert (part.status, part.end_reason) == (State.CLOSED, "Đã xử lý qua phiếu khác")

    # the co-agency's officer reads that its part ended, and why (page and API)
    officer = await panel.token("officer")
    r = await panel.client.get(f"{API}/tickets/{closed.code}/parts", headers=officer)
    [co] = [p for p in (await r.json())["items"] if p["role"] == "co"]
    assert (co["status"], co["end_reason"], co["moves"]) == (
        "closed",
        "Đã xử lý qua phiếu khác",
        [],
    )
    page = await panel.new_client()
    try:
        await panel.login("officer", page)  # type: ignore[arg-type]
        text = await (await page.get(f"/tickets/{closed.code}")).text()
        assert "Kết thúc cùng phiếu" in text and "Đã xử lý qua phiếu khác" in text
    finally:
        await page.close()

    watch = OverdueWatch(
        ctx.tickets,
        ctx.agencies,
        ctx.bus,
        ctx.clock,
        interval=60,
        parts=ctx.handling,
        reminders=DeadlineReminders(ctx.db, ctx.settings, ctx.clock, ctx.bus),
    )
    assert watch.reminders is not None
    lead = kept.deadline_at
    assert lead is not None
    async with Heard(ctx.bus) as heard:
        # the co-agency's own deadline passes
        ctx.clock.advance(timedelta(hours=6))
        await watch.check()
        got = await heard.settle()
        # the leads' deadlines come near: the reminder
        ctx.clock.advance(lead - ctx.clock.now() - timedelta(hours=2))
        await watch.reminders.check(ctx.clock.now())
        got += await heard.settle()
        # and pass
        ctx.clock.advance(timedelta(hours=3))
        await watch.check()
        got += await heard.settle()
    # the ticket still with its agencies: its part overdue, its reminder, its escalation;
    # the closed ticket: never a word
    assert Heard.about(got, kept.code) == sorted(
        [
            (f"agency.{q1}", "deadline_soon"),
            (f"agency.{q1}", "overdue"),
            (f"agency.{root}", "overdue"),  # its part, then its sub-agency q1 escalated
            (f"agency.{root}", "overdue"),
            ("alerts", "overdue"),
            ("alerts", "overdue"),
        ]
    )
    assert Heard.about(got, closed.code) == []
    marks = [e.action for e in await ctx.ticket_queries.history(closed.id)]
    assert "part_escalated" not in marks and marks[-1] == "closed"

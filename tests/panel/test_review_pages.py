"""The review in the panel and the API, on a real server, Redis and both databases: the
reminder before a deadline (sent once, also across a restart, with a controlled clock),
files attached from the ticket page and who may fetch them, and the API's moves."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import UTC, datetime, timedelta

import aiohttp
from PIL import Image

from accounts.identity import Actor
from tickets.alerts import OverdueWatch
from tickets.models import Status, Ticket
from tickets.review.reminders import DeadlineReminders

API = "/api/v1"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def forwarded(panel, agency: str = "q1") -> Ticket:
    agent = Actor.of(panel.users["agent1"])
    return await panel.ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909000111",
            "domain": "state",
            "topic": "water",
            "level": 2,
            "description": "Cống nghẹt đầu hẻm 12",
            "agency_id": panel.agency_ids[agency],
        },
    )


def pdf_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 50), (30, 30, 200)).save(buf, format="PDF")
    return buf.getvalue()


# -- the reminder ------------------------------------------------------------------


async def test_a_reminder_goes_once_before_each_deadline(panel):
    ctx = panel.ctx
    child = panel.agency_ids["q1"]
    ticket = await forwarded(panel)
    assert ticket.deadline_at is not None
    before = timedelta(hours=ctx.settings.tickets.remind_before_hours)
    assert before == timedelta(hours=24)
    got: list[dict] = []
    ready = asyncio.Event()

    async def listen():
        async for _topic, data in ctx.bus.listen([f"agency.{child}"], ready):
            msg = json.loads(data)
            if msg["type"] == "deadline_soon":
                got.append(msg)

    def watch() -> OverdueWatch:
        # a fresh one each time: a restart of the process
        reminders = DeadlineReminders(ctx.db, ctx.settings, ctx.clock, ctx.bus)
        return OverdueWatch(
            ctx.tickets, ctx.agencies, ctx.bus, ctx.clock, 0.05, reminders=reminders
        )

    async def arrived(n: int) -> None:
        while len(got) < n:  # noqa: ASYNC110 - the bus's messages, polled
            await asyncio.sleep(0.02)

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    running = watch()
    await running.start()
    try:
        # a minute before the reminder is due: nothing, however often the watch runs
        ctx.clock.set(ticket.deadline_at - before - timedelta(minutes=1))
        await asyncio.sleep(0.4)
        assert got == []
        ctx.clock.advance(timedelta(minutes=2))
        await asyncio.wait_for(arrived(1), 5)
        await asyncio.sleep(0.4)  # the watch ran several times more
        assert len(got) == 1
        msg = got[0]
        assert (msg["code"], msg["agency_id"], msg["agency"]) == (ticket.code, child, "UBND Quận 1")
        assert msg["deadline_at"] == ticket.deadline_at.isoformat()
        assert 23.9 <= msg["hours_left"] <= 24
        await running.stop()

        # restarted: the reminder is stored, not sent again
        running = watch()
        await running.start()
        await asyncio.sleep(0.4)
        assert len(got) == 1

        # an extension granted is a new deadline: reminded again, once
        officer = Actor.of(panel.users["officer_q1"])
        sup = Actor.of(panel.users["sup"])
        until = ticket.deadline_at + timedelta(days=2)
        t = await ctx.review.request_extension(officer, ticket.id, ticket.version, until, "Chờ")
        t = await ctx.review.grant_extension(sup, t.id, t.version)
        assert t.deadline_at == until
        await asyncio.sleep(0.3)
        assert len(got) == 1
        ctx.clock.set(until - before + timedelta(minutes=1))
        await asyncio.wait_for(arrived(2), 5)
        await asyncio.sleep(0.3)
        assert len(got) == 2 and got[1]["deadline_at"] == until.isoformat()
    finally:
        await running.stop()
        task.cancel()
        await ctx.bus.stop_listening()


async def test_no_reminder_once_answered_or_with_no_reminders_set(panel):
    ctx = panel.ctx
    officer = Actor.of(panel.users["officer_q1"])
    ticket = await forwarded(panel)
    assert ticket.deadline_at is not None
    await ctx.tickets.answer(officer, ticket.id, ticket.version, "Đã xử lý")
    reminders = DeadlineReminders(ctx.db, ctx.settings, ctx.clock, ctx.bus)
    assert await reminders.check(ticket.deadline_at - timedelta(hours=1)) == []
    other = await forwarded(panel)
    assert other.deadline_at is not None
    off = ctx.settings.model_copy(
        update={"tickets": ctx.settings.tickets.model_copy(update={"remind_before_hours": 0})}
    )
    quiet = DeadlineReminders(ctx.db, off, ctx.clock, ctx.bus)
    assert await quiet.check(other.deadline_at - timedelta(hours=1)) == []
    assert [m["code"] for m in await reminders.check(other.deadline_at - timedelta(hours=1))] == [
        other.code
    ]


# -- attachments from the ticket page --------------------------------------------------


async def upload(client, code: str, csrf: str, name: str, data: bytes, content_type: str):
    form = aiohttp.FormData()
    form.add_field("_csrf", csrf)
    # a file object: aiohttp refuses a large bytes value as a form field
    form.add_field("attachment", io.BytesIO(data), filename=name, content_type=content_type)
    return await client.post(f"/tickets/{code}/attachments", data=form, allow_redirects=False)


async def test_an_officer_attaches_a_pdf_and_staff_download_it(panel):
    ctx = panel.ctx
    ticket = await forwarded(panel)
    other = await panel.new_client()
    try:
        csrf = await panel.login("officer_q1", other)  # type: ignore[arg-type]
        data = pdf_bytes()
        r = await upload(other, ticket.code, csrf, "bien-ban.pdf", data, "application/pdf")
        assert r.status == 303, await r.text()
        # a program renamed .pdf: refused, said next to the field, nothing stored
        exe = b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode." * 10
        r = await upload(other, ticket.code, csrf, "hoa-don.pdf", exe, "application/pdf")
        assert r.status == 422
        page = await r.text()
        err = re.search(r'<span class="field-error" id="err-attachment">([^<]*)</span>', page)
        assert err and "JPEG, PNG, WebP, PDF" in err.group(1), page
        # too large: refused naming the field, with the limit
        big = data + b"%" * ctx.settings.tickets.attachment_max_bytes
        r = await upload(other, ticket.code, csrf, "lon.pdf", big, "application/pdf")
        assert r.status == 422
        err = re.search(r'id="err-attachment">([^<]*)<', await r.text())
        assert err and "10 MB" in err.group(1)
    finally:
        await other.close()
    [a] = await ctx.ticket_queries.attachments(ticket.id)
    assert (a.content_type, a.kind, a.original_name) == (
        "application/pdf",
        "document",
        "bien-ban.pdf",
    )
    assert a.added_by == panel.users["officer_q1"].id

    await panel.login("agent1")
    page = await (await panel.client.get(f"/tickets/{ticket.code}")).text()
    href = f"/tickets/{ticket.code}/attachments/{a.id}"
    assert f'href="{href}" class="attachment document" download' in page
    assert f'<img src="{href}"' not in page, "a document is never shown inline"
    got = await panel.client.get(href)
    assert got.status == 200 and got.headers["Content-Type"] == "application/pdf"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"] == (
        f'attachment; filename="{ticket.code}-{a.id[:8]}.pdf"'
    )
    assert await got.read() == data
    # an officer of another agency may not fetch it
    stranger = await panel.new_client()
    try:
        await panel.login("officer", stranger)  # type: ignore[arg-type]
        r = await stranger.get(href, allow_redirects=False)
        assert r.status in (403, 404)
        csrf = await panel.csrf(stranger)  # type: ignore[arg-type]
        r = await upload(stranger, ticket.code, csrf, "x.pdf", pdf_bytes(), "application/pdf")
        assert r.status in (403, 404)
    finally:
        await stranger.close()
    assert len(await ctx.ticket_queries.attachments(ticket.id)) == 1


async def test_only_the_upload_route_takes_a_large_body(panel):
    csrf = await panel.login("sup")
    ticket = await forwarded(panel)
    r = await panel.client.post(
        f"/tickets/{ticket.code}/comment",
        data={"_csrf": csrf, "note": "x" * 400_000},
        allow_redirects=False,
    )
    assert r.status == 413


# -- the API -------------------------------------------------------------------------


async def test_the_api_refuses_an_answer_and_decides_an_extension(panel):
    ticket = await forwarded(panel)
    officer = await panel.token("officer_q1")
    sup = await panel.token("sup")
    c = panel.client
    r = await c.post(
        f"{API}/tickets/{ticket.code}/answer",
        json={"version": ticket.version, "result": "Đã xử lý"},
        headers=officer,
    )
    assert r.status == 200, await r.text()
    t = await r.json()
    r = await c.post(
        f"{API}/tickets/{ticket.code}/refuse_answer",
        json={"version": t["version"], "reason": "Thiếu ảnh hiện trường"},
        headers=officer,
    )
    assert r.status == 403
    r = await c.post(
        f"{API}/tickets/{ticket.code}/refuse_answer",
        json={"version": t["version"], "reason": ""},
        headers=sup,
    )
    assert r.status == 422 and "reason" in await r.text()
    r = await c.post(
        f"{API}/tickets/{ticket.code}/refuse_answer",
        json={"version": t["version"], "reason": "Thiếu ảnh hiện trường"},
        headers=sup,
    )
    assert r.status == 200, await r.text()
    t = await r.json()
    assert t["status"] == Status.ACCEPTED and t["result"] is None
    until = "2030-01-02T17:00:00+07:00"
    r = await c.post(
        f"{API}/tickets/{ticket.code}/request_extension",
        json={"version": t["version"], "until": until, "reason": "Chờ vật tư"},
        headers=officer,
    )
    assert r.status == 200, await r.text()
    t = await r.json()
    assert when(t["extension_until"]) == datetime(2030, 1, 2, 10, 0, tzinfo=UTC)
    r = await c.post(
        f"{API}/tickets/{ticket.code}/grant_extension",
        json={"version": t["version"] - 1},
        headers=sup,
    )
    assert r.status == 409
    r = await c.post(
        f"{API}/tickets/{ticket.code}/grant_extension",
        json={"version": t["version"], "note": "Đồng ý"},
        headers=sup,
    )
    assert r.status == 200, await r.text()
    t = await r.json()
    assert when(t["deadline_at"]) == datetime(2030, 1, 2, 10, 0, tzinfo=UTC)
    assert t["extension_until"] is None
    r = await c.post(
        f"{API}/tickets/{ticket.code}/refuse_extension",
        json={"version": t["version"], "reason": "Không"},
        headers=sup,
    )
    assert r.status == 409, "nothing open to refuse"

"""The ticket page tells each result call try in words, in Vietnamese, with the answered
try's recording linked (the calls themselves are tested in tests/tickets)."""

from __future__ import annotations

import html
import re

from accounts.identity import Actor
from callcenter.models import Result
from tests.tickets.test_result_calls import enabled
from tickets.result_calls import ResultCallService
from tickets.service import TicketService


async def test_the_history_shows_each_try_and_links_the_recording(panel):
    ctx = panel.ctx
    settings = enabled(ctx.settings)
    svc = TicketService(ctx.db, settings, ctx.clock)
    calls = ResultCallService(ctx.db, settings, ctx.clock)
    sup = Actor.of(panel.users["sup"])
    officer = Actor.of(panel.users["officer"])
    t = await svc.create(
        sup,
        {
            "channel": "phone",
            "citizen_phone": "0901234567",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Cống bị tắc",
            "agency_id": panel.agency_ids["so-gtvt"],
        },
    )
    t = await svc.answer(officer, t.id, t.version, "Đã nạo vét")
    (due,) = await calls.due()
    await calls.claim(due.id, "rc-page-1")
    await calls.not_answered("rc-page-1", Result.NO_ANSWER)
    (job,) = await calls.for_ticket(t.id)
    ctx.clock.set(job.next_attempt_at)
    claimed = await calls.claim(job.id, "rc-page-2")
    assert claimed is not None
    await calls.answered("rc-page-2", claimed.recording_base)
    (job,) = await calls.for_ticket(t.id)

    await panel.login("sup")
    page = html.unescape(await (await panel.client.get(f"/tickets/{t.code}")).text())
    said = re.sub(r"<[^>]+>", "", page)
    assert "system cuộc gọi báo kết quả: không nghe máy (lần gọi 1 trên 3)" in said
    assert "system cuộc gọi báo kết quả: đã trả lời (lần gọi 2 trên 3)" in said
    assert f'<a href="/recordings/{job.call_id}">▶ Nghe lại</a>' in page

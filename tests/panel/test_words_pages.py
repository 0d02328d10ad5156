"""Pages that showed identifiers now show words: the accounts page's field errors,
a ticket's history, a recorded call's menu path, the reports' queues.

Through the aiohttp test client on the real panel, SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta

from accounts.identity import Actor
from tests.helpers import queued_call
from tests.panel.test_error_pages import english, page_text


async def test_the_accounts_page_names_a_refused_field_by_its_label(panel):
    csrf = await panel.login("admin")
    me = panel.users["admin"].id
    data = {"_csrf": csrf, "do": "save", "display_name": "Quản trị", "role": "agent"}
    r = await panel.client.post(f"/admin/users/{me}", data=data)
    body = await r.text()
    assert r.status == 422
    assert (
        '<span id="err-role">Vai trò: không thể tự bỏ quyền quản trị của chính mình</span>' in body
    )
    assert "role:" not in page_text(body)
    await english(panel)
    r = await panel.client.post(f"/admin/users/{me}", data={**data, "_csrf": await panel.csrf()})
    assert "Role: you cannot remove your own admin access" in page_text(await r.text())


async def test_a_late_answer_reads_as_words_in_the_history(panel):
    ctx = panel.ctx
    agent, sup = Actor.of(panel.users["agent1"]), Actor.of(panel.users["sup"])
    officer = Actor.of(panel.users["officer"])
    t = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_phone": "0909123456",
            "domain": "state",
            "topic": "trees",
            "level": 2,
            "description": "Cây đổ trên đường Lê Lợi",
        },
    )
    t = await ctx.tickets.forward(sup, t.id, t.version, panel.agency_ids["so-gtvt"], None)
    t = await ctx.tickets.accept(officer, t.id, t.version)
    ctx.clock.advance(timedelta(days=30))  # long past the deadline
    await ctx.tickets.answer(officer, t.id, t.version, "Đã dọn cây")
    await panel.login("sup")
    text = page_text(await (await panel.client.get(f"/tickets/{t.code}")).text())
    assert "Trả lời trễ hạn: có" in text
    assert "late" not in text and "True" not in text


async def _recorded_call(ctx) -> int:  # type: ignore[no-untyped-def]
    uid = "pbx-1795344777.5"
    now = ctx.clock.now()
    await queued_call(
        ctx.calls,
        uid,
        "0909444333",
        started=now - timedelta(minutes=3),
        path="3:invalid > 1:agent",
        waited=timedelta(minutes=1),
    )
    await ctx.calls.caller_abandoned(uniqueid=uid, hold_seconds=60)
    return (await ctx.calls.get(uid)).id


async def test_a_recorded_call_shows_the_menu_path_and_reports_name_the_queue(panel):
    call_id = await _recorded_call(panel.ctx)
    await panel.login("sup")
    body = await (await panel.client.get(f"/recordings/{call_id}")).text()
    menu = re.search(r'<dd id="menu-path">(.*?)</dd>', body)
    assert menu and menu.group(1) == "Bấm sai phím 3 → Phản ánh, kiến nghị (phím 1)"
    assert "Gác máy khi đang chờ" in page_text(body)  # its outcome, as before

    day = panel.ctx.clock.now().astimezone(panel.ctx.settings.tz).date().isoformat()
    body = await (await panel.client.get(f"/reports/daily?day={day}")).text()
    assert '<th scope="row">Tổng đài 1022 · Ca sáng</th>' in body
    assert '<th scope="row">t1022-morning</th>' not in body

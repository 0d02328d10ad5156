"""Quality grading through the panel (HTML forms and the JSON API) on real Redis and real
SQLite / PostgreSQL: who may do what, the scorecard form's errors, grading and the
agent's dispute by the API, the weekly draw, the calibration page, the quality report
and its CSV, and the weekly report's quality section."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

from accounts.identity import Actor
from tests.panel.recorded import add_call

API = "/api/v1"
CRITERIA = [
    {"label": "Chào hỏi", "weight": 1},
    {"label": "Lắng nghe", "weight": 3},
    {"label": "Thông tin đúng", "fatal": True},
]


async def as_(panel: Any, who: str) -> str:
    """Sign ``who`` in on the test client, whoever was signed in before."""
    panel.client.session.cookie_jar.clear()
    return await panel.login(who)


async def api(panel: Any, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
    r = await panel.client.request(method, API + path, json=body, headers=await panel.token(who))
    return r.status, await r.json() if r.content_type == "application/json" else None


async def test_roles_of_the_quality_pages(panel: Any) -> None:
    c = panel.client
    await as_(panel, "sup")
    for path in ("/qa", "/qa?done=1", "/qa/draws", "/qa/disputes", "/qa/calibration", "/qa/report"):
        r = await c.get(path)
        assert r.status == 200, (path, await r.text())
    assert (await c.get("/qa/scorecards")).status == 403  # admins define scorecards
    assert (await c.get("/qa/mine")).status == 403
    await as_(panel, "admin")
    assert (await c.get("/qa/scorecards")).status == 200
    await as_(panel, "agent1")
    r = await c.get("/qa", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/qa/mine"
    assert (await c.get("/qa/mine")).status == 200
    for path in ("/qa/draws", "/qa/disputes", "/qa/report.csv", "/qa/calibration"):
        assert (await c.get(path)).status == 403, path
    await as_(panel, "officer")
    assert (await c.get("/qa/mine")).status == 403


async def test_scorecard_form_names_the_refused_fields_and_versions(panel: Any) -> None:
    c = panel.client
    token = await as_(panel, "admin")
    r = await c.post(
        "/qa/scorecards",
        data={"_csrf": token, "name": "", "label_0": "Chào hỏi", "weight_0": "0"},
    )
    assert r.status == 422
    page = await r.text()
    assert 'id="err-name"' in page and 'id="err-criteria[0].weight"' in page
    assert 'value="Chào hỏi"' in page  # nothing typed is lost
    r = await c.post(
        "/qa/scorecards",
        data={
            "_csrf": token,
            "name": "Phiếu",
            "label_0": "Chào hỏi",
            "weight_0": "2",
            "label_1": "Thông tin đúng",
            "fatal_1": "1",
        },
        allow_redirects=False,
    )
    assert r.status == 303
    (card,) = await panel.ctx.qa.scorecards()
    assert [(k.id, k.weight, k.fatal) for k in card.criteria] == [
        ("chao_hoi", 2, False),
        ("thong_tin_dung", 0, True),
    ]
    # editing keeps the ids (hidden fields) and makes version 2
    r = await c.post(
        f"/qa/scorecards/{card.id}",
        data={
            "_csrf": token,
            "name": "Phiếu",
            "active": "1",
            "id_0": "chao_hoi",
            "label_0": "Chào hỏi theo mẫu",
            "weight_0": "2",
            "id_1": "thong_tin_dung",
            "label_1": "Thông tin đúng",
            "fatal_1": "1",
        },
        allow_redirects=False,
    )
    assert r.status == 303
    card = await panel.ctx.qa.scorecard(card.id)
    assert card.version == 2 and card.criteria[0].id == "chao_hoi"


async def test_grade_dispute_and_resolve_through_the_api(panel: Any) -> None:
    ctx = panel.ctx
    status, card = await api(
        panel, "POST", "/qa/scorecards", "admin", {"name": "Phiếu", "criteria": CRITERIA}
    )
    assert status == 201, card
    assert [c["id"] for c in card["criteria"]] == ["chao_hoi", "lang_nghe", "thong_tin_dung"]
    status, _ = await api(
        panel, "POST", "/qa/scorecards", "sup", {"name": "x", "criteria": CRITERIA}
    )
    assert status == 403
    call = await add_call(ctx, None, started=ctx.clock.now() - timedelta(hours=1), agent="1001")
    marks = {"chao_hoi": 4, "lang_nghe": 2, "thong_tin_dung": 1}
    body = {"version_id": card["version_id"], "marks": marks, "summary": "Hỏi lại địa chỉ"}
    status, grade = await api(panel, "POST", f"/qa/calls/{call.id}/grade", "sup", body)
    assert status == 200, grade
    assert (grade["score"], grade["fatal"]) == (62.5, False)
    status, err = await api(
        panel,
        "POST",
        f"/qa/calls/{call.id}/grade",
        "admin",
        {"version_id": card["version_id"], "marks": {**marks, "lang_nghe": None, "chao_hoi": None}},
    )
    assert status == 422 and set(err["fields"]) == {"marks"}
    status, err = await api(panel, "POST", f"/qa/calls/{call.id}/grade", "agent1", body)
    assert status == 403
    status, _ = await api(panel, "POST", "/qa/calls/999999/grade", "sup", body)
    assert status == 404
    status, note = await api(
        panel, "POST", f"/qa/calls/{call.id}/comments", "sup", {"at": 2.5, "text": "Ở đây"}
    )
    assert status == 201 and note["at"] == 2.5

    # the agent reads their own call's grades, another agent nothing
    status, mine = await api(panel, "GET", f"/qa/calls/{call.id}/grades", "agent1")
    assert status == 200 and [g["score"] for g in mine["items"]] == [62.5]
    status, theirs = await api(panel, "GET", f"/qa/calls/{call.id}/grades", "agent2")
    assert status == 200 and theirs["items"] == []
    gid = grade["grade_id"]
    status, _ = await api(panel, "POST", f"/qa/grades/{gid}/dispute", "agent2", {"reason": "x"})
    assert status == 404
    status, disputed = await api(
        panel, "POST", f"/qa/grades/{gid}/dispute", "agent1", {"reason": "Tôi đã hỏi lại"}
    )
    assert status == 200 and disputed["dispute_state"] == "open"
    status, again = await api(panel, "POST", f"/qa/grades/{gid}/dispute", "agent1", {"reason": "y"})
    assert status == 409 and again["reason"] == "disputed"
    status, done = await api(panel, "POST", f"/qa/grades/{gid}/resolve", "sup", {"note": "Giữ"})
    assert status == 200 and (done["dispute_state"], done["score"]) == ("upheld", 62.5)
    status, _ = await api(panel, "POST", f"/qa/grades/{gid}/resolve", "sup", {"note": "x"})
    assert status == 409

    # the agent's page lists it; the replay page shows the grade and the comment
    await as_(panel, "agent1")
    page = await (await panel.client.get("/qa/mine")).text()
    assert f'data-call="{call.id}"' in page and "62.5" in page
    page = await (await panel.client.get(f"/recordings/{call.id}")).text()
    assert 'id="qa"' in page, page
    assert "Hỏi lại địa chỉ" in page and '<li data-at="2.50">' in page
    await as_(panel, "agent2")
    assert (await panel.client.get(f"/recordings/{call.id}")).status == 403


async def test_the_draw_by_the_api_and_its_page(panel: Any) -> None:
    ctx = panel.ctx
    now = ctx.clock.now()
    calls = [
        await add_call(ctx, None, started=now - timedelta(hours=h), agent="1001")
        for h in (1, 2, 3, 4)
    ]
    week = now.astimezone(ctx.settings.tz).date().isoformat()
    status, draw = await api(panel, "POST", "/qa/draws", "agent1", {"week": week})
    assert status == 403
    status, draw = await api(panel, "POST", "/qa/draws", "sup", {"week": week})
    assert status == 201, draw
    # calls of this week that started before now: three of the four at most (per agent)
    assert draw["picked"] == min(3, sum(1 for c in calls if c.started_at >= week_start(ctx)))
    status, again = await api(panel, "POST", "/qa/draws", "admin", {"week": week})
    assert status == 409 and again["reason"] == "drawn"
    status, work = await api(panel, "GET", "/qa/worklist", "sup")
    assert status == 200 and len(work["items"]) == draw["picked"]
    assert {w["reason"] for w in work["items"]} <= {"random"}
    await as_(panel, "sup")
    page = await (await panel.client.get("/qa/draws")).text()
    assert draw["seed"] in page and "chạy lại cho cùng kết quả" in page


def week_start(ctx: Any) -> Any:
    from core.clock import local_midnight
    from qa.service import week_of

    today = ctx.clock.now().astimezone(ctx.settings.tz).date()
    return local_midnight(week_of(today), ctx.settings.tz)


async def test_calibration_report_csv_and_weekly_report(panel: Any) -> None:
    ctx = panel.ctx
    admin = Actor.of(panel.users["admin"])
    sup = Actor.of(panel.users["sup"])
    card = await ctx.qa.create_scorecard(admin, "Phiếu", CRITERIA)
    started = week_start(ctx) + timedelta(hours=1)
    if started > ctx.clock.now():  # the fixture's clock is "now": keep the call in the past
        started = ctx.clock.now() - timedelta(minutes=5)
    call = await add_call(ctx, None, started=started, agent="1001")
    await ctx.qa.grade(
        sup, call.id, card.version_id, {"chao_hoi": 4, "lang_nghe": 2, "thong_tin_dung": 1}
    )
    await ctx.qa.grade(
        admin, call.id, card.version_id, {"chao_hoi": 4, "lang_nghe": 4, "thong_tin_dung": 1}
    )

    await as_(panel, "sup")
    page = await (await panel.client.get("/qa/calibration")).text()
    agree = re.findall(r'<td class="agree">([^<]*)</td>', page)
    assert agree[:3] == ["100%", "0%", "100%"]  # the summary: greeting, listening, fatal

    day = started.astimezone(ctx.settings.tz).date().isoformat()
    r = await panel.client.get(f"/qa/report.csv?from={day}&to={day}&by=agent")
    assert r.status == 200 and r.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    assert len(rows[0]) == 5  # week, agent, grades, average, fatal fails
    assert rows[1][1:] == ["Nguyễn Thị Lan", "2", "81.2", "0"]  # (62.5 + 100) / 2
    r = await panel.client.get(f"/qa/report?from={day}&to={day}&by=criterion")
    assert "Lắng nghe" in await r.text()
    assert (await panel.client.get("/qa/report?by=hotline")).status == 400

    page = await (await panel.client.get(f"/reports/weekly?week={day}")).text()
    table = page.split('id="quality-table"')[1].split("</table>")[0]
    assert 'data-group="agent" data-key="1001"' in table
    assert '<td data-k="average">81.2</td>' in table
    assert "quality" in page and "section=quality" in page
    r = await panel.client.get(f"/reports/weekly.csv?week={day}&section=quality&by=shift")
    assert r.status == 200
    rows = list(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    assert rows[1][1:] == ["Ca sáng", "2", "81.2", "0"]

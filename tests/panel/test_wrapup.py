"""Wrap-up codes through the panel: the JSON API (roles, 404/409/422 and what they say),
the workspace's form, the pop that shows the code and the refusal to resume while the
last call has none."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

from tests.panel.test_api import API, call, panel, tokens  # noqa: F401  (the fixture)

__all__ = ["panel"]


async def answered(panel: Any, uniqueid: str, ext: str, *, minutes_ago: int = 2) -> int:
    """A call of the morning queue answered by ``ext`` and hung up a minute later."""
    from tests.panel.conftest import waiting_call

    c = panel.ctx
    joined = await waiting_call(c, uniqueid, "0901234567", minutes_ago)
    await c.calls.agent_connected(
        uniqueid=uniqueid,
        queue="t1022-morning",
        interface=f"PJSIP/{ext}",
        member_name=None,
        hold_seconds=5,
        at=joined + timedelta(seconds=5),
        recording_base=None,
    )
    await c.calls.hung_up(
        uniqueid=uniqueid, at=joined + timedelta(minutes=1), queue_status=None, cause="16"
    )
    return (await c.calls.get(uniqueid)).id


async def test_the_api_sets_the_code_of_the_agents_own_call(panel):  # noqa: F811
    agent1, agent2, sup = await tokens(panel, "agent1", "agent2", "sup")
    call_id = await answered(panel, "pbx-w.1", "1001")
    path = f"{API}/calls/{call_id}/wrapup"
    done = await call(panel, "POST", path, agent1, {"wrapup_code": "prank"})
    assert done["call_id"] == call_id and done["wrapup_code"] == "prank"
    assert done["content"] is False and done["wrapup_by"] == "Agent1"
    # not a configured code: refused by the document, naming the field
    bad = await call(panel, "POST", path, agent1, {"wrapup_code": "banana"}, 422)
    assert set(bad["fields"]) == {"wrapup_code"}
    # another agent's call does not exist for agent2; nor does a call that does not
    missing = await call(panel, "POST", path, agent2, {"wrapup_code": "ticket"}, 404)
    assert missing["error"]
    await call(panel, "POST", f"{API}/calls/999999/wrapup", agent1, {"wrapup_code": "ticket"}, 404)
    # a supervisor corrects it; then the agent may not change it back
    fixed = await call(panel, "POST", path, sup, {"wrapup_code": "abusive"})
    assert fixed["wrapup_by"] == "Sup"
    refused = await call(panel, "POST", path, agent1, {"wrapup_code": "ticket"}, 409)
    assert "supervisor" in refused["error"].lower() or "giám sát" in refused["error"].lower()
    stored = await panel.ctx.calls.by_id(call_id)
    assert (stored.wrapup_code, stored.wrapup_by) == ("abusive", "Sup")
    # change_minutes (30) after the hang-up the agent is too late for their next call
    later = await answered(panel, "pbx-w.2", "1001", minutes_ago=40)
    late = await call(
        panel, "POST", f"{API}/calls/{later}/wrapup", agent1, {"wrapup_code": "ticket"}, 409
    )
    assert late["error"]
    # the document lists the configured codes, and only those
    doc = await call(panel, "GET", "/api/openapi.json")
    allowed = doc["components"]["schemas"]["WrapupIn"]["properties"]["wrapup_code"]["enum"]
    assert allowed == [c.id for c in panel.ctx.settings.wrapup.codes]


async def test_the_workspace_insists_on_the_code_before_the_next_call(panel):  # noqa: F811
    c = panel.ctx
    bearer = await panel.token("agent1")
    csrf = await panel.login("agent1")
    call_id = await answered(panel, "pbx-w.3", "1001")
    pop = {"type": "pop", "uniqueid": "pbx-w.3", "call_id": call_id, "phase": "ended"}
    await c.bus.keep("pop.1001", pop, 60)
    await c.bus.keep(
        "state.1001", {"extension": "1001", "state": "paused", "paused": True, "reason": "meal"}, 60
    )
    page = await (await panel.client.get("/agent")).text()
    assert 'id="pop-wrapup"' in page and 'value="wrong_number"' in page
    # paused for a meal, the last call without a code: resuming is refused, saying why
    r = await panel.client.post("/agent/resume", data={"_csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    flash = r.cookies["hotline_flash"].value
    assert "mã kết thúc" in flash
    assert panel.control.calls == []
    # an unknown code is refused with a message, nothing stored
    r = await panel.client.post(
        "/agent/wrapup",
        data={"_csrf": csrf, "call_id": str(call_id), "code": "banana"},
        allow_redirects=False,
    )
    assert r.status == 303 and r.cookies["hotline_flash"].value
    assert (await c.calls.by_id(call_id)).wrapup_code is None
    r = await panel.client.post(
        "/agent/wrapup",
        data={"_csrf": csrf, "call_id": str(call_id), "code": "informed"},
        allow_redirects=False,
    )
    assert r.status == 303 and "hotline_flash" not in r.cookies
    assert (await c.calls.by_id(call_id)).wrapup_code == "informed"
    # the kept pop says so (a reload, another tab), and resuming now works
    assert (await c.bus.kept("pop.1001"))["wrapup_code"] == "informed"
    r = await panel.client.post("/agent/resume", data={"_csrf": csrf}, allow_redirects=False)
    assert r.status == 303 and "hotline_flash" not in r.cookies
    assert panel.control.calls == [("resume", "1001", "")]
    state = await call(panel, "GET", f"{API}/agent/state", bearer)
    assert state["pop"]["wrapup_code"] == "informed"


async def test_the_daily_report_its_csv_and_metrics_count_the_codes(panel):  # noqa: F811
    c = panel.ctx
    (agent1,) = await tokens(panel, "agent1")
    for n, code in enumerate(("ticket", "prank", None)):
        call_id = await answered(panel, f"pbx-w.r{n}", "1001")
        if code:
            await call(
                panel, "POST", f"{API}/calls/{call_id}/wrapup", agent1, {"wrapup_code": code}
            )
    day = c.clock.now().astimezone(c.settings.tz).date().isoformat()
    await panel.login("sup")
    page = await (await panel.client.get(f"/reports/daily?day={day}")).text()
    total = re.search(
        r'<tr data-group="total" data-key="">(.*?)</tr>', page.split('id="wrapup-table"')[1], re.S
    )
    assert total is not None
    row = total.group(1)
    assert '<td data-k="answered">3</td>' in row
    assert '<td data-k="with_content">1</td>' in row
    assert '<td data-k="content_share">33.3 %</td>' in row
    assert '<td data-k="no_code">1</td>' in row
    assert '<td data-code="prank">1</td>' in row
    assert 'data-group="agent" data-key="1001"' in page
    r = await panel.client.get(f"/reports/daily.csv?day={day}&section=wrapup")
    assert r.status == 200
    text = (await r.text()).lstrip("\ufeff")
    head, *rows = list(csv.reader(io.StringIO(text)))
    assert head[:3] == ["Theo", "Nhóm", "Đã trả lời"] and "Đã tạo phiếu" in head
    first = dict(zip(head, rows[0], strict=True))
    assert first["Theo"] == "total" and first["Tỷ lệ cuộc gọi có nội dung (%)"] == "33.3"
    metrics = await (await panel.client.get("/metrics")).text()
    assert 'hotline_wrapup_calls_total{code="prank",content="false"} 1.0' in metrics
    assert 'hotline_wrapup_calls_total{code="silent",content="false"} 0.0' in metrics
    assert 'hotline_wrapup_today_content_share_percent{group="agent",key="1001"} 33.3' in metrics

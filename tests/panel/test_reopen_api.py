"""Reopening through the JSON API: who may, from where, with a reason named when missing."""

from __future__ import annotations

from tests.panel.test_api import API, act, call, new_ticket, tokens


async def test_reopen_through_the_api(panel):
    agent, agent2, officer, sup = await tokens(panel, "agent1", "agent2", "officer", "sup")
    root = panel.agency_ids["so-gtvt"]
    t = await new_ticket(panel, agent, level=2, agency_id=root)
    assert t["reopens"] == 0
    # still with the agency: nothing to reopen
    await act(panel, sup, t, "reopen", 409, reason="Chưa hài lòng")
    t = await act(panel, officer, t, "answer", result="Đã sửa đèn.")
    # another agent's ticket, the agency: not theirs to reopen
    await act(panel, agent2, t, "reopen", 403, reason="x")
    await call(panel, "POST", f"{API}/tickets/{t['code']}/reopen", officer, {}, 403)
    missing = await act(panel, agent, t, "reopen", 422, reason="  ")
    assert set(missing["fields"]) == {"reason"}
    t = await act(panel, agent, t, "reopen", reason="Công dân gọi lại: đèn vẫn hỏng")
    assert t["status"] == "reopened" and t["reopens"] == 1 and t["closed_at"] is None
    history = await call(panel, "GET", f"{API}/tickets/{t['code']}/history", sup)
    last = history["items"][-1]
    assert last["action"] == "reopened" and last["from_status"] == "answered"
    assert last["details"]["reopen_reason"] == "Công dân gọi lại: đèn vẫn hỏng"
    # the supervisors forward it again
    t = await act(panel, sup, t, "forward", agency_id=root, note="Giao lại")
    assert t["status"] == "forwarded" and t["reopens"] == 1

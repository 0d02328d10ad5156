"""Transfers through the panel (JSON API and the workspace's form) on real SQLite and
PostgreSQL, with no telephone system: the targets listed, each refusal with its
reason and field, the chain read back, and the workspace's transfer form.  The real
calls are in tests/callcenter/test_transfer_calls.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from callcenter.models import Call, CallTransfer
from tests.helpers import queued_call
from tests.panel.test_api import API, call, tokens


async def talking_call(panel: Any, uniqueid: str, ext: str) -> int:
    ctx = panel.ctx
    now = datetime.now(UTC)
    await queued_call(ctx.calls, uniqueid, "0901234567", started=now - timedelta(minutes=1))
    await ctx.calls.agent_connected(
        uniqueid=uniqueid,
        queue="t1022-morning",
        interface=f"PJSIP/{ext}",
        member_name=None,
        hold_seconds=3,
        at=now - timedelta(seconds=30),
        recording_base=None,
    )
    async with ctx.db.session() as s:
        return int((await s.scalar(select(Call.id).where(Call.uniqueid == uniqueid))) or 0)


async def test_targets_are_listed_for_staff_with_agencies_of_the_directory(panel):
    agent, officer = await tokens(panel, "agent1", "officer")
    await call(
        panel, "PATCH", f"{API}/agencies/{panel.agency_ids['q1']}", await panel.token("admin"),
        {"version": 1, "phone": "028 3829 0451"},
    )  # fmt: skip
    items = (await call(panel, "GET", f"{API}/transfer-targets", agent))["items"]
    ids = {t["id"]: t for t in items}
    assert ids[f"agency:{panel.agency_ids['q1']}"]["number"] == "02838290451"
    assert f"agency:{panel.agency_ids['so-gtvt']}" not in ids, "no phone: no target"
    assert {"queue:party", "phone:1901", "emergency:113", "agent:1002"} <= set(ids)
    await call(panel, "GET", f"{API}/transfer-targets", officer, None, 403)


async def test_refusals_name_their_reason_and_write_no_chain(panel):
    agent1, agent2, sup = await tokens(panel, "agent1", "agent2", "sup")
    call_id = await talking_call(panel, "pbx-77.1", "1001")
    path = f"{API}/calls/{call_id}/transfers"
    bad = await call(panel, "POST", path, agent1, {"target": "emergency:0901234567"}, 409)
    assert bad["reason"] == "unknown_target" and "target" in bad["fields"]
    bad = await call(panel, "POST", path, agent1, {"target": "0901234567"}, 422)
    assert "target" in bad["fields"]
    bad = await call(panel, "POST", path, agent1, {"target": "queue:party", "kind": "x"}, 422)
    assert "kind" in bad["fields"]
    mine = await call(panel, "POST", path, agent2, {"target": "queue:party"}, 409)
    assert mine["reason"] == "not_yours" and mine["error"]
    # the agent and a supervisor reach Asterisk, which is not there
    for who in (agent1, sup):
        away = await call(panel, "POST", path, who, {"target": "queue:party"}, 503)
        assert away["reason"] == "unavailable"
    over = await call(panel, "POST", f"{API}/calls/999999/transfers", agent1,
                      {"target": "queue:party"}, 409)  # fmt: skip
    assert over["reason"] == "not_in_call"
    for action in ("complete", "cancel"):
        none = await call(panel, "POST", f"{API}/transfers/1/{action}", agent1, None, 409)
        assert none["reason"] == "no_consultation"
    chain = await call(panel, "GET", f"{API}/calls/{call_id}/transfers", agent1)
    assert chain == {"items": []}
    await call(panel, "GET", f"{API}/calls/{call_id}/transfers", agent2, None, 404)
    async with panel.ctx.db.session() as s:
        assert (await s.scalars(select(CallTransfer))).all() == []


async def test_the_chain_is_read_back_by_the_agents_in_it(panel):
    agent1, agent2, sup = await tokens(panel, "agent1", "agent2", "sup")
    call_id = await talking_call(panel, "pbx-77.2", "1002")
    at = datetime.now(UTC)
    async with panel.ctx.db.session() as s:
        s.add(
            CallTransfer(
                call_id=call_id, call_uniqueid="pbx-77.2", kind="blind", target_kind="queue",
                target="party", target_label="Đường dây nóng Thành ủy", number=None,
                from_extension="1001", user_id=None, username="Agent1", note="Hỏi Thành ủy",
                draft=None, requested_at=at, done_at=at, result="transferred",
                detail="party-morning",
            )
        )  # fmt: skip
    for who in (agent1, agent2, sup):
        (link,) = (await call(panel, "GET", f"{API}/calls/{call_id}/transfers", who))["items"]
        assert link["target"] == "queue:party" and link["by"] == "Agent1"
        assert link["from_extension"] == "1001" and link["note"] == "Hỏi Thành ủy"
        assert link["result"] == "transferred" and link["kind"] == "blind"


async def test_the_workspace_offers_the_targets_and_says_why_a_transfer_failed(panel):
    client = panel.client
    csrf = await panel.login("agent1")
    page = await (await client.get("/agent")).text()
    assert 'id="pop-transfer"' in page and 'value="queue:party"' in page
    assert 'value="emergency:113"' in page and 'id="transfer-consult"' in page
    call_id = await talking_call(panel, "pbx-77.3", "1001")
    r = await client.post(
        "/agent/transfer",
        data={"_csrf": csrf, "call_id": str(call_id), "target": "0901234567", "kind": "blind"},
        allow_redirects=False,
    )
    assert r.status == 303 and r.headers["Location"] == "/agent"
    assert "hotline_flash" in r.cookies

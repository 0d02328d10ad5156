"""Repeat reports through the JSON API, on SQLite and PostgreSQL: the suggestions while a
report is written, linking by code or number, the group, unlinking, and what is refused."""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.panel.test_api import API, call, new_ticket, panel, tokens  # noqa: F401


async def report(panel: Any, headers: dict[str, str], text: str, phone: str, **kw: Any) -> Any:
    fields = {"description": text, "citizen_phone": phone, "citizen_address": None, "level": 2}
    return await new_ticket(panel, headers, **fields, **kw)


FLOOD = "Ngập nước sâu trên đường Nguyễn Hữu Cảnh, xe máy chết máy hàng loạt"


async def test_an_agent_is_offered_the_earlier_report_and_links_the_new_one(panel: Any):
    agent, other, sup = await tokens(panel, "agent1", "agent2", "sup")
    first = await report(panel, other, FLOOD, "0901000001", topic="flooding")
    await report(panel, other, "Cây đổ chắn ngang đường Lê Lợi", "0901000002", topic="trees")

    # typed without diacritics, as the citizen says it
    query = "description=ngap+nuoc+duong+nguyen+huu+canh&topic=flooding"
    found = await call(panel, "GET", f"{API}/repeats/suggestions?{query}", agent)
    assert [x["ticket"]["code"] for x in found["items"]] == [first["code"]]
    assert found["items"][0]["reasons"] == ["text", "topic"]
    assert found["items"][0]["reports"] == 1
    bad = await call(panel, "GET", f"{API}/repeats/suggestions?limit=99", agent, status=422)
    assert "limit" in bad["fields"]

    mine = await report(panel, agent, FLOOD.lower(), "0901000003", topic="flooding")
    similar = await call(panel, "GET", f"{API}/tickets/{mine['code']}/similar", agent)
    assert [x["ticket"]["code"] for x in similar["items"]] == [first["code"]]
    # by the earlier report's number, as read out
    linked = await call(
        panel,
        "POST",
        f"{API}/tickets/{mine['code']}/link",
        agent,
        {"version": 1, "repeat_of": first["number"]},
    )
    assert (linked["repeat_of"], linked["version"]) == (first["id"], 2)
    group = await call(panel, "GET", f"{API}/tickets/{first['code']}/group", agent)
    assert group["reports"] == 2 and group["ticket"]["repeats"] == 1
    assert [t["code"] for t in group["items"]] == [mine["code"]]
    # already in the group: 409 naming the field; an unknown report too
    again = await call(
        panel,
        "POST",
        f"{API}/tickets/{mine['code']}/link",
        agent,
        {"version": 2, "repeat_of": first["code"]},
        409,
    )
    assert list(again["fields"]) == ["repeat_of"]
    await call(
        panel,
        "POST",
        f"{API}/tickets/{first['code']}/link",
        sup,
        {"version": 1, "repeat_of": "ZZZ-ZZZZ"},
        409,
    )
    # another agent's ticket is not this agent's to link or unlink
    await call(
        panel,
        "POST",
        f"{API}/tickets/{first['code']}/link",
        agent,
        {"version": 1, "repeat_of": mine["code"]},
        403,
    )
    unlinked = await call(
        panel, "POST", f"{API}/tickets/{mine['code']}/unlink", agent, {"version": 2}
    )
    assert (unlinked["repeat_of"], unlinked["version"]) == (None, 3)
    back = await call(panel, "GET", f"{API}/tickets/{first['code']}", agent)
    assert back["repeats"] == 0 and back["version"] == 1
    # the group's own ticket is in no group to leave
    await call(panel, "POST", f"{API}/tickets/{mine['code']}/unlink", agent, {"version": 3}, 409)


async def test_the_third_report_flags_the_matter_and_alerts_the_supervisors(panel: Any):
    """``[tickets] repeat_flag_after`` is 3 by default: the alert goes out on the real bus
    (Redis) once, to the supervisors' topic."""
    agent, sup = await tokens(panel, "agent1", "sup")
    ctx = panel.ctx
    got: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async for _topic, data in ctx.bus.listen(["alerts"], ready):
            got.append(json.loads(data))

    task = asyncio.create_task(listen())
    await asyncio.wait_for(ready.wait(), 5)
    try:
        first = await report(panel, agent, FLOOD, "0901000011", topic="flooding")
        for n, phone in enumerate(("0901000012", "0901000013", "0901000014"), 2):
            t = await report(panel, agent, FLOOD, phone, topic="flooding")
            await call(
                panel,
                "POST",
                f"{API}/tickets/{t['code']}/link",
                agent,
                {"version": 1, "repeat_of": first["code"]},
            )
            if n == 3:
                await asyncio.wait_for(_arrived(got), 5)
        await asyncio.sleep(0.2)  # a second alert would have come by now
        assert [(a["type"], a["code"], a["reports"]) for a in got] == [
            ("repeats", first["code"], 3)
        ]
        flagged = await call(panel, "GET", f"{API}/tickets?flagged=1", sup)
        assert [t["code"] for t in flagged["items"]] == [first["code"]]
        assert flagged["items"][0]["repeat_flagged_at"] is not None
    finally:
        task.cancel()
        await ctx.bus.stop_listening()


async def _arrived(got: list[dict[str, Any]]) -> None:
    while not got:  # noqa: ASYNC110 - one topic, polled
        await asyncio.sleep(0.02)

"""Ticket numbers in the panel and the API: shown grouped, found with or without
spaces, and a wrong check digit answered "please key it again" (never a look-up)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from accounts.identity import Actor
from tickets.numbers import format_number

API = "/api/v1"
TICKET = {
    "channel": "phone",
    "citizen_name": "Nguyễn Văn An",
    "domain": "state",
    "topic": "trees",
    "level": 2,
    "description": "Cây đổ",
}


@pytest.fixture
async def panel(panel: Any) -> Any:
    await asyncio.wait_for(panel.ctx.hub.ready.wait(), 5)  # see tests/panel/test_api.py
    return panel


def _wrong_check(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


async def test_pages_show_the_grouped_number_and_find_the_ticket_by_it(panel):
    ticket = await panel.ctx.tickets.create(Actor.of(panel.users["agent1"]), TICKET)
    shown = format_number(ticket.number)
    await panel.login("agent1")
    for typed in (ticket.number, shown, shown.replace(" ", "-")):
        r = await panel.client.get(f"/tickets/{typed}")
        assert r.status == 200, typed
        page = await r.text()
        assert f'<span class="code">{ticket.code}</span>' in page
        assert f">{shown}</span>" in page
        r = await panel.client.get("/tickets", params={"q": typed})
        listing = await r.text()
        assert r.status == 200 and f'>{ticket.code}</a> <span class="number">{shown}<' in listing


async def test_a_wrong_check_digit_on_a_page_asks_to_key_it_again(panel):
    ticket = await panel.ctx.tickets.create(Actor.of(panel.users["agent1"]), TICKET)
    wrong = format_number(_wrong_check(ticket.number))
    await panel.login("agent1")
    r = await panel.client.get("/tickets", params={"q": wrong})
    assert r.status == 422
    page = await r.text()
    said = re.search(r'<span class="field-error" id="err-q">([^<]*)</span>', page)
    assert said is not None, page
    assert said.group(1).startswith(f"{wrong} không phải là số phiếu hợp lệ: vui lòng nhập lại")
    assert ticket.code not in page
    r = await panel.client.get(f"/tickets/{wrong}")
    assert r.status == 422
    page = await r.text()
    assert "vui lòng nhập lại" in page and ticket.code not in page


async def test_the_flash_after_saving_names_the_grouped_number(panel):
    csrf = await panel.login("agent1")
    r = await panel.client.post("/tickets", data={"_csrf": csrf, **TICKET})
    assert r.status == 200, await r.text()
    page = await r.text()
    said = re.search(r"Đã tạo phiếu ([\w-]+), số phiếu (\d{3} \d{3} \d{3} \d)\.", page)
    assert said is not None, page
    ticket = await panel.ctx.ticket_queries.get_by_code(said.group(1))
    assert said.group(2) == format_number(ticket.number)


async def test_the_api_gives_the_number_and_takes_it_wherever_a_code_goes(panel):
    agent = await panel.token("agent1")
    r = await panel.client.post(f"{API}/tickets", headers=agent, json=TICKET)
    assert r.status == 201, await r.text()
    made = await r.json()
    shown = made["number"]
    assert re.fullmatch(r"\d{3} \d{3} \d{3} \d", shown), shown
    for typed in (shown, shown.replace(" ", ""), shown.replace(" ", "-")):
        r = await panel.client.get(f"{API}/tickets/{typed}", headers=agent)
        assert r.status == 200 and (await r.json())["code"] == made["code"], typed
        r = await panel.client.get(f"{API}/tickets", params={"q": typed}, headers=agent)
        assert [i["code"] for i in (await r.json())["items"]] == [made["code"]], typed
    r = await panel.client.post(
        f"{API}/tickets/{shown.replace(' ', '')}/comment",
        headers=agent,
        json={"note": "Người dân gọi lại"},
    )
    assert r.status == 201, await r.text()

    wrong = format_number(_wrong_check(shown.replace(" ", "")))
    for path, params, field in (
        (f"{API}/tickets/{wrong}", {}, "code"),
        (f"{API}/tickets", {"q": wrong}, "q"),
    ):
        r = await panel.client.get(path, params=params, headers=agent)
        assert r.status == 422, path
        body = await r.json()
        assert list(body["fields"]) == [field]
        assert "vui lòng nhập lại" in body["fields"][field], body

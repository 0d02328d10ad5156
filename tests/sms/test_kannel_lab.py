"""SMS in and out through a real Kannel (bearerbox + smsbox from Debian) and
the test SMSC over SMPP, into the panel on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import urllib.parse

import aiohttp

from accounts.identity import SYSTEM
from hotline.status import sms_online
from inbox.models import Flag, State
from sms.kannel import status as kannel_status
from tests.sms.conftest import (
    PARTY_NUMBER,
    PASSWORD,
    PORTS,
    SECRET,
    SmsLab,
    eventually,
    needs_kannel,
)

pytestmark = needs_kannel


async def _one_from(lab: SmsLab, number: str, count: int = 1):  # type: ignore[no-untyped-def]
    async def arrived():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.messages_in() if m.citizen == number]
        return rows if len(rows) >= count else None

    return await eventually(arrived, what=f"{count} SMS from {number}")


async def test_kannel_is_online_and_status_says_so(sms_lab: SmsLab) -> None:
    async def online():  # type: ignore[no-untyped-def]
        state = await asyncio.to_thread(kannel_status, sms_lab.settings)
        return state if sms_online({"running": True, **state}) else None

    state = await eventually(online, what="the SMSC link online and smsbox connected")
    assert state["smscs"][0]["id"] == "carrier"
    assert sms_lab.smsc.binds[0][:2] == ("hotline", "smsc-pw")


async def test_an_sms_in_waits_on_its_desk_and_a_second_delivery_is_not_a_second_message(
    sms_lab: SmsLab,
) -> None:
    status = await sms_lab.smsc.deliver("0901234567", "1022", b"Duong Le Loi bi ngap nuoc")
    assert status == 0
    [msg] = await _one_from(sms_lab, "0901234567")
    assert (msg.channel, msg.direction, msg.state) == ("sms", "in", State.NEW)
    assert msg.body == "Duong Le Loi bi ngap nuoc"
    assert msg.team == "t1022" and msg.service_address == "1022"
    assert msg.external_id  # Kannel's id of the message
    # Kannel tries the same call again when our answer was lost: the same id, no new row
    url = (
        f"http://127.0.0.1:{PORTS['panel']}/sms/kannel/in?key={SECRET}"
        f"&id={urllib.parse.quote(msg.external_id)}&from=0901234567&to=1022&coding=0"
        "&text=Duong+Le+Loi+bi+ngap+nuoc"
    )
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200
        assert r.headers["X-Hotline-Message"] == f"{msg.id} again"
    assert len([m for m in await sms_lab.messages_in() if m.citizen == "0901234567"]) == 1


async def test_vietnamese_in_ucs2_and_the_party_number_lands_on_the_1022_desk(
    sms_lab: SmsLab,
) -> None:
    text = "Đề nghị kiểm tra cán bộ phường"
    await sms_lab.smsc.deliver("+84901234570", PARTY_NUMBER, text.encode("utf-16-be"), coding=8)
    [msg] = await _one_from(sms_lab, "0901234570")  # stored in the national form
    assert msg.body == text
    assert msg.team == "t1022" and msg.service_address == PARTY_NUMBER


async def test_an_sms_from_a_number_with_an_open_ticket_is_attached_to_it(
    sms_lab: SmsLab,
) -> None:
    ticket = await sms_lab.ctx.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": "0901234571",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Cống bị tắc gây ngập",
        },
    )
    await sms_lab.smsc.deliver("0901234571", "1022", b"Van con ngap")
    [msg] = await _one_from(sms_lab, "0901234571")
    assert msg.state == State.ATTACHED and msg.ticket_id == ticket.id
    assert await sms_lab.inbox.desk(None) == []  # nothing waits on a desk


async def test_a_reply_goes_out_in_ucs2_parts_and_its_delivery_reports_come_back(
    sms_lab: SmsLab,
) -> None:
    await sms_lab.smsc.deliver("0901234572", "1022", b"Cho hoi tinh trang phan anh")
    [msg] = await _one_from(sms_lab, "0901234572")
    text = (
        "Tổng đài 1022 đã nhận được tin nhắn của bạn. Phản ánh về ngập nước đã được "
        "chuyển tới Ủy ban nhân dân phường để xử lý trong 3 ngày."
    )
    assert len(text) > 70  # more than one UCS-2 part
    out = await sms_lab.inbox.reply(sms_lab.agent, msg.id, text)
    assert (out.state, out.coding, out.parts) == (State.QUEUED, "ucs2", 2)

    async def sent():  # type: ignore[no-untyped-def]
        # every part: the first may be at the SMSC before the second
        found = [t for t in sms_lab.smsc.messages() if t[1][0].destination == "0901234572"]
        return found if found and len(found[0][1]) == 2 else None

    [(joined, parts)] = await eventually(sent, what="the reply's two parts at the SMSC")
    assert joined == text
    assert len(parts) == 2 and all(p.data_coding == 8 for p in parts)
    assert all(p.esm_class & 0x40 for p in parts)  # a UDH: concatenation header
    assert {p.concat[1] for p in parts} == {2}  # type: ignore[index]
    assert parts[0].source == "1022"

    async def delivered():  # type: ignore[no-untyped-def]
        m = await sms_lab.inbox.get(out.id)
        return m if m.state == State.DELIVERED else None

    await eventually(delivered, what="the delivery receipt")
    reports = await sms_lab.inbox.deliveries(out.id)
    # taken by the SMSC (8) and delivered to the phone (1, the SMSC's receipt): Kannel
    # reports a split message once, under its first part's id
    assert sorted(d.status for d in reports) == [1, 8], [(d.status, d.detail) for d in reports]
    [receipt] = [d for d in reports if d.status == 1]
    assert f"id:{parts[0].message_id} " in (receipt.detail or "")


async def test_a_reply_without_diacritics_goes_as_one_gsm_sms(sms_lab: SmsLab) -> None:
    await sms_lab.smsc.deliver("0901234573", "1022", b"Xin chao")
    [msg] = await _one_from(sms_lab, "0901234573")
    out = await sms_lab.inbox.reply(sms_lab.agent, msg.id, "Cam on ban da lien he tong dai 1022")
    assert (out.coding, out.parts) == ("gsm7", 1)

    async def sent():  # type: ignore[no-untyped-def]
        return [t for t in sms_lab.smsc.messages() if t[1][0].destination == "0901234573"]

    [(joined, [part])] = await eventually(sent, what="the reply at the SMSC")
    assert joined == "Cam on ban da lien he tong dai 1022"
    assert part.data_coding in (0, 1) and not part.esm_class & 0x40


async def test_a_ticket_from_an_sms_sends_the_citizen_its_code(sms_lab: SmsLab) -> None:
    await sms_lab.smsc.deliver("0901234574", "1022", b"Den duong hong o hem 12")
    [msg] = await _one_from(sms_lab, "0901234574")
    await sms_lab.inbox.claim(sms_lab.agent, msg.id)
    msg, ticket = await sms_lab.inbox.to_ticket(
        sms_lab.agent, msg.id, {"domain": "state", "topic": "flooding", "level": 2}
    )
    assert msg.state == State.TICKET and ticket.channel == "sms"
    assert ticket.citizen_phone == "0901234574" and ticket.description == msg.body

    async def sent():  # type: ignore[no-untyped-def]
        return [t for t in sms_lab.smsc.messages() if t[1][0].destination == "0901234574"]

    [(text, _parts)] = await eventually(sent, what="the tracking code at the SMSC")
    # the code exactly as the panel shows it (its JSON API's ticket), once
    assert sms_lab.client is not None
    r = await sms_lab.client.post(
        "/api/v1/session", json={"username": "smsdesk", "password": PASSWORD}
    )
    assert r.status == 200, await r.text()
    bearer = {"Authorization": f"Bearer {(await r.json())['token']}"}
    r = await sms_lab.client.get(f"/api/v1/tickets/{ticket.code}", headers=bearer)
    assert r.status == 200, await r.text()
    shown = (await r.json())["code"]
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", shown)
    assert re.findall(r"Ma tra cuu: (\S+)\.", text) == [shown], text
    # the ticket's conversation in the API: the SMS and the code sent back, no mail fields
    r = await sms_lab.client.get(f"/api/v1/tickets/{ticket.code}/messages", headers=bearer)
    assert r.status == 200, await r.text()
    items = (await r.json())["items"]
    assert [(i["id"], i["direction"]) for i in items][0] == (msg.id, "in")
    [out] = [i for i in items if i["direction"] == "out"]
    assert out["body"] == text and out["ticket_id"] == ticket.id
    assert [i["email"] for i in items] == [None, None]


async def test_sms_that_arrive_while_the_application_is_down_arrive_after(
    sms_lab: SmsLab,
) -> None:
    await sms_lab.stop_panel()
    for i in range(3):
        # the SMSC's SMS are taken by bearerbox (kept in its store) while we are down
        assert await sms_lab.smsc.deliver("0901234575", "1022", f"Tin {i}".encode()) == 0
    await sms_lab.start_panel()
    rows = await _one_from(sms_lab, "0901234575", count=3)
    assert sorted(m.body for m in rows) == ["Tin 0", "Tin 1", "Tin 2"]


async def test_empty_binary_and_a_flood_are_kept_and_flagged(sms_lab: SmsLab) -> None:
    await sms_lab.smsc.deliver("0901234576", "1022", b"")
    [empty] = await _one_from(sms_lab, "0901234576")
    assert empty.flag == Flag.EMPTY and empty.state == State.NEW
    await sms_lab.smsc.deliver("0901234577", "1022", b"\x00\xff\x10\x80", coding=4)
    [binary] = await _one_from(sms_lab, "0901234577")
    assert binary.flag == Flag.BINARY and binary.body == "00ff1080"
    for i in range(15):
        await sms_lab.smsc.deliver("0901234578", "1022", f"spam {i}".encode())
    rows = await _one_from(sms_lab, "0901234578", count=15)
    flagged = [m for m in rows if m.flag == Flag.FLOOD]
    assert len(rows) == 15 and len(flagged) == 5  # none dropped; past 10 a minute, flagged


async def test_a_call_without_the_key_is_refused_and_stores_nothing(sms_lab: SmsLab) -> None:
    url = f"http://127.0.0.1:{PORTS['panel']}/sms/kannel/in?key=wrong&id=x1&from=0901&to=1022"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 403
    url = f"http://127.0.0.1:{PORTS['panel']}/sms/kannel/in?key={SECRET}&id=x2&to=1022"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 400 and "from" in await r.text()
    assert await sms_lab.messages_in() == []


async def test_the_desk_page_lists_and_replies(sms_lab: SmsLab) -> None:
    await sms_lab.smsc.deliver("0901234579", "1022", b"Hoi ve thu tuc")
    [msg] = await _one_from(sms_lab, "0901234579")
    assert sms_lab.client is not None
    c = sms_lab.client
    import re

    page = await c.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
    r = await c.post(
        "/login",
        data={"_csrf": token, "username": "smsdesk", "password": "correct horse battery"},
        allow_redirects=False,
    )
    assert r.status == 303
    desk = await (await c.get("/messages")).text()
    assert "Hoi ve thu tuc" in desk and f'/messages/{msg.id}"' in desk
    page = await (await c.get(f"/messages/{msg.id}")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    r = await c.post(
        f"/messages/{msg.id}",
        data={"_csrf": csrf, "action": "reply", "text": "Ban vui long goi 1022"},
        allow_redirects=False,
    )
    assert r.status == 303

    async def sent():  # type: ignore[no-untyped-def]
        return [t for t in sms_lab.smsc.messages() if t[1][0].destination == "0901234579"]

    [(text, _parts)] = await eventually(sent, what="the desk's reply at the SMSC")
    assert text == "Ban vui long goi 1022"
    parts = await (await c.get("/messages/parts", params={"text": "Cảm ơn"})).json()
    assert parts == {"coding": "ucs2", "units": 6, "parts": 1, "per_part": 70}

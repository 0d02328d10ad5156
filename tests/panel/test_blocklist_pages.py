"""The blocked-numbers page and its API on real SQLite and PostgreSQL and real Redis:
who may see and change the list, adding and lifting through the form and through the
API (each refusal naming its field), the history and the suggestions shown, text
escaped, and the OpenAPI document's limit on ``days`` following the configuration."""

from __future__ import annotations

import re
from datetime import timedelta

from callcenter.models import Call
from tests.panel.conftest import PASSWORD  # noqa: F401  (the accounts' password)

API = "/api/v1/blocked-numbers"


async def _flash(r) -> str:  # type: ignore[no-untyped-def]
    """The message the page shows after the redirect (``r`` followed it)."""
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', await r.text(), re.S)
    return found.group(1) if found else ""


async def test_only_supervisors_and_admins_see_and_change_the_list(panel):
    r = await panel.client.get("/blocklist", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login?next=")
    r = await panel.client.get(API)
    assert r.status == 401
    # bearer tokens first: signing in to the API with a session cookie needs its CSRF token
    tokens = {who: await panel.token(who) for who in ("agent1", "officer", "sup", "admin")}
    for who, status in (("agent1", 403), ("officer", 403), ("sup", 200), ("admin", 200)):
        csrf = await panel.login(who)
        r = await panel.client.get("/blocklist", allow_redirects=False)
        assert r.status == status, (who, r.status)
        r = await panel.client.post(
            "/blocklist",
            data={"_csrf": csrf, "number": "0901234567", "reason": "x", "days": "1"},
            allow_redirects=False,
        )
        assert r.status == (403 if status == 403 else 303), (who, r.status)
        r = await panel.client.get(API, headers=tokens[who])
        assert r.status == status, (who, r.status)
        if status == 200:
            await panel.ctx.blocklist.lift((await panel.ctx.blocklist.active())[0].id, by="test")
        await panel.client.post("/logout", data={"_csrf": await panel.csrf()})
    # a form without the session's token is refused, and nothing is written
    await panel.login("sup")
    before = len(await panel.ctx.blocklist.history())
    r = await panel.client.post(
        "/blocklist",
        data={"number": "0907777777", "reason": "x", "days": "1"},
        allow_redirects=False,
    )
    assert r.status == 403
    assert len(await panel.ctx.blocklist.history()) == before


async def test_a_supervisor_adds_and_lifts_a_block_with_the_form(panel):
    ctx = panel.ctx
    csrf = await panel.login("sup")
    page = await (await panel.client.get("/blocklist")).text()
    assert "Số bị chặn" in page  # Vietnamese first
    # the configured default and maximum are offered (example config: 7 and 30)
    assert 'id="block-days" type="number" min="1" max="30" value="7"' in page
    assert "Chưa có số nào bị chặn." in page

    async def add(**data: str):  # type: ignore[no-untyped-def]
        return await panel.client.post("/blocklist", data={"_csrf": csrf, **data})

    # each mistake is named, and nothing is written
    for data, said in [
        ({"number": "", "reason": "x", "days": "3"}, "Số điện thoại: nhập số cần chặn."),
        ({"number": "09abc", "reason": "x", "days": "3"}, "Số điện thoại: chỉ gồm chữ số"),
        ({"number": "0901234567", "reason": " ", "days": "3"}, "Lý do: ghi rõ"),
        ({"number": "0901234567", "reason": "x", "days": "31"}, "Số ngày: từ 1 đến 30."),
        ({"number": "0901234567", "reason": "x", "days": "ba"}, "Số ngày: từ 1 đến 30."),
    ]:
        r = await add(**data)
        said_now = await _flash(r)
        assert r.status == 200 and said in said_now, (data, said_now)
    assert await ctx.blocklist.history() == []

    reason = "Gọi quấy rối <script>alert(1)</script> 5 lần"
    r = await add(number="+84 90 123 4567", reason=reason, days="3")
    assert "Đã chặn số 0901234567." in await _flash(r)
    r = await add(number="0901234567", reason="again", days="3")
    assert "Số 0901234567 đã đang bị chặn." in await _flash(r)
    (block,) = await ctx.blocklist.active()
    assert block.created_by == "Sup" and block.expires_at == ctx.clock.now() + timedelta(days=3)

    page = await (await panel.client.get("/blocklist")).text()
    row = re.search(rf'<tr class="block" data-id="{block.id}".*?</tr>', page, re.S)
    assert row is not None
    assert 'data-state="active"' in row.group(0) and "đang hiệu lực" in row.group(0)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row.group(0) and "<script>alert" not in page
    assert f'action="/blocklist/{block.id}/lift"' in row.group(0)

    r = await panel.client.post(f"/blocklist/{block.id}/lift", data={"_csrf": csrf})
    assert "Đã gỡ chặn số 0901234567." in await _flash(r)
    r = await panel.client.post(f"/blocklist/{block.id}/lift", data={"_csrf": csrf})
    assert "Lệnh chặn này đã kết thúc." in await _flash(r)
    r = await panel.client.post("/blocklist/99999/lift", data={"_csrf": csrf})
    assert r.status == 404
    page = await (await panel.client.get("/blocklist")).text()
    row = re.search(rf'<tr class="block" data-id="{block.id}".*?</tr>', page, re.S)
    assert row is not None and 'data-state="lifted"' in row.group(0)
    assert "Sup · " in row.group(0) and "/lift" not in row.group(0)


async def test_the_api_adds_lists_and_lifts_and_names_its_refusals(panel):
    ctx = panel.ctx
    sup = await panel.token("sup")
    r = await panel.client.post(
        API, json={"number": "0901234567", "reason": "quấy rối", "days": 31}, headers=sup
    )
    assert r.status == 422 and "days" in (await r.json())["fields"]
    r = await panel.client.post(API, json={"number": "0901234567", "days": 2}, headers=sup)
    assert r.status == 422 and "reason" in (await r.json())["fields"]
    r = await panel.client.post(API, json={"number": "12", "reason": "x", "days": 2}, headers=sup)
    assert r.status == 422 and "number" in (await r.json())["fields"]
    r = await panel.client.post(
        API,
        json={"number": "+84 90 123 4567", "reason": "quấy rối", "days": 2, "until": "x"},
        headers=sup,
    )
    assert r.status == 422, "an unknown key is refused, not dropped"

    r = await panel.client.post(
        API, json={"number": "+84 90 123 4567", "reason": "quấy rối", "days": 2}, headers=sup
    )
    assert r.status == 201, await r.text()
    made = await r.json()
    assert made["number"] == "0901234567" and made["state"] == "active"
    assert made["created_by"] == "Sup" and made["calls"] == 0 and made["removed_at"] is None
    r = await panel.client.post(
        API, json={"number": "0901234567", "reason": "lại", "days": 1}, headers=sup
    )
    assert r.status == 409 and "number" in (await r.json())["fields"]

    # a call met the block: counted on it
    async with ctx.db.session() as s:
        s.add(
            Call(
                uniqueid="pbx-9.1",
                hotline_number="1022",
                caller_number="0901234567",
                started_at=ctx.clock.now(),
                outcome="blocked",
                block_id=made["id"],
                ivr_path="blocked",
            )
        )
    listed = await (await panel.client.get(API, headers=sup)).json()
    assert [(b["id"], b["calls"]) for b in listed["items"]] == [(made["id"], 1)]
    metrics = await (await panel.client.get("/metrics")).text()  # from loopback
    assert 'hotline_calls_blocked_total{hotline="1022"} 1.0' in metrics
    assert 'hotline_calls_blocked_total{hotline="0888247247"} 0.0' in metrics

    r = await panel.client.post(f"{API}/{made['id']}/lift", headers=sup)
    assert r.status == 200, await r.text()
    lifted = await r.json()
    assert lifted["state"] == "lifted" and lifted["removed_by"] == "Sup" and lifted["calls"] == 1
    r = await panel.client.post(f"{API}/{made['id']}/lift", headers=sup)
    assert r.status == 409
    r = await panel.client.post(f"{API}/99999/lift", headers=sup)
    assert r.status == 404
    ctx.clock.advance(timedelta(days=3))
    r = await panel.client.get(f"{API}/candidates", headers=sup)
    assert r.status == 200 and (await r.json()) == {"items": []}
    r = await panel.client.get(f"{API}/candidates", headers=await panel.token("agent1"))
    assert r.status == 403


async def test_the_document_allows_only_the_configured_days(panel):
    doc = await (await panel.client.get("/api/openapi.json")).json()
    days = doc["components"]["schemas"]["BlockIn"]["properties"]["days"]
    assert (days["minimum"], days["maximum"]) == (1, panel.ctx.settings.blocklist.max_days)
    for path in (API, f"{API}/{{id}}/lift", f"{API}/candidates"):
        assert path in doc["paths"], path

"""The HTML panel through the aiohttp test client: sign-in, roles, CSRF, forms, escaping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from accounts.identity import SYSTEM, Actor
from panel.security import PUBLIC
from tests.panel.conftest import PASSWORD, login_form_token

ROLES = ("admin", "sup", "agent1", "officer", "inspector")
ROLE_OF = {
    "admin": "admin",
    "sup": "supervisor",
    "agent1": "agent",
    "officer": "agency",
    "inspector": "oversight",
}

# Every HTML page and who may open it.
PAGES = {
    "/agent": {"agent"},
    "/tickets": {"agent", "supervisor", "admin", "oversight"},
    "/tickets/new": {"agent", "supervisor", "admin"},
    "/inbox": {"agency"},
    "/messages": {"agent", "supervisor", "admin"},
    "/agencies": {"supervisor", "admin"},
    "/admin/users": {"admin"},
    "/account": {"agent", "supervisor", "admin", "agency", "oversight"},
    "/blocklist": {"supervisor", "admin"},
    "/kb": {"agent", "supervisor", "admin"},
    "/kb/new": {"admin"},
    "/kb/report": {"supervisor", "admin"},
    "/kb/report-not-found.csv": {"supervisor", "admin"},
    "/agencies/export.csv": {"supervisor", "admin"},
    "/agencies/import": {"admin"},
    "/reports/stored": {"supervisor", "admin"},
    "/reports/monthly": {"supervisor", "admin"},
    "/reconciliation": {"supervisor", "admin", "agency"},
    "/reconciliation/agencies/1": {"supervisor", "admin"},
    "/audit/tickets": {"admin", "oversight"},
}
# Every form target and who may post to it (a refused role gets 403 before any work).
POSTS = {
    "/agent/pause": {"agent"},
    "/agent/resume": {"agent"},
    "/tickets": {"agent", "supervisor", "admin"},
    "/admin/users": {"admin"},
    "/admin/users/1": {"admin"},
    "/agencies": {"admin"},
    "/agencies/1": {"admin"},
    "/blocklist": {"supervisor", "admin"},
    "/blocklist/1/lift": {"supervisor", "admin"},
    "/kb": {"admin"},
    "/kb/1": {"admin"},
    "/agencies/import": {"admin"},
    "/messages/1": {"agent", "supervisor", "admin"},
    "/reconciliation/items/1/decide": {"agency"},
    "/reconciliation/items/1/resolve": {"supervisor", "admin"},
}


def test_every_route_declares_its_roles(panel):
    seen = set()
    for route in panel.client.app.router.routes():
        canonical = route.resource.canonical
        if canonical.startswith("/static"):
            continue
        assert hasattr(route.handler, "roles"), canonical
        seen.add(canonical)
        if not route.handler.public:
            assert route.handler.roles, f"{canonical} is open to no role"
    assert {"/agent", "/tickets", "/inbox", "/admin/users", "/ws"} <= seen
    assert PUBLIC


async def test_signed_out_pages_redirect_to_sign_in(panel):
    for path in PAGES:
        r = await panel.client.get(path, allow_redirects=False)
        assert r.status == 303, path
        assert r.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("who", ROLES)
async def test_each_role_sees_its_pages_and_is_refused_the_others(panel, who):
    csrf = await panel.login(who)
    role = ROLE_OF[who]
    for path, allowed in PAGES.items():
        r = await panel.client.get(path, allow_redirects=False)
        assert r.status == (200 if role in allowed else 403), (who, path, r.status)
    for path, allowed in POSTS.items():
        if role in allowed:
            continue
        r = await panel.client.post(path, data={"_csrf": csrf}, allow_redirects=False)
        assert r.status == 403, (who, path, r.status)


async def test_forms_without_the_csrf_token_are_refused(panel):
    csrf = await panel.login("agent1")
    r = await panel.client.post("/agent/pause", data={"reason": "break"}, allow_redirects=False)
    assert r.status == 403
    r = await panel.client.post(
        "/agent/pause", data={"reason": "break", "_csrf": "forged"}, allow_redirects=False
    )
    assert r.status == 403
    assert panel.control.calls == []
    r = await panel.client.post(
        "/agent/pause", data={"reason": "break", "_csrf": csrf}, allow_redirects=False
    )
    assert r.status == 303
    assert panel.control.calls == [("pause", "1001", "break")]


async def test_login_form_needs_its_own_token(panel):
    r = await panel.client.post(
        "/login", data={"username": "admin", "password": PASSWORD}, allow_redirects=False
    )
    assert r.status == 403


async def test_wrong_password_then_lockout_even_for_the_right_one(panel):
    async def attempt(password):
        # each form carries a fresh token, as a browser reloads it after a failure
        token = await login_form_token(panel.client)
        return await panel.client.post(
            "/login",
            data={"_csrf": token, "username": "SUP", "password": password},
            allow_redirects=False,
        )

    for _ in range(2):
        r = await attempt("wrong password!")
        assert r.status == 401
        assert "Sai tên đăng nhập hoặc mật khẩu" in await r.text() or r.status == 401
    r = await attempt("wrong password!")  # the third failure locks (lockout_attempts = 3)
    assert r.status == 429
    r = await attempt(PASSWORD)
    assert r.status == 429, "a locked account refuses even the right password"
    panel.ctx.clock.advance(timedelta(minutes=16))
    r = await attempt(PASSWORD)
    assert r.status == 303


async def test_unknown_user_and_wrong_password_look_the_same(panel):
    async def attempt(username):
        token = await login_form_token(panel.client)
        return await panel.client.post(
            "/login", data={"_csrf": token, "username": username, "password": "x" * 12}
        )

    a = await attempt("nobody")
    b = await attempt("sup")
    assert a.status == b.status == 401
    strip = lambda t: re.sub(r'value="[^"]*"', "", t)  # noqa: E731
    assert strip(await a.text()).replace("nobody", "") == strip(await b.text()).replace("sup", "")


async def test_no_open_redirect_after_sign_in(panel):
    page = await panel.client.get("/login?next=https://evil.example/")
    token = re.search(r'name="_csrf" value="([^"]+)"', await page.text()).group(1)
    r = await panel.client.post(
        "/login",
        data={
            "_csrf": token,
            "username": "sup",
            "password": PASSWORD,
            "next": "//evil.example/",
        },
        allow_redirects=False,
    )
    assert r.headers["Location"] == "/tickets"


async def test_sign_out_ends_the_session_everywhere(panel):
    csrf = await panel.login("sup")
    cookie = panel.client.session.cookie_jar.filter_cookies(panel.client.make_url("/"))
    token = cookie["hotline_session"].value
    r = await panel.client.post("/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    other = await panel.new_client()
    try:
        r = await other.get(
            "/tickets", headers={"Cookie": f"hotline_session={token}"}, allow_redirects=False
        )
        assert r.status == 303, "a signed-out token must not work again"
    finally:
        await other.close()


async def test_deactivated_user_is_out_at_the_next_request(panel):
    await panel.login("agent1")
    assert (await panel.client.get("/agent", allow_redirects=False)).status == 200
    admin = await panel.new_client()
    try:
        csrf = await panel.login("admin", admin)
        uid = panel.users["agent1"].id
        r = await admin.post(
            f"/admin/users/{uid}",
            data={
                "_csrf": csrf,
                "do": "save",
                "display_name": "Agent1",
                "role": "agent",
                "extension": "1001",
            },
            allow_redirects=False,
        )
        assert r.status == 303
    finally:
        await admin.close()
    assert (await panel.client.get("/agent", allow_redirects=False)).status == 303


async def test_pages_are_vietnamese_first_and_english_on_request(panel):
    r = await panel.client.get("/login")
    assert 'lang="vi"' in await r.text()
    assert "Đăng nhập" in await r.text()
    csrf = await panel.login("sup")
    r = await panel.client.post(
        "/language", data={"_csrf": csrf, "language": "en", "back": "/tickets"}
    )
    text = await r.text()
    assert 'lang="en"' in text and "Tickets" in text


async def test_security_headers(panel):
    r = await panel.client.get("/login")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "HttpOnly" in r.headers.getone("Set-Cookie")


HOSTILE = {
    "citizen_name": "<script>alert('name')</script>",
    "citizen_address": '"><img src=x onerror=alert(1)>',
    "description": "'; DROP TABLE tickets; -- <b>bold</b> & 100% _x_",
}


async def test_hostile_text_is_stored_literally_and_shown_escaped(panel):
    csrf = await panel.login("agent1")
    r = await panel.client.post(
        "/tickets",
        data={
            "_csrf": csrf,
            "channel": "phone",
            "citizen_phone": "0909123456",
            "domain": "state",
            "topic": "flooding",
            "level": "2",
            **HOSTILE,
        },
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    code = r.headers["Location"].rsplit("/", 1)[1]
    page = await (await panel.client.get(f"/tickets/{code}")).text()
    for value in HOSTILE.values():
        assert value not in page or "<" not in value, "raw markup reached the page"
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    ticket = await panel.ctx.ticket_queries.get_by_code(code)
    assert ticket.citizen_name == HOSTILE["citizen_name"]
    assert ticket.description == HOSTILE["description"]
    # and the search finds the literal text, metacharacters and all
    rows, total = await panel.ctx.ticket_queries.search(
        __import__("tickets.queries", fromlist=["TicketFilter"]).TicketFilter(q="100% _x_"),
        actor=SYSTEM,
    )
    assert total == 1 and rows[0].code == code
    listing = await (await panel.client.get("/tickets?q=%3Cscript%3E")).text()
    assert code in listing and "<script>alert" not in listing


async def test_the_ticket_search_ignores_accents_and_names_a_wrong_code(panel):
    agent = Actor.of(panel.users["agent1"])
    ticket = await panel.ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "citizen_name": "Nguyễn Hữu Cảnh",
            "citizen_address": "Đường Điện Biên Phủ",
            "domain": "state",
            "topic": "trees",
            "level": 2,
            "description": "Cây đổ",
        },
    )
    await panel.login("agent1")
    for q in ("nguyen huu canh", "NGUYEN HUU CANH", "duong dien bien phu"):
        r = await panel.client.get("/tickets", params={"q": q})
        assert r.status == 200
        assert f">{ticket.code}</a>" in await r.text(), q
    raw = ticket.code.replace("-", "")
    wrong = raw[:6] + ("2" if raw[6] != "2" else "3")
    r = await panel.client.get("/tickets", params={"q": wrong.lower()})
    assert r.status == 422
    page = await r.text()
    said = re.search(r'<span class="field-error" id="err-q">([^<]*)</span>', page)
    assert said is not None, page
    assert said.group(1).startswith(f"{wrong[:3]}-{wrong[3:]} không phải là mã phiếu hợp lệ")
    assert "0 phiếu" not in page and "Không có phiếu nào phù hợp" not in page
    assert f'value="{wrong.lower()}"' in page  # the query stays in the box, to be corrected


async def test_oversized_and_missing_fields_are_named(panel):
    csrf = await panel.login("agent1")
    r = await panel.client.post(
        "/tickets",
        data={
            "_csrf": csrf,
            "channel": "phone",
            "domain": "state",
            "topic": "traffic",
            "level": "2",
            "citizen_name": "N" * 5000,
            "description": "",
        },
    )
    assert r.status == 422
    page = await r.text()
    assert 'id="err-citizen_name"' in page and 'id="err-description"' in page
    assert "N" * 5000 in page, "what the agent typed is kept for correction"


async def test_level_1_needs_the_guidance(panel):
    csrf = await panel.login("agent1")
    base = {
        "_csrf": csrf,
        "channel": "phone",
        "domain": "state",
        "topic": "procedures",
        "level": "1",
        "description": "Hỏi thủ tục cấp giấy phép xây dựng",
    }
    r = await panel.client.post("/tickets", data=base)
    assert r.status == 422 and 'id="err-guidance"' in await r.text()
    r = await panel.client.post(
        "/tickets", data={**base, "guidance": "Nộp hồ sơ tại UBND quận"}, allow_redirects=False
    )
    assert r.status == 303
    t = await panel.ctx.ticket_queries.get_by_code(r.headers["Location"].rsplit("/", 1)[1])
    assert t.status == "closed"


async def test_two_supervisors_editing_at_once_do_not_lose_an_update(panel):
    csrf = await panel.login("agent1")
    r = await panel.client.post(
        "/tickets",
        data={
            "_csrf": csrf,
            "channel": "phone",
            "domain": "state",
            "topic": "trees",
            "level": "2",
            "description": "Cây đổ trên đường Lê Lợi",
        },
        allow_redirects=False,
    )
    code = r.headers["Location"].rsplit("/", 1)[1]
    sup1, sup2 = panel.client, await panel.new_client()
    try:
        await panel.client.post("/logout", data={"_csrf": csrf})
        c1 = await panel.login("sup", sup1)
        c2 = await panel.login("admin", sup2)
        page = await (await sup1.get(f"/tickets/{code}")).text()
        version = re.search(r'name="version" value="(\d+)"', page).group(1)
        a = await sup1.post(
            f"/tickets/{code}/edit",
            data={
                "_csrf": c1,
                "version": version,
                "citizen_address": "Số 1 Lê Lợi",
                "description": "Cây đổ trên đường Lê Lợi",
                "topic": "trees",
                "domain": "state",
            },
            allow_redirects=False,
        )
        b = await sup2.post(
            f"/tickets/{code}/edit",
            data={
                "_csrf": c2,
                "version": version,
                "citizen_address": "Số 2 Lê Lợi",
                "description": "Cây đổ trên đường Lê Lợi",
                "topic": "trees",
                "domain": "state",
            },
            allow_redirects=False,
        )
        assert a.status == 303
        assert b.status == 409
        assert "tải lại" in (await b.text()).lower()
        t = await panel.ctx.ticket_queries.get_by_code(code)
        assert t.citizen_address == "Số 1 Lê Lợi"
    finally:
        await sup2.close()

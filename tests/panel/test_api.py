"""The JSON API through the aiohttp test client: sign-in, roles, CSRF, the ticket workflow,
conflicts, hostile input and the generated OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from panel.api.operations import OPERATIONS
from panel.sessions import COOKIE
from tests.panel.conftest import PASSWORD

API = "/api/v1"
ALL = {"agent", "supervisor", "admin", "agency"}
# the oversight role reads tickets and writes nothing (tickets.confidential)
READERS = ALL | {"oversight"}
STAFF = {"agent", "supervisor", "admin"}
LEADS = {"supervisor", "admin"}
ADMIN = {"admin"}
PUBLIC = {"public"}
# One account of each role (tests/panel/conftest.py).
USER_OF = {
    "agent": "agent1",
    "supervisor": "sup",
    "admin": "admin",
    "agency": "officer",
    "oversight": "inspector",
}

# Who may call what, written out by hand from the HTML views and the services' rules, so
# that a route that loses its @require (or gains a role) fails here.
ACCESS: dict[tuple[str, str], set[str]] = {
    ("POST", f"{API}/session"): PUBLIC,
    ("DELETE", f"{API}/session"): READERS,
    ("GET", f"{API}/me"): READERS,
    ("GET", f"{API}/agent/state"): {"agent"},
    ("POST", f"{API}/agent/pause"): {"agent"},
    ("POST", f"{API}/agent/resume"): {"agent"},
    ("POST", f"{API}/calls/{{id}}/wrapup"): STAFF,
    ("POST", f"{API}/agents/{{extension}}/supervise"): LEADS,
    ("GET", f"{API}/blocked-numbers"): LEADS,
    ("POST", f"{API}/blocked-numbers"): LEADS,
    ("POST", f"{API}/blocked-numbers/{{id}}/lift"): LEADS,
    ("GET", f"{API}/blocked-numbers/candidates"): LEADS,
    ("GET", f"{API}/transfer-targets"): STAFF,
    # the SMS desk: an agent sees their team's desk, leads every team's
    ("GET", f"{API}/messages"): STAFF,
    ("POST", f"{API}/messages/parts"): STAFF,
    ("GET", f"{API}/messages/{{id}}"): STAFF,
    ("GET", f"{API}/messages/{{id}}/conversation"): STAFF,
    ("GET", f"{API}/tickets/{{code}}/messages"): STAFF,
    ("POST", f"{API}/messages/{{id}}/claim"): STAFF,
    ("POST", f"{API}/messages/{{id}}/no-content"): STAFF,
    ("POST", f"{API}/messages/{{id}}/attach"): STAFF,
    ("POST", f"{API}/messages/{{id}}/reply"): STAFF,
    ("POST", f"{API}/calls/{{id}}/transfers"): STAFF,
    ("GET", f"{API}/calls/{{id}}/transfers"): STAFF,
    ("POST", f"{API}/transfers/{{id}}/complete"): STAFF,
    ("POST", f"{API}/transfers/{{id}}/cancel"): STAFF,
    ("GET", f"{API}/tickets"): STAFF | {"oversight"},
    ("POST", f"{API}/tickets"): STAFF,
    ("GET", f"{API}/tickets/{{code}}"): READERS,
    ("PATCH", f"{API}/tickets/{{code}}"): STAFF,
    ("GET", f"{API}/tickets/{{code}}/history"): READERS,
    # a ticket's files: read by whoever may see the ticket, added by all but the oversight
    ("GET", f"{API}/tickets/{{code}}/attachments"): READERS,
    ("GET", f"{API}/tickets/{{code}}/attachments/{{attachment}}"): READERS,
    ("POST", f"{API}/tickets/{{code}}/attachments"): ALL,
    ("POST", f"{API}/tickets/{{code}}/forward"): LEADS,
    ("POST", f"{API}/tickets/{{code}}/approve"): LEADS,
    ("POST", f"{API}/tickets/{{code}}/accept"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/answer"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/send_back"): {"agency"},
    # several agencies and delegation (tickets.handling)
    ("GET", f"{API}/tickets/{{code}}/parts"): ALL,
    ("POST", f"{API}/tickets/{{code}}/delegate"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/delegate"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/accept"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/answer"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/send_back"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/adopt"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/withdraw"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/parts/{{id}}/deadline"): {"agency", "supervisor", "admin"},
    ("POST", f"{API}/tickets/{{code}}/schedule_meeting"): LEADS,
    ("POST", f"{API}/tickets/{{code}}/close"): STAFF,
    ("POST", f"{API}/tickets/{{code}}/reopen"): STAFF,
    ("POST", f"{API}/tickets/{{code}}/refuse_answer"): LEADS,
    ("POST", f"{API}/tickets/{{code}}/request_extension"): {"agency"},
    ("POST", f"{API}/tickets/{{code}}/grant_extension"): LEADS,
    ("POST", f"{API}/tickets/{{code}}/refuse_extension"): LEADS,
    ("POST", f"{API}/tickets/{{code}}/comment"): ALL,
    ("POST", f"{API}/tickets/{{code}}/call"): {"agent", "supervisor"},
    ("GET", f"{API}/inbox"): {"agency"},
    ("GET", f"{API}/agencies"): STAFF,
    ("POST", f"{API}/agencies"): ADMIN,
    ("GET", f"{API}/agencies/{{id}}"): STAFF,
    ("PATCH", f"{API}/agencies/{{id}}"): ADMIN,
    # repeat reports: staff; who may link which ticket is the service's (agent: their own)
    ("GET", f"{API}/repeats/suggestions"): STAFF,
    ("GET", f"{API}/tickets/{{code}}/similar"): STAFF,
    ("GET", f"{API}/tickets/{{code}}/group"): STAFF,
    ("POST", f"{API}/tickets/{{code}}/link"): STAFF,
    ("POST", f"{API}/tickets/{{code}}/unlink"): STAFF,
    ("GET", f"{API}/kb/articles"): STAFF,
    ("POST", f"{API}/kb/articles"): ADMIN,
    ("GET", f"{API}/kb/articles/{{id}}"): STAFF,
    ("PATCH", f"{API}/kb/articles/{{id}}"): ADMIN,
    ("GET", f"{API}/kb/articles/{{id}}/versions"): STAFF,
    ("GET", f"{API}/users"): ADMIN,
    ("POST", f"{API}/users"): ADMIN,
    ("PATCH", f"{API}/users/{{id}}"): ADMIN,
    ("POST", f"{API}/users/{{id}}/password"): ADMIN,
    ("POST", f"{API}/users/{{id}}/unlock"): ADMIN,
    ("GET", f"{API}/qa/scorecards"): LEADS,
    ("POST", f"{API}/qa/scorecards"): ADMIN,
    ("GET", f"{API}/qa/worklist"): LEADS,
    ("POST", f"{API}/qa/draws"): LEADS,
    ("GET", f"{API}/qa/calls/{{id}}/grades"): STAFF,
    ("POST", f"{API}/qa/calls/{{id}}/grade"): LEADS,
    ("POST", f"{API}/qa/calls/{{id}}/comments"): LEADS,
    ("POST", f"{API}/qa/grades/{{id}}/dispute"): {"agent"},
    ("POST", f"{API}/qa/grades/{{id}}/resolve"): LEADS,
}

TICKET = {
    "channel": "phone",
    "citizen_phone": "0901 234 567",
    "citizen_name": "Nguyễn Văn An",
    "citizen_address": "12 Lê Lợi, Quận 1",
    "domain": "state",
    "topic": "traffic",
    "description": "Đèn giao thông ở ngã tư hỏng từ sáng.",
}
XSS = "<script>alert(1)</script>"
SQLI = "'; DROP TABLE tickets; --"


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
async def panel(panel: Any) -> Any:
    """The shared fixture, once the hub's Redis subscription is up.

    Stopping the hub while it is still subscribing hangs the fixture's teardown (a test
    that only takes ``panel`` and returns at once never finishes), so quick tests wait.
    """
    await asyncio.wait_for(panel.ctx.hub.ready.wait(), 5)
    return panel


async def tokens(panel: Any, *who: str) -> list[dict[str, str]]:
    return [await panel.token(w) for w in who]


async def call(
    panel: Any,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    status: int = 200,
) -> Any:
    """One request; asserts the status and answers the decoded JSON (None when empty)."""
    kwargs: dict[str, Any] = {"headers": headers or {}}
    if body is not None:
        kwargs["json"] = body
    r = await panel.client.request(method, path, **kwargs)
    text = await r.text()
    assert r.status == status, f"{method} {path}: {r.status} {text}"
    if not text:
        return None
    assert r.content_type == "application/json", text
    return json.loads(text)


async def new_ticket(panel: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    return await call(panel, "POST", f"{API}/tickets", headers, {**TICKET, **fields}, 201)


async def act(
    panel: Any,
    headers: dict[str, str],
    ticket: dict[str, Any],
    action: str,
    status: int = 200,
    **body: Any,
) -> Any:
    """A workflow action on ``ticket`` at its current version."""
    if action != "comment":
        body.setdefault("version", ticket["version"])
    path = f"{API}/tickets/{ticket['code']}/{action}"
    return await call(panel, "POST", path, headers, body, status)


# -- signing in and out ----------------------------------------------------------------


async def test_sign_in_answers_a_token_and_the_user_without_secrets(panel):
    r = await panel.client.post(f"{API}/session", json={"username": "sup", "password": PASSWORD})
    assert r.status == 200
    text = await r.text()
    assert "password_hash" not in text and "argon2" not in text
    data = json.loads(text)
    assert data["user"]["username"] == "sup" and data["user"]["role"] == "supervisor"
    assert data["token"] and data["csrf"] and data["expires_in"] > 0
    headers = {"Authorization": f"Bearer {data['token']}"}
    me = await call(panel, "GET", f"{API}/me", headers)
    assert me["user"]["id"] == panel.users["sup"].id
    assert me["csrf"] == data["csrf"]
    assert "password_hash" not in me["user"]

    assert await call(panel, "DELETE", f"{API}/session", headers, status=204) is None
    gone = await call(panel, "GET", f"{API}/me", headers, status=401)
    assert gone["error"]


async def test_wrong_credentials_do_not_say_which_was_wrong(panel):
    wrong_password = await call(
        panel, "POST", f"{API}/session", body={"username": "sup", "password": "nope"}, status=401
    )
    no_such_user = await call(
        panel,
        "POST",
        f"{API}/session",
        body={"username": "nobody", "password": PASSWORD},
        status=401,
    )
    assert wrong_password == no_such_user
    assert "token" not in wrong_password
    missing = await call(panel, "POST", f"{API}/session", body={"username": "sup"}, status=422)
    assert "password" in missing["fields"]


async def test_a_locked_account_gets_429_with_the_time_it_unlocks(panel):
    wrong = {"username": "officer", "password": "wrong password!"}
    for _ in range(2):  # the fixture locks after 3 failures
        await call(panel, "POST", f"{API}/session", body=wrong, status=401)
    r = await panel.client.post(f"{API}/session", json=wrong)
    assert r.status == 429
    # Even the right password is refused while locked.
    r = await panel.client.post(
        f"{API}/session", json={"username": "officer", "password": PASSWORD}
    )
    assert r.status == 429
    data = await r.json()
    assert data["locked_until"].endswith("Z")
    assert int(r.headers["Retry-After"]) > 0
    panel.ctx.clock.advance(timedelta(minutes=panel.ctx.settings.panel.lockout_minutes + 1))
    assert (await tokens(panel, "officer"))[0]["Authorization"].startswith("Bearer ")


# -- who may do what ---------------------------------------------------------------------


def test_the_access_table_covers_every_operation():
    declared = {(op.method, op.path): set(op.roles) or PUBLIC for op in OPERATIONS}
    assert declared == ACCESS


async def test_every_route_refuses_the_signed_out_and_the_wrong_roles(panel):
    agent, *_ = await tokens(panel, "agent1")
    ticket = await new_ticket(panel, agent, level=2)
    values = {
        "code": ticket["code"],
        "id": str(panel.agency_ids["q1"]),
        "extension": "1001",
        "attachment": "0" * 32,
    }
    user_values = {"code": ticket["code"], "id": str(panel.users["agent2"].id)}
    headers = {role: await panel.token(user) for role, user in USER_OF.items()}
    checked = 0
    for (method, template), allowed in ACCESS.items():
        fill = user_values if "/users/" in template else values
        path = re.sub(r"{(\w+)}", lambda m, fill=fill: fill[m.group(1)], template)
        body = {} if method in ("POST", "PATCH") else None
        if allowed != PUBLIC:
            data = await call(panel, method, path, None, body, 401)
            assert data["error"]
            checked += 1
        for role, h in headers.items():
            if allowed == PUBLIC or role in allowed:
                continue
            data = await call(panel, method, path, h, body, 403)
            assert data == {"error": "not allowed for your role"}, (method, path, role)
            checked += 1
    assert checked > 60
    # Nothing was done by the refused calls.
    assert panel.control.calls == []
    again = await call(panel, "GET", f"{API}/tickets/{ticket['code']}", agent)
    assert again["version"] == 1


async def test_a_cookie_session_needs_the_csrf_header_and_a_bearer_token_does_not(panel):
    session = await panel.ctx.sessions.create(panel.users["agent1"].id, "vi")
    csrf = session.csrf
    # A browser of its own on the same server, carrying the panel's session cookie (the
    # one /login sets).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        browser.cookie_jar.update_cookies(
            {COOKIE: session.token}, response_url=panel.client.make_url("/")
        )

        def url(path: str) -> Any:
            return panel.client.make_url(path)

        async with browser.get(url(f"{API}/me")) as r:
            assert r.status == 200
            assert (await r.json())["csrf"] == csrf
        body = {**TICKET, "level": 2}
        async with browser.post(url(f"{API}/tickets"), json=body) as r:
            assert r.status == 403
            assert "CSRF" in (await r.json())["error"]
        forged = {"X-CSRF-Token": "forged"}
        async with browser.post(url(f"{API}/tickets"), json=body, headers=forged) as r:
            assert r.status == 403
        async with browser.post(
            url(f"{API}/tickets"), json=body, headers={"X-CSRF-Token": csrf}
        ) as r:
            assert r.status == 201, await r.text()
        async with browser.delete(url(f"{API}/session")) as r:
            assert r.status == 403
        async with browser.delete(url(f"{API}/session"), headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 204
        async with browser.get(url(f"{API}/me")) as r:
            assert r.status == 401
    (agent,) = await tokens(panel, "agent1")
    await new_ticket(panel, agent, level=2)  # no X-CSRF-Token with a bearer token


# -- the agent's state ---------------------------------------------------------------------


async def test_agent_state_pause_and_resume(panel):
    (agent,) = await tokens(panel, "agent1")
    empty = await call(panel, "GET", f"{API}/agent/state", agent)
    assert empty == {"extension": "1001", "state": None, "pop": None}
    await panel.ctx.bus.keep("state.1001", {"extension": "1001", "state": "free"}, 60)
    await panel.ctx.bus.keep("pop.1001", {"caller": "0901234567"}, 60)
    live = await call(panel, "GET", f"{API}/agent/state", agent)
    assert live["state"]["state"] == "free" and live["pop"]["caller"] == "0901234567"

    paused = await call(panel, "POST", f"{API}/agent/pause", agent, {"reason": "meal"})
    assert paused == {"paused": True, "reason": "meal"}
    bad = await call(panel, "POST", f"{API}/agent/pause", agent, {"reason": "nap"}, 422)
    assert set(bad["fields"]) == {"reason"}
    resumed = await call(panel, "POST", f"{API}/agent/resume", agent)
    assert resumed == {"paused": False, "reason": None}
    assert panel.control.calls == [("pause", "1001", "meal"), ("resume", "1001", "")]

    # Paused by the end of the shift: the agent cannot resume themself.
    await panel.ctx.bus.keep("state.1001", {"paused": True, "reason": "shift ended"}, 60)
    ended = await call(panel, "POST", f"{API}/agent/resume", agent, status=409)
    assert ended["error"]
    control, panel.ctx.control = panel.ctx.control, None
    try:
        await call(panel, "POST", f"{API}/agent/pause", agent, {"reason": "meal"}, 503)
    finally:
        panel.ctx.control = control
    assert len(panel.control.calls) == 2


# -- the ticket workflow ---------------------------------------------------------------


async def test_level_2_lifecycle_agent_officer_supervisor(panel):
    agent, officer, officer_q1, sup = await tokens(panel, "agent1", "officer", "officer_q1", "sup")
    root = panel.agency_ids["so-gtvt"]
    t = await new_ticket(panel, agent, level=2, agency_id=root)
    assert t["status"] == "forwarded" and t["version"] == 1
    assert t["agency"] == {"id": root, "name": "Sở Giao thông Vận tải"}
    assert t["citizen_phone"] == "0901234567"
    assert t["created_by"] == panel.users["agent1"].id
    assert t["deadline_at"].endswith("Z") and t["created_at"].endswith("Z")
    assert t["overdue"] is False and t["escalations"] == 0
    assert re.fullmatch(r"[2-9A-Z]{3}-[2-9A-Z]{4}", t["code"])

    inbox = await call(panel, "GET", f"{API}/inbox", officer)
    assert [i["code"] for i in inbox["items"]] == [t["code"]]
    assert (await call(panel, "GET", f"{API}/inbox", officer_q1))["items"] == []
    await call(panel, "GET", f"{API}/tickets/{t['code']}", officer_q1, status=403)
    # Only the agency acts on a forwarded ticket, and only in the right status.
    await act(panel, sup, t, "answer", 403, result="x")
    await act(panel, officer, t, "close", 403)

    t = await act(panel, officer, t, "accept")
    assert t["status"] == "accepted" and t["version"] == 2
    again = await act(panel, officer, t, "accept", 409)
    assert again["detail"]

    panel.ctx.clock.advance(timedelta(hours=73))  # past the 72-hour deadline of level 2
    late = await call(panel, "GET", f"{API}/tickets/{t['code']}", officer)
    assert late["overdue"] is True
    overdue = await call(panel, "GET", f"{API}/tickets?overdue=1", sup)
    assert [i["code"] for i in overdue["items"]] == [t["code"]]

    t = await act(panel, officer, t, "answer", result="Đã thay bóng đèn.")
    assert t["status"] == "answered" and t["result"] == "Đã thay bóng đèn."
    t = await act(panel, sup, t, "close", note="Đã báo công dân.")
    assert t["status"] == "closed" and t["closed_at"].endswith("Z")
    assert t["closing_note"] == "Đã báo công dân." and t["overdue"] is False

    history = await call(panel, "GET", f"{API}/tickets/{t['code']}/history", officer)
    assert [e["action"] for e in history["items"]] == ["created", "accepted", "answered", "closed"]
    assert history["items"][0]["actor_name"] == "Agent1"
    assert history["items"][2]["details"]["late"] is True


async def test_level_3_waits_for_approval_then_is_forwarded(panel):
    agent, officer_q1, sup = await tokens(panel, "agent1", "officer_q1", "sup")
    q1 = panel.agency_ids["q1"]
    t = await new_ticket(panel, agent, level=3, agency_id=q1)
    assert t["status"] == "pending_approval" and t["deadline_at"] is None
    # Pre-filled for the leaders, not sent yet: the agency cannot see it.
    await call(panel, "GET", f"{API}/tickets/{t['code']}", officer_q1, status=403)
    await act(panel, agent, t, "approve", 403)

    t = await act(panel, sup, t, "approve", note="Lãnh đạo đồng ý.")
    assert t["status"] == "forwarded" and t["agency"]["id"] == q1
    assert t["approved_by"] == panel.users["sup"].id and t["deadline_at"]
    inbox = await call(panel, "GET", f"{API}/inbox", officer_q1)
    assert [i["code"] for i in inbox["items"]] == [t["code"]]
    shown = await call(panel, "GET", f"{API}/tickets/{t['code']}", officer_q1)
    assert shown["status"] == "forwarded"


async def test_forward_send_back_comment_meeting_and_proposal(panel):
    agent, officer, sup = await tokens(panel, "agent1", "officer", "sup")
    root = panel.agency_ids["so-gtvt"]
    t = await new_ticket(panel, agent, level=2)
    assert t["status"] == "new" and t["agency"] is None
    missing = await act(panel, sup, t, "forward", 422)
    assert set(missing["fields"]) == {"agency_id"}
    t = await act(panel, sup, t, "forward", agency_id=root)
    assert t["status"] == "forwarded"
    t = await act(panel, officer, t, "send_back", reason="Không thuộc thẩm quyền.")
    assert t["status"] == "returned" and t["return_reason"] == "Không thuộc thẩm quyền."
    t = await act(panel, sup, t, "forward", agency_id=root, note="Gửi lại.")
    assert t["status"] == "forwarded" and t["return_reason"] is None
    event = await act(panel, officer, t, "comment", 201, note="Đang xử lý.")
    assert event["action"] == "commented" and event["details"] == {"note": "Đang xử lý."}
    await act(panel, officer, t, "comment", 422, note="   ")

    meeting = await new_ticket(panel, agent, level=4)
    assert meeting["status"] == "meeting_pending"
    # A time without an offset is local time (Asia/Ho_Chi_Minh, UTC+7).
    m = await act(
        panel,
        sup,
        meeting,
        "schedule_meeting",
        meeting_at="2026-12-01T09:30",
        meeting_place="Phòng tiếp dân",
    )
    assert m["status"] == "meeting_scheduled"
    assert m["meeting_at"] == "2026-12-01T02:30:00Z" and m["meeting_place"] == "Phòng tiếp dân"
    m = await act(
        panel,
        sup,
        m,
        "schedule_meeting",
        meeting_at="2026-12-02T10:00:00+07:00",
        meeting_place="Hội trường",
    )
    assert m["meeting_at"] == "2026-12-02T03:00:00Z"
    bad = await act(panel, sup, m, "schedule_meeting", 422, meeting_at="tomorrow", meeting_place="")
    assert set(bad["fields"]) == {"meeting_at", "meeting_place"}
    empty_place = await act(
        panel, sup, m, "schedule_meeting", 422, meeting_at="2026-12-03T10:00", meeting_place=" "
    )
    assert set(empty_place["fields"]) == {"meeting_place"}

    proposal = await new_ticket(panel, agent, level=5, domain="party", topic="other")
    assert proposal["status"] == "proposal"
    needs_letter = await act(panel, sup, proposal, "close", 409)
    assert set(needs_letter["fields"]) == {"letter"}
    done = await act(panel, sup, proposal, "close", letter="Cảm ơn ông/bà đã góp ý.")
    assert done["status"] == "closed" and done["letter"] == "Cảm ơn ông/bà đã góp ý."

    guided = await call(panel, "POST", f"{API}/tickets", agent, {**TICKET, "level": 1}, 422)
    assert set(guided["fields"]) == {"guidance"}
    level1 = await new_ticket(panel, agent, level=1, guidance="Nộp hồ sơ tại UBND phường.")
    assert level1["status"] == "closed"


async def test_search_filters_and_pages(panel):
    agent, sup = await tokens(panel, "agent1", "sup")
    codes = []
    for i in range(3):
        codes.append((await new_ticket(panel, agent, level=2, description=f"Ổ gà số {i}"))["code"])
        panel.ctx.clock.advance(timedelta(minutes=1))
    await new_ticket(panel, sup, level=4, topic="water")
    first = await call(panel, "GET", f"{API}/tickets?status=new&per_page=2", sup)
    assert first["total"] == 3 and first["page"] == 1 and first["per_page"] == 2
    assert [i["code"] for i in first["items"]] == codes[::-1][:2]
    second = await call(panel, "GET", f"{API}/tickets?status=new&per_page=2&page=2", sup)
    assert [i["code"] for i in second["items"]] == [codes[0]]
    water = await call(panel, "GET", f"{API}/tickets?topic=water", agent)
    assert water["total"] == 1 and water["items"][0]["level"] == 4
    mine = await call(
        panel, "GET", f"{API}/tickets?created_by={panel.users['agent1'].id}&level=2", sup
    )
    assert mine["total"] == 3
    found = await call(panel, "GET", f"{API}/tickets?q=số 1", sup)
    assert [i["code"] for i in found["items"]] == [codes[1]]
    by_code = await call(panel, "GET", f"{API}/tickets?q={codes[2].lower()}", sup)
    assert [i["code"] for i in by_code["items"]] == [codes[2]]
    too_many = await call(panel, "GET", f"{API}/tickets?per_page=201", sup, status=422)
    assert set(too_many["fields"]) == {"per_page"}
    await call(panel, "GET", f"{API}/tickets?page=0", sup, status=422)
    await call(panel, "GET", f"{API}/tickets?page=x", sup, status=422)
    # A code typed with spaces and lower case opens the ticket; a mistyped one is 404.
    spaced = codes[0].lower().replace("-", " ")
    assert (await call(panel, "GET", f"{API}/tickets/{spaced}", sup))["code"] == codes[0]
    await call(panel, "GET", f"{API}/tickets/AAA-AAAA", sup, status=404)


async def test_search_ignores_accents_and_refuses_a_code_with_a_wrong_check_symbol(panel):
    agent, sup = await tokens(panel, "agent1", "sup")
    canh = await new_ticket(
        panel,
        agent,
        level=2,
        citizen_name="Nguyễn Hữu Cảnh",
        citizen_address="Đường Nguyễn Hữu Cảnh, Bình Thạnh",
    )
    typed = await new_ticket(panel, agent, level=2, channel="sms", citizen_name="nguyen huu canh")
    both = {canh["code"], typed["code"]}
    for q in ("nguyen huu canh", "NGUYEN HUU CANH", "Nguyễn Hữu Cảnh"):
        found = await call(panel, "GET", f"{API}/tickets?q={q}", sup)
        assert {i["code"] for i in found["items"]} == both, q
    found = await call(panel, "GET", f"{API}/tickets?q=binh thanh", sup)
    assert [i["code"] for i in found["items"]] == [canh["code"]]

    raw = canh["code"].replace("-", "")
    wrong = raw[:6] + ("2" if raw[6] != "2" else "3")
    shown = f"{wrong[:3]}-{wrong[3:]}"
    refused = await call(panel, "GET", f"{API}/tickets?q={wrong.lower()}", sup, status=422)
    assert refused["error"] == "invalid input"
    # in the user's language (Vietnamese), naming the code as it is written
    assert refused["fields"] == {
        "q": f"{shown} không phải là mã phiếu hợp lệ: ký tự cuối (ký tự kiểm tra) không "
        "khớp với các ký tự trước"
    }
    assert refused["labels"] == {"q": "Tìm kiếm"}
    # the right code still finds its ticket, however it is typed
    right = await call(panel, "GET", f"{API}/tickets?q={raw.lower()}", sup)
    assert [i["code"] for i in right["items"]] == [canh["code"]]


# -- conflicts -------------------------------------------------------------------------


async def test_two_patches_with_the_same_version_the_second_gets_409(panel):
    agent, sup = await tokens(panel, "agent1", "sup")
    t = await new_ticket(panel, agent, level=2)
    path = f"{API}/tickets/{t['code']}"
    first = await call(panel, "PATCH", path, sup, {"version": 1, "citizen_name": "Trần Thị B"})
    assert first["version"] == 2 and first["citizen_name"] == "Trần Thị B"
    second = await call(
        panel, "PATCH", path, agent, {"version": 1, "description": "Mô tả mới"}, 409
    )
    assert second["current_version"] == 2
    # The first change is kept; the second was refused, not silently dropped or applied.
    now = await call(panel, "GET", path, agent)
    assert now["citizen_name"] == "Trần Thị B" and now["description"] == TICKET["description"]
    redo = await call(
        panel, "PATCH", path, agent, {"version": now["version"], "description": "Mô tả mới"}
    )
    assert redo["citizen_name"] == "Trần Thị B" and redo["description"] == "Mô tả mới"
    assert redo["version"] == 3
    history = await call(panel, "GET", f"{path}/history", sup)
    assert [e["action"] for e in history["items"]] == ["created", "updated", "updated"]

    no_version = await call(panel, "PATCH", path, sup, {"citizen_name": "C"}, 422)
    assert set(no_version["fields"]) == {"version"}
    text_version = await call(panel, "PATCH", path, sup, {"version": "3", "citizen_name": "C"}, 422)
    assert set(text_version["fields"]) == {"version"}
    not_editable = await call(panel, "PATCH", path, sup, {"version": 3, "status": "closed"}, 422)
    assert set(not_editable["fields"]) == {"status"}
    # Another agent may not edit this agent's ticket.
    (agent2,) = await tokens(panel, "agent2")
    await call(panel, "PATCH", path, agent2, {"version": 3, "citizen_name": "D"}, 403)


# -- hostile and broken input ----------------------------------------------------------------


async def test_markup_and_sql_are_stored_and_returned_literally(panel):
    (agent,) = await tokens(panel, "agent1")
    t = await new_ticket(
        panel, agent, level=2, citizen_name=XSS, description=SQLI, citizen_address=XSS + SQLI
    )
    r = await panel.client.get(f"{API}/tickets/{t['code']}", headers=agent)
    assert r.content_type == "application/json"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    raw = await r.text()
    assert XSS in raw  # JSON needs no HTML escaping; the content type keeps it data
    data = json.loads(raw)
    assert data["citizen_name"] == XSS
    assert data["description"] == SQLI
    assert data["citizen_address"] == XSS + SQLI
    found = await call(panel, "GET", f"{API}/tickets?q={SQLI}", agent)
    assert [i["code"] for i in found["items"]] == [t["code"]]
    everything = await call(panel, "GET", f"{API}/tickets", agent)
    assert everything["total"] == 1  # the table is still there


async def test_oversized_and_malformed_bodies(panel):
    (agent,) = await tokens(panel, "agent1")
    too_long = await call(
        panel,
        "POST",
        f"{API}/tickets",
        agent,
        {**TICKET, "level": 2, "description": "x" * 5001},
        422,
    )
    assert too_long["error"] == "invalid input"
    assert set(too_long["fields"]) == {"description"}

    json_headers = {**agent, "Content-Type": "application/json"}
    for raw in ("{not json", '{"level": 2,}', "", "[1, 2]", '"text"', "null", '{"a": NaN}'):
        r = await panel.client.post(f"{API}/tickets", data=raw, headers=json_headers)
        assert r.status == 400, raw
        assert r.content_type == "application/json"
        assert (await r.json())["error"].startswith("the body"), raw
    r = await panel.client.post(
        f"{API}/tickets", data=b'{"description": "\xff"}', headers=json_headers
    )
    assert r.status == 400
    r = await panel.client.post(
        f"{API}/tickets", data=json.dumps(TICKET), headers={**agent, "Content-Type": "text/plain"}
    )
    assert r.status == 415
    unknown = await call(
        panel, "POST", f"{API}/tickets", agent, {**TICKET, "level": 2, "status": "closed"}, 422
    )
    assert set(unknown["fields"]) == {"status"}
    bad_call = await call(
        panel, "POST", f"{API}/tickets", agent, {**TICKET, "level": 2, "call_id": "7"}, 422
    )
    assert set(bad_call["fields"]) == {"call_id"}
    no_call = await call(
        panel, "POST", f"{API}/tickets", agent, {**TICKET, "level": 2, "call_id": 99999}, 409
    )
    assert set(no_call["fields"]) == {"call_id"}

    huge = json.dumps({**TICKET, "level": 2, "description": "x" * (300 * 1024)})
    r = await panel.client.post(f"{API}/tickets", data=huge, headers=json_headers)
    assert r.status == 413
    assert (await call(panel, "GET", f"{API}/tickets", agent))["total"] == 0


# -- agencies and accounts -----------------------------------------------------------------


async def test_agency_directory(panel):
    agent, admin = await tokens(panel, "agent1", "admin")
    root, q1 = panel.agency_ids["so-gtvt"], panel.agency_ids["q1"]
    tree = await call(panel, "GET", f"{API}/agencies", agent)
    assert [a["code"] for a in tree["items"]] == ["so-gtvt"]
    assert [c["id"] for c in tree["items"][0]["children"]] == [q1]
    flat = await call(panel, "GET", f"{API}/agencies?flat=1", agent)
    assert {a["id"] for a in flat["items"]} == {root, q1}
    assert all(a["children"] == [] for a in flat["items"])

    ward = await call(
        panel,
        "POST",
        f"{API}/agencies",
        admin,
        {
            "kind": "ward",
            "code": "q1-ben-nghe",
            "name": "UBND Phường Bến Nghé",
            "parent_id": q1,
            "email": "bennghe@example.vn",
            "phone": "028 3829 1234",
        },
        201,
    )
    assert ward["version"] == 1 and ward["active"] is True and ward["phone"] == "02838291234"
    path = f"{API}/agencies/{ward['id']}"
    assert (await call(panel, "GET", path, agent))["name"] == "UBND Phường Bến Nghé"
    taken = await call(
        panel, "POST", f"{API}/agencies", admin, {"kind": "ward", "code": "q1", "name": "X"}, 409
    )
    assert set(taken["fields"]) == {"code"}

    renamed = await call(panel, "PATCH", path, admin, {"version": 1, "name": "Phường Bến Nghé"})
    assert renamed["version"] == 2 and renamed["code"] == "q1-ben-nghe"
    stale = await call(panel, "PATCH", path, admin, {"version": 1, "address": "Q1"}, 409)
    assert stale["current_version"] == 2
    cycle = await call(
        panel,
        "PATCH",
        f"{API}/agencies/{root}",
        admin,
        {"version": 1, "parent_id": ward["id"]},
        409,
    )
    assert set(cycle["fields"]) == {"parent_id"}
    off = await call(panel, "PATCH", path, admin, {"version": 2, "active": False})
    assert off["active"] is False and off["version"] == 3
    flat = await call(panel, "GET", f"{API}/agencies?flat=1", agent)
    assert ward["id"] not in {a["id"] for a in flat["items"]}
    every = await call(panel, "GET", f"{API}/agencies?flat=1&include_inactive=1", agent)
    assert ward["id"] in {a["id"] for a in every["items"]}
    on = await call(panel, "PATCH", path, admin, {"version": 3, "active": True})
    assert on["active"] is True
    await call(panel, "GET", f"{API}/agencies/999999", agent, status=404)
    # Not an id: no route matches (the router's own 404).
    assert (await panel.client.get(f"{API}/agencies/abc", headers=agent)).status == 404


async def test_user_accounts(panel):
    (admin,) = await tokens(panel, "admin")
    listed = await call(panel, "GET", f"{API}/users", admin)
    assert {u["username"] for u in listed["items"]} >= {"admin", "sup", "agent1", "officer"}
    raw = json.dumps(listed)
    assert "password_hash" not in raw and "argon2" not in raw

    new = {
        "username": "Sup2",
        "display_name": "Giám sát 2",
        "role": "supervisor",
        "password": PASSWORD,
    }
    user = await call(panel, "POST", f"{API}/users", admin, new, 201)
    assert user["username"] == "sup2" and user["active"] is True
    assert "password" not in json.dumps(user).replace("password_changed_at", "")
    dup = await call(panel, "POST", f"{API}/users", admin, new, 409)
    assert set(dup["fields"]) == {"username"}
    no_ext = await call(
        panel,
        "POST",
        f"{API}/users",
        admin,
        {**new, "username": "agent3", "role": "agent"},
        422,
    )
    assert set(no_ext["fields"]) == {"extension"}
    path = f"{API}/users/{user['id']}"
    changed = await call(panel, "PATCH", path, admin, {"display_name": "Giám sát ca đêm"})
    assert changed["display_name"] == "Giám sát ca đêm" and changed["role"] == "supervisor"

    me = f"{API}/users/{panel.users['admin'].id}"
    demote = await call(panel, "PATCH", me, admin, {"role": "supervisor"}, 422)
    assert set(demote["fields"]) == {"role"}
    await call(panel, "PATCH", me, admin, {"active": False}, 422)

    short = await call(panel, "POST", f"{path}/password", admin, {"password": "short"}, 422)
    assert set(short["fields"]) == {"password"}
    new_password = "a much longer new password"
    assert (
        await call(panel, "POST", f"{path}/password", admin, {"password": new_password}, 204)
        is None
    )
    await call(
        panel, "POST", f"{API}/session", body={"username": "sup2", "password": PASSWORD}, status=401
    )
    await call(panel, "POST", f"{API}/session", body={"username": "sup2", "password": new_password})

    for _ in range(3):
        r = await panel.client.post(f"{API}/session", json={"username": "sup2", "password": "x"})
    assert r.status == 429
    unlocked = await call(panel, "POST", f"{path}/unlock", admin)
    assert unlocked["locked_until"] is None
    await call(panel, "POST", f"{API}/session", body={"username": "sup2", "password": new_password})

    off = await call(panel, "PATCH", path, admin, {"active": False})
    assert off["active"] is False
    # the right password: told the account is deactivated (not "wrong password")
    gone = await call(
        panel,
        "POST",
        f"{API}/session",
        body={"username": "sup2", "password": new_password},
        status=403,
    )
    assert "vô hiệu hóa" in gone["error"]
    await call(
        panel, "POST", f"{API}/users/999999/password", admin, {"password": new_password}, 404
    )
    await call(panel, "POST", f"{API}/users/999999/unlock", admin, status=404)
    await call(panel, "PATCH", f"{API}/users/999999", admin, {"display_name": "X"}, 404)


# -- the OpenAPI document -------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_the_openapi_document_lists_every_route_and_nothing_else(panel):
    r = await panel.client.get("/api/openapi.json")  # public
    assert r.status == 200 and r.content_type == "application/json"
    doc = json.loads(await r.text())
    assert doc["openapi"].startswith("3.1")
    routes = {
        (route.method, route.resource.canonical)
        for route in panel.client.app.router.routes()
        if route.resource.canonical.startswith(API + "/") and route.method != "HEAD"
    }
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert routes == documented
    assert routes == set(ACCESS)

    for ref in _refs(doc):
        assert _resolve(doc, ref), ref
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["cookie"]["in"] == "cookie" and schemes["csrf"]["name"] == "X-CSRF-Token"
    for (method, path), allowed in ACCESS.items():
        op = doc["paths"][path][method.lower()]
        assert set(op["x-roles"]) == allowed
        if allowed != PUBLIC:
            assert {"401", "403"} <= set(op["responses"]), (method, path)
        if "requestBody" in op:
            assert {"400", "422"} <= set(op["responses"])
    create = doc["paths"][f"{API}/tickets"]["post"]
    body = _resolve(doc, create["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert {"description", "level", "call_id"} <= set(body["properties"])
    assert set(body["required"]) >= {"channel", "domain", "topic", "level", "description"}
    ticket = doc["components"]["schemas"]["TicketOut"]
    assert "password_hash" not in json.dumps(doc)
    assert {"code", "status", "agency", "deadline_at", "overdue", "version"} <= set(
        ticket["properties"]
    )
    invalid = _resolve(
        doc,
        doc["components"]["responses"]["InvalidInput"]["content"]["application/json"]["schema"][
            "$ref"
        ],
    )
    assert "fields" in invalid["properties"]


async def test_the_openapi_document_passes_the_validator(panel):
    validator = pytest.importorskip("openapi_spec_validator")
    doc = await (await panel.client.get("/api/openapi.json")).json()
    validator.validate(doc)


async def test_the_docs_page_is_plain_escaped_html(panel):
    r = await panel.client.get("/api/docs")
    assert r.status == 200 and r.content_type == "text/html"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    page = await r.text()
    assert "<script" not in page and "style" not in page
    for op in OPERATIONS:
        assert f"<code>{op.path}</code>" in page
        assert op.summary.replace("'", "&#x27;") in page


async def test_a_client_follows_a_created_ticket_through_its_actions_by_links(panel):
    """The document's links lead from an answer to the next operation: no path is built
    by hand here, only operation ids and the parameters the links take from the body."""
    doc = await (await panel.client.get("/api/openapi.json")).json()
    by_id = {
        op["operationId"]: (method.upper(), path)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    links_of = {
        (method.upper(), path): op["responses"][next(iter(op["responses"]))].get("links", {})
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    # every link names an operation and takes its parameters from a property of the body
    assert links_of[("POST", f"{API}/tickets")], "a created ticket links to its actions"
    for (method, path), links in links_of.items():
        if not links:
            continue
        op = doc["paths"][path][method.lower()]
        schema_ref = next(iter(op["responses"].values()))["content"]["application/json"]
        props = doc["components"]["schemas"][schema_ref["schema"]["$ref"].rsplit("/", 1)[1]]
        for name, link in links.items():
            assert link["operationId"] in by_id, (path, name)
            for param, expr in link["parameters"].items():
                assert f"{{{param}}}" in by_id[link["operationId"]][1]
                assert expr.removeprefix("$response.body#/") in props["properties"], expr

    async def follow(
        answer: dict[str, Any], via: tuple[str, str], op_id: str, who: dict[str, str], **body: Any
    ) -> Any:
        link = links_of[via][op_id]
        method, path = by_id[link["operationId"]]
        for param, expr in link["parameters"].items():
            path = path.replace(f"{{{param}}}", str(answer[expr.removeprefix("$response.body#/")]))
        if method != "GET" and "version" in answer:
            body.setdefault("version", answer["version"])
        return await call(panel, method, path, who, body if method != "GET" else None), (
            method,
            by_id[link["operationId"]][1],
        )

    agent, officer, sup = await tokens(panel, "agent1", "officer", "sup")
    t = await new_ticket(panel, agent, level=2, agency_id=panel.agency_ids["so-gtvt"])
    t, via = await follow(t, ("POST", f"{API}/tickets"), "accept_ticket", officer)
    assert t["status"] == "accepted"
    t, via = await follow(t, via, "answer_ticket", officer, result="Đã thay bóng đèn.")
    assert t["status"] == "answered"
    t, via = await follow(t, via, "close_ticket", sup)
    assert t["status"] == "closed"
    history, _ = await follow(t, via, "ticket_history", sup)
    assert [e["action"] for e in history["items"]] == ["created", "accepted", "answered", "closed"]


async def test_supervise_refusals_name_their_reason(panel):
    """Who has no desk phone is told so before anything rings; a desk phone with no
    telephone system to ring it gets 503; a mode that is none gets 422."""
    sup, admin = await tokens(panel, "sup", "admin")
    path = f"{API}/agents/1001/supervise"
    refused = await call(panel, "POST", path, sup, {"mode": "listen"}, 409)
    assert refused["reason"] == "no_extension" and refused["error"]
    bad = await call(panel, "POST", path, sup, {"mode": "shout"}, 422)
    assert "mode" in bad["fields"]
    await call(
        panel, "PATCH", f"{API}/users/{panel.users['sup'].id}", admin, {"extension": "1002"}, 409
    )
    await call(panel, "PATCH", f"{API}/users/{panel.users['sup'].id}", admin, {"extension": "1901"})
    sup = await panel.token("sup")
    away = await call(panel, "POST", path, sup, {"mode": "whisper"}, 503)
    assert away["reason"] == "unavailable"

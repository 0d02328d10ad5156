"""Accounts over HTTP: sign-in answers that reveal nothing, deactivated accounts,
extensions refused by name, agency codes.

Real Argon2 hashing (its cost is what the timing compares), real Redis, SQLite
and PostgreSQL.
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import timedelta
from html import unescape

import pytest
from argon2 import PasswordHasher

from accounts import passwords
from accounts.identity import Actor
from tests.panel.conftest import PASSWORD, login_form_token

LOCKED = "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {m} phút."


async def sign_in(panel, username: str, password: str) -> tuple[int, str, float]:  # type: ignore[no-untyped-def]
    """One try at the sign-in form: the status, the message shown, the seconds it took."""
    panel.client.session.cookie_jar.clear()
    token = await login_form_token(panel.client)
    started = time.perf_counter()
    r = await panel.client.post(
        "/login",
        data={"_csrf": token, "username": username, "password": password},
        allow_redirects=False,
    )
    took = time.perf_counter() - started
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', await r.text())
    return r.status, unescape(found.group(1)) if found else "", took


@pytest.fixture
def product_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The product's Argon2id cost, not the suite's cheapest (tests/conftest.py), for
    the accounts made after it: the timing below compares what hashing costs."""
    hasher = PasswordHasher.from_parameters(passwords.PROFILE)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    monkeypatch.setattr(passwords, "_DUMMY", hasher.hash("not a real password"))


async def test_an_unknown_name_is_answered_as_a_real_account_is(product_hashes, panel):
    attempts = panel.ctx.settings.panel.lockout_attempts
    # the same answers, failure after failure, up to the lockout
    for _ in range(attempts):
        real = await sign_in(panel, "sup", "wrong password!")
        unknown = await sign_in(panel, "nobody-here", "wrong password!")
        assert real[:2] == unknown[:2]
    minutes = panel.ctx.settings.panel.lockout_minutes
    assert real[:2] == (429, LOCKED.format(m=minutes))
    # locked: even the right password gets the same answer as an unknown name
    assert (await sign_in(panel, "sup", PASSWORD))[:2] == (429, LOCKED.format(m=minutes))
    assert (await sign_in(panel, "nobody-here", PASSWORD))[:2] == (429, LOCKED.format(m=minutes))

    # and the same time: the password is hashed whether or not the name is
    # locked or exists (locked "sup" against names no account has)
    locked, unknown = [], []
    for i in range(11):
        locked.append((await sign_in(panel, "sup", PASSWORD))[2])
        unknown.append((await sign_in(panel, f"ghost-{i}", PASSWORD))[2])
    a, b = statistics.median(locked), statistics.median(unknown)
    # within a third of each other (on a busy test machine); without the
    # hashing, a locked account answered in a fraction of the time
    assert min(a, b) / max(a, b) > 0.67, (locked, unknown)

    # once the time is over, the account opens again; the unknown name still fails
    panel.ctx.clock.advance(timedelta(minutes=minutes + 1))  # type: ignore[attr-defined]
    assert (await sign_in(panel, "sup", PASSWORD))[0] == 303
    assert (await sign_in(panel, "nobody-here", PASSWORD))[0] == 401


async def test_a_deactivated_account_is_told_so_once_the_password_matches(panel):
    admin = Actor.of(panel.users["admin"])
    await panel.ctx.accounts.update_user(admin, panel.users["sup"].id, {"active": False})
    status, message, _ = await sign_in(panel, "sup", PASSWORD)
    assert (status, message) == (403, "Tài khoản này đã bị vô hiệu hóa. Hãy liên hệ quản trị viên.")
    # a wrong password says no more than for anyone
    status, message, _ = await sign_in(panel, "sup", "wrong password!")
    assert (status, message) == (401, "Tên đăng nhập hoặc mật khẩu không đúng.")
    r = await panel.client.post("/api/v1/session", json={"username": "sup", "password": PASSWORD})
    assert r.status == 403
    assert (await r.json())["error"].startswith("Tài khoản này đã bị vô hiệu hóa")


async def test_extensions_are_chosen_from_the_configuration_and_refusals_named(panel):
    await panel.login("admin")
    csrf = await panel.csrf()
    page = await (await panel.client.get("/admin/users")).text()
    # the edit form offers the configured extensions, as the new-account form does
    sup_id = panel.users["sup"].id
    edit = page[page.index(f'action="/admin/users/{sup_id}"') :]
    edit = edit[: edit.index("</form>")]
    assert '<select name="extension">' in edit
    for a in panel.ctx.settings.agents:
        assert f'<option value="{a.extension}"' in edit

    async def save(user_id: int, **fields: str) -> tuple[int, str]:
        r = await panel.client.post(
            f"/admin/users/{user_id}",
            data={"_csrf": csrf, "do": "save", "active": "1", **fields},
            allow_redirects=False,
        )
        text = unescape(await r.text())
        found = re.search(r'<span id="err-extension">(.*?)</span>', text)
        return r.status, found.group(1) if found else ""

    agent = panel.users["agent1"]
    status, error = await save(agent.id, display_name="Agent1", role="agent", extension="1099")
    assert status == 422 and "“1099”" in error and "không phải máy lẻ" in error
    status, error = await save(sup_id, display_name="Sup", role="supervisor", extension="1003")
    assert status == 422 and "“1003”" in error and "máy của giám sát viên" in error
    # nothing changed
    assert (await panel.ctx.accounts.get(agent.id)).extension == "1001"
    assert (await panel.ctx.accounts.get(sup_id)).extension is None
    status, _ = await save(sup_id, display_name="Sup", role="supervisor", extension="")
    assert status == 303
    # an agent made supervisor without naming the extension gives it back, not refused
    from accounts.identity import SYSTEM

    await panel.ctx.accounts.update_user(SYSTEM, agent.id, {"role": "supervisor"})
    moved = await panel.ctx.accounts.get(agent.id)
    assert moved.role == "supervisor" and moved.extension is None
    assert await panel.ctx.accounts.by_extension("1001") is None


async def test_an_agency_code_not_kept_as_typed_is_said(panel):
    await panel.login("admin")
    csrf = await panel.csrf()
    r = await panel.client.post(
        "/agencies",
        data={"_csrf": csrf, "kind": "ward", "code": "Q1-P-Da-Kao", "name": "Phường Đa Kao"},
        allow_redirects=False,
    )
    assert r.status == 303
    page = unescape(await (await panel.client.get("/agencies")).text())
    assert "Mã được lưu là “q1-p-da-kao”: mã luôn viết thường." in page
    # typed in lower case: nothing to say
    r = await panel.client.post(
        "/agencies",
        data={"_csrf": csrf, "kind": "ward", "code": "q1-p-ben-nghe", "name": "Phường Bến Nghé"},
        allow_redirects=False,
    )
    page = unescape(await (await panel.client.get("/agencies")).text())
    assert "viết thường" not in page


async def test_a_meeting_time_is_typed_dd_mm_yyyy_hh_mm(panel):
    ticket = await panel.ctx.tickets.create(
        Actor.of(panel.users["agent1"]),
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 4,
            "description": "Xin gặp lãnh đạo về ngập nước",
        },
    )
    await panel.login("sup")
    csrf = await panel.csrf()
    page = await (await panel.client.get(f"/tickets/{ticket.code}")).text()
    assert re.search(r'name="meeting_at"[^>]* placeholder="dd/mm/yyyy hh:mm"', page)
    assert 'type="datetime-local"' not in page

    async def schedule(when: str) -> tuple[int, str]:
        r = await panel.client.post(
            f"/tickets/{ticket.code}/schedule_meeting",
            data={
                "_csrf": csrf,
                "version": str(ticket.version),
                "meeting_at": when,
                "meeting_place": "Phòng tiếp dân",
            },
            allow_redirects=False,
        )
        return r.status, unescape(await r.text())

    status, text = await schedule("12/01/2026 9:30 AM")  # the browser's way: refused by name
    assert status == 422 and "phải là ngày giờ dạng 25/11/2026 14:30" in text
    status, _ = await schedule("01/12/2026 09:30")
    assert status == 303
    stored = await panel.ctx.ticket_queries.get(ticket.id)
    assert stored.meeting_at.astimezone(panel.ctx.settings.tz).strftime("%d/%m/%Y %H:%M") == (
        "01/12/2026 09:30"
    )

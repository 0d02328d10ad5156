"""The second factor (TOTP) over HTTP: enrolment on the account page, the
sign-in form's second step, the JSON API's ``otp``, replayed and wrong codes.

Real Redis, SQLite and PostgreSQL; the codes are computed here from the
secret, at the panel's (fake) clock, as the user's app would.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from html import unescape

import pytest

from accounts import totp
from accounts.exceptions import (
    AccountLocked,
    AddressBlocked,
    CodeRejected,
    SecondFactorRequired,
)
from accounts.identity import Actor
from accounts.models import User
from tests.panel.conftest import PASSWORD, login_form_token

STEP = timedelta(seconds=totp.STEP_SECONDS)


def alert(text: str) -> str:
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', text)
    return unescape(found.group(1)) if found else ""


async def enrol(panel, who: str) -> str:  # type: ignore[no-untyped-def]
    """Turn ``who``'s second factor on through the account page; returns the secret."""
    csrf = await panel.login(who)
    r = await panel.client.post("/account/totp", data={"_csrf": csrf})
    assert r.status == 200, await r.text()
    page = await r.text()
    secret = re.search(r'<code class="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    assert f"otpauth://totp/Hotline:{who}?secret={secret}" in unescape(page)
    assert 'src="data:image/svg+xml' in page  # the QR code, drawn without binaries
    code = totp.code_at(secret, panel.ctx.clock.now())
    r = await panel.client.post(
        "/account/totp/confirm", data={"_csrf": csrf, "code": code}, allow_redirects=False
    )
    assert r.status == 303, await r.text()
    # never shown again
    page = await (await panel.client.get("/account")).text()
    assert secret not in page and "otpauth" not in page
    assert "Đang bật" in page
    await panel.client.post("/logout", data={"_csrf": csrf})
    panel.client.session.cookie_jar.clear()
    # the next step: the confirming code has been used
    panel.ctx.clock.advance(STEP)
    return secret


async def stored(panel, who: str) -> User:  # type: ignore[no-untyped-def]
    """The account as the database has it now (not the panel's short cache)."""
    async with panel.ctx.db.session() as s:
        return await s.get(User, panel.users[who].id)


async def password_step(panel, who: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    panel.client.session.cookie_jar.clear()
    token = await login_form_token(panel.client)
    return await panel.client.post(
        "/login",
        data={"_csrf": token, "username": who, "password": password},
        allow_redirects=False,
    )


async def code_step(panel, code: str):  # type: ignore[no-untyped-def]
    # the form shown after the password set its own token; taken from the jar
    token = panel.client.session.cookie_jar.filter_cookies(panel.client.make_url("/"))
    return await panel.client.post(
        "/login/code",
        data={"_csrf": token["hotline_login_csrf"].value, "code": code},
        allow_redirects=False,
    )


async def test_enrol_then_sign_in_in_two_steps(panel):
    secret = await enrol(panel, "sup")
    r = await password_step(panel, "sup")
    assert r.status == 200
    page = await r.text()
    assert 'action="/login/code"' in page and "hotline_session" not in r.cookies
    # the pending sign-in lives in Redis; the cookie is only its random key
    pending = r.cookies["hotline_signin"].value
    assert await panel.ctx.sessions.pending(pending) is not None
    ttl = await panel.ctx.bus.redis.ttl(panel.ctx.bus.key("signin-pending", pending))
    assert 0 < ttl <= 300

    code = totp.code_at(secret, panel.ctx.clock.now())
    r = await code_step(panel, code[:3] + " " + code[3:])  # as the app shows it
    assert r.status == 303 and r.headers["Location"] == "/tickets"
    assert await panel.ctx.sessions.pending(pending) is None
    assert (await panel.client.get("/account")).status == 200

    # the same code again, within its window: refused
    r = await password_step(panel, "sup")
    assert r.status == 200
    r = await code_step(panel, code)
    assert r.status == 401
    assert alert(await r.text()) == "Mã sai hoặc đã dùng rồi. Hãy nhập mã ứng dụng đang hiển thị."
    # a forged or stale pending cookie leads back to the password
    jar = panel.client.session.cookie_jar
    csrf = jar.filter_cookies(panel.client.make_url("/"))["hotline_login_csrf"].value
    jar.clear()
    jar.update_cookies(
        {"hotline_signin": "forged", "hotline_login_csrf": csrf}, panel.client.make_url("/")
    )
    r = await code_step(panel, totp.code_at(secret, panel.ctx.clock.now() + STEP))
    assert r.status == 401
    assert alert(await r.text()) == "Đăng nhập quá lâu. Vui lòng nhập lại mật khẩu."

    # the API: otp named when it is missing, wrong or replayed
    body = {"username": "sup", "password": PASSWORD}
    r = await panel.client.post("/api/v1/session", json=body)
    assert r.status == 401
    answer = await r.json()
    assert answer["field"] == "otp" and "“otp”" in answer["error"]
    r = await panel.client.post("/api/v1/session", json={**body, "otp": code})
    assert (r.status, (await r.json())["field"]) == (401, "otp")
    panel.ctx.clock.advance(STEP)
    good = totp.code_at(secret, panel.ctx.clock.now())
    r = await panel.client.post("/api/v1/session", json={**body, "otp": good})
    assert r.status == 200, await r.text()
    r = await panel.client.post("/api/v1/session", json={**body, "otp": good})
    assert r.status == 401  # replayed
    # an account without a second factor signs in as before (an extra otp is ignored)
    r = await panel.client.post(
        "/api/v1/session", json={"username": "agent1", "password": PASSWORD}
    )
    assert r.status == 200


async def test_wrong_codes_lock_the_account_like_wrong_passwords(panel):
    secret = await enrol(panel, "admin")
    attempts = panel.ctx.settings.panel.lockout_attempts
    for i in range(attempts - 1):
        assert (await password_step(panel, "admin")).status == 200
        r = await code_step(panel, "000000" if i else "12345x")
        assert r.status == 401
    assert (await password_step(panel, "admin")).status == 200
    r = await code_step(panel, "999999")
    assert r.status == 429
    assert "Đăng nhập sai quá nhiều lần" in alert(await r.text())
    # locked: the right password and a right code are refused alike
    assert (await password_step(panel, "admin")).status == 429
    with pytest.raises(AccountLocked):
        await panel.ctx.accounts.authenticate(
            "admin", PASSWORD, otp=totp.code_at(secret, panel.ctx.clock.now())
        )
    assert (await stored(panel, "admin")).locked_until is not None


async def test_wrong_codes_count_per_address_too(panel):
    secret = await enrol(panel, "sup")
    accounts = panel.ctx.accounts
    address = "192.0.2.44"
    with pytest.raises(SecondFactorRequired):
        await accounts.authenticate("sup", PASSWORD, address)
    for _ in range(panel.ctx.settings.panel.address_attempts):
        with pytest.raises(CodeRejected):
            await accounts.authenticate("sup", PASSWORD, address, otp="000000")
    with pytest.raises(AddressBlocked):
        await accounts.second_step(
            panel.users["sup"].id, totp.code_at(secret, panel.ctx.clock.now()), address
        )


async def test_confirming_needs_a_current_code_and_only_some_roles_enrol(panel):
    csrf = await panel.login("sup")
    r = await panel.client.post("/account/totp", data={"_csrf": csrf})
    secret = re.search(r'<code class="totp-secret">([A-Z2-7]+)</code>', await r.text()).group(1)
    old = totp.code_at(secret, panel.ctx.clock.now() - 3 * STEP)
    r = await panel.client.post("/account/totp/confirm", data={"_csrf": csrf, "code": old})
    assert r.status == 422
    assert "không phải mã hiện tại của ứng dụng" in await r.text()
    assert not (await stored(panel, "sup")).totp_on
    # still off: signing in asks for no code
    assert (await password_step(panel, "sup")).status == 303

    # an agent has no second factor (panel.totp_roles: admins and supervisors)
    panel.client.session.cookie_jar.clear()
    csrf = await panel.login("agent1")
    assert "/account/totp" not in await (await panel.client.get("/account")).text()
    r = await panel.client.post("/account/totp", data={"_csrf": csrf})
    assert r.status == 403


async def test_an_admin_resets_a_lost_second_factor(panel, caplog):
    await enrol(panel, "sup")
    panel.client.session.cookie_jar.clear()
    csrf = await panel.login("admin")
    page = await (await panel.client.get("/admin/users")).text()
    assert 'value="reset_totp"' in page
    sup = panel.users["sup"].id
    with caplog.at_level("WARNING", logger="hotline.security"):
        r = await panel.client.post(
            f"/admin/users/{sup}",
            data={"_csrf": csrf, "do": "reset_totp"},
            allow_redirects=False,
        )
    assert r.status == 303
    assert any("second factor of 'sup' reset by admin" in m for m in caplog.messages)
    user = await stored(panel, "sup")
    assert (user.totp_secret, user.totp_enabled_at, user.totp_last_step) == (None, None, None)
    assert (await password_step(panel, "sup")).status == 303
    # only admins
    with pytest.raises(PermissionError):
        await panel.ctx.accounts.reset_totp(Actor.of(panel.users["sup"]), sup)


async def test_required_second_factor_must_be_set_up_first(panel):
    s = panel.ctx.settings
    required = s.model_copy(update={"panel": s.panel.model_copy(update={"totp_required": True})})
    panel.ctx.settings = panel.ctx.accounts.settings = required
    try:
        csrf = await panel.login("sup")
        r = await panel.client.get("/tickets", allow_redirects=False)
        assert (r.status, r.headers["Location"]) == (303, "/account")
        page = await (await panel.client.get("/account")).text()
        assert "bắt buộc đăng nhập hai bước" in page
        async with await panel.new_client() as api:
            for who, status in (("sup", 403), ("agent1", 200)):  # agents are not asked
                r = await api.post("/api/v1/session", json={"username": who, "password": PASSWORD})
                assert r.status == 200  # signed in, but held at the set-up
                token = (await r.json())["token"]
                r = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
                assert r.status == status
        # once on, the way is open
        r = await panel.client.post("/account/totp", data={"_csrf": csrf})
        secret = re.search(r'class="totp-secret">([A-Z2-7]+)<', await r.text()).group(1)
        code = totp.code_at(secret, panel.ctx.clock.now())
        r = await panel.client.post(
            "/account/totp/confirm", data={"_csrf": csrf, "code": code}, allow_redirects=False
        )
        assert r.status == 303
        assert (await panel.client.get("/tickets", allow_redirects=False)).status == 200
    finally:
        panel.ctx.settings = panel.ctx.accounts.settings = s


async def test_the_openapi_document_names_otp(panel):
    doc = await (await panel.client.get("/api/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "otp" in schemas["SessionIn"]["properties"]
    assert "otp" not in schemas["SessionIn"].get("required", [])
    assert "field" in schemas["UnauthorizedError"]["properties"]
    assert "`otp`" in doc["paths"]["/api/v1/session"]["post"]["description"]


async def test_one_code_sent_twice_at_once_signs_in_once(panel):
    secret = await enrol(panel, "sup")
    code = totp.code_at(secret, panel.ctx.clock.now())
    results = await asyncio.gather(
        *(panel.ctx.accounts.authenticate("sup", PASSWORD, otp=code) for _ in range(2)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["CodeRejected", "User"], results

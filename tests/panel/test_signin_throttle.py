"""One address cannot lock out accounts it does not own: real Redis and the
real sign-in form, clients told apart by a trusted proxy's X-Forwarded-For."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from accounts.exceptions import AccountLocked, AddressBlocked, SignInFailed
from accounts.service import AccountService
from accounts.throttle import SignInThrottle
from core.settings import ConfigError
from tests.helpers import EXAMPLE, settings_in
from tests.panel.conftest import PASSWORD


async def sign_in(panel, user: str, password: str, client: str) -> int:
    r = await panel.client.get("/login")
    token = r.cookies["hotline_login_csrf"].value
    r = await panel.client.post(
        "/login",
        data={"username": user, "password": password, "_csrf": token},
        headers={"X-Forwarded-For": client},
        allow_redirects=False,
    )
    return r.status


async def test_an_address_is_refused_before_it_can_lock_an_account(panel):
    attacker, owner = "192.0.2.66", "198.51.100.7"
    limit = panel.ctx.settings.panel.address_attempts  # 2 with the tests' lockout of 3
    for _ in range(limit):
        assert await sign_in(panel, "agent1", "wrong password", attacker) == 401
    # the attacker's address is refused now, whatever name it tries
    assert await sign_in(panel, "agent1", "wrong password", attacker) == 429
    assert await sign_in(panel, "agent2", "wrong password", attacker) == 429
    assert await sign_in(panel, "agent1", PASSWORD, attacker) == 429
    # and the account is not locked: its owner signs in from their own desk
    assert await sign_in(panel, "agent1", PASSWORD, owner) == 303


async def test_many_addresses_still_lock_an_account_and_unknown_names_alike(panel):
    s = panel.ctx.settings
    accounts = panel.ctx.accounts
    for i in range(s.panel.lockout_attempts - 1):
        with pytest.raises(SignInFailed):
            await accounts.authenticate("sup", "nope", f"203.0.113.{i + 1}")
    with pytest.raises(AccountLocked):
        await accounts.authenticate("sup", "nope", "203.0.113.99")
    with pytest.raises(AccountLocked):  # locked: even the right password
        await accounts.authenticate("sup", PASSWORD, "203.0.113.100")

    # a name without an account, counted in Redis: another panel process sees it
    other = AccountService(
        panel.ctx.db,
        s,
        panel.ctx.clock,
        SignInThrottle(panel.ctx.bus.redis, panel.ctx.bus.prefix, s),
    )
    for i in range(s.panel.lockout_attempts - 1):
        with pytest.raises(SignInFailed):
            await (accounts if i % 2 else other).authenticate("ghost", "x", f"203.0.113.{i + 20}")
    with pytest.raises(AccountLocked):
        await other.authenticate("ghost", "x", "203.0.113.50")
    with pytest.raises(AccountLocked):
        await accounts.authenticate("ghost", "x", "203.0.113.51")
    # blocked addresses are refused before any password is checked
    for _ in range(s.panel.address_attempts):
        with pytest.raises((SignInFailed, AccountLocked)):
            await accounts.authenticate(f"n{uuid.uuid4().hex[:6]}", "x", "203.0.113.200")
    with pytest.raises(AddressBlocked):
        await accounts.authenticate("admin", PASSWORD, "203.0.113.200")


def test_the_address_limit_must_stay_below_the_lockout(tmp_path):
    text = EXAMPLE.read_text().replace(
        "lockout_attempts = 5", "lockout_attempts = 5\nsignin_address_attempts = 5", 1
    )
    with pytest.raises(ConfigError, match="signin_address_attempts must be below"):
        settings_in(tmp_path, text)


async def test_failed_sign_ins_reach_the_security_log_that_fail2ban_reads(panel, tmp_path):
    import logging
    import shutil
    import subprocess
    from pathlib import Path

    from core.logs import SECURITY_LOGGER, security_file

    log = tmp_path / "var" / "log" / "security.log"
    handler = security_file(log)
    try:
        for user, who in (
            ("agent1", "192.0.2.66"),
            ("sup", "192.0.2.66"),
            ("agent2", "198.51.100.9"),
        ):
            assert await sign_in(panel, user, "wrong password", who) == 401
        assert await sign_in(panel, "agent1", "wrong password", "192.0.2.66") == 429
        assert await sign_in(panel, "agent2", PASSWORD, "198.51.100.9") == 303  # not logged
    finally:
        logging.getLogger(SECURITY_LOGGER).removeHandler(handler)
        handler.close()
    lines = log.read_text().splitlines()
    assert len(lines) == 4
    tool = shutil.which("fail2ban-regex")
    if tool is None:
        pytest.fail("fail2ban-regex missing: ./setup.sh --deps-only installs Debian's fail2ban")
    conf = Path(__file__).parents[2] / "monitoring" / "fail2ban" / "filter.d" / "hotline-panel.conf"
    done = await asyncio.to_thread(
        subprocess.run,
        [tool, "--print-all-matched", str(log), str(conf)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Failregex: 4 total" in done.stdout, done.stdout
    assert "Lines: 4 lines, 0 ignored, 4 matched, 0 missed" in done.stdout, done.stdout
    # the address each line names, as fail2ban would ban it
    ips = await asyncio.to_thread(
        subprocess.run, [tool, "-o", "ip", str(log), str(conf)], capture_output=True, text=True
    )
    assert ips.stdout.split() == ["192.0.2.66", "192.0.2.66", "198.51.100.9", "192.0.2.66"]

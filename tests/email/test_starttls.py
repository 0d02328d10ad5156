"""IMAP with STARTTLS (``email.imap_tls = "starttls"``) against a real Dovecot on
its plain port (tests/email/servers.py), on SQLite and PostgreSQL:

- the reader upgrades the connection before its login: mail is read and marked
  done, and Dovecot's own log says the login on the plain port came under TLS
  (the same server's log says otherwise for a plain login: the check can fail);
- the upgrade itself: STARTTLS offered in clear, gone from the capabilities
  asked again under TLS, a TLS session with the server's certificate;
- a certificate not trusted ends the connection before the login;
- a Dovecot without TLS (no STARTTLS offered): the reader refuses, says why in
  its state (``hotline status``) and never sends the password, which Dovecot's
  log confirms; the same server takes a plain login, so the refusal is ours.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aioimaplib
import pytest

from core.clock import Clock
from core.settings import Settings
from inbox.models import MessageChannel
from mail.imap import ImapClient, ImapError, MailboxReader, StartTlsProtocol, starttls
from mail.outgoing import tls_context_of
from tests.email.conftest import MailLab, eventually, mail, make_lab
from tests.email.servers import IMAP_PASSWORD, PORTS, needs_dovecot

pytestmark = [needs_dovecot]


def imap_tls(settings: Settings, value: str) -> Settings:
    """The same settings with another ``email.imap_tls``."""
    return settings.model_copy(
        update={"email": settings.email.model_copy(update={"imap_tls": value})}
    )


async def stored(lab: MailLab, count: int) -> list:  # type: ignore[type-arg]
    async def check():  # type: ignore[no-untyped-def]
        rows = [m for m in await lab.messages_in() if m.channel == MessageChannel.EMAIL]
        return rows if len(rows) >= count else None

    return await eventually(check, 30, what=f"{count} mails stored")  # type: ignore[no-any-return]


async def logins(lab: MailLab, count: int) -> list[str]:
    """Dovecot's log lines of the logins, once there are ``count`` (its log lags a little)."""
    try:
        await eventually(
            lambda: asyncio.sleep(0, len(lab.dovecot.logins()) >= count),
            what=f"{count} logins in Dovecot's log",
        )
    except AssertionError as e:
        raise AssertionError(f"{e}; the log: {lab.dovecot.log()[-3000:]}") from None
    return lab.dovecot.logins()


@pytest.fixture
async def starttls_lab(database_url: str, tmp_path: Path) -> AsyncIterator[MailLab]:
    async for lab in make_lab(database_url, tmp_path, imap_port=PORTS["imap"], imap_tls="starttls"):
        yield lab


@pytest.fixture
async def no_tls_lab(database_url: str, tmp_path: Path) -> AsyncIterator[MailLab]:
    async for lab in make_lab(
        database_url, tmp_path, tls=False, imap_port=PORTS["imap"], imap_tls="starttls"
    ):
        yield lab


async def test_the_reader_upgrades_the_plain_port_before_its_login(starttls_lab: MailLab) -> None:
    lab = starttls_lab
    raw, mid = mail()
    lab.dovecot.deliver(raw)
    await lab.reader.start()
    [msg] = await stored(lab, 1)
    assert msg.external_id == mid
    await eventually(lambda: asyncio.sleep(0, lab.dovecot.unseen() == 0), what="\\Seen")
    await eventually(lambda: asyncio.sleep(0, lab.reader.state["idle"] is True), what="IDLE")
    assert lab.reader.state["connected"] is True
    await lab.reader.stop()
    # Dovecot's word: the login came on the plain port, under TLS
    [login] = await logins(lab, 1)
    assert f"lport={PORTS['imap']}" in login and " TLS" in login, login

    # the control: a plain login on the same port is logged without TLS
    plain = MailboxReader(imap_tls(lab.settings, "none"), lab.intake.store_batch, Clock())
    assert await plain.once() == 0
    _first, second = await logins(lab, 2)
    assert f"lport={PORTS['imap']}" in second and " TLS" not in second, second

    # a certificate nobody told us to trust: refused in the handshake, no login
    untrusting = MailboxReader(
        lab.settings, lab.intake.store_batch, Clock(), ssl_context=ssl.create_default_context()
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await untrusting.once()
    assert len(lab.dovecot.logins()) == 2


async def test_the_upgrade_asks_the_capabilities_again_under_tls(starttls_lab: MailLab) -> None:
    cfg = starttls_lab.settings.email
    imap = ImapClient(cfg.imap_host, cfg.imap_port, timeout=10)
    await imap.wait_hello_from_server()
    protocol = imap.protocol
    assert isinstance(protocol, StartTlsProtocol)
    assert "STARTTLS" in protocol.capabilities
    assert protocol.transport.get_extra_info("ssl_object") is None
    try:
        await starttls(protocol, tls_context_of(starttls_lab.settings), cfg.imap_host, 10)
        tls = protocol.transport.get_extra_info("ssl_object")
        assert tls is not None and tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.getpeercert()["subject"] == ((("commonName", "127.0.0.1"),),)
        # what the server offers under TLS, asked again: no STARTTLS there
        assert "STARTTLS" not in protocol.capabilities and "IMAP4rev1" in protocol.capabilities
        assert protocol.after_starttls == 0
        response = await imap.login(cfg.imap_user, IMAP_PASSWORD)
        assert response.result == "OK" and protocol.state == aioimaplib.AUTH
        await imap.logout()
    finally:
        protocol.transport.close()


async def test_a_server_without_starttls_is_refused_before_the_password(
    no_tls_lab: MailLab,
) -> None:
    lab = no_tls_lab
    lab.dovecot.deliver(mail()[0])
    with pytest.raises(ImapError, match="does not offer it") as refused:
        await lab.reader.once()
    assert "the password is not sent in clear" in str(refused.value)
    # the application's reader: the reason in its state, and it keeps trying
    await lab.reader.start()
    await eventually(
        lambda: asyncio.sleep(0, lab.reader.state["failures"] >= 1), what="the refusal"
    )
    assert "does not offer" in (lab.reader.state["error"] or "")
    assert lab.reader.state["connected"] is False
    await lab.reader.stop()
    # Dovecot saw connections end with no login tried: the password never left us
    await eventually(
        lambda: asyncio.sleep(0, lab.dovecot.log().count("no auth attempts") >= 2),
        what="Dovecot logging the connections without a login",
    )
    assert lab.dovecot.logins() == [] and "auth failed" not in lab.dovecot.log()
    assert lab.dovecot.unseen() == 1 and await lab.messages_in() == []

    # the control: the same server takes a plain login (the refusal above was ours)
    plain = MailboxReader(imap_tls(lab.settings, "none"), lab.intake.store_batch, Clock())
    assert await plain.once() == 1
    assert len(await logins(lab, 1)) == 1

"""The notifications on the SMS lab (a real Kannel, the test SMSC, the panel on real
Redis and SQLite / PostgreSQL) with the dispatcher running; for the email tests, the
email tests' private Postfix (tests/email/servers.py: STARTTLS, a login checked by a
private Dovecot) receiving what the hotline's one SMTP sender (``[email]``) sends."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from hotline.app import notify_dispatcher
from notify.dispatcher import NotifyDispatcher
from tests.email.servers import (
    PORTS,
    SMTP_PASSWORD,
    SMTP_USER,
    Dovecot,
    Postfix,
    mail_folder,
    make_certificate,
)
from tests.sms.conftest import SmsLab, make_lab
from tickets.models import Ticket

PUBLIC_URL = "https://1022.example.vn"
#: the hotline's address ([email] address): what its mail comes from
HOTLINE = "hotline@1022.example.vn"


def open_hours(now: datetime | None = None) -> str:
    """A window of allowed hours around now (local time): the non-urgent SMS go at once."""
    local = (now or datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))).replace(second=0, microsecond=0)
    start, end = local - timedelta(hours=1), local + timedelta(hours=3)
    return f"{start:%H:%M}-{end:%H:%M}"


class Inbox:
    """What the private Postfix delivered, read from its Maildir (none without mail)."""

    def __init__(self, postfix: Postfix | None = None) -> None:
        self.postfix = postfix

    @property
    def mails(self) -> list[EmailMessage]:
        return [r.message for r in self.postfix.received()] if self.postfix else []

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mails if address in str(m["To"])]


@dataclass
class NotifyLab:
    sms: SmsLab
    dispatcher: NotifyDispatcher
    smtp: Inbox
    officers: dict[int, Actor] = field(default_factory=dict)

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.sms.ctx

    def sent_to(self, number: str) -> list[str]:
        """The texts the SMSC was given for ``number``, parts joined, in order."""
        return [t for t, parts in self.sms.smsc.messages() if parts[0].destination == number]

    async def agency(self, email: str | None = None, parent_id: int | None = None) -> Any:
        code = f"nt-{random.randrange(10**8)}"
        data: dict[str, Any] = {"kind": "ward", "code": code, "name": "Phường Bến Nghé"}
        if email:
            data["email"] = email
        if parent_id:
            data["parent_id"] = parent_id
            data["name"] = "Phường Đa Kao"
        agency = await self.ctx.agencies.create(SYSTEM, data)
        self.officers[agency.id] = Actor(
            id=None, name="officer", role=Role.AGENCY, agency_id=agency.id
        )
        return agency

    async def report(self, number: str, **fields: Any) -> Ticket:
        data = {
            "channel": "phone",
            "citizen_phone": number,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Cống bị tắc gây ngập đường Lê Lợi",
            **fields,
        }
        return await self.ctx.tickets.create(SYSTEM, data)


def notify_config(**notify: Any) -> dict[str, dict[str, Any]]:
    return {
        "notify": {
            "enabled": True,
            "hours": open_hours(),
            "sweep_seconds": 0.5,
            "retry_minutes": 0.02,
            **notify,
        },
        "public": {"url": PUBLIC_URL},
    }


def email_config(ca: Path) -> dict[str, Any]:
    """``[email]`` sending through the private Postfix (STARTTLS, a login): the one
    SMTP configuration, as in tests/email/conftest.py.  The mailbox is not read."""
    return {
        "enabled": True,
        "address": HOTLINE,
        "smtp_host": "127.0.0.1",
        "smtp_port": PORTS["smtp"],
        "smtp_tls": "starttls",
        "smtp_user": SMTP_USER,
        "ca_file": str(ca),
        "timeout_seconds": 10,
    }


async def make_notify_lab(
    database_url: str,
    tmp_path: Path,
    *,
    flood_per_minute: int = 10,
    mail: bool = False,
    **notify: Any,
) -> AsyncIterator[NotifyLab]:
    """The SMS lab with the dispatcher running; ``mail``: email on, through a private
    Postfix (with the Dovecot that checks its logins), as the application wires it."""
    extra = notify_config(**notify)
    env: dict[str, str] = {}
    folder: Path | None = None
    dovecot: Dovecot | None = None
    postfix: Postfix | None = None
    if mail:
        folder = mail_folder()
        cert, key = await asyncio.to_thread(make_certificate, folder)
        extra["email"] = email_config(cert)
        env["HOTLINE_EMAIL_SMTP_PASSWORD"] = SMTP_PASSWORD
        dovecot, postfix = Dovecot(folder, cert, key), Postfix(folder, cert, key)
    try:
        if dovecot is not None and postfix is not None:
            await asyncio.to_thread(dovecot.start)
            await asyncio.to_thread(postfix.start)
        async for sms in make_lab(
            database_url, tmp_path, extra, env, flood_per_minute=flood_per_minute
        ):
            # the application's wiring: hotline.app.mailer_for (None with email off)
            dispatcher = notify_dispatcher(sms.ctx)
            await dispatcher.start()
            try:
                yield NotifyLab(sms, dispatcher, Inbox(postfix))
            finally:
                await dispatcher.stop()
    finally:
        if postfix is not None:
            await asyncio.to_thread(postfix.stop)
        if dovecot is not None:
            await asyncio.to_thread(dovecot.stop)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def notify_lab(database_url: str, tmp_path: Path) -> AsyncIterator[NotifyLab]:
    async for lab in make_notify_lab(database_url, tmp_path):
        yield lab

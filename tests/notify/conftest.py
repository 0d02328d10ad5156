"""The notifications on the SMS lab (a real Kannel, the test SMSC, the panel on real
Redis and SQLite / PostgreSQL) with the dispatcher running, and a real SMTP server
(aiosmtpd) receiving the emails."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from hotline.app import notify_dispatcher
from notify.dispatcher import NotifyDispatcher
from notify.mailer import SmtpMailer
from tests.notify.smtpd import Controller
from tests.sms.conftest import BASE, SmsLab, make_lab
from tickets.models import Ticket

# the slot's own port (tests/sms/conftest.py takes BASE .. BASE + 4)
SMTP_PORT = BASE + 10
PUBLIC_URL = "https://1022.example.vn"


def open_hours(now: datetime | None = None) -> str:
    """A window of allowed hours around now (local time): the non-urgent SMS go at once."""
    local = (now or datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))).replace(second=0, microsecond=0)
    start, end = local - timedelta(hours=1), local + timedelta(hours=3)
    return f"{start:%H:%M}-{end:%H:%M}"


class Inbox:
    """aiosmtpd's handler: every mail it is given, parsed."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.mails.append(msg)
        return "250 OK"

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
            "email_from": "hotline@1022.example.vn",
            "smtp_host": "127.0.0.1",
            "smtp_port": SMTP_PORT,
            **notify,
        },
        "public": {"url": PUBLIC_URL},
    }


async def make_notify_lab(
    database_url: str, tmp_path: Path, *, flood_per_minute: int = 10, **notify: Any
) -> AsyncIterator[NotifyLab]:
    smtp = Inbox()
    controller = Controller(smtp, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        async for sms in make_lab(
            database_url, tmp_path, notify_config(**notify), flood_per_minute=flood_per_minute
        ):
            s = sms.settings.notify
            dispatcher = notify_dispatcher(
                sms.ctx, mailer=SmtpMailer("127.0.0.1", SMTP_PORT, s.email_from)
            )
            await dispatcher.start()
            try:
                yield NotifyLab(sms, dispatcher, smtp)
            finally:
                await dispatcher.stop()
    finally:
        await asyncio.to_thread(controller.stop)


@pytest.fixture
async def notify_lab(database_url: str, tmp_path: Path) -> AsyncIterator[NotifyLab]:
    async for lab in make_notify_lab(database_url, tmp_path):
        yield lab

"""The email lab: a private Dovecot and a private Postfix (tests/email/servers.py)
beside the panel's services on real Redis and SQLite / PostgreSQL, wired as the
application wires them (hotline.app.panel_context, inbox.email.EmailIntake)."""

from __future__ import annotations

import asyncio
import shutil
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp.test_utils import TestClient, TestServer

from accounts.identity import Actor
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from hotline.app import panel_context
from inbox.email import EmailIntake
from inbox.models import Message
from mail.imap import MailboxReader
from panel.app import make_app
from panel.context import PanelContext
from tests.email.servers import (
    IMAP_PASSWORD,
    PORTS,
    SMTP_PASSWORD,
    SMTP_USER,
    USER,
    Dovecot,
    Postfix,
    mail_folder,
    make_certificate,
)
from tests.helpers import settings_in
from tests.schema import migrated

PASSWORD = "correct horse battery"
HOTLINE = "hotline@1022.example"


def email_settings(home: Path, database_url: str, prefix: str, ca: Path, **email: Any) -> Settings:
    example = Path(__file__).parents[2] / "config" / "hotline.example.toml"
    cfg = tomllib.loads(example.read_text())
    cfg["database_url"] = database_url
    cfg["panel"].update(host="127.0.0.1", port=PORTS["panel"], redis_prefix=prefix)
    cfg["email"] = {
        "enabled": True,
        "address": HOTLINE,
        "imap_host": "127.0.0.1",
        "imap_port": PORTS["imaps"],
        "imap_tls": "tls",
        "imap_user": USER,
        "smtp_host": "127.0.0.1",
        "smtp_port": PORTS["smtp"],
        "smtp_tls": "starttls",
        "smtp_user": SMTP_USER,
        "ca_file": str(ca),
        "poll_seconds": 5,
        "timeout_seconds": 10,
        **email,
    }
    return settings_in(
        home,
        tomli_w.dumps(cfg),
        HOTLINE_EMAIL_IMAP_PASSWORD=IMAP_PASSWORD,
        HOTLINE_EMAIL_SMTP_PASSWORD=SMTP_PASSWORD,
    )


def mail(
    sender: str = "citizen@example.org",
    subject: str = "Cây đổ chắn đường",
    text: str = "Cây đổ chắn đường ở hẻm 5, đường Lê Lợi.",
    *,
    html: str | None = None,
    message_id: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """A citizen's mail (bytes, Message-ID)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = HOTLINE
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, ctype, data in attachments:
        main, _, sub = ctype.partition("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes(), str(msg["Message-ID"])


@dataclass
class MailLab:
    settings: Settings
    ctx: PanelContext
    dovecot: Dovecot
    smtp: Postfix
    intake: EmailIntake
    reader: MailboxReader
    agent: Actor
    client: TestClient | None = None

    @property
    def inbox(self):  # type: ignore[no-untyped-def]
        assert self.ctx.inbox is not None
        return self.ctx.inbox

    async def messages_in(self) -> list[Message]:
        return await self.inbox.desk(None, open_only=False, limit=10000)

    async def start_panel(self) -> None:
        server = TestServer(
            make_app(self.ctx), host="127.0.0.1", port=PORTS["panel"], shutdown_timeout=1
        )
        self.client = TestClient(server)
        await self.client.start_server()

    async def stop_panel(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 20, what: str = "condition"
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.1)


async def make_lab(
    database_url: str, tmp_path: Path, *, idle: bool = True, tls: bool = True, **email: Any
) -> AsyncIterator[MailLab]:
    folder = mail_folder()
    prefix = f"mailtest{uuid.uuid4().hex[:8]}"
    cert, key = await asyncio.to_thread(make_certificate, folder)
    settings = email_settings(tmp_path, database_url, prefix, cert, **email)
    migrated(settings.database)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    clock = Clock()
    ctx = panel_context(settings, db=db, bus=bus, clock=clock, control=None)
    user = await ctx.accounts.create_user(
        None,
        {
            "username": "maildesk",
            "display_name": "Bàn thư",
            "role": "agent",
            "password": PASSWORD,
            "extension": settings.agents[0].extension,
        },
    )
    dovecot = Dovecot(folder, cert, key, idle=idle, tls=tls)
    smtp = Postfix(folder, cert, key)
    assert ctx.inbox is not None
    intake = EmailIntake(ctx.inbox)
    reader = MailboxReader(settings, intake.store_batch, clock)
    lab = MailLab(settings, ctx, dovecot, smtp, intake, reader, Actor.of(user))
    try:
        await asyncio.to_thread(dovecot.start)
        await asyncio.to_thread(smtp.start)
        yield lab
    finally:
        await reader.stop()
        await lab.stop_panel()
        await asyncio.to_thread(smtp.stop)
        await asyncio.to_thread(dovecot.stop)
        keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def mail_lab(database_url: str, tmp_path: Path) -> AsyncIterator[MailLab]:
    async for lab in make_lab(database_url, tmp_path):
        yield lab

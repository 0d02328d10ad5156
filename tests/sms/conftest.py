"""A real Kannel (Debian's bearerbox and smsbox) between the test SMSC
(tests/sms/smsc.py, SMPP over TCP) and the panel's web application on real
Redis and SQLite / PostgreSQL.

Every port moves with HOTLINE_LAB_SLOT, as the Asterisk lab's do.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
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
from inbox.models import Message
from panel.app import make_app
from panel.context import PanelContext
from sms.kannel import Kannel
from tests.helpers import settings_in
from tests.schema import migrated
from tests.sms.smsc import SMSC

# a worker of pytest-xdist (gwN) takes the slot after N others, as tests/lab.py does: the
# SMS, notification and email tests of two workers never share a port
SLOT = int(os.environ.get("HOTLINE_LAB_SLOT", "0")) + int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0
)
BASE = 22700 + 100 * SLOT
PORTS = {"smsc": BASE, "admin": BASE + 1, "box": BASE + 2, "sendsms": BASE + 3, "panel": BASE + 4}
SMSC_PASSWORD = "smsc-pw"
SECRET = "callback-secret"
PARTY_NUMBER = "0912000111"
PASSWORD = "correct horse battery"

needs_kannel = pytest.mark.skipif(
    shutil.which("bearerbox", path="/usr/sbin:/usr/bin") is None,
    reason="Debian's kannel is not installed (apt-get install kannel)",
)


def sms_settings(
    home: Path,
    database_url: str,
    prefix: str,
    extra: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    **sms: Any,
) -> Settings:
    example = Path(__file__).parents[2] / "config" / "hotline.example.toml"
    cfg = tomllib.loads(example.read_text())
    cfg["database_url"] = database_url
    cfg["panel"].update(host="127.0.0.1", port=PORTS["panel"], redis_prefix=prefix)
    cfg["sms"] = {
        "enabled": True,
        "smsc_host": "127.0.0.1",
        "smsc_port": PORTS["smsc"],
        "system_id": "hotline",
        "admin_port": PORTS["admin"],
        "box_port": PORTS["box"],
        "sendsms_port": PORTS["sendsms"],
        "party_number": PARTY_NUMBER,
        "party_team": "t1022",
        **sms,
    }
    for section, values in (extra or {}).items():
        cfg.setdefault(section, {}).update(values)
    return settings_in(
        home,
        tomli_w.dumps(cfg),
        HOTLINE_SMS_PASSWORD=SMSC_PASSWORD,
        HOTLINE_KANNEL_PASSWORD="kannel-pw",
        HOTLINE_SMS_CALLBACK_SECRET=SECRET,
        **(env or {}),
    )


@dataclass
class SmsLab:
    settings: Settings
    ctx: PanelContext
    smsc: SMSC
    kannel: Kannel
    agent: Actor
    client: TestClient | None = None

    @property
    def inbox(self):  # type: ignore[no-untyped-def]
        assert self.ctx.inbox is not None
        return self.ctx.inbox

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

    async def messages_in(self) -> list[Message]:
        return await self.inbox.desk(None, open_only=False, limit=1000)


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 20, what: str = "condition"
) -> Any:
    """Wait until ``check()`` returns something true; its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.1)


async def make_lab(
    database_url: str,
    tmp_path: Path,
    extra: dict[str, dict[str, Any]] | None = None,
    env: dict[str, str] | None = None,
    **sms: Any,
) -> AsyncIterator[SmsLab]:
    prefix = f"smstest{uuid.uuid4().hex[:8]}"
    settings = sms_settings(tmp_path, database_url, prefix, extra, env, **sms)
    migrated(settings.database)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    ctx = panel_context(settings, db=db, bus=bus, clock=Clock(), control=None)
    agent_user = await ctx.accounts.create_user(
        None,
        {
            "username": "smsdesk",
            "display_name": "Bàn SMS",
            "role": "agent",
            "password": PASSWORD,
            "extension": settings.agents[0].extension,
        },
    )
    smsc = SMSC("127.0.0.1", PORTS["smsc"], "hotline", SMSC_PASSWORD)
    await smsc.start()
    kannel = Kannel(settings)
    lab = SmsLab(settings, ctx, smsc, kannel, Actor.of(agent_user))
    try:
        await lab.start_panel()
        await asyncio.to_thread(kannel.start)
        await asyncio.wait_for(smsc.bound.wait(), 20)
        yield lab
    finally:
        await asyncio.to_thread(kannel.stop)
        await smsc.stop()
        await lab.stop_panel()
        keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()


@pytest.fixture
async def sms_lab(database_url: str, tmp_path: Path) -> AsyncIterator[SmsLab]:
    async for lab in make_lab(database_url, tmp_path, flood_per_minute=10):
        yield lab

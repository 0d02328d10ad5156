"""The public site on the panel's test fixture: the same real Redis and SQLite /
PostgreSQL, the same accounts and agencies, its own server (as on its own port)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from accounts.identity import Actor
from panel.i18n import I18n
from public.app import make_public_app
from public.context import PublicContext, public_context
from tests.panel.conftest import Panel, panel  # noqa: F401  (the fixture)
from tests.panel.recorded import voices  # noqa: F401  (the panel fixture needs it)
from tickets.models import Ticket


@dataclass
class Site:
    panel: Panel
    ctx: PublicContext
    client: TestClient

    def actor(self, who: str) -> Actor:
        return Actor.of(self.panel.users[who])

    async def report(self, **fields: Any) -> Ticket:
        """A level-2 report forwarded to the department (``fields`` override the form)."""
        data = {
            "channel": "phone",
            "citizen_phone": "0909 123 456",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập nước sau mưa trên đường Lê Lợi",
            "agency_id": self.panel.agency_ids["so-gtvt"],
            "publish_consent": True,
            **fields,
        }
        return await self.panel.ctx.tickets.create(self.actor("agent1"), data)

    async def completed(self, result: str = "Đã nạo vét cống, hết ngập.", **fields: Any) -> Ticket:
        """A report the agency answered and the supervisor closed."""
        svc = self.panel.ctx.tickets
        t = await self.report(**fields)
        if t.status == "forwarded":
            t = await svc.answer(self.actor("officer"), t.id, t.version, result)
            t = await svc.close(self.actor("sup"), t.id, t.version)
        return t


@pytest.fixture
async def site(panel):  # noqa: F811
    c = panel.ctx
    ctx = public_context(c.settings, db=c.db, bus=c.bus, clock=c.clock, translations=I18n().gettext)
    client = TestClient(TestServer(make_public_app(ctx), shutdown_timeout=1))
    await client.start_server()
    try:
        yield Site(panel, ctx, client)
    finally:
        await client.close()

"""The public site and its report form on the panel's test fixture: the same real Redis and SQLite /
PostgreSQL, the same accounts and agencies, its own server (as on its own port)."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from pydantic import SecretStr

from accounts.identity import Actor
from core.settings import WebReportSettings
from panel.i18n import I18n
from panel.security import headers_middleware
from public.app import make_public_app
from public.context import PublicContext, public_context
from public.report import ReportDeps, ReportForm, add_routes
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
    # the panel's ticket service, as the application shares it: its writes to published
    # reports empty the portal's cached pages
    ctx = public_context(
        c.settings,
        db=c.db,
        bus=c.bus,
        clock=c.clock,
        translations=I18n().gettext,
        tickets=c.tickets,
    )
    client = TestClient(TestServer(make_public_app(ctx), shutdown_timeout=1))
    await client.start_server()
    try:
        yield Site(panel, ctx, client)
    finally:
        await client.close()


# a 1x1 PNG the test tile server answers with
TILE = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a3e5f0df0000000049454e44ae426082"
)


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, format=fmt)
    return buf.getvalue()


@dataclass
class Report:
    panel: Panel
    client: TestClient
    form: ReportForm
    tile_hits: list[str]

    async def page(self, path: str = "/report") -> str:
        r = await self.client.get(path)
        assert r.status == 200, await r.text()
        return await r.text()

    async def started(self, seconds_ago: float = 10) -> str:
        """A form's signed timestamp, shown ``seconds_ago``."""
        html = await self.page()
        token = re.search(r'name="started" value="([^"]+)"', html).group(1)
        stamp = float(token.rpartition(".")[0]) - seconds_ago
        sig = hmac.new(self.form.secret, f"{stamp:.3f}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{stamp:.3f}.{sig}"


def settings_with(base: Any, **web_report: Any) -> Any:
    return base.model_copy(
        update={
            "web_report": WebReportSettings(**web_report),
            "form_secret": SecretStr("test-form-secret"),
        }
    )


async def mount(panel: Panel, **web_report: Any) -> Report:  # noqa: F811
    settings = settings_with(panel.ctx.settings, **web_report)
    deps = ReportDeps(
        settings=settings,
        tickets=panel.ctx.tickets,
        agencies=panel.ctx.agencies,
        redis=panel.ctx.bus.redis,
        redis_prefix=f"{settings.panel.redis_prefix}:{uuid.uuid4().hex[:6]}",
        clock=panel.ctx.clock,
        translations=panel.ctx.i18n.gettext,
    )
    hits: list[str] = []

    async def tile(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=TILE, content_type="image/png")

    app = web.Application(middlewares=[headers_middleware])
    form = add_routes(app, deps)
    app.router.add_get("/tiles/{z}/{x}/{y}.png", tile)
    client = TestClient(TestServer(app, shutdown_timeout=1))
    await client.start_server()
    return Report(panel, client, form, hits)


@pytest.fixture
async def report(panel):  # noqa: F811
    r = await mount(panel, min_fill_seconds=0)
    try:
        yield r
    finally:
        await r.client.close()


@pytest.fixture
async def make_report(panel):  # noqa: F811
    """Mounts the form with other ``[web_report]`` settings."""
    made: list[Report] = []

    async def make(**web_report: Any) -> Report:
        r = await mount(panel, **web_report)
        made.append(r)
        return r

    yield make
    for r in made:
        await r.client.close()

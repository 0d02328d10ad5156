"""A panel on real Redis and real SQLite / PostgreSQL, with one account per role."""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from aiohttp.test_utils import TestClient, TestServer

from accounts.identity import Actor
from accounts.models import Role
from callcenter.outbound import OutboundService
from callcenter.supervision import SupervisionService
from core.ami import AMIClient
from core.bus import Bus
from core.clock import FakeClock
from core.db import Database
from hotline.app import panel_context, transfer_service
from panel.app import make_app
from panel.context import PanelContext
from tests.helpers import queued_call, settings_in
from tests.panel.recorded import voices  # noqa: F401  (the fixture, for the replay pages)
from tests.schema import migrated

PASSWORD = "correct horse battery"


class RecordingControl:
    """Stands in for AMI QueuePause in route tests (the real one is tested with Asterisk)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def pause(self, extension: str, reason: str) -> None:
        self.calls.append(("pause", extension, reason))

    async def resume(self, extension: str) -> None:
        self.calls.append(("resume", extension, ""))


class FreePhones:
    """Stands in for AMI where the panel asks whether a phone is free ("call the
    citizen") in route tests: every phone is registered and free.  Asterisk's real
    answers are met in tests/panel/test_call_citizen.py."""

    connected = True

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def action(self, action: dict[str, Any], **_: Any) -> dict[str, str]:
        self.asked.append(action)
        return {
            "Response": "Success",
            "Variable": str(action.get("Variable")),
            "Value": "NOT_INUSE",
        }


async def login_form_token(client) -> str:  # type: ignore[no-untyped-def]
    """The token of a fresh sign-in form (each form has its own)."""
    page = await client.get("/login")
    return re.search(r'name="_csrf" value="([^"]+)"', await page.text()).group(1)


@dataclass
class Panel:
    ctx: PanelContext
    client: TestClient
    users: dict[str, Any]
    agency_ids: dict[str, int]
    control: RecordingControl

    async def login(self, who: str, client: TestClient | None = None) -> str:
        """Sign ``who`` in on ``client``; returns the session's CSRF token."""
        c = client or self.client
        token = await login_form_token(c)
        r = await c.post(
            "/login",
            data={"_csrf": token, "username": who, "password": PASSWORD},
            allow_redirects=False,
        )
        assert r.status == 303, await r.text()
        return await self.csrf(c)

    async def csrf(self, client: TestClient | None = None) -> str:
        r = await (client or self.client).get("/account")
        return re.search(r'name="csrf-token" content="([^"]+)"', await r.text()).group(1)

    async def token(self, who: str) -> dict[str, str]:
        """Bearer headers for the JSON API."""
        r = await self.client.post("/api/v1/session", json={"username": who, "password": PASSWORD})
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}

    async def new_client(self) -> aiohttp.ClientSession:
        """Another browser: its own cookies, the same server."""
        return aiohttp.ClientSession(
            base_url=str(self.client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )


def panel_settings(home: Path, database_url: str, prefix: str):  # type: ignore[no-untyped-def]
    cfg = tomllib.loads((Path(__file__).parents[2] / "config" / "hotline.example.toml").read_text())
    cfg["database_url"] = database_url
    # the tests' client is on loopback: exempt from the per-address limit, which
    # tests/panel/test_signin_throttle.py tries with forwarded addresses
    cfg["panel"].update(
        redis_prefix=prefix,
        lockout_attempts=3,
        signin_exempt_networks=["127.0.0.0/8", "::1/128"],
        trusted_proxies=["127.0.0.1/32"],
    )
    # restricted reports (tickets.confidential): "sup" and the department's officers are
    # cleared for them, "officer_q1" and the other supervisors are not (q7: the district
    # of tests/public/test_nothing_private.py, which forwards restricted reports there)
    cfg["tickets"]["confidential"] = {"readers": ["sup"], "agencies": ["so-gtvt", "q7"]}
    # calls may go out through the trunk (transfers to agencies and 113 are offered)
    cfg["trunk"]["contact"] = "sip:127.0.0.2:5060"
    return settings_in(home, tomli_w.dumps(cfg))


@pytest.fixture
async def panel(database_url: str, tmp_path: Path):
    prefix = f"test{uuid.uuid4().hex[:8]}"
    settings = panel_settings(tmp_path, database_url, prefix)
    migrated(settings.database)
    db = Database(settings.database)
    bus = Bus(settings.panel.redis_url, prefix)
    clock = FakeClock(datetime.now(UTC))
    control = RecordingControl()
    outbound = OutboundService(db, settings, clock, bus, FreePhones())  # type: ignore[arg-type]
    # never connected: a supervision that gets as far as Asterisk is "unavailable"
    ami = AMIClient("127.0.0.1", 9, "none", "none")
    supervision = SupervisionService(settings, db, bus, ami, clock)
    transfers = transfer_service(settings, db, bus, ami, clock)
    ctx = panel_context(
        settings,
        db=db,
        bus=bus,
        clock=clock,
        control=control,  # type: ignore[arg-type]
        outbound=outbound,  # type: ignore[arg-type]
        supervision=supervision,
        transfers=transfers,
    )
    admin = await ctx.accounts.create_user(
        None,
        {"username": "admin", "display_name": "Quản trị", "role": "admin", "password": PASSWORD},
    )
    admin_actor = Actor.of(admin)
    root = await ctx.agencies.create(
        admin_actor, {"kind": "department", "code": "so-gtvt", "name": "Sở Giao thông Vận tải"}
    )
    child = await ctx.agencies.create(
        admin_actor,
        {"kind": "district", "code": "q1", "name": "UBND Quận 1", "parent_id": root.id},
    )
    users = {"admin": admin}
    for username, role, extra in [
        ("sup", Role.SUPERVISOR, {}),
        ("agent1", Role.AGENT, {"extension": "1001"}),
        ("agent2", Role.AGENT, {"extension": "1002"}),
        ("officer", Role.AGENCY, {"agency_id": root.id}),
        ("officer_q1", Role.AGENCY, {"agency_id": child.id}),
        ("inspector", Role.OVERSIGHT, {}),
    ]:
        users[username] = await ctx.accounts.create_user(
            admin_actor,
            {
                "username": username,
                "display_name": username.title(),
                "role": role.value,
                "password": PASSWORD,
                **extra,
            },
        )
    app = make_app(ctx)
    client = TestClient(TestServer(app, shutdown_timeout=1))
    await client.start_server()
    try:
        yield Panel(ctx, client, users, {"so-gtvt": root.id, "q1": child.id}, control)
    finally:
        await client.close()
        keys = [k async for k in bus.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()
        await db.close()


async def waiting_call(
    ctx: PanelContext, uniqueid: str, number: str | None, minutes_ago: int, hotline: str = "1022"
) -> datetime:
    """A call in its team's morning queue since ``minutes_ago`` (no menu step); returns
    when it joined."""
    team = "t1022" if hotline == "1022" else "party"
    return await queued_call(
        ctx.calls,
        uniqueid,
        number,
        started=ctx.clock.now() - timedelta(minutes=minutes_ago),
        hotline=hotline,
        queue=f"{team}-morning",
    )


class Screen:
    """The live state and the screen-pop as the application builds them; ``hear``
    hands an AMI event to both, as their two lanes would."""

    def __init__(self, ctx, history=None) -> None:  # type: ignore[no-untyped-def]
        from callcenter.live import LiveState
        from callcenter.presence import Presence

        self.live = LiveState(
            ctx.bus,
            ctx.clock,
            names={a.extension: a.name for a in ctx.settings.agents},
            wrapup_seconds=ctx.settings.queues.wrapup_seconds,
        )
        self.presence = Presence(
            ctx.bus, ctx.calls, ctx.settings, ctx.clock, history=history, live=self.live
        )
        p = self.presence
        self._pop = {
            "QueueCallerJoin": p.on_join,
            "AgentCalled": p.on_called,
            "AgentRingNoAnswer": p.on_ring_over,
            "AgentDump": p.on_ring_over,
            "AgentConnect": p.on_connect,
            "AgentComplete": p.on_complete,
            "QueueCallerAbandon": p.on_abandon,
        }

    async def start(self) -> None:
        """Start the live state's writer and let its first write (every agent) go out."""
        await self.live.start()
        await self.live.flush()

    async def hear(self, event) -> None:  # type: ignore[no-untyped-def]
        await self.live.on_event(event)
        handler = self._pop.get(event["Event"])
        if handler is not None:
            await handler(event)

    async def stop(self) -> None:
        await self.presence.stop()
        await self.live.stop()

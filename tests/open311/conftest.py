"""The Open311 sub-app mounted at /open311/v2 of an aiohttp app served on a real loopback
port, on real Redis and a real SQLite / PostgreSQL database, with tickets seeded.

Seeded tickets carry distinctive markers in every place the public must never see
(the citizen's name, phone, email and address; reports that are not published), so
a test can grep every answer for them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from accounts.apikeys import ApiKeyService
from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from open311.app import make_open311_app
from tests.helpers import REDIS_URL, settings_in
from tickets.models import Agency, Domain, Status, Ticket
from tickets.numbers import new_number

ADMIN = Actor(id=None, name="test admin", role=Role.ADMIN)

# Strings that must never appear in any answer.
SECRET_MARKERS = {
    "name": "Zyxname Citizenmarker",
    "phone": "0912345678",
    "email": "marker.citizen@example.org",
    "address": "99 Secretmarker Street",
    "party": "PARTYMARKER report on a Party cell",
    "denunciation": "DENOUNCEMARKER a denunciation",
    "corruption": "CORRUPTMARKER a bribe",
    "open": "OPENMARKER still with the agency",
    "no_consent": "NOCONSENTMARKER private",
    "withheld": "WITHHELDMARKER withheld by an admin",
}


@dataclass
class Seeded:
    # number -> what the ticket is (published ones: "pub", "pub_traffic", "pub_old")
    numbers: dict[str, str] = field(default_factory=dict)
    agency: str = "UBND Quận 1"

    def of(self, kind: str) -> str:
        return next(n for n, k in self.numbers.items() if k == kind)


@dataclass
class Server:
    url: str  # the base of the sub-app, .../open311/v2
    http: aiohttp.ClientSession
    db: Database
    settings: Settings
    keys: ApiKeyService
    seeded: Seeded
    redis: aioredis.Redis
    prefix: str
    bodies: list[bytes] = field(default_factory=list)

    async def get(self, path: str, **params: Any) -> tuple[int, bytes, str]:
        async with self.http.get(self.url + path, params=params or None) as r:
            body = await r.read()
            self.bodies.append(body)
            return r.status, body, r.headers.get("Content-Type", "")

    async def post(self, path: str, data: Any, **kw: Any) -> tuple[int, bytes, str]:
        async with self.http.post(self.url + path, data=data, **kw) as r:
            body = await r.read()
            self.bodies.append(body)
            return r.status, body, r.headers.get("Content-Type", "")


async def seed(db: Database, now: datetime) -> Seeded:
    seeded = Seeded()
    async with db.session() as s:
        agency = Agency(
            kind="district",
            code="q1",
            name=seeded.agency,
            active=True,
            created_at=now,
            updated_at=now,
            version=1,
        )
        s.add(agency)
        await s.flush()

        def ticket(
            kind: str,
            *,
            topic: str = "flooding",
            domain: Domain = Domain.STATE,
            status: Status = Status.CLOSED,
            consent: bool = True,
            withheld: bool = False,
            description: str | None = None,
            age: timedelta = timedelta(days=3),
        ) -> None:
            number = new_number()
            seeded.numbers[number] = kind
            created = now - age
            s.add(
                Ticket(
                    code=f"T{len(seeded.numbers):03d}-{kind[:8].upper()}",
                    number=number,
                    channel="phone",
                    citizen_name=SECRET_MARKERS["name"],
                    citizen_phone=SECRET_MARKERS["phone"],
                    reporter_email=SECRET_MARKERS["email"],
                    citizen_address=SECRET_MARKERS["address"],
                    district="Quận 1",
                    publish_consent=consent,
                    withheld=withheld,
                    domain=domain.value,
                    topic=topic,
                    level=2,
                    description=description or f"Ngập nước đường Nguyễn Huệ <&> ({kind})",
                    status=status.value,
                    agency_id=agency.id,
                    result="Đã nạo vét cống" if status is Status.CLOSED else None,
                    created_at=created,
                    updated_at=created + timedelta(hours=5),
                    forwarded_at=created + timedelta(hours=1),
                    closed_at=created + timedelta(hours=5) if status is Status.CLOSED else None,
                )
            )

        ticket("pub")
        ticket("pub_traffic", topic="traffic", age=timedelta(days=10))
        ticket("pub_old", age=timedelta(days=120))
        ticket("party", domain=Domain.PARTY, description=SECRET_MARKERS["party"])
        ticket("denunciation", topic="complaints", description=SECRET_MARKERS["denunciation"])
        ticket("corruption", topic="corruption", description=SECRET_MARKERS["corruption"])
        ticket("open", status=Status.FORWARDED, description=SECRET_MARKERS["open"])
        ticket("no_consent", consent=False, description=SECRET_MARKERS["no_consent"])
        ticket("withheld", withheld=True, description=SECRET_MARKERS["withheld"])
    return seeded


@pytest.fixture
async def server(db: Database, tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_server(db, tmp_path)
    try:
        yield srv
    finally:
        await stop_server(srv)


_RUNNERS: dict[int, web.AppRunner] = {}


async def start_server(
    db: Database, tmp_path: Path, *, seed_tickets: bool = True, **open311: Any
) -> Server:
    """A server whose [open311] settings are changed by ``open311`` (stop it with
    :func:`stop_server`); ``seed_tickets`` seeds the marked tickets first."""
    settings = settings_in(tmp_path)
    if open311:
        settings = settings.model_copy(
            update={"open311": settings.open311.model_copy(update=open311)}
        )
    clock = Clock()
    seeded = await seed(db, clock.now()) if seed_tickets else Seeded()
    redis = aioredis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"test-open311-{uuid.uuid4().hex[:10]}"
    public = web.Application()
    public.add_subapp("/open311/v2", make_open311_app(settings, db, redis, prefix, clock=clock))
    runner = web.AppRunner(public, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    http = aiohttp.ClientSession()
    srv = Server(
        url=f"http://127.0.0.1:{port}/open311/v2",
        http=http,
        db=db,
        settings=settings,
        keys=ApiKeyService(db, clock),
        seeded=seeded,
        redis=redis,
        prefix=prefix,
    )
    _RUNNERS[id(srv)] = runner
    return srv


async def stop_server(srv: Server) -> None:
    await srv.http.close()
    await _RUNNERS.pop(id(srv)).cleanup()
    keys = [k async for k in srv.redis.scan_iter(f"{srv.prefix}:*")]
    if keys:
        await srv.redis.delete(*keys)
    await srv.redis.aclose()


def leaks(body: bytes) -> list[str]:
    """The secret markers found in ``body``: a marker whole, or its distinctive word
    (the one with "marker" in it) alone."""
    text = body.decode("utf-8", errors="replace")
    found = []
    for kind, value in SECRET_MARKERS.items():
        words = [w for w in value.split() if "marker" in w.lower()]
        if value in text or any(w in text for w in words):
            found.append(kind)
    return found

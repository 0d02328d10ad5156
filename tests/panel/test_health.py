"""/healthz and /readyz on a panel process: real database (SQLite and
PostgreSQL) and real Redis, then a Redis that does not answer."""

from __future__ import annotations

import time

from core.bus import Bus
from hotline.app import base_health


async def test_alive_and_ready_with_each_check(panel):
    r = await panel.client.get("/healthz")
    assert r.status == 200 and (await r.json()) == {"status": "alive"}
    r = await panel.client.get("/readyz")
    body = await r.json()
    assert r.status == 200 and body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis"}
    assert all(c["ok"] and c["required"] for c in body["checks"].values())
    assert r.headers["Cache-Control"] == "no-store"


async def test_not_ready_names_the_dependency_that_fails(panel):
    dead = Bus("redis://127.0.0.1:1/0", "dead")  # nothing listens on port 1
    panel.ctx.health = base_health(panel.ctx.db, dead)
    try:
        started = time.monotonic()
        r = await panel.client.get("/readyz")
        assert time.monotonic() - started < 5  # bounded, never a hung probe
        body = await r.json()
        assert r.status == 503 and body["status"] == "not ready"
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]

        # a client outside metrics_allow gets the verdict and the failing names only
        settings = panel.ctx.settings
        stats = settings.stats.model_copy(update={"metrics_allow": []})
        panel.ctx.settings = settings.model_copy(update={"stats": stats})
        r = await panel.client.get("/readyz")
        assert r.status == 503
        assert (await r.json()) == {"status": "not ready", "failing": ["redis"]}
        # the liveness probe does not depend on the others
        assert (await panel.client.get("/healthz")).status == 200
    finally:
        await dead.close()

"""The running application (real Asterisk lab, real Redis and database) serves the
public site on its own port beside the panel: a report taken by the staff API is
followed on the status page over real TCP, and the panel's port is not the public's."""

from __future__ import annotations

import aiohttp
import pytest

from accounts.identity import Actor
from accounts.models import Role
from core.web import CSP

pytestmark = pytest.mark.asterisk


async def test_the_application_serves_the_public_site_on_its_own_port(app):
    s = app.settings
    assert s.public.enabled and not s.public.path_prefix
    public = f"http://{s.public.host}:{s.public.port}"
    panel = f"http://{s.panel.host}:{s.panel.port}"
    assert public != panel
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{public}/reports") as r:
            assert r.status == 200
            assert r.headers["Content-Security-Policy"] == CSP
            assert "Phản ánh đã xử lý xong" in await r.text()
        # the staff's pages are not there, and the public ones are not on the panel
        async with http.get(f"{public}/tickets", allow_redirects=False) as r:
            assert r.status == 404
        async with http.get(f"{panel}/status", allow_redirects=False) as r:
            assert r.status in (303, 404)
        # a report the switchboard took, followed by its citizen; wrong digits refused
        desk = Actor(id=None, name="Tổng đài", role=Role.SUPERVISOR)
        t = await app.tickets.create(
            desk,
            {
                "channel": "sms",
                "citizen_phone": "0909000789",
                "domain": "state",
                "topic": "trees",
                "level": 5,
                "description": "Trồng thêm cây ở công viên",
            },
        )
        async with http.post(f"{public}/status", data={"number": t.number, "check": "789"}) as r:
            page = await r.text()
            assert r.status == 200, page
            assert "Góp ý của bạn đang được tổng hợp trình lãnh đạo thành phố" in page
            assert "0909000789" not in page and "Tổng đài" not in page
        async with http.post(f"{public}/status", data={"number": t.number, "check": "788"}) as r:
            assert r.status == 404

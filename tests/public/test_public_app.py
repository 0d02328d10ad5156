"""The public site as an application: the panel's security headers on every answer,
its own port or a path under the panel (where the staff's session is never read),
Vietnamese first with an English switch, and settings that say what is wrong."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.settings import ConfigError
from core.web import CSP
from hotline.app import public_site
from hotline.cli import public_url
from panel.app import make_app
from tests.helpers import EXAMPLE, settings_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


async def test_every_answer_has_the_panels_headers_and_sets_no_staff_cookie(site):
    t = await site.completed()
    c = site.client
    for method, path, kw in [
        ("GET", "/", {}),
        ("GET", "/reports", {}),
        ("GET", f"/reports/{t.number}", {}),
        ("GET", "/reports?page=0", {}),
        ("POST", "/status", {"data": {"number": t.number, "check": "456"}}),
        ("POST", "/status", {"data": {"number": "1", "check": "456"}}),
        ("GET", "/nowhere", {}),
        ("PATCH", "/reports", {}),
        ("GET", "/static/public.css", {}),
    ]:
        r = await c.request(method, path, **kw)
        for name, value in HEADERS.items():
            assert r.headers.get(name) == value, (method, path, name)
        assert "hotline_session" not in r.cookies and "hotline_lang" not in r.cookies
    # the style sheet is the site's own file (no CDN), named by its content
    page = await (await c.get("/")).text()
    assert '<link rel="stylesheet" href="/static/public.css?v=' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


async def test_vietnamese_first_english_on_request_and_no_open_redirect(site):
    c = site.client
    page = await (await c.get("/reports")).text()
    assert '<html lang="vi">' in page and "Phản ánh đã xử lý xong" in page
    r = await c.get("/lang/en", params={"next": "/reports?q=x"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/reports?q=x"
    assert r.cookies["public_lang"].value == "en"
    page = await (await c.get("/reports")).text()
    assert '<html lang="en">' in page and "Completed reports" in page
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        r = await c.get("/lang/vi", params={"next": target}, allow_redirects=False)
        assert r.headers["Location"] == "/"
    assert (await c.get("/lang/fr")).status == 404
    # a junk cookie is the default language
    c.session.cookie_jar.update_cookies({"public_lang": "xx"})
    assert '<html lang="vi">' in await (await c.get("/")).text()


async def test_under_the_panel_the_staff_session_is_never_read(site):
    """With public.path_prefix the site answers under the panel's address, with its own
    middlewares: a signed-in admin's cookie changes nothing there."""
    p = site.panel
    settings = p.ctx.settings.model_copy(
        update={"public": p.ctx.settings.public.model_copy(update={"path_prefix": "/public"})}
    )
    panel_app = make_app(p.ctx)
    assert (
        public_site(settings, db=p.ctx.db, bus=p.ctx.bus, clock=p.ctx.clock, panel=panel_app)
        is None
    )
    client = TestClient(TestServer(panel_app, shutdown_timeout=1))
    await client.start_server()
    try:
        t = await site.completed()
        await p.login("admin", client)
        assert "hotline_session" in {c.key for c in client.session.cookie_jar}
        seen_sessions = []
        original = p.ctx.sessions.get

        async def spy(token):  # type: ignore[no-untyped-def]
            seen_sessions.append(token)
            return await original(token)

        p.ctx.sessions.get = spy  # type: ignore[method-assign]
        r = await client.get("/public/reports")
        page = await r.text()
        assert r.status == 200 and t.number in page
        assert 'href="/public/reports/' in page and 'href="/public/static/public.css' in page
        assert "Quản trị" not in page  # the admin's name: no staff header here
        r = await client.post("/public/status", data={"number": t.number, "check": "456"})
        assert r.status == 200 and "Đã xử lý xong" in await r.text()
        r = await client.get("/public/nowhere")
        assert r.status == 404 and 'href="/public/"' in await r.text()
        assert r.headers["Content-Security-Policy"] == CSP
        r = await client.get("/public/lang/en", params={"next": "/tickets"}, allow_redirects=False)
        assert r.headers["Location"] == "/public/"
        assert r.cookies["public_lang"]["path"] == "/public/"
        assert seen_sessions == []  # the staff cookie was sent every time, never read
        # the panel itself still reads it
        assert (await client.get("/tickets")).status == 200
        assert seen_sessions
    finally:
        p.ctx.sessions.get = original  # type: ignore[method-assign]
        await client.close()


async def test_its_own_port_by_default(site):
    settings = site.panel.ctx.settings
    web = public_site(
        settings,
        db=site.panel.ctx.db,
        bus=site.panel.ctx.bus,
        clock=site.panel.ctx.clock,
        panel=make_app(site.panel.ctx),
    )
    assert web is not None and (web.host, web.port) == ("127.0.0.1", settings.public.port)
    off = settings.model_copy(
        update={"public": settings.public.model_copy(update={"enabled": False})}
    )
    assert (
        public_site(
            off,
            db=site.panel.ctx.db,
            bus=site.panel.ctx.bus,
            clock=site.panel.ctx.clock,
            panel=make_app(site.panel.ctx),
        )
        is None
    )


def test_settings_name_what_is_wrong(tmp_path, database_url):
    base = EXAMPLE.read_text()
    with pytest.raises(ConfigError, match=r"public\.port: 8080 is the panel's port too"):
        settings_in(tmp_path, base.replace("port = 8090", "port = 8080"))
    with pytest.raises(ConfigError, match=r"public\.path_prefix"):
        settings_in(tmp_path, base.replace('path_prefix = ""', 'path_prefix = "/tickets"'))
    with pytest.raises(ConfigError, match=r"public\.path_prefix"):
        settings_in(tmp_path, base.replace('path_prefix = ""', 'path_prefix = "public/"'))
    with pytest.raises(ConfigError, match=r"public\.lookup_attempts"):
        settings_in(tmp_path, base.replace("lookup_attempts = 10", "lookup_attempts = 0"))
    # under the panel, the same port is fine
    s = settings_in(
        tmp_path,
        base.replace("port = 8090", "port = 8080").replace(
            'path_prefix = ""', 'path_prefix = "/public"'
        ),
    )
    assert s.public.path_prefix == "/public"
    # `hotline start` says where it answers
    assert public_url(s) == "http://127.0.0.1:8080/public/"
    assert public_url(settings_in(tmp_path, base)) == "http://127.0.0.1:8090/"
    off = settings_in(tmp_path, base.replace("enabled = true\nhost", "enabled = false\nhost"))
    assert public_url(off) == "off (public.enabled = false)"

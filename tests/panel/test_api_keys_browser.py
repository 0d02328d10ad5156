"""Open311 API keys on the admin page, in Debian's Chromium (Playwright): an admin issues
a key, sees it once, a real Open311 server accepts it, the admin revokes it and the
server refuses it.  Only admins reach the page.  Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS
from tests.open311.conftest import start_server, stop_server
from tests.open311.test_post import GOOD
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


async def test_an_admin_issues_a_key_a_client_uses_it_then_it_is_revoked(panel, browser, tmp_path):
    base = str(panel.client.make_url("")).rstrip("/")
    srv = await start_server(panel.ctx.db, tmp_path / "open311", seed_tickets=False)
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "admin")
        await page.click("nav a[href='/admin/api-keys']")
        await page.wait_for_url(f"{base}/admin/api-keys")
        assert "Chưa cấp khóa nào." in await page.inner_text("main")
        # a name is required: the error names it, nothing is issued
        await page.fill("input[name=name]", "   ")
        await page.click("button.primary")
        await page.wait_for_load_state("domcontentloaded")
        assert "tên chương trình" in await page.inner_text("#err-name")
        assert await panel.ctx.api_keys.list() == []

        await page.fill("input[name=name]", "Ứng dụng Công dân số")
        async with page.expect_response(f"{base}/admin/api-keys") as answer:
            await page.click("button.primary")
        assert (await answer.value).headers["cache-control"] == "no-store"
        key = (await page.inner_text("#new-key")).strip()
        assert "Đã cấp khóa cho Ứng dụng Công dân số" in await page.inner_text(".issued")
        await page.screenshot(path=ARTIFACTS / "open311-key-issued.png")
        key_id = key.split(".")[0]
        [row] = await panel.ctx.api_keys.list()
        assert row.key_id == key_id and row.issued_by_name == "Quản trị"

        # the key files a report through a real Open311 server
        status, body, _ = await srv.post("/requests.json", {**GOOD, "api_key": key})
        assert status == 201, body

        # the list never shows the secret again
        await page.goto(f"{base}/admin/api-keys")
        assert key.split(".")[1] not in await page.content()
        assert key_id in await page.inner_text("table.list")
        assert "chưa dùng" not in await page.inner_text("table.list")  # used just now
        await page.click(f"button.revoke-{key_id}")
        await page.wait_for_url(f"{base}/admin/api-keys")
        assert f"Đã thu hồi khóa {key_id}." in await page.content()
        assert "đã thu hồi" in await page.inner_text("table.list")
        await page.screenshot(path=ARTIFACTS / "open311-key-revoked.png")
        status, _, _ = await srv.post("/requests.json", {**GOOD, "api_key": key})
        assert status == 403
        events = await panel.ctx.api_keys.events(row.id)
        assert [(e.action, e.actor_name, e.address) for e in events] == [
            ("issued", "Quản trị", "127.0.0.1"),
            ("revoked", "Quản trị", "127.0.0.1"),
        ]
        # the refused empty name's own 422 is the only problem the console saw
        assert all("422" in p and "/admin/api-keys" in p for p in problems), problems
    finally:
        await context.close()
        await stop_server(srv)


async def test_only_admins_reach_the_keys_page(panel):
    for who in ("sup", "agent1", "officer"):
        client = await panel.new_client()
        try:
            csrf = await panel.login(who, client)
            r = await client.get("/admin/api-keys", allow_redirects=False)
            assert r.status == 403, who
            r = await client.post(
                "/admin/api-keys", data={"_csrf": csrf, "name": "x"}, allow_redirects=False
            )
            assert r.status == 403, who
        finally:
            await client.close()
    assert await panel.ctx.api_keys.list() == []

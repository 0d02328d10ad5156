"""The public directory of agencies' hotlines: only active agencies and only the fields
meant to be public (never the contact person), on both databases, in Chromium too."""

from __future__ import annotations

import pytest

from public.views import directory_entries
from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import watch
from tests.public.test_public_browser import PHONE, base


async def _agencies(site) -> None:  # type: ignore[no-untyped-def]
    c = site.panel.ctx
    admin = site.actor("admin")
    ward = await c.agencies.create(
        admin,
        {
            "kind": "ward",
            "code": "q1-p-ben-nghe",
            "name": "UBND Phường Bến Nghé",
            "parent_id": site.panel.agency_ids["q1"],
            "contact_name": "Ông Riêng Tư Xyzq",
            "phone": "028 3829 9999",
            "email": "bennghe@tphcm.gov.vn",
            "address": "29 Lê Duẩn",
        },
    )
    await c.agencies.update(admin, site.panel.agency_ids["q1"], 1, {"phone": "1022"})
    gone = await c.agencies.create(
        admin, {"kind": "other", "code": "cu", "name": "Đơn vị giải thể Qwv", "phone": "0281"}
    )
    await c.agencies.deactivate(admin, gone.id)
    assert ward.id


async def test_the_directory_lists_public_fields_of_active_agencies(site):
    await _agencies(site)
    r = await site.client.get("/directory")
    assert r.status == 200
    page = await r.text()
    for shown in (
        "UBND Phường Bến Nghé",
        "02838299999",
        "bennghe@tphcm.gov.vn",
        "29 Lê Duẩn",
        "UBND Quận 1",
        "1022",
        "Sở Giao thông Vận tải",
        "Đường dây nóng các cơ quan",
    ):
        assert shown in page, shown
    assert "Xyzq" not in page  # the contact person stays with the staff
    assert "Qwv" not in page  # an inactive agency is not listed
    assert 'href="tel:1022"' in page
    r = await site.client.get("/directory", headers={"Cookie": "public_lang=en"})
    assert "Agencies' hotlines" in await r.text() or "Agencies&#39; hotlines" in await r.text()


def test_the_entries_hold_only_public_fields():
    class A:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    rows = directory_entries(
        [
            A(
                id=1,
                parent_id=None,
                active=True,
                kind="ward",
                name="b",
                phone="1",
                email=None,
                address=None,
                contact_name="secret",
            ),
            A(
                id=2,
                parent_id=1,
                active=True,
                kind="department",
                name="a",
                phone=None,
                email="x@y.vn",
                address="z",
                contact_name="secret",
            ),
            A(
                id=3,
                parent_id=None,
                active=False,
                kind="ward",
                name="c",
                phone="2",
                email=None,
                address=None,
                contact_name=None,
            ),
        ]
    )
    assert [r["name"] for r in rows] == ["a", "b"]  # departments first; inactive left out
    assert all("secret" not in r.values() for r in rows)
    assert set(rows[0]) == {"name", "kind", "phone", "email", "address", "parent"}
    assert rows[0]["parent"] == "b"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_directory_page_renders_in_chromium(site, browser):
    await _agencies(site)
    context = await browser.new_context(**PHONE)
    try:
        page = await context.new_page()
        problems = watch(page)
        await page.goto(f"{base(site.client)}/")
        await page.click("a[href$='/directory']")
        await page.wait_for_selector("table.directory-table")
        assert await page.inner_text("h1") == "Đường dây nóng các cơ quan"
        text = await page.inner_text("main")
        assert "UBND Phường Bến Nghé" in text and "bennghe@tphcm.gov.vn" in text
        assert "Xyzq" not in await page.content()
        heads = await page.locator("main h2").all_inner_texts()
        assert heads[:2] == ["Sở, ban, ngành", "Quận, huyện"]
        await page.screenshot(path=ARTIFACTS / "public-directory.png", full_page=True)
        assert not problems, problems
    finally:
        await context.close()

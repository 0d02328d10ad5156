"""The public site in Debian's Chromium (Playwright), on a phone-sized screen: the
status page with a right and a wrong look-up, the portal's search, and an admin
withholding a report in the panel so that it leaves the portal.  Screenshots go to
test-artifacts/browser/."""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def base(client) -> str:  # type: ignore[no-untyped-def]
    return str(client.make_url("")).rstrip("/")


async def test_the_status_page_right_and_wrong(site, browser):
    t = await site.completed(citizen_name="Phạm Văn Đồng Xyzq")
    context = await browser.new_context(**PHONE)
    try:
        page = await context.new_page()
        problems = watch(page)
        await page.goto(f"{base(site.client)}/status")
        assert await page.get_attribute("html", "lang") == "vi"
        # a wrong ending: the one answer, the form kept
        await page.fill("#f-number", " ".join([t.number[:3], t.number[3:6], t.number[6:]]))
        await page.fill("#f-check", "999")
        await page.click("#f-lookup")
        await page.wait_for_selector("#lookup-message")
        said = await page.inner_text("#lookup-message")
        assert said.startswith("Không có phản ánh nào khớp với mã số này")
        await page.screenshot(path=ARTIFACTS / "public-status-wrong.png", full_page=True)
        # a typo in the number: caught by its check digit, by the field
        await page.fill("#f-number", "123")
        await page.fill("#f-check", "456")
        await page.click("#f-lookup")
        await page.wait_for_selector("#err-number")
        assert "không phải là mã số phản ánh" in await page.inner_text("#err-number")
        # right
        await page.fill("#f-number", t.number)
        await page.fill("#f-check", "456")
        await page.click("#f-lookup")
        await page.wait_for_selector("#status")
        assert await page.inner_text("#status-words") == "Đã xử lý xong"
        steps = await page.locator("#steps li").all_inner_texts()
        assert [s.split(" ", 2)[2] for s in steps] == [
            "Đã tiếp nhận",
            "Đã chuyển đến Sở Giao thông Vận tải",
            "Sở Giao thông Vận tải đã trả lời",
            "Đã xử lý xong",
        ]
        assert await page.inner_text("#result") == "Đã nạo vét cống, hết ngập."
        assert "Xyzq" not in await page.content()
        await page.screenshot(path=ARTIFACTS / "public-status-right.png", full_page=True)
        # in English
        await page.click("a[hreflang=en]")
        await page.wait_for_load_state("domcontentloaded")
        assert await page.get_attribute("html", "lang") == "en"
        assert await page.inner_text("h1") == "Follow my report"
        # the refused look-ups' statuses (404, 400) are the only problems the console saw
        assert not [p for p in problems if "responded with a status of" not in p], problems
    finally:
        await context.close()


async def test_the_portal_search_and_an_admin_withholding(site, browser):
    a = await site.completed(description="Ngập nước sâu đường Điện Biên Phủ", district="q1")
    b = await site.completed(description="Cây đổ chắn đường Pasteur", topic="trees")
    context = await browser.new_context(**PHONE)
    staff = await browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = await context.new_page()
        problems = watch(page)
        portal = f"{base(site.client)}/reports"
        await page.goto(portal)
        links = page.locator("article.report h2 a")
        assert await links.count() == 2
        await page.fill("input[name=q]", "dien bien phu")
        await page.click("form.filters button")
        await page.wait_for_url("**/reports?q=dien+bien+phu*")
        assert await page.inner_text("#count") == "Tìm thấy 1 phản ánh"
        assert await links.count() == 1
        assert "Điện Biên Phủ" in await page.inner_text("article.report")
        # the language switch comes back to the same search, accents and all
        await page.fill("input[name=q]", "Điện Biên")
        await page.click("form.filters button")
        await page.wait_for_load_state("domcontentloaded")
        await page.click("a[hreflang=en]")
        await page.wait_for_load_state("domcontentloaded")
        assert await page.input_value("input[name=q]") == "Điện Biên"
        assert await page.inner_text("#count") == "Reports found: 1"
        await page.click("a[hreflang=vi]")
        await page.wait_for_load_state("domcontentloaded")
        await page.screenshot(path=ARTIFACTS / "public-portal-search.png", full_page=True)
        await page.fill("input[name=q]", "")
        await page.select_option("select[name=topic]", "trees")
        await page.click("form.filters button")
        await page.wait_for_load_state("domcontentloaded")
        assert await links.all_inner_texts() == ["Cây xanh"]

        # the admin withholds report a in the panel
        admin = await staff.new_page()
        await sign_in(admin, base(site.panel.client), "admin")
        await admin.goto(f"{base(site.panel.client)}/tickets/{a.code}")
        assert await admin.inner_text("#ticket-publication") == "đang công khai trên cổng thông tin"
        await admin.fill("#action-withhold input[name=note]", "Nêu tên người khác")
        await admin.click("#action-withhold button")
        await admin.wait_for_selector("#action-release")
        assert await admin.inner_text("#ticket-publication") == "quản trị viên không cho công khai"
        assert "đã không cho công khai" in await admin.inner_text("section.history-log")
        await admin.screenshot(path=ARTIFACTS / "public-withheld-in-panel.png", full_page=True)

        await page.goto(portal)
        shown = await page.locator("article.report > p.text").all_inner_texts()
        assert shown == [b.description] and await page.inner_text("#count") == "Tìm thấy 1 phản ánh"
        response = await page.goto(f"{portal}/{a.number}")
        assert response is not None and response.status == 404
        await page.screenshot(
            path=ARTIFACTS / "public-portal-after-withholding.png", full_page=True
        )

        # released, it is back
        await admin.click("#action-release button")
        await admin.wait_for_selector("#action-withhold")
        await page.goto(portal)
        assert await page.locator("article.report").count() == 2
        assert not [p for p in problems if "responded with a status of 404" not in p], problems
    finally:
        await staff.close()
        await context.close()

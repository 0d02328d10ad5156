"""The portal of completed reports on real SQLite / PostgreSQL: only what
tickets.publication lets out, newest first, searched with or without accents on the
public fields only, filtered by topic and district, paginated; bad input refused."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def numbers(page: str) -> list[str]:
    return re.findall(r'href="/reports/(\d{10})"', page)


async def get(site, path: str, **params):
    r = await site.client.get(path, params=params)
    return r.status, await r.text()


async def test_only_published_reports_newest_first_with_the_agencys_answer(site):
    from datetime import timedelta

    clock = site.panel.ctx.clock
    older = await site.completed(description="Cây đổ trên đường Pasteur", topic="trees")
    clock.advance(timedelta(hours=1))
    newer = await site.completed(description="Ngập sâu ở Nguyễn Hữu Cảnh")
    # never: no consent, withheld, still open, Party building, denunciation, corruption
    await site.completed(publish_consent=False)
    held = await site.completed()
    await site.panel.ctx.tickets.set_withheld(site.actor("admin"), held.id, held.version, True)
    await site.report()
    await site.completed(domain="party", description="Đảng viên")
    await site.completed(topic="complaints", description="Tố cáo")
    await site.completed(topic="corruption", description="Tham nhũng")
    status, page = await get(site, "/reports")
    assert status == 200
    assert numbers(page) == [newer.number, older.number]
    assert "2 phản ánh" in page
    assert "Trả lời của Sở Giao thông Vận tải" in page
    assert "Đã nạo vét cống, hết ngập." in page
    for never in ("Đảng viên", "Tố cáo", "Tham nhũng"):
        assert never not in page
    # the restricted topics are not even offered as a filter
    assert 'value="corruption"' not in page and 'value="complaints"' not in page
    # one report's own page; an unpublished one is "not found", the same as none
    status, page = await get(site, f"/reports/{newer.number}")
    assert status == 200 and "Ngập sâu ở Nguyễn Hữu Cảnh" in page
    status, page = await get(site, f"/reports/{held.number}")
    assert status == 404
    assert "Không có phản ánh được công khai nào mang số này." in page
    status, _ = await get(site, "/reports/abc")
    assert status == 404


async def test_search_with_or_without_accents_on_public_fields_only(site):
    a = await site.completed(
        description="Ngập nước sâu trên đường Điện Biên Phủ",
        citizen_name="Lê Văn Tám",
        citizen_address="đường Võ Văn Tần",
        district="q1",
    )
    b = await site.completed(description="Đèn đường hỏng", topic="electricity", district="Quận 3")
    for q in ("dien bien phu", "ĐIỆN BIÊN PHỦ", "điện biên"):
        assert numbers((await get(site, "/reports", q=q))[1]) == [a.number]
    # the topic's name and the district are searched too
    assert numbers((await get(site, "/reports", q="dien"))[1]) == [b.number, a.number]
    assert numbers((await get(site, "/reports", q="ngap nuoc"))[1]) == [a.number]
    assert numbers((await get(site, "/reports", q="quan 3"))[1]) == [b.number]
    # never the citizen's name, phone or address
    for private in ("le van tam", "Võ Văn Tần", "0909", "123 456"):
        status, page = await get(site, "/reports", q=private)
        assert status == 200 and numbers(page) == [], private
        assert "Không có phản ánh đã xử lý nào phù hợp." in page
    # filters: topic, the directory's district (by its name), a typed district
    assert numbers((await get(site, "/reports", topic="electricity"))[1]) == [b.number]
    status, page = await get(site, "/reports", district="q1")
    assert numbers(page) == [a.number]
    assert '<option value="q1" selected>UBND Quận 1</option>' in page
    assert '<option value="Quận 3" >Quận 3</option>' in page
    assert numbers((await get(site, "/reports", district="Quận 3", q="den"))[1]) == [b.number]
    assert numbers((await get(site, "/reports", district="Quận 9"))[1]) == []


async def test_pages_of_reports(site):
    from datetime import timedelta

    s = site.ctx.settings
    site.ctx.portal.settings = s.model_copy(
        update={"public": s.public.model_copy(update={"page_size": 2})}
    )
    made = []
    for i in range(5):
        made.append(await site.completed(description=f"Cống nghẹt số {i}"))
        site.panel.ctx.clock.advance(timedelta(minutes=1))
    newest_first = [t.number for t in reversed(made)]
    seen = []
    for page in (1, 2, 3):
        status, html = await get(site, "/reports", q="cong nghet", page=str(page))
        assert status == 200
        seen += numbers(html)
        assert f"Trang {page}/3" in html
    assert seen == newest_first
    _, html = await get(site, "/reports", q="cong nghet", page="2")
    assert 'href="/reports?q=cong+nghet&amp;page=1" rel="prev"' in html
    assert 'href="/reports?q=cong+nghet&amp;page=3" rel="next"' in html
    status, html = await get(site, "/reports", page="4")
    assert status == 200 and numbers(html) == []


async def test_bad_input_is_refused_naming_the_field(site):
    await site.completed()
    cases = [
        ({"page": "0"}, "page", "phải là số trang từ 1 đến 10000"),
        ({"page": "abc"}, "page", "phải là số trang từ 1 đến 10000"),
        ({"page": "-1"}, "page", "phải là số trang từ 1 đến 10000"),
        ({"page": "99999999"}, "page", "phải là số trang từ 1 đến 10000"),
        ({"page": "9" * 9}, "page", "quá dài (tối đa 8 ký tự)"),
        ({"topic": "corruption"}, "topic", "không thuộc các giá trị cho phép"),
        ({"topic": "nope"}, "topic", "không thuộc các giá trị cho phép"),
        ({"q": "x" * 201}, "q", "quá dài (tối đa 200 ký tự)"),
        ({"district": "d" * 81}, "district", "quá dài (tối đa 80 ký tự)"),
        ({"q": "a\x00b"}, "q", "có ký tự không được phép"),
    ]
    for params, field, said in cases:
        status, page = await get(site, "/reports", **params)
        assert status == 400, (params, page)
        error = re.search(rf'id="err-{field}"[^>]*>([^<]+)<', page)
        assert error is not None and said in error.group(1), (params, page)
        assert numbers(page) == []
    r = await site.client.post("/reports", data={"q": "x"})
    assert r.status == 405

"""The knowledge base and the directory's CSV through the panel (HTML and JSON API) on
real Redis and SQLite / PostgreSQL: an admin writes and edits, an agent searches and
answers a level-1 ticket with an article, a supervisor reads the report and its CSV."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

from accounts.identity import SYSTEM, Actor
from tickets.kb.starter import ARTICLES
from tickets.queries import TicketFilter

API = "/api/v1"


async def test_an_article_through_the_api_with_versions(panel):
    admin = await panel.token("admin")
    agent = await panel.token("agent1")
    body = {
        "title": "Đăng ký tạm trú",
        "steps": "1. Nộp tờ khai CT01.\n2. Nhận kết quả.",
        "fees": "Theo quy định",
        "agency_id": panel.agency_ids["q1"],
        "templates": "Tờ khai CT01 | https://dichvucong.gov.vn/ct01\nmẫu giấy không có địa chỉ",
        "keywords": "thuê trọ, cư trú",
    }
    r = await panel.client.post(f"{API}/kb/articles", json=body, headers=admin)
    assert r.status == 201, await r.text()
    a = await r.json()
    assert (a["version"], a["code"], a["agency"]["name"]) == (1, "dang-ky-tam-tru", "UBND Quận 1")
    assert a["template_links"] == [
        {"label": "Tờ khai CT01", "href": "https://dichvucong.gov.vn/ct01"},
        {"label": "mẫu giấy không có địa chỉ", "href": None},
    ]
    # an agent cannot write
    r = await panel.client.post(f"{API}/kb/articles", json=body, headers=agent)
    assert r.status == 403
    # the same code again: a conflict with what is stored, named
    r = await panel.client.post(
        f"{API}/kb/articles", json=body | {"code": a["code"]}, headers=admin
    )
    assert r.status == 409 and "code" in (await r.json())["fields"]
    r = await panel.client.patch(
        f"{API}/kb/articles/{a['id']}", json={"version": 1, "fees": "20.000 đồng"}, headers=admin
    )
    assert r.status == 200 and (await r.json())["version"] == 2
    r = await panel.client.patch(
        f"{API}/kb/articles/{a['id']}", json={"version": 1, "fees": "x"}, headers=admin
    )
    assert r.status == 409
    r = await panel.client.get(f"{API}/kb/articles/{a['id']}/versions", headers=agent)
    assert [v["fees"] for v in (await r.json())["items"]] == ["20.000 đồng", "Theo quy định"]
    # found without accents, by a keyword
    r = await panel.client.get(f"{API}/kb/articles", params={"q": "thue tro"}, headers=agent)
    found = await r.json()
    assert [i["id"] for i in found["items"]] == [a["id"]] and found["complete"]
    r = await panel.client.get(f"{API}/kb/articles", params={"limit": "0"}, headers=agent)
    assert r.status == 422
    r = await panel.client.get(f"{API}/kb/articles/999999", headers=agent)
    assert r.status == 404
    r = await panel.client.get(f"{API}/kb/articles/{a['id']}?opened=1", headers=agent)
    assert (await r.json())["views"] == 1


async def test_admin_pages_write_edit_archive_and_show_old_versions(panel):
    csrf = await panel.login("admin")
    r = await panel.client.post(
        "/kb", data={"_csrf": csrf, "title": " ", "steps": "x"}, allow_redirects=False
    )
    assert r.status == 422
    page = await r.text()
    assert 'id="err-title"' in page
    r = await panel.client.post(
        "/kb",
        data={
            "_csrf": csrf,
            "title": "Cấp phép xây dựng",
            "steps": "Nộp hồ sơ <b>ở quận</b>",
            "agency_id": str(panel.agency_ids["q1"]),
        },
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    where = r.headers["Location"]
    article_id = int(where.rsplit("/", 1)[1])
    page = await (await panel.client.get(where)).text()
    assert "Nộp hồ sơ &lt;b&gt;ở quận&lt;/b&gt;" in page and "UBND Quận 1" in page
    r = await panel.client.post(
        where,
        data={
            "_csrf": csrf,
            "version": "1",
            "title": "Cấp giấy phép xây dựng",
            "steps": "Nộp hồ sơ tại UBND quận",
            "note": "sửa tiêu đề",
        },
        allow_redirects=False,
    )
    assert r.status == 303
    old = await (await panel.client.get(f"{where}/versions/1")).text()
    assert "Cấp phép xây dựng" in old and 'id="kb-old"' in old
    current = await (await panel.client.get(where)).text()
    assert "Cấp giấy phép xây dựng" in current and "sửa tiêu đề" in current
    # a stale form: told, nothing overwritten
    r = await panel.client.post(
        where,
        data={"_csrf": csrf, "version": "1", "title": "Cũ", "steps": "cũ"},
        allow_redirects=False,
    )
    assert r.status == 303 and r.headers["Location"].endswith("/edit")
    assert (await panel.ctx.kb.get(article_id)).title == "Cấp giấy phép xây dựng"
    r = await panel.client.post(
        where, data={"_csrf": csrf, "version": "2", "do": "archive"}, allow_redirects=False
    )
    assert r.status == 303 and (await panel.ctx.kb.get(article_id)).archived
    listed = await (await panel.client.get("/kb")).text()
    assert "Cấp giấy phép xây dựng" not in listed
    listed = await (await panel.client.get("/kb?archived=1")).text()
    assert "Cấp giấy phép xây dựng" in listed


async def test_an_agent_answers_a_level_1_ticket_with_an_article_and_the_report_counts_it(panel):
    admin = Actor.of(panel.users["admin"])
    await panel.ctx.kb.load_examples(admin, ARTICLES)
    agent = await panel.token("agent1")
    r = await panel.client.get(f"{API}/kb/articles", params={"q": "khai sinh"}, headers=agent)
    hit = (await r.json())["items"][0]
    assert hit["title"] == "Đăng ký khai sinh" and hit["example"]
    # nothing for this: kept for the report
    await panel.client.get(f"{API}/kb/articles", params={"q": "nuoi cho meo"}, headers=agent)
    csrf = await panel.login("agent1")
    r = await panel.client.post(
        "/tickets",
        data={
            "_csrf": csrf,
            "from": "agent",
            "channel": "phone",
            "domain": "state",
            "topic": "traffic",
            "level": "1",
            "description": "Hỏi thủ tục khai sinh cho con",
            "guidance": "Đã hướng dẫn theo bài Đăng ký khai sinh",
            "kb_article_id": str(hit["id"]),
        },
        allow_redirects=False,
    )
    assert r.status == 303, await r.text()
    rows, _total = await panel.ctx.ticket_queries.search(
        TicketFilter(), actor=SYSTEM, page=1, per_page=5
    )
    t = rows[0]
    assert (t.status, t.kb_article_id, t.kb_article_version) == ("closed", hit["id"], 1)
    r = await panel.client.get(f"{API}/tickets/{t.code}", headers=agent)
    assert (await r.json())["kb_article_id"] == hit["id"]
    page = await (await panel.client.get(f"/tickets/{t.code}")).text()
    assert f'href="/kb/{hit["id"]}/versions/1">Đăng ký khai sinh</a>' in page
    # an article that does not exist: named next to the form, nothing made
    r = await panel.client.post(
        "/tickets",
        data={
            "_csrf": csrf,
            "from": "agent",
            "channel": "phone",
            "domain": "state",
            "topic": "traffic",
            "level": "1",
            "description": "x",
            "guidance": "y",
            "kb_article_id": "999999",
        },
        allow_redirects=False,
    )
    assert r.status == 422 and 'id="err-kb_article_id"' in await r.text()

    panel.client.session.cookie_jar.clear()
    csrf = await panel.login("sup")
    page = unescape(await (await panel.client.get("/kb/report")).text())
    assert "Đăng ký khai sinh" in page and "nuoi cho meo" in page
    r = await panel.client.get("/kb/report-not-found.csv")
    rows_csv = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows_csv[0] == ["query", "times", "last_searched"]
    assert rows_csv[1][:2] == ["nuoi cho meo", "1"]
    r = await panel.client.get("/kb/report-used.csv")
    used = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert used[1][1:4] == ["Đăng ký khai sinh", "1", "1"]
    r = await panel.client.get("/kb/report?from=31/02/2026")
    assert r.status == 400


async def test_the_directory_csv_export_dry_run_and_apply_in_the_panel(panel):
    csrf = await panel.login("admin")
    exported = (await (await panel.client.get("/agencies/export.csv")).read()).decode("utf-8-sig")
    assert exported.splitlines()[0].startswith("code,parent_code,kind,name")
    text = (
        exported
        + "q3,,district,UBND Quận 3,,1022,q3@tphcm.gov.vn,,1\r\nq9,nowhere,district,X,,,,,\r\n"
    )
    r = await panel.client.post(
        "/agencies/import", data={"_csrf": csrf, "do": "plan", "text": text}
    )
    assert r.status == 422
    page = unescape(await r.text())
    assert "parent_code" in page and "không tồn tại" in page
    assert 'id="import-apply"' not in page
    good = exported + "q3,,district,UBND Quận 3,,1022,q3@tphcm.gov.vn,,1\r\n"
    r = await panel.client.post(
        "/agencies/import", data={"_csrf": csrf, "do": "plan", "text": good}
    )
    assert r.status == 200
    page = await r.text()
    assert 'id="import-apply"' in page
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', page).group(1)
    r = await panel.client.post(
        "/agencies/import",
        data={"_csrf": csrf, "do": "apply", "text": good, "fingerprint": fingerprint},
        allow_redirects=False,
    )
    assert r.status == 303
    names = {a.code: a.name for a in await panel.ctx.agencies.list()}
    assert names["q3"] == "UBND Quận 3"
    # the officer and the supervisor may not import
    panel.client.session.cookie_jar.clear()
    csrf = await panel.login("sup")
    r = await panel.client.post(
        "/agencies/import", data={"_csrf": csrf, "do": "plan", "text": good}
    )
    assert r.status == 403

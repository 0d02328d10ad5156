"""Error pages in the user's language (panel/errors.py, templates/error.html).

Through the aiohttp test client on the real panel: an unknown page, a refused
one, a form that expired, a wrong method, a signed-out form, a form refused
field by field (each field named by its label), in Vietnamese first and in
English on request; the API keeps answering JSON, with the fields' labels.
The same pages in a real browser are in tests/panel/test_words_browser.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from accounts.exceptions import AccountInvalid
from accounts.identity import Actor
from panel.errors import error_pages_middleware
from panel.security import errors_middleware, make_auth_middleware
from tickets.exceptions import PHONE, TOO_LONG, FieldError, InvalidInput

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def page_text(body: str) -> str:
    """What a reader sees of the page's main part: tags gone, entities read."""
    main = body.split("<main>", 1)[1].split("</main>", 1)[0]
    main = re.sub(r"</?(strong|span|a)\b[^>]*>", "", main)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main))).strip()


async def english(panel, client=None) -> None:  # type: ignore[no-untyped-def]
    c = client or panel.client
    csrf = await panel.csrf(c)
    r = await c.post("/language", data={"_csrf": csrf, "language": "en", "back": "/account"})
    assert r.status == 200 and 'lang="en"' in await r.text()


@SQLITE
async def test_an_unknown_page_is_a_page_in_vietnamese_then_in_english(panel):
    r = await panel.client.get("/khong-co-trang-nay")
    body = await r.text()
    assert r.status == 404 and r.content_type == "text/html"
    assert 'lang="vi"' in body and '<header class="top">' in body, "the base template"
    text = page_text(body)
    assert "Không tìm thấy trang" in text and "Trang này không tồn tại" in text
    assert "Not Found" not in body and "404: " not in body
    assert 'id="error-back" href="/"' in body  # nowhere to go back to: the home page
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]

    # coming from a page of the panel, "back" leads there
    came_from = str(panel.client.make_url("/tickets?q=ngập"))
    r = await panel.client.get("/tickets/nope/nope/nope", headers={"Referer": came_from})
    assert r.status == 404
    assert 'id="error-back" href="/tickets?q=ng%E1%BA%ADp"' in await r.text()
    # ...but never to another site
    r = await panel.client.get("/nope", headers={"Referer": "https://evil.example/x"})
    assert 'id="error-back" href="/"' in await r.text()

    await panel.login("sup")
    await english(panel)
    r = await panel.client.get("/khong-co-trang-nay")
    body = await r.text()
    assert r.status == 404 and 'lang="en"' in body
    assert "Page not found" in page_text(body) and "Error 404" in page_text(body)
    assert ">Tickets</a>" in body, "signed in: the page keeps the panel's menu"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_ticket_that_does_not_exist_is_the_not_found_page(panel):
    await panel.login("sup")
    r = await panel.client.get("/tickets/AAA-AAAA")
    assert r.status == 404
    text = page_text(await r.text())
    assert "Không tìm thấy trang" in text and "no ticket" not in text


@SQLITE
async def test_a_refused_page_says_so_in_the_users_language(panel):
    await panel.login("agent1")
    r = await panel.client.get("/admin/users")
    body = await r.text()
    assert r.status == 403 and r.content_type == "text/html"
    text = page_text(body)
    assert "Không được phép" in text
    assert "Bạn không có quyền thực hiện thao tác này." in text
    assert "Bàn làm việc" in body, "the agent's own menu stays"
    await english(panel)
    text = page_text(await (await panel.client.get("/admin/users")).text())
    assert "Not allowed" in text and "You are not allowed to do this." in text


@SQLITE
async def test_an_expired_form_and_a_signed_out_form_are_explained(panel):
    await panel.login("agent1")
    r = await panel.client.post("/agent/pause", data={"reason": "break", "_csrf": "old"})
    assert r.status == 403
    text = page_text(await r.text())
    assert "Biểu mẫu đã hết hạn. Vui lòng tải lại trang và thử lại." in text

    other = await panel.new_client()
    try:
        r = await other.post(
            "/agent/pause",
            data={"reason": "break"},
            headers={"Referer": str(panel.client.make_url("/agent"))},
        )
        body = await r.text()
        assert r.status == 401 and r.content_type == "text/html"
        assert "Xin đăng nhập lại" in page_text(body)
        assert 'href="/login?next=/agent"' in body
    finally:
        await other.close()


@SQLITE
async def test_a_wrong_method_is_explained_and_keeps_its_allow_header(panel):
    r = await panel.client.get("/logout")
    assert r.status == 405 and r.headers["Allow"] == "POST"
    text = page_text(await r.text())
    assert "Không thể dùng trang này theo cách đó" in text
    assert "Method Not Allowed" not in text


@SQLITE
async def test_a_refused_report_form_names_the_field_by_its_label(panel):
    await panel.login("admin")
    r = await panel.client.get("/reports/daily?day=25-11-2026")
    body = await r.text()
    assert r.status == 400 and r.content_type == "text/html"
    assert re.search(r'<li class="field-error" id="err-day"><strong>Ngày</strong>: ', body)
    assert "Ngày: phải là ngày dạng 25/11/2026" in page_text(body)
    r = await panel.client.get("/reports/daily.csv?section=everything")
    assert r.status == 400
    assert "Phần báo cáo: không thuộc các giá trị cho phép" in page_text(await r.text())

    await english(panel)
    r = await panel.client.get("/reports/weekly?week=monday")
    text = page_text(await r.text())
    assert r.status == 400 and "Week: must be a date such as 25/11/2026" in text
    assert "Please correct the form" in text or "The request was not understood" in text


async def _through_the_middlewares(panel, error: Exception, lang: str) -> web.Response:  # type: ignore[no-untyped-def]
    """A page route that raises ``error``, answered by the panel's own middlewares."""
    request = make_mocked_request(
        "POST",
        "/tickets/AAA-AAAA/edit",
        headers={"Cookie": f"hotline_lang={lang}"},
        app=panel.client.app,
    )

    async def handler(_request: web.Request) -> web.StreamResponse:
        raise error

    async def domain_errors(request: web.Request) -> web.StreamResponse:
        return await errors_middleware(request, handler)

    async def signed_in(request: web.Request) -> web.StreamResponse:
        return await make_auth_middleware(panel.ctx)(request, domain_errors)

    return await error_pages_middleware(request, signed_in)  # type: ignore[return-value]


@SQLITE
@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "vi",
            [
                "Xin sửa lại biểu mẫu",
                "Số điện thoại người dân: phải là số điện thoại",
                "Nội dung phản ánh: quá dài (tối đa 10000 ký tự)",
            ],
        ),
        (
            "en",
            [
                "Please correct the form",
                "Citizen's phone: must be a phone number",
                "Report: is too long (at most 10000 characters)",
            ],
        ),
    ],
)
async def test_a_form_refused_field_by_field_names_each_field_by_its_label(panel, lang, expected):
    refused = InvalidInput(
        [
            FieldError("citizen_phone", PHONE, {}),
            FieldError("description", TOO_LONG, {"max": 10000}),
        ]
    )
    response = await _through_the_middlewares(panel, refused, lang)
    assert response.status == 422 and response.content_type == "text/html"
    text = page_text(response.text or "")
    for words in expected:
        assert words in text, (words, text)
    assert "invalid input" not in text and "citizen_phone" not in text

    account = AccountInvalid({"extension": ("is required for an agent", {})})
    response = await _through_the_middlewares(panel, account, lang)
    text = page_text(response.text or "")
    assert ("Máy lẻ: " if lang == "vi" else "Extension: is required for an agent") in text


@SQLITE
async def test_an_unexpected_failure_is_a_page_not_a_traceback(panel, caplog):
    response = await _through_the_middlewares(panel, RuntimeError("disk on fire"), "vi")
    assert response.status == 500 and response.content_type == "text/html"
    text = page_text(response.text or "")
    assert "Đã xảy ra lỗi" in text and "disk on fire" not in text
    assert any("disk on fire" in (r.exc_text or "") for r in caplog.records), "it is logged"


async def _api(panel, method: str, path: str, headers: dict[str, str], **kw: Any):  # type: ignore[no-untyped-def]
    r = await panel.client.request(method, path, headers=headers, **kw)
    assert r.content_type == "application/json", (path, await r.text())
    return r.status, await r.json()


@SQLITE
async def test_the_api_answers_json_naming_fields_by_their_labels(panel):
    ticket = {
        "channel": "phone",
        "citizen_phone": "abc",
        "domain": "state",
        "topic": "trees",
        "level": 2,
        "description": "Cây đổ",
    }
    agent = await panel.token("agent1")
    status, body = await _api(panel, "POST", "/api/v1/tickets", agent, json=ticket)
    assert status == 422 and body["error"] == "invalid input"
    assert set(body["fields"]) == {"citizen_phone"}
    assert body["labels"] == {"citizen_phone": "Số điện thoại người dân"}

    admin = Actor.of(panel.users["admin"])
    await panel.ctx.accounts.update_user(admin, panel.users["agent2"].id, {"language": "en"})
    agent2 = await panel.token("agent2")
    status, body = await _api(panel, "POST", "/api/v1/tickets", agent2, json=ticket)
    assert body["labels"] == {"citizen_phone": "Citizen's phone"}
    assert body["fields"]["citizen_phone"] == "must be a phone number"

    # the router's own answers are JSON too
    status, body = await _api(panel, "GET", "/api/v1/no-such-thing", agent)
    assert (status, body) == (404, {"error": "not found"})
    status, body = await _api(panel, "DELETE", "/api/v1/tickets", agent)
    assert (status, body) == (405, {"error": "method not allowed"})
    # and a refusal keeps its words (tests/panel/test_api.py's contract)
    status, body = await _api(panel, "GET", "/api/v1/users", agent)
    assert (status, body) == (403, {"error": "not allowed for your role"})


@SQLITE
async def test_metrics_keep_answering_in_plain_text(panel):
    stats = panel.ctx.settings.stats
    panel.ctx.settings = panel.ctx.settings.model_copy(
        update={"stats": stats.model_copy(update={"metrics_allow": []})}
    )
    r = await panel.client.get("/metrics")
    assert r.status == 403 and r.content_type == "text/plain"

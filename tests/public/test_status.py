"""The status page on real Redis and SQLite / PostgreSQL: a citizen follows their report
with its number and the last phone digits (or their email); anything else gets one
answer that does not tell whether the number exists, and too many tries wait."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from stdnum import damm

from tickets.models import Ticket

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

NOBODYS = "100000000" + damm.calc_check_digit("100000000")
NO_MATCH_VI = "Không có phản ánh nào khớp với mã số này"


async def look(site, number: str, check: str, client: str = "192.0.2.10", **extra):
    r = await site.client.post(
        "/status",
        data={"number": number, "check": check, **extra},
        headers={"X-Forwarded-For": client},
    )
    return r.status, await r.text(), r


async def version_of(site, ticket: Ticket) -> int:
    return (await site.panel.ctx.ticket_queries.get(ticket.id)).version


async def test_the_right_digits_show_the_status_steps_deadline_and_result(site):
    t = await site.completed(citizen_name="Trần Thị Bích", citizen_address="12 Lê Lợi")
    status, page, r = await look(site, t.number, "456")
    assert status == 200, page
    assert r.headers["Cache-Control"] == "no-store"
    assert "Đã xử lý xong" in page  # the status in words
    found = re.findall(r"<li><time>[^<]+</time> ([^<]+)</li>", page)
    assert found == [
        "Đã tiếp nhận",
        "Đã chuyển đến Sở Giao thông Vận tải",
        "Sở Giao thông Vận tải đã trả lời",
        "Đã xử lý xong",
    ]
    assert "Đã nạo vét cống, hết ngập." in page
    for private in ("Trần Thị Bích", "12 Lê Lợi", "0909", "Agent1", "Officer", "Sup"):
        assert private not in page

    # an open one: its deadline shows, and the old letter code works as well as the number
    open_t = await site.report(reporter_email="Dan@Example.vn")
    status, page, _ = await look(site, open_t.code.lower(), " dan@example.VN ")
    assert status == 200, page
    assert "Đã chuyển đến đơn vị có trách nhiệm" in page
    assert 'id="deadline"' in page
    assert "Hạn trả lời" in page


async def test_a_wrong_lookup_says_the_same_whatever_is_wrong(site):
    t = await site.report(reporter_email="dan@example.vn")
    other = await site.report(citizen_phone=None)  # no phone and no email: never found
    before = await version_of(site, t)
    answers = []
    for number, check in [
        (t.number, "457"),  # wrong digits
        (t.number, "nobody@example.vn"),  # wrong email
        (NOBODYS, "456"),  # a well-formed number nobody has
        (other.number, "000"),
        (t.code, "999"),
    ]:
        status, page, _ = await look(site, number, check)
        answers.append(status)
        message = re.search(r'id="lookup-message"[^>]*>([^<]+)<', page).group(1)
        assert message.startswith(NO_MATCH_VI)
        assert 'id="status"' not in page
    assert answers == [404] * 5
    assert await version_of(site, t) == before  # a look-up changes nothing


async def test_bad_input_names_the_field_and_is_not_counted(site):
    t = await site.report()
    cases = [
        ({"number": "", "check": "456"}, "number", "là bắt buộc"),
        ({"number": "12345", "check": "456"}, "number", "không phải là mã số phản ánh"),
        (
            {"number": t.number[:-1] + str((int(t.number[-1]) + 1) % 10), "check": "456"},
            "number",
            "có một chữ số bị gõ sai",
        ),
        ({"number": "x" * 41, "check": "456"}, "number", "quá dài (tối đa 40 ký tự)"),
        ({"number": t.number, "check": "45"}, "check", "phải là 3 số cuối"),
        ({"number": t.number, "check": "4567"}, "check", "phải là 3 số cuối"),
        ({"number": t.number, "check": "abc"}, "check", "phải là 3 số cuối"),
        ({"number": t.number, "check": "a@b" * 100}, "check", "quá dài (tối đa 200 ký tự)"),
        ({"number": t.number}, "check", "là bắt buộc"),
        ({"number": "123\x00", "check": "456"}, "number", "có ký tự không được phép"),
    ]
    for data, field, said in cases:
        r = await site.client.post("/status", data=data, headers={"X-Forwarded-For": "192.0.2.20"})
        page = await r.text()
        assert r.status == 400, (data, page)
        error = re.search(rf'id="err-{field}"[^>]*>([^<]+)<', page)
        assert error is not None, (data, page)
        assert said in error.group(1)
    # never counted: ten refusals later, the right look-up still works from there
    status, _, _ = await look(site, t.number, "456", client="192.0.2.20")
    assert status == 200


async def test_wrong_types_and_sizes_are_refused(site):
    t = await site.report()
    c = site.client
    r = await c.post("/status", json={"number": t.number, "check": "456"})
    assert r.status == 415
    assert "Hãy gửi biểu mẫu tra cứu" in await r.text()
    # a file where text is expected
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("number", b"1234567890", filename="n.txt", content_type="text/plain")
    form.add_field("check", "456")
    r = await c.post("/status", data=form)
    assert r.status == 400
    assert "phải là chữ được gõ, không phải tệp" in await r.text()
    r = await c.post("/status", data={"number": "1" * 100_000, "check": "456"})
    assert r.status == 413
    assert "Dữ liệu gửi lên quá lớn" in await r.text()
    r = await c.put("/status", data={"number": t.number, "check": "456"})
    assert r.status == 405
    assert set(r.headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}
    assert "Trang này không nhận loại yêu cầu đó" in await r.text()


async def test_a_flood_of_wrong_lookups_waits_and_says_how_long(site):
    t = await site.report()
    limit = site.ctx.settings.public.lookup_attempts
    guesser = "203.0.113.50"
    for i in range(limit):
        status, _, _ = await look(site, t.number, str(100 + i), guesser)  # never "456"
        assert status == 404
    # now even the right digits wait: guessing must not go on
    status, page, r = await look(site, t.number, "456", guesser)
    assert status == 429
    minutes = site.ctx.settings.public.lookup_minutes
    assert f"Hãy chờ {minutes} phút rồi thử lại" in page
    assert r.headers["Retry-After"] == str(minutes * 60)
    assert 'id="status"' not in page
    # another address is not held up, and the window passes
    assert (await look(site, t.number, "456", "203.0.113.51"))[0] == 200
    site.panel.ctx.clock.advance(timedelta(minutes=minutes, seconds=1))  # type: ignore[attr-defined]
    assert (await look(site, t.number, "456", guesser))[0] == 200

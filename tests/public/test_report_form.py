"""The report form over HTTP, on SQLite and PostgreSQL: a report with a photo becomes a web
ticket in the panel's list of new reports; bad input, junk photos, bots and floods are
refused with the right status and a message naming the field, and nothing is stored."""

from __future__ import annotations

import re

import aiohttp
import pytest
from sqlalchemy import func, select

from tests.public.conftest import photo_bytes
from tickets.attachments import attachments_dir, path_of
from tickets.models import Attachment, Ticket


def form_data(fields: dict[str, str], photo: tuple[str, bytes, str] | None = None):
    data = aiohttp.FormData()
    for k, v in fields.items():
        data.add_field(k, v)
    if photo is not None:
        name, body, ctype = photo
        data.add_field("photo", body, filename=name, content_type=ctype)
    return data


GOOD = {
    "topic": "flooding",
    "description": "Nước ngập sâu 40 cm trước số 12 đường Nguyễn Huệ từ sáng nay.",
    "address": "12 Nguyễn Huệ, phường Bến Nghé",
    "district": "q1",
    "phone": "0903 123 456",
    "email": "binh@example.vn",
    "publish_consent": "yes",
}


async def started(report) -> str:
    return await report.started(seconds_ago=10)


async def count(db) -> tuple[int, int]:
    async with db.session() as s:
        return (
            await s.scalar(select(func.count()).select_from(Ticket)),
            await s.scalar(select(func.count()).select_from(Attachment)),
        )


def files(report) -> list:
    d = attachments_dir(report.panel.ctx.settings)
    return sorted(d.iterdir()) if d.exists() else []


async def test_a_report_with_a_photo_becomes_a_new_web_ticket(report):
    r = await report.client.post(
        "/report",
        data=form_data(
            {**GOOD, "started": await started(report), "latitude": "10.77", "longitude": "106.7"},
            ("IMG_0001.jpg", photo_bytes(), "image/jpeg"),
        ),
    )
    html = await r.text()
    assert r.status == 200, html
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    shown = re.search(r'id="tracking-number" data-number="(\d{10})">([\d ]+)<', html)
    assert shown and shown.group(2) == " ".join(
        [shown.group(1)[:3], shown.group(1)[3:6], shown.group(1)[6:9], shown.group(1)[9]]
    )
    assert "/status?number=" + shown.group(1) in html
    async with report.panel.ctx.db.session() as s:
        t = await s.scalar(select(Ticket).where(Ticket.number == shown.group(1)))
        a = (await s.scalars(select(Attachment).where(Attachment.ticket_id == t.id))).all()
    assert (t.channel, t.status, t.level, t.domain, t.topic) == (
        "web",
        "new",
        2,
        "state",
        "flooding",
    )
    assert t.citizen_phone == "0903123456" and t.reporter_email == "binh@example.vn"
    assert t.district == "q1" and t.publish_consent is True and t.created_by is None
    assert (t.latitude, t.longitude) == (10.77, 106.7)
    assert (
        len(a) == 1
        and a[0].content_type == "image/jpeg"
        and (a[0].width, a[0].height)
        == (
            64,
            48,
        )
    )
    assert a[0].original_name == "IMG_0001.jpg"
    assert path_of(report.panel.ctx.settings, a[0].id).read_bytes() == photo_bytes()
    # a supervisor sees it among the new reports, marked as from the web
    await report.panel.login("sup")
    listing = await (await report.panel.client.get("/tickets?status=new")).text()
    row = re.search(rf'<tr[^>]*>\s*<td><a href="/tickets/{t.code}">.*?</tr>', listing, re.S)
    assert row and 'data-channel="web"' in row.group(0), listing
    # the ticket's page shows the photo, served with the type found by decoding it
    page = await (await report.panel.client.get(f"/tickets/{t.code}")).text()
    src = f"/tickets/{t.code}/attachments/{a[0].id}"
    assert f'<img src="{src}"' in page and "10.77, 106.7" in page
    got = await report.panel.client.get(src)
    assert got.status == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert await got.read() == photo_bytes()
    assert (
        await report.panel.client.get(f"/tickets/{t.code}/attachments/{'0' * 32}")
    ).status == 404
    # an agency officer who may not see the ticket may not see its photo
    other = await report.panel.new_client()
    try:
        await report.panel.login("officer_q1", other)  # type: ignore[arg-type]
        r = await other.get(src, allow_redirects=False)
        assert r.status in (403, 404)
    finally:
        await other.close()


async def test_consent_defaults_to_no_and_no_pin_stores_no_place(report):
    fields = {k: v for k, v in GOOD.items() if k not in ("publish_consent", "phone", "email")}
    r = await report.client.post(
        "/report", data=form_data({**fields, "started": await started(report)})
    )
    assert r.status == 200, await r.text()
    async with report.panel.ctx.db.session() as s:
        t = await s.scalar(select(Ticket))
    assert t.publish_consent is False and t.latitude is None and t.longitude is None
    assert t.citizen_phone is None and t.reporter_email is None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"description": "x" * 2001}, "description", "at most 2000"),
        ({"description": "ngắn"}, "description", "at least 10"),
        ({"description": ""}, "description", "is required"),
        ({"topic": "weather"}, "topic", "allowed values"),
        ({"topic": ""}, "topic", "is required"),
        ({"phone": "call me"}, "phone", "phone number"),
        ({"email": "not-an-email"}, "email", "email address"),
        ({"publish_consent": "maybe"}, "publish_consent", "allowed values"),
        ({"district": "q99"}, "district", "allowed values"),
        ({"latitude": "north", "longitude": "106.7"}, "latitude", "not valid"),
        ({"latitude": "95", "longitude": "106.7"}, "latitude", "not valid"),
        ({"latitude": "10.7", "longitude": ""}, "longitude", "not valid"),
        ({"address": "", "district": ""}, "address", "pin on the map"),
        ({"description": "a\x00b" * 10}, "description", "not allowed"),
    ],
)
async def test_bad_input_names_the_field_keeps_the_text_and_stores_nothing(
    report, change, field, message
):
    fields = {**GOOD, **change, "started": await started(report)}
    r = await report.client.post(
        "/report?lang=en", data=form_data(fields, ("p.png", photo_bytes("PNG"), "image/png"))
    )
    html = await r.text()
    assert r.status == 422, html
    item = re.search(rf'<li data-field="{field}">(.*?)</li>', html, re.S)
    assert item and message in item.group(1), html
    assert f'id="{field}-error"' in html or field in ("latitude", "longitude")
    # what was typed is still there
    assert "12 Nguyễn Huệ" in html or change.get("address") == ""
    assert await count(report.panel.ctx.db) == (0, 0)
    assert files(report) == []


async def test_the_message_is_vietnamese_by_default(report):
    fields = {**GOOD, "description": "", "started": await started(report)}
    r = await report.client.post("/report", data=form_data(fields))
    html = await r.text()
    assert r.status == 422
    assert re.search(r'<li data-field="description">.*Mô tả|<li data-field="description">', html)
    assert "Vui lòng sửa" in html


@pytest.mark.parametrize(
    ("photo", "status", "message"),
    [
        (("notes.jpg", b"this is a text file, not a photo\n" * 20, "image/jpeg"), 422, "JPEG"),
        (("big.jpg", b"\xff\xd8\xff" + b"0" * 60_000, "image/jpeg"), 413, "at most 0.05 MB"),
        (("cut.png", photo_bytes("PNG")[:60], "image/png"), 422, "JPEG"),
        (("anim.gif", photo_bytes("GIF"), "image/gif"), 422, "JPEG"),
    ],
)
async def test_a_bad_photo_is_refused_and_nothing_stored(make_report, photo, status, message):
    report = await make_report(min_fill_seconds=0, photo_max_bytes=50_000)
    fields = {**GOOD, "started": await started(report)}
    r = await report.client.post("/report?lang=en", data=form_data(fields, photo))
    html = await r.text()
    assert r.status == status, html
    item = re.search(r'<li data-field="photo">(.*?)</li>', html, re.S)
    assert item and message in item.group(1), html
    assert await count(report.panel.ctx.db) == (0, 0)
    assert files(report) == []


async def test_a_photo_sent_as_text_or_twice_is_refused(report):
    fields = {**GOOD, "started": await started(report), "photo": "hello.jpg"}
    r = await report.client.post("/report?lang=en", data=form_data(fields))
    assert r.status == 422 and 'data-field="photo"' in await r.text()
    data = form_data({**GOOD, "started": await started(report)})
    data.add_field("photo", photo_bytes(), filename="a.jpg", content_type="image/jpeg")
    data.add_field("photo", photo_bytes(), filename="b.jpg", content_type="image/jpeg")
    r = await report.client.post("/report?lang=en", data=data)
    assert r.status == 422
    assert await count(report.panel.ctx.db) == (0, 0)


async def test_a_body_over_every_limit_is_refused_unread(make_report):
    report = await make_report(min_fill_seconds=0, photo_max_bytes=20_000)
    r = await report.client.post(
        "/report?lang=en",
        data=b"x" * 400_000,
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert r.status == 413
    assert "Photo" in await r.text()
    assert await count(report.panel.ctx.db) == (0, 0)


async def test_wrong_content_type_is_refused(report):
    r = await report.client.post("/report", data="{}", headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert await count(report.panel.ctx.db) == (0, 0)


async def test_the_honeypot_and_a_too_fast_or_forged_form_are_refused(make_report):
    report = await make_report(min_fill_seconds=5)
    r = await report.client.post(
        "/report?lang=en",
        data=form_data({**GOOD, "started": await report.started(10), "website": "http://spam"}),
    )
    assert r.status == 400 and "filled in by a program" in await r.text()
    fresh = re.search(r'name="started" value="([^"]+)"', await report.page()).group(1)
    r = await report.client.post("/report?lang=en", data=form_data({**GOOD, "started": fresh}))
    html = await r.text()
    assert r.status == 400 and "too quickly" in html
    assert "Nguyễn Huệ" in html  # kept for the second try
    forged = fresh.rpartition(".")[0].split(".")[0] + ".000.deadbeef"
    r = await report.client.post("/report?lang=en", data=form_data({**GOOD, "started": forged}))
    assert r.status == 400 and "expired" in await r.text()
    assert await count(report.panel.ctx.db) == (0, 0)
    # the same form, once enough time has passed, goes through
    r = await report.client.post(
        "/report?lang=en", data=form_data({**GOOD, "started": await report.started(6)})
    )
    assert r.status == 200, await r.text()


async def test_a_flood_from_one_address_is_refused_with_when_to_come_back(make_report):
    report = await make_report(min_fill_seconds=0, rate_limit=3)
    statuses = []
    for _ in range(5):
        r = await report.client.post(
            "/report?lang=en", data=form_data({**GOOD, "started": await started(report)})
        )
        statuses.append(r.status)
    assert statuses == [200, 200, 200, 429, 429]
    assert int(r.headers["Retry-After"]) > 3000
    assert "Too many reports were sent from your connection" in await r.text()
    assert (await count(report.panel.ctx.db))[0] == 3
    # another address behind the trusted proxy is counted apart
    r = await report.client.post(
        "/report?lang=en",
        data=form_data({**GOOD, "started": await started(report)}),
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert r.status == 200


async def test_the_map_is_absent_without_a_tile_server(report):
    html = await report.page()
    assert 'id="map"' not in html and "leaflet" not in html
    assert 'name="latitude"' in html  # the form still takes a pin sent by hand


async def test_the_map_is_there_with_a_tile_server_and_its_images_allowed(make_report):
    report = await make_report(tile_url="http://127.0.0.1:9/tiles/{z}/{x}/{y}.png")
    r = await report.client.get("/report")
    html = await r.text()
    assert 'id="map"' in html and "vendor/leaflet.js?v=" in html
    assert "img-src 'self' data: http://127.0.0.1:9;" in r.headers["Content-Security-Policy"]
    js = await report.client.get(re.search(r'src="([^"]*leaflet.js[^"]*)"', html).group(1))
    assert js.status == 200 and js.content_type == "application/javascript"

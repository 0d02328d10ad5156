"""Filing reports through Open311: keys, fields, limits, and the ticket staff then see.

Through a real server on a loopback port, real Redis, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from accounts.apikeys import ApiKeyError, ApiKeyEvent
from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from open311.models import Open311Request
from tests.open311.conftest import ADMIN, Server, leaks, start_server, stop_server
from tests.open311.spec import errors
from tickets.models import Ticket
from tickets.queries import TicketQueries

GOOD = {
    "service_code": "flooding",
    "description": "Ngập sâu 40 cm trước số 12 Lê Lợi sau mưa",
    "address_string": "12 Lê Lợi, Phường Bến Nghé",
    "email": "reporter.open311@example.org",
    "first_name": "Văn Bình",
    "last_name": "Trần",
    "phone": "0903 111 222",
    "lat": "10.7769",
    "long": "106.7009",
    "media_url": "https://img.example.org/ngap.jpg?size=large&x=1",
    "device_id": "ios-abc",
}


async def new_key(srv: Server, name: str = "Ứng dụng Thành phố") -> str:
    return (await srv.keys.issue(ADMIN, name)).secret


async def tickets(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Ticket)) or 0)


async def test_a_good_post_creates_exactly_one_ticket_staff_see(server: Server):
    key = await new_key(server)
    before = await tickets(server.db)
    status, body, ctype = await server.post("/requests.json", {**GOOD, "api_key": key})
    assert status == 201, body
    assert ctype.startswith("application/json")
    [answer] = json.loads(body)
    number = answer["service_request_id"]
    assert len(number) == 10 and number.isdigit()
    assert answer["service_notice"] == server.settings.open311.service_notice.vi
    assert await tickets(server.db) == before + 1

    # the ticket as staff see it
    staff = Actor(id=None, name="supervisor", role=Role.SUPERVISOR)
    queries = TicketQueries(server.db, server.settings, Clock())
    async with server.db.session() as s:
        ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
        extra = await s.scalar(select(Open311Request).where(Open311Request.ticket_id == ticket.id))
    assert await queries.can_see(staff, ticket)
    assert ticket.channel == "web" and ticket.topic == "flooding" and ticket.domain == "state"
    assert ticket.level == 2 and ticket.status == "new"
    assert ticket.description == GOOD["description"]
    assert ticket.citizen_name == "Trần Văn Bình"
    assert ticket.citizen_phone == "0903111222"
    assert ticket.citizen_address == GOOD["address_string"]
    assert ticket.reporter_email == GOOD["email"]
    assert not ticket.publish_consent
    assert (extra.lat, extra.long) == (10.7769, 106.7009)
    assert extra.media_url == GOOD["media_url"] and extra.device_id == "ios-abc"
    assert extra.client_address == "127.0.0.1"
    # not published (open, no consent): not found, and never in a list
    status, body, _ = await server.get(f"/requests/{number}.json")
    assert status == 404
    status, body, _ = await server.get("/requests.json", service_request_id=number)
    assert json.loads(body) == []

    # the XML form of the answer
    status, body, ctype = await server.post("/requests.xml", {**GOOD, "api_key": key})
    assert status == 201 and ctype.startswith("text/xml")
    root = ET.fromstring(body)
    assert root.tag == "service_requests"
    assert len(root.findtext("request/service_request_id") or "") == 10
    assert root.findtext("request/service_notice") == answer["service_notice"]
    assert await tickets(server.db) == before + 2


async def test_published_location_shown_and_nothing_private(server: Server):
    key = await new_key(server)
    status, body, _ = await server.post("/requests.json", {**GOOD, "api_key": key})
    number = json.loads(body)[0]["service_request_id"]
    # staff complete it and the citizen's consent is recorded: now it is public
    async with server.db.session() as s:
        t = await s.scalar(select(Ticket).where(Ticket.number == number))
        t.status, t.publish_consent, t.closed_at, t.result = "closed", True, t.created_at, "Xong"
    status, body, _ = await server.get(f"/requests/{number}.json")
    assert status == 200, body
    [r] = json.loads(body)
    assert (r["lat"], r["long"]) == (10.7769, 106.7009)
    assert r["address"] is None  # the district only; the address typed is not shown
    status, xml_body, _ = await server.get(f"/requests/{number}.xml")
    assert ET.fromstring(xml_body).findtext("request/lat") == "10.7769"
    for b in (body, xml_body):
        text_ = b.decode()
        for private in ("Trần", "0903111222", GOOD["email"], "Bến Nghé", GOOD["media_url"]):
            assert private not in text_, private
        assert leaks(b) == []


async def test_the_consent_to_publication_is_filed_with_an_attribute(server: Server):
    """attribute[publish_consent]: "yes" is recorded on the ticket, and the report is
    published once staff complete it; "no" or nothing files it without consent."""
    key = await new_key(server)
    filed = {}
    for given in ("yes", " YES ", "no", "", None):
        data = {**GOOD, "api_key": key}
        if given is not None:
            data["attribute[publish_consent]"] = given
        status, body, _ = await server.post("/requests.json", data)
        assert status == 201, body
        filed[given] = json.loads(body)[0]["service_request_id"]
    async with server.db.session() as s:
        consent = {
            given: await s.scalar(select(Ticket.publish_consent).where(Ticket.number == number))
            for given, number in filed.items()
        }
    assert consent == {"yes": True, " YES ": True, "no": False, "": False, None: False}
    # staff complete them all: the consented ones are published, the others not
    async with server.db.session() as s:
        for t in (await s.scalars(select(Ticket).where(Ticket.number.in_(filed.values())))).all():
            t.status, t.closed_at, t.result = "closed", t.created_at, "Đã xử lý"
    for given, number in filed.items():
        status, body, _ = await server.get(f"/requests/{number}.json")
        assert status == (200 if consent[given] else 404), (given, body)
        if status == 200:
            assert leaks(body) == [] and "Trần" not in body.decode()


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_keys_missing_wrong_or_revoked_are_403(server: Server, fmt: str):
    before = await tickets(server.db)
    key = await new_key(server)
    key_id = key.split(".")[0]
    for data in (
        GOOD,
        {**GOOD, "api_key": ""},
        {**GOOD, "api_key": "nonsense"},
        {**GOOD, "api_key": key_id + ".wrong-secret"},
        {**GOOD, "api_key": "000000000000." + key.split(".")[1]},
    ):
        status, body, _ = await server.post(f"/requests.{fmt}", data)
        assert status == 403, body
        [(code, description)] = errors(body, fmt)
        assert code == 403 and "api_key" in description
    status, _, _ = await server.post(f"/requests.{fmt}", {**GOOD, "api_key": key})
    assert status == 201
    await server.keys.revoke(ADMIN, key_id)
    status, body, _ = await server.post(f"/requests.{fmt}", {**GOOD, "api_key": key})
    assert status == 403
    assert await tickets(server.db) == before + 1


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": "potholes"}, 404, "service_code"),
        ({"description": None}, 400, "description"),
        ({"description": "   "}, 400, "description"),
        ({"description": "x" * 4001}, 400, "description"),
        ({"lat": "100"}, 400, "lat"),
        ({"long": "-181"}, 400, "long"),
        ({"lat": "north"}, 400, "lat"),
        ({"lat": "nan"}, 400, "lat"),
        ({"long": None}, 400, "long"),
        ({"email": "not-an-email"}, 400, "email"),
        ({"phone": "call me"}, 400, "phone"),
        ({"media_url": "file:///etc/passwd"}, 400, "media_url"),
        ({"address_id": "12"}, 400, "address_id"),
        ({"status": "closed"}, 400, "status"),
        ({"attribute[depth]": "40"}, 400, "attribute[depth]"),
        ({"attribute[publish_consent]": "maybe"}, 400, "attribute[publish_consent]"),
        ({"attribute[publish_consent][]": "yes"}, 400, "attribute[publish_consent][]"),
        (
            {"service_code": "corruption", "attribute[publish_consent]": "yes"},
            400,
            "attribute[publish_consent]",
        ),
        ({"first_name": "x" * 250}, 400, "first_name"),
        ({"jurisdiction_id": "other.city"}, 404, "jurisdiction_id"),
    ],
)
async def test_bad_fields_are_400_naming_the_field(
    db: Database, tmp_path: Path, change: dict, status: int, field: str
):
    srv = await start_server(db, tmp_path, jurisdiction_id="hcmc.gov.vn")
    try:
        key = await new_key(srv)
        data = {**GOOD, "api_key": key, **change}
        data = {k: v for k, v in data.items() if v is not None}
        before = await tickets(db)
        for fmt in ("json", "xml"):
            code, body, _ = await srv.post(f"/requests.{fmt}", data)
            assert code == status, body
            [(err, description)] = errors(body, fmt)
            assert err == status and description.startswith(field), description
        assert await tickets(db) == before
    finally:
        await stop_server(srv)


async def test_wrong_body_types(server: Server):
    key = await new_key(server)
    before = await tickets(server.db)
    # JSON is not the spec's form encoding
    status, body, _ = await server.post("/requests.json", None, json={**GOOD, "api_key": key})
    assert status == 400 and "form-encoded" in errors(body, "json")[0][1]
    # a field twice
    pairs = [*({**GOOD, "api_key": key}).items(), ("description", "again")]
    status, body, _ = await server.post("/requests.json", pairs)
    assert status == 400 and errors(body, "json")[0][1].startswith("description")
    # too large a body
    status, body, _ = await server.post(
        "/requests.json", {**GOOD, "api_key": key, "description": "x" * 70_000}
    )
    assert status == 413
    # GET-only and POST-only resources
    async with server.http.delete(server.url + "/requests.json") as r:
        assert r.status == 405
        assert (await r.json())[0]["code"] == 405
    assert await tickets(server.db) == before


async def test_a_flood_is_refused_past_the_limits(db: Database, tmp_path: Path):
    srv = await start_server(db, tmp_path, posts_per_hour_per_key=3, posts_per_hour_per_address=5)
    try:
        one, two = await new_key(srv, "one"), await new_key(srv, "two")
        before = await tickets(db)
        codes = [(await srv.post("/requests.json", {**GOOD, "api_key": one}))[0] for _ in range(5)]
        assert codes == [201, 201, 201, 429, 429]
        # another key from the same address: the address's own limit (5 an hour) is near
        status, _, _ = await srv.post("/requests.json", {**GOOD, "api_key": two})
        assert status == 429  # 6th from this address within the hour
        async with srv.http.post(srv.url + "/requests.xml", data={**GOOD, "api_key": two}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
            [(code, description)] = errors(await r.read(), "xml")
            assert code == 429 and "too many" in description
        assert await tickets(db) == before + 3
    finally:
        await stop_server(srv)


async def test_reads_are_limited_per_address(db: Database, tmp_path: Path):
    srv = await start_server(db, tmp_path, requests_per_minute=5)
    try:
        codes = [(await srv.get("/services.json"))[0] for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
    finally:
        await stop_server(srv)


async def test_key_service_audit_and_rules(server: Server):
    issued = await server.keys.issue(ADMIN, "  Cổng dịch vụ công  ", address="10.0.0.5")
    key = issued.key
    assert key.name == "Cổng dịch vụ công" and key.active
    assert issued.secret.startswith(key.key_id + ".")
    assert issued.secret.split(".")[1] not in key.secret_hash
    assert (await server.keys.authenticate(issued.secret)).id == key.id
    assert (await server.keys.list())[0].last_used_at is not None
    with pytest.raises(ApiKeyError) as e:
        await server.keys.issue(Actor(id=None, name="sup", role=Role.SUPERVISOR), "x")
    assert e.value.field == "actor"
    with pytest.raises(ApiKeyError) as e:
        await server.keys.issue(ADMIN, " ")
    assert e.value.field == "name"
    await server.keys.revoke(ADMIN, key.key_id)
    with pytest.raises(ApiKeyError):
        await server.keys.revoke(ADMIN, key.key_id)
    assert await server.keys.authenticate(issued.secret) is None
    events = await server.keys.events(key.id)
    assert [(e.action, e.actor_name) for e in events] == [
        ("issued", "test admin"),
        ("revoked", "test admin"),
    ]
    assert events[0].address == "10.0.0.5"
    # the audit log cannot be changed, even with SQL
    with pytest.raises(Exception, match="append-only"):
        async with server.db.session() as s:
            await s.execute(text("UPDATE api_key_events SET actor_name = 'someone else'"))
    with pytest.raises(Exception, match="append-only"):
        async with server.db.session() as s:
            await s.execute(text("DELETE FROM api_key_events"))
    async with server.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(ApiKeyEvent)) == 2

"""Open311 reading, through a real server (loopback port), real Redis, both databases."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest

from tests.open311.conftest import SECRET_MARKERS, Server, leaks
from tests.open311.spec import REQUEST_FIELDS, SERVICE_FIELDS, errors, same, scalar, xml_list
from tickets.numbers import new_number


async def both(srv: Server, path: str, root: str, item: str, **params: str) -> list[dict]:
    sj, bj, tj = await srv.get(f"{path}.json", **params)
    sx, bx, tx = await srv.get(f"{path}.xml", **params)
    assert (sj, sx) == (200, 200), (bj, bx)
    assert tj.startswith("application/json") and "utf-8" in tj
    assert tx.startswith("text/xml") and "utf-8" in tx
    return same(bj, bx, root, item)


async def refused(srv: Server, path: str, http: int, words: str, **params: str) -> None:
    """Both formats answer ``http`` with the spec's error list naming ``words``."""
    for fmt in ("json", "xml"):
        code, body, _ = await srv.get(f"{path}.{fmt}", **params)
        assert code == http, (fmt, body)
        [(err_code, description)] = errors(body, fmt)
        assert err_code == http and words in description, description


async def test_services_one_per_topic_in_both_formats(server: Server):
    services = await both(server, "/services", "services", "service")
    topics = server.settings.tickets.topics
    assert [s["service_code"] for s in services] == [t.id for t in topics]
    never = set(server.settings.tickets.never_public_topics)
    assert never == {"complaints", "corruption"}
    for s, t in zip(services, topics, strict=True):
        assert tuple(s) == SERVICE_FIELDS
        assert s["service_name"] == t.name.vi
        # metadata: the consent attribute, on the services whose reports may be published
        assert s["metadata"] is (t.id not in never) and s["type"] == "realtime"
        assert t.name.vi in s["keywords"]
        assert s["group"] == "Quản lý Nhà nước"


CONSENT_FIELDS = (
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
)


async def test_service_definition_and_unknown_code(server: Server):
    status, body, _ = await server.get("/services/flooding.json")
    assert status == 200
    d = json.loads(body)
    assert d["service_code"] == "flooding"
    [consent] = d["attributes"]
    assert tuple(consent) == CONSENT_FIELDS
    assert consent["code"] == "publish_consent" and consent["variable"] is True
    assert consent["datatype"] == "singlevaluelist" and consent["required"] is False
    assert consent["order"] == 1
    assert [v["key"] for v in consent["values"]] == ["yes", "no"]
    assert "công khai" in consent["description"] and "published" in consent["description"]
    # the XML holds the same, in the spec's elements
    status, body, _ = await server.get("/services/flooding.xml")
    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "flooding"
    [attribute] = root.findall("attributes/attribute")
    for name in CONSENT_FIELDS[:-1]:
        assert attribute.findtext(name) == scalar(consent[name]), name
    assert [(v.findtext("key"), v.findtext("name")) for v in attribute.findall("values/value")] == [
        (v["key"], v["name"]) for v in consent["values"]
    ]
    # a topic never published asks for no consent
    for fmt in ("json", "xml"):
        status, body, _ = await server.get(f"/services/corruption.{fmt}")
        assert status == 200
        if fmt == "json":
            assert json.loads(body) == {"service_code": "corruption", "attributes": []}
        else:
            root = ET.fromstring(body)
            assert root.find("attributes") is not None and len(root.find("attributes")) == 0
    await refused(server, "/services/potholes", 404, "service_code")


async def test_discovery_names_the_endpoint(server: Server):
    status, body, _ = await server.get("/discovery.json")
    assert status == 200
    d = json.loads(body)
    [endpoint] = d["endpoints"]
    assert endpoint["url"] == server.url
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    status, body, _ = await server.get("/discovery.xml")
    root = ET.fromstring(body)
    assert root.findtext("endpoints/endpoint/url") == server.url
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == endpoint[
        "formats"
    ]
    assert root.findtext("contact") == d["contact"]


async def test_requests_default_to_the_last_90_days_of_published_ones(server: Server):
    got = await both(server, "/requests", "service_requests", "request")
    seeded = server.seeded
    # newest first; the 120-day-old one is outside the default window
    assert [r["service_request_id"] for r in got] == [seeded.of("pub"), seeded.of("pub_traffic")]
    r = got[0]
    assert tuple(r) == REQUEST_FIELDS  # no lat/long: none stored
    assert r["status"] == "closed"
    assert r["status_notes"] == "Đã nạo vét cống"
    assert r["service_code"] == "flooding" and r["service_name"] == "Ngập nước"
    assert r["description"] == "Ngập nước đường Nguyễn Huệ <&> (pub)"
    assert r["agency_responsible"] == seeded.agency
    assert r["address"] == "Quận 1"
    assert r["expected_datetime"] is None
    requested = datetime.fromisoformat(r["requested_datetime"])
    updated = datetime.fromisoformat(r["updated_datetime"])
    assert r["requested_datetime"].endswith("+07:00")  # the city's time, W3C with offset
    assert updated - requested == timedelta(hours=5)


async def test_every_filter(server: Server):
    seeded = server.seeded
    ids = [seeded.of(k) for k in ("pub_old", "party", "open", "pub")]

    async def numbers(**params: str) -> list[str]:
        got = await both(server, "/requests", "service_requests", "request", **params)
        return [r["service_request_id"] for r in got]

    # ids override the window; unpublished ones are simply not there
    assert await numbers(service_request_id=",".join(ids)) == [seeded.of("pub"), ids[0]]
    assert await numbers(service_request_id=f" {ids[0]} ") == [ids[0]]
    assert await numbers(service_code="traffic") == [seeded.of("pub_traffic")]
    assert await numbers(service_code="traffic,flooding") == [
        seeded.of("pub"),
        seeded.of("pub_traffic"),
    ]
    assert await numbers(service_code="corruption") == []
    now = datetime.now(server.settings.tz)
    assert await numbers(start_date=(now - timedelta(days=200)).isoformat()) == [
        seeded.of("pub"),
        seeded.of("pub_traffic"),
        seeded.of("pub_old"),
    ]
    assert await numbers(end_date=(now - timedelta(days=5)).isoformat()) == [
        seeded.of("pub_traffic"),
        seeded.of("pub_old"),
    ]
    assert await numbers(
        start_date=(now - timedelta(days=15)).strftime("%Y-%m-%d"),
        end_date=(now - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ) == [seeded.of("pub_traffic")]
    # a "+" sent unencoded arrives as a space: still understood
    plus = (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%S") + " 07:00"
    assert await numbers(start_date=plus) == [seeded.of("pub")]
    assert await numbers(status="closed") == [seeded.of("pub"), seeded.of("pub_traffic")]
    assert await numbers(status="open,closed") == [seeded.of("pub"), seeded.of("pub_traffic")]
    # only completed reports are ever published
    assert await numbers(status="open") == []


async def test_filter_errors(server: Server):
    await refused(server, "/requests", 400, "start_date", start_date="yesterday")
    await refused(server, "/requests", 400, "start_date", start_date="2026-13-01")
    await refused(server, "/requests", 400, "end_date", end_date="2026-12-01T08:00:00")
    await refused(server, "/requests", 400, "end_date", end_date="2026-02-30")
    await refused(
        server, "/requests", 400, "end_date", start_date="2026-12-02", end_date="2026-12-01"
    )
    await refused(server, "/requests", 400, "status", status="pending")
    await refused(server, "/requests", 404, "service_code", service_code="flooding,potholes")
    await refused(server, "/requests", 400, "service_request_id", service_request_id="12345")
    good = new_number()
    bad_check = good[:-1] + str((int(good[-1]) + 1) % 10)  # Damm catches any one wrong digit
    await refused(server, "/requests", 400, "service_request_id", service_request_id=bad_check)


@pytest.mark.parametrize("kind", ["party", "denunciation", "corruption", "open", "no_consent"])
async def test_an_unpublished_request_is_not_found(server: Server, kind: str):
    await refused(server, f"/requests/{server.seeded.of(kind)}", 404, "service_request_id")


async def test_one_request_and_unknown_ids(server: Server):
    number = server.seeded.of("pub_old")
    [r] = await both(server, f"/requests/{number}", "service_requests", "request")
    assert r["service_request_id"] == number and tuple(r) == REQUEST_FIELDS
    await refused(server, "/requests/not-a-number", 404, "service_request_id")
    await refused(server, f"/requests/{new_number()}", 404, "service_request_id")
    await refused(server, "/nothing-here", 404, "no such resource")


async def test_no_answer_ever_holds_private_data(server: Server):
    """Fails if any answer holds a citizen's name, phone, email or address, or any
    unpublished report (Party building, denunciation, corruption, still open, no
    consent, withheld): every endpoint, both formats, every id, wide filters."""
    all_ids = ",".join(server.seeded.numbers)
    wide = {"start_date": "2000-01-01", "end_date": "2100-01-01"}
    for fmt in ("json", "xml"):
        await server.get(f"/discovery.{fmt}")
        await server.get(f"/services.{fmt}")
        for t in server.settings.tickets.topics:
            await server.get(f"/services/{t.id}.{fmt}")
            await server.get(f"/requests.{fmt}", service_code=t.id, **wide)
        await server.get(f"/requests.{fmt}")
        await server.get(f"/requests.{fmt}", **wide)
        await server.get(f"/requests.{fmt}", status="open,closed", **wide)
        await server.get(f"/requests.{fmt}", service_request_id=all_ids)
        for number in server.seeded.numbers:
            await server.get(f"/requests/{number}.{fmt}")
    await server.get("/openapi.json")
    assert len(server.bodies) > 60
    # the published ones were there: the check below looked at real answers
    published = [b for b in server.bodies if server.seeded.of("pub").encode() in b]
    assert len(published) > 5
    found = {k for body in server.bodies for k in leaks(body)}
    assert found == set(), found
    # and a marker is caught when it is there (the check can fail)
    assert leaks(json.dumps({"x": SECRET_MARKERS["phone"]}).encode()) == ["phone"]
    assert xml_list(b'<?xml version="1.0"?><a><b><c>1</c></b></a>', "a", "b") == [{"c": "1"}]

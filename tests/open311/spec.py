"""Reading GeoReport v2 answers back: XML to the same shape as JSON, to compare them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

# The fields of a service request in the spec (GET requests), in its order.
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "media_url",
)
SERVICE_FIELDS = (
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
)


def scalar(value: Any) -> str | None:
    """A JSON value as XML would hold it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flat(items: list[dict[str, Any]]) -> list[dict[str, str | None]]:
    return [{k: scalar(v) for k, v in item.items()} for item in items]


def xml_list(body: bytes, root: str, item: str) -> list[dict[str, str | None]]:
    """``<root><item><a>..</a>...</item>...</root>`` as a list of dicts of texts."""
    assert body.startswith(b"<?xml"), body[:60]
    tree = ET.fromstring(body)
    assert tree.tag == root, tree.tag
    out = []
    for el in tree:
        assert el.tag == item, el.tag
        out.append({child.tag: child.text for child in el})
    return out


def same(json_body: bytes, xml_body: bytes, root: str, item: str) -> list[dict[str, Any]]:
    """The JSON list, after checking the XML holds exactly the same data."""
    data = json.loads(json_body)
    assert flat(data) == xml_list(xml_body, root, item)
    return data  # type: ignore[no-any-return]


def errors(body: bytes, fmt: str) -> list[tuple[int, str]]:
    """The spec's error list, from either format."""
    if fmt == "json":
        return [(e["code"], e["description"]) for e in json.loads(body)]
    return [
        (int(e["code"] or 0), e["description"] or "") for e in xml_list(body, "errors", "error")
    ]

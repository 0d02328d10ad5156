"""The two formats of GeoReport v2: JSON and XML, from the same data.

XML is built with the standard library's ElementTree, which escapes text
itself.  A list is an element of the list's name holding one element per
item, named as the spec names them (``services``/``service``,
``service_requests``/``request``, ``endpoints``/``endpoint``, ...); ``None``
is an empty element, booleans are ``true``/``false``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from aiohttp import web

JSON_TYPE = "application/json"
XML_TYPE = "text/xml"
FORMATS = ("json", "xml")
# the element of one item of a list, by the list's element
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for name, v in value.items():
            _fill(ET.SubElement(element, name), v)
    elif isinstance(value, list):
        item = ITEMS[element.tag]
        for v in value:
            _fill(ET.SubElement(element, item), v)
    else:
        element.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    """``value`` (a list or a dict) as an XML document whose root element is ``root``."""
    element = ET.Element(root)
    _fill(element, value)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def respond(fmt: str, root: str, value: Any, status: int = 200) -> web.Response:
    """The answer in format ``fmt`` (json or xml); ``root`` names the XML root element."""
    if fmt == "xml":
        return web.Response(
            body=to_xml(root, value), status=status, content_type=XML_TYPE, charset="utf-8"
        )
    return web.Response(
        text=json.dumps(value, ensure_ascii=False),
        status=status,
        content_type=JSON_TYPE,
        charset="utf-8",
    )


def error_response(fmt: str, status: int, description: str) -> web.Response:
    """The spec's error list: ``[{"code": ..., "description": ...}]`` or
    ``<errors><error><code/><description/></error></errors>``."""
    return respond(fmt, "errors", [{"code": status, "description": description}], status)

"""The sub-app's OpenAPI document: valid, served by the running server, and listing
exactly the routes the sub-app answers; the panel's document links to it."""

from __future__ import annotations

import json
import re

from openapi_spec_validator import validate

from open311.app import make_open311_app
from panel.api.operations import OPEN311_DOCUMENT, document
from tests.open311.conftest import Server


async def test_the_document_is_valid_and_matches_the_routes(server: Server):
    status, body, _ = await server.get("/openapi.json")
    assert status == 200
    doc = json.loads(body)
    validate(doc)
    assert doc["servers"] == [{"url": server.url}]
    documented = {
        (method.upper(), path.replace("{format}", "{fmt}"))
        for path, item in doc["paths"].items()
        for method in item
    }
    app = make_open311_app(server.settings, server.db, server.redis, server.prefix)
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        if path == "/openapi.json":
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)
        path = path.replace("{code}", "{service_code}").replace("{id}", "{service_request_id}")
        served.add((route.method, path))
    assert documented == served


def test_the_panel_document_links_to_it():
    doc = document()
    assert doc["externalDocs"]["url"] == OPEN311_DOCUMENT == "/open311/v2/openapi.json"
    validate(doc)

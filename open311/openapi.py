"""The OpenAPI 3.1 document of the Open311 sub-app (served at ``openapi.json``).

A document of its own rather than paths in the panel's: the panel's API is the
staff's (JSON bodies, session or bearer sign-in, the panel's host), Open311 is
the public's (form-encoded reports, an admin-issued ``api_key`` in the body,
two formats by extension, served by the public web app).  The panel's
document links here.
"""

from __future__ import annotations

from typing import Any

_FMT = {
    "name": "format",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["json", "xml"]},
    "description": "json or xml (the extension of the path)",
}
_ERRORS = {
    "description": "The spec's error list: [{code, description}] (XML: <errors><error>).",
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Errors"}},
        "text/xml": {"schema": {"type": "string"}},
    },
}


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
            "text/xml": {"schema": {"type": "string"}},
        },
    }


def _q(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", **schema},
        "description": description,
    }


def document(server_url: str) -> dict[str, Any]:
    """The document, with ``server_url`` (where the sub-app is mounted) as its server."""
    err = {str(c): {"$ref": "#/components/responses/Errors"} for c in (400, 404, 429)}
    text = {"type": ["string", "null"]}
    request_props = {
        name: text
        for name in (
            "status_notes",
            "service_notice",
            "expected_datetime",
            "address",
            "address_id",
            "zipcode",
            "media_url",
        )
    } | {
        "service_request_id": {"type": "string", "pattern": "^[1-9][0-9]{9}$"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "service_name": {"type": "string"},
        "service_code": {"type": "string"},
        "description": {"type": "string"},
        "agency_responsible": {"type": "string"},
        "requested_datetime": {"type": "string", "format": "date-time"},
        "updated_datetime": {"type": "string", "format": "date-time"},
        "lat": {"type": "number"},
        "long": {"type": "number"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hotline Open311 GeoReport v2",
            "version": "2",
            "description": "Published citizens' reports (completed, with the citizen's "
            "consent; never Party-building, denunciation or corruption reports, never the "
            "citizen's name, phone, email or address), and new reports with an API key. "
            "See http://wiki.open311.org/GeoReport_v2.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/discovery.{format}": {
                "get": {
                    "summary": "Service discovery",
                    "parameters": [_FMT],
                    "responses": {"200": _ok("Endpoints and formats.", "Discovery")},
                }
            },
            "/services.{format}": {
                "get": {
                    "summary": "Service list (one per topic)",
                    "parameters": [_FMT, _q("jurisdiction_id", "optional")],
                    "responses": {"200": _ok("The services.", "Services"), **err},
                }
            },
            "/services/{service_code}.{format}": {
                "get": {
                    "summary": "Service definition: the attribute publish_consent "
                    "(services whose reports may be published; metadata is true)",
                    "parameters": [
                        {
                            "name": "service_code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        _FMT,
                    ],
                    "responses": {"200": _ok("The definition.", "Definition"), **err},
                }
            },
            "/requests.{format}": {
                "get": {
                    "summary": "Published service requests (newest first, at most 1000)",
                    "parameters": [
                        _FMT,
                        _q("service_request_id", "comma-separated ids; overrides the rest"),
                        _q("service_code", "comma-separated service codes"),
                        _q("start_date", "W3C date-time; default 90 days ago"),
                        _q("end_date", "W3C date-time"),
                        _q("status", "open, closed or both, comma-separated"),
                        _q("jurisdiction_id", "optional"),
                    ],
                    "responses": {"200": _ok("The requests.", "Requests"), **err},
                },
                "post": {
                    "summary": "File a service request (needs an api_key)",
                    "parameters": [_FMT],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {"$ref": "#/components/schemas/NewRequest"}
                            }
                        },
                    },
                    "responses": {
                        "201": _ok("The new request's id and notice.", "Created"),
                        "403": {"$ref": "#/components/responses/Errors"},
                        **err,
                    },
                },
            },
            "/requests/{service_request_id}.{format}": {
                "get": {
                    "summary": "One published service request",
                    "parameters": [
                        {
                            "name": "service_request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        _FMT,
                    ],
                    "responses": {"200": _ok("A list of one request.", "Requests"), **err},
                }
            },
        },
        "components": {
            "responses": {"Errors": _ERRORS},
            "schemas": {
                "Errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "description"],
                        "properties": {
                            "code": {"type": "integer"},
                            "description": {"type": "string"},
                        },
                    },
                },
                "Discovery": {"type": "object"},
                "Services": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "service_code": {"type": "string"},
                            "service_name": {"type": "string"},
                            "description": {"type": "string"},
                            "metadata": {"type": "boolean"},
                            "type": {"type": "string", "enum": ["realtime"]},
                            "keywords": {"type": "string"},
                            "group": {"type": "string"},
                        },
                    },
                },
                "Definition": {
                    "type": "object",
                    "properties": {
                        "service_code": {"type": "string"},
                        "attributes": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Attribute"},
                        },
                    },
                },
                "Attribute": {
                    "type": "object",
                    "description": "A GeoReport v2 service attribute; sent on POST as "
                    "attribute[code]=key.",
                    "properties": {
                        "variable": {"type": "boolean"},
                        "code": {"type": "string", "enum": ["publish_consent"]},
                        "datatype": {"type": "string", "enum": ["singlevaluelist"]},
                        "required": {"type": "boolean"},
                        "datatype_description": {"type": ["string", "null"]},
                        "order": {"type": "integer"},
                        "description": {"type": "string"},
                        "values": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "key": {"type": "string"},
                                    "name": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Requests": {
                    "type": "array",
                    "items": {"type": "object", "properties": request_props},
                },
                "NewRequest": {
                    "type": "object",
                    "required": ["api_key", "service_code", "description"],
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "api_key",
                            "jurisdiction_id",
                            "service_code",
                            "description",
                            "lat",
                            "long",
                            "address_string",
                            "email",
                            "device_id",
                            "account_id",
                            "first_name",
                            "last_name",
                            "phone",
                            "media_url",
                        )
                    }
                    | {
                        "attribute[publish_consent]": {
                            "type": "string",
                            "enum": ["yes", "no"],
                            "default": "no",
                            "description": "The citizen agrees that the report may be "
                            "published on the city's portal once completed (never with their "
                            "name, phone, email or address). Only for services whose definition "
                            "has this attribute; not given: no consent.",
                        }
                    },
                },
                "Created": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "service_request_id": {"type": "string"},
                            "service_notice": {"type": "string"},
                            "account_id": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        },
    }

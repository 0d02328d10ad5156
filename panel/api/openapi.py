"""The OpenAPI 3.1 document of the JSON API, generated from the API's one list of operations.

``panel.api.operations.OPERATIONS`` declares each operation once: method, path, handler (whose
``@require`` says who may call it), request and answer models.  The routes are registered from
that list and this module turns the same list into the document, so the two cannot drift.
Bodies are described by the pydantic models' own JSON Schema (OpenAPI 3.1 speaks JSON Schema
2020-12), with every definition moved under ``components/schemas``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from panel.sessions import COOKIE

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REF = "#/components/schemas/{model}"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# Path parameters by name: the route's regular expression and the parameter's schema.
PATH_PARAMS: dict[str, tuple[str | None, dict[str, Any], str]] = {
    "extension": (
        r"\d{2,8}",
        {"type": "string", "pattern": r"^\d{2,8}$", "examples": ["1001"]},
        "an agent's phone extension",
    ),
    "id": (r"\d+", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "numeric id"),
    "code": (
        None,
        {"type": "string", "examples": ["K7M-4QX8", "959 582 619 1"]},
        "the ticket's tracking code or number (spaces and dashes allowed)",
    ),
    "attachment": (
        r"[0-9a-f]{32}",
        {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "a ticket's file's id",
    ),
}
_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Param:
    """A query parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One operation of the API, declared once for both the router and the document."""

    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str  # OpenAPI style: /api/v1/tickets/{code}
    handler: Handler
    summary: str
    answer: str  # what the success answer holds
    tag: str
    status: int = 200
    body: type[BaseModel] | None = None
    returns: type[BaseModel] | None = None
    query: tuple[Param, ...] = ()
    # Error statuses beyond those the rest of the declaration implies.
    errors: tuple[int, ...] = ()
    # The body may be left out (then it is taken as {}).
    body_optional: bool = False
    description: str = ""
    # A multipart/form-data body (files) instead of JSON: its JSON Schema.
    form: dict[str, Any] | None = None
    # The answer is a file, of the type stored with it, rather than JSON.
    file: bool = False

    @property
    def public(self) -> bool:
        return bool(getattr(self.handler, "public", False))

    @property
    def roles(self) -> list[str]:
        return sorted(str(r) for r in getattr(self.handler, "roles", ()))

    @property
    def route_path(self) -> str:
        """The path as aiohttp's router takes it (numeric ids only match digits)."""

        def sub(m: re.Match[str]) -> str:
            pattern = PATH_PARAMS.get(m.group(1), (None,))[0]
            return f"{{{m.group(1)}:{pattern}}}" if pattern else m.group(0)

        return _PARAM.sub(sub, self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    def error_statuses(self) -> list[int]:
        found = set(self.errors)
        if not self.public:
            found |= {401, 403}
        if self.method in UNSAFE and not self.public:
            found.add(403)  # CSRF
        if _PARAM.search(self.path):
            found.add(404)
        if "{code}" in self.path or self.query:
            found.add(422)  # a number with a wrong check digit; a query parameter refused
        if self.body is not None:
            # 409: a version changed meanwhile, or a field conflicts with what is stored
            found |= {400, 409, 413, 415, 422}
        if self.form is not None:
            # 400: a body that cannot be read as multipart
            found |= {400, 413, 415, 422}
        return sorted(found)


# -- error shapes -----------------------------------------------------------------


class Error(BaseModel):
    """Every error answer: a message, sometimes with details."""

    error: str


class UnauthorizedError(Error):
    """Not signed in; signing in, ``field`` is ``otp`` when the account's two-step
    sign-in needs a code from the authenticator app, or the one sent is wrong or used."""

    field: str | None = None


class InvalidInputError(Error):
    """Input refused: each field named with what is wrong with it, and its label to show
    (both in the session's language)."""

    fields: dict[str, str]
    labels: dict[str, str] = {}


class ConflictError(Error):
    """Someone changed the row meanwhile (``current_version``), the status forbids the
    action (``detail``), or a field conflicts with what is stored (``fields``: a code
    already used, an agency that does not exist or no longer is active)."""

    current_version: int | None = None
    detail: str | None = None
    fields: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class LockedError(Error):
    """Too many failed sign-ins: the account is locked until ``locked_until``, or
    this client address is refused until ``blocked_until`` (Retry-After says when)."""

    locked_until: str | None = None
    blocked_until: str | None = None


ERRORS: dict[int, tuple[str, str, type[BaseModel]]] = {
    400: ("BadRequest", "The body is not a JSON object (or not valid JSON).", Error),
    401: (
        "Unauthorized",
        "Not signed in, or the session has expired; signing in, a wrong user name or "
        "password, or (`field: otp`) a code missing, wrong or already used.",
        UnauthorizedError,
    ),
    403: (
        "Forbidden",
        "Not allowed for your role or agency, a cookie session without X-CSRF-Token, "
        "(signing in) the account is deactivated, or two-step sign-in must be set up "
        "first (`panel.totp_required`).",
        Error,
    ),
    404: ("NotFound", "No such ticket, agency, user or call (of yours).", Error),
    409: (
        "Conflict",
        "Changed by someone else meanwhile (reload: current_version), not possible in the "
        "ticket's status, or a field conflicts with what is stored (fields).",
        ConflictError,
    ),
    413: ("PayloadTooLarge", "The body is larger than the panel accepts.", Error),
    415: ("UnsupportedMediaType", "The body must be sent as application/json.", Error),
    422: (
        "InvalidInput",
        "Input refused; `fields` names each field and the problem.",
        InvalidInputError,
    ),
    429: (
        "TooManyRequests",
        "Too many failed sign-ins; try again after locked_until (the account) or "
        "blocked_until (this address).",
        LockedError,
    ),
    503: ("Unavailable", "The telephone system is not reachable from the panel.", Error),
}


# -- the document -------------------------------------------------------------------


def build_document(
    operations: Iterable[Operation], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``operations``."""
    ops = list(operations)
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for op in ops:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.returns is not None:
            models.append((op.returns, "serialization"))
    models += [(cls, "serialization") for _n, _d, cls in ERRORS.values()]
    models = list(dict.fromkeys(models))
    refs, defs = models_json_schema(models, ref_template=REF)
    schemas: dict[str, Any] = dict(sorted(defs.get("$defs", {}).items()))
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            if "default" in prop and prop["default"] is None and not _takes_null(prop):
                del prop["default"]  # "may be left out", not "may be null"

    responses: dict[str, Any] = {}
    for _status, (name, desc, cls) in sorted(ERRORS.items()):
        responses[name] = {
            "description": desc,
            "content": {"application/json": {"schema": refs[(cls, "serialization")]}},
        }

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "x-roles": ["public"] if op.public else op.roles,
        }
        who = "Anyone." if op.public else "Roles: " + ", ".join(op.roles) + "."
        item["description"] = f"{op.description}\n\n{who}".strip()
        if op.public:
            item["security"] = []
        elif op.method in UNSAFE:
            item["security"] = [{"bearer": []}, {"cookie": [], "csrf": []}]
        else:
            item["security"] = [{"bearer": []}, {"cookie": []}]
        params = [_path_param(name) for name in _PARAM.findall(op.path)]
        params += [
            {"name": p.name, "in": "query", "required": False, "schema": p.schema}
            | ({"description": p.description} if p.description else {})
            for p in op.query
        ]
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {
                "required": not op.body_optional,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        if op.form is not None:
            item["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": op.form}},
            }
        ok: dict[str, Any] = {"description": op.answer}
        if op.file:
            ok["content"] = {"*/*": {"schema": {}}}
        if op.returns is not None:
            ok["content"] = {"application/json": {"schema": refs[(op.returns, "serialization")]}}
            returned = schemas[refs[(op.returns, "serialization")]["$ref"].rsplit("/", 1)[1]]
            links = _links(op, set(returned.get("properties", {})), ops)
            if links:
                ok["links"] = links
        answers: dict[str, Any] = {str(op.status): ok}
        for status in op.error_statuses():
            answers[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
        item["responses"] = answers
        paths.setdefault(op.path, {})[op.method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token answered by POST /api/v1/session.",
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": "The panel's session cookie (signed in on /login).",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The session's CSRF token (GET /api/v1/me), required with the "
                    "cookie on POST, PATCH and DELETE.",
                },
            },
        },
    }


def _collection(path: str) -> str:
    """The collection an operation's path is in: /api/v1/tickets for .../tickets/{code}/close."""
    return path.split("/{", 1)[0]


def _links(op: Operation, returned: set[str], ops: list[Operation]) -> dict[str, Any]:
    """From a resource in an answer to what can be done with it next.

    An answer that holds a resource of a collection (a ticket, by its ``code``;
    an agency or a user, by its ``id``) links to every operation on one member
    of that collection, the path parameter taken from the answer's body: a
    client follows a created ticket through its actions without building
    paths.
    """
    links: dict[str, Any] = {}
    for target in ops:
        params = _PARAM.findall(target.path)
        if (
            not params
            or target is op
            or _collection(target.path) != _collection(op.path)
            or any(name not in returned for name in params)
        ):
            continue
        links[target.operation_id] = {
            "operationId": target.operation_id,
            "parameters": {name: f"$response.body#/{name}" for name in params},
            "description": target.summary,
        }
    return links


def _takes_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_takes_null(s) for s in schema.get("anyOf", ()))


def _path_param(name: str) -> dict[str, Any]:
    _pattern, schema, description = PATH_PARAMS.get(name, (None, {"type": "string"}, ""))
    return {"name": name, "in": "path", "required": True, "schema": schema} | (
        {"description": description} if description else {}
    )


# -- the human-readable list ----------------------------------------------------------


def docs_page(document: dict[str, Any]) -> str:
    """A plain HTML page listing the operations of ``document`` (no script, no style)."""
    e = html.escape
    info = document["info"]
    rows = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {})
            body_ref = body.get("schema", {}).get("$ref", "") or " ".join(content)
            ok = next(iter(op["responses"].items()))
            rows.append(
                "<tr>"
                f"<td><code>{e(method.upper())}</code></td>"
                f"<td><code>{e(path)}</code></td>"
                f"<td>{e(op['summary'])}</td>"
                f"<td>{e(', '.join(op['x-roles']))}</td>"
                f"<td>{e(body_ref.rsplit('/', 1)[-1])}</td>"
                f"<td>{e(ok[0])}: {e(ok[1]['description'])}</td>"
                "</tr>"
            )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(info['title'])}</title></head><body>\n"
        f"<h1>{e(info['title'])} {e(info['version'])}</h1>\n"
        f"<p>{e(info.get('description', ''))}</p>\n"
        '<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a>'
        " (OpenAPI 3.1).</p>\n"
        "<table>\n<thead><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th>"
        "<th>Body</th><th>Answer</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n</body></html>\n"
    )

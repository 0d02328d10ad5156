"""The OpenAPI document is the API's contract, enforced: what it forbids, the server refuses.

Every operation's query parameters and JSON body are checked against the very schemas the
document publishes (JSON Schema 2020-12, with ``jsonschema``) before its handler runs, so a
request the document forbids can never be accepted by a lenient handler (a level sent as
"2", a flag sent as "yes", an id of 0).  The other direction, that the document allows
nothing the domain then refuses, is the document's own job (the constraints on
``tickets.schemas`` and ``panel.api.schemas``), tested with schemathesis.

A refusal is a 422 naming each field with the same messages as the domain's own checks.
Checking runs only once the caller is let in (signed in with a role that may call the
operation), so an intruder gets 401 / 403 and learns nothing of the schema.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from pydantic import TypeAdapter

from panel.dates import parse_day
from panel.keys import ACTOR
from panel.security import json_error
from tickets.exceptions import (
    AGENCY_CODE,
    BAD_CHARACTER,
    EMAIL,
    INVALID,
    NOT_ACCEPTED,
    NOT_ALLOWED,
    PHONE,
    REQUIRED,
    TOO_LONG,
    FieldError,
    InvalidInput,
)
from tickets.schemas import AGENCY_CODE_PATTERN, EMAIL_PATTERN, PHONE_PATTERN

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Reader = Callable[..., Awaitable[dict[str, Any]]]

_INTEGER = re.compile(r"-?[0-9]+")

# What a field of a known shape says when it does not have it (as the domain's checks do).
PATTERN_MESSAGES = {PHONE_PATTERN: PHONE, EMAIL_PATTERN: EMAIL, AGENCY_CODE_PATTERN: AGENCY_CODE}

# The formats the document names, checked as the server reads them: a day as
# panel.dates.parse_day does, a moment as pydantic does (a time without an offset is
# taken as local time by the handlers that say so).
FORMATS = FormatChecker(formats=())
_MOMENT: TypeAdapter[datetime] = TypeAdapter(datetime)


@FORMATS.checks("date", raises=ValueError)
def _is_day(value: object) -> bool:
    return not isinstance(value, str) or bool(parse_day(value))


@FORMATS.checks("date-time", raises=ValueError)
def _is_moment(value: object) -> bool:
    return not isinstance(value, str) or bool(_MOMENT.validate_python(value))


class Contract:
    """The checks of one operation, compiled from its entry in the document."""

    def __init__(self, item: dict[str, Any], components: dict[str, Any]) -> None:
        self.query: dict[str, dict[str, Any]] = {}
        self.path: dict[str, Draft202012Validator] = {}
        properties: dict[str, Any] = {}
        for param in item.get("parameters", ()):
            if param["in"] == "path" and param["schema"].get("type") == "integer":
                self.path[param["name"]] = Draft202012Validator(param["schema"])
            if param["in"] == "query":
                self.query[param["name"]] = param["schema"]
                properties[param["name"]] = param["schema"]
        self._query = Draft202012Validator(
            {"type": "object", "properties": properties}, format_checker=FORMATS
        )
        # a JSON body only: a file upload (multipart/form-data) is checked by its handler,
        # by the file's content
        body = item.get("requestBody")
        if body and "application/json" not in body["content"]:
            body = None
        self.body_optional = bool(body) and not body.get("required", False)
        self._body: Draft202012Validator | None = None
        if body:
            schema = body["content"]["application/json"]["schema"]
            self._body = Draft202012Validator(
                {**schema, "components": components}, format_checker=FORMATS
            )

    @property
    def has_body(self) -> bool:
        return self._body is not None

    def check_path(self, request: web.Request) -> None:
        """A numeric id out of the document's range names nothing that exists: 404."""
        for name, validator in self.path.items():
            raw = request.match_info.get(name, "")
            if not (_INTEGER.fullmatch(raw) and validator.is_valid(int(raw))):
                raise json_error(404, f"no such {name}: {raw[:20]}")

    def check_query(self, request: web.Request) -> None:
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for name, schema in self.query.items():
            if name not in request.query:
                continue
            raw = request.query.getall(name)
            try:
                if schema.get("type") == "array":
                    values[name] = [_typed(v, schema.get("items", {})) for v in raw]
                else:
                    values[name] = _typed(raw[-1], schema)
            except ValueError:
                errors.append(FieldError(name, INVALID, {}))
        errors += _field_errors(self._query, values, known=set(self.query))
        if errors:
            raise InvalidInput(errors)

    def check_body(self, data: dict[str, Any]) -> None:
        if self._body is None:
            return
        errors = _field_errors(self._body, data, known=None)
        if errors:
            raise InvalidInput(errors)


def _typed(raw: str, schema: dict[str, Any]) -> Any:
    """A query string's value as the type its schema names (ValueError if it is not one)."""
    if schema.get("type") == "integer":
        if not _INTEGER.fullmatch(raw):
            raise ValueError(raw)
        return int(raw)
    return raw


def _field_errors(
    validator: Draft202012Validator, instance: Any, *, known: set[str] | None
) -> list[FieldError]:
    found: dict[str, FieldError] = {}
    for error in sorted(
        validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
    ):
        for field_error in _explain(error, instance):
            found.setdefault(field_error.field, field_error)
    return list(found.values())


def _explain(error: ValidationError, instance: Any) -> Iterable[FieldError]:
    """The fields an error of the validator is about, each with the domain's message."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        for name in error.validator_value:
            if name not in error.instance:
                yield FieldError(".".join([*path, name]), REQUIRED, {})
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        for name in error.instance:
            if name not in allowed:
                yield FieldError(".".join([*path, name]), NOT_ACCEPTED, {})
        return
    field = ".".join(path)
    if error.validator == "maxLength":
        yield FieldError(field, TOO_LONG, {"max": error.validator_value})
    elif error.validator in ("enum", "const"):
        yield FieldError(field, NOT_ALLOWED, {})
    elif error.validator == "pattern" and isinstance(error.instance, str):
        if error.validator_value in PATTERN_MESSAGES:
            yield FieldError(field, PATTERN_MESSAGES[error.validator_value], {})
        elif not error.instance.strip():
            yield FieldError(field, REQUIRED, {})
        elif "\x00" in error.instance:
            yield FieldError(field, BAD_CHARACTER, {})
        else:
            yield FieldError(field, INVALID, {})
    elif error.validator in ("anyOf", "oneOf") and error.context:
        # the alternative that went furthest says best what is wrong
        best = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
        yield from _explain(best, instance)
    else:
        yield FieldError(field, INVALID, {})


def enforce(
    handler: Handler, contract_of: Callable[[web.Request], Contract], read_json: Reader
) -> Handler:
    """``handler`` behind its contract: query and body checked once the caller is let in."""
    roles = getattr(handler, "roles", set())
    public = bool(getattr(handler, "public", False))

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        actor = request.get(ACTOR)
        if public or (actor is not None and actor.role in roles):
            contract = contract_of(request)
            contract.check_path(request)
            contract.check_query(request)
            if contract.has_body:
                # read_json answers 400 / 413 / 415 itself; aiohttp keeps the body, so
                # the handler reads the same bytes again
                contract.check_body(await read_json(request, optional=contract.body_optional))
        return await handler(request)

    return checked

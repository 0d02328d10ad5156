"""Input of the knowledge base: an article as the admin writes it.

Checked like every input of the tickets domain (:mod:`tickets.schemas`): each
refusal names its field with one of the fixed msgids.  Links to templates are
free lines ("label | https://..."): a line with an http(s) address becomes a
link when shown, any other line stays text, so nothing typed is refused or lost.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from tickets.exceptions import INVALID
from tickets.kb.models import CODE_MAX, FIELD_MAX, SHORT_MAX, TITLE_MAX
from tickets.schemas import (
    ID_SCHEMA,
    _Input,
    _nullable,
    _optional_id,
    _text,
    text_schema,
)

CODE_PATTERN = rf"^[a-z0-9][a-z0-9-]{{1,{CODE_MAX - 1}}}$"


def _code(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("invalid", INVALID, {})
    import re

    text = value.strip()
    if not re.fullmatch(CODE_PATTERN[1:-1], text):
        raise PydanticCustomError("invalid", INVALID, {})
    return text


def _doc(schema: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema(schema)


def _t(max_len: int, required: bool) -> Any:
    return Annotated[
        str if required else str | None,
        _text(max_len, required=required),
        _doc(text_schema(max_len, required=required)),
    ]


Title = _t(TITLE_MAX, True)
Steps = _t(FIELD_MAX, True)
LongText = _t(FIELD_MAX, False)
ShortText = _t(SHORT_MAX, False)
AgencyRef = Annotated[int | None, BeforeValidator(_optional_id), _doc(_nullable(dict(ID_SCHEMA)))]
Code = Annotated[
    str | None,
    BeforeValidator(_code),
    _doc(_nullable({"type": "string", "pattern": CODE_PATTERN, "maxLength": CODE_MAX})),
]


class ArticleIn(_Input):
    """A new article (admins).  Without ``code``, one is made from the title."""

    code: Code = None
    title: Title
    summary: LongText = None
    steps: Steps
    documents: LongText = None
    fees: ShortText = None
    processing_time: ShortText = None
    agency_id: AgencyRef = None
    templates: Annotated[
        LongText, Field(description='Links to templates, one a line: "label | https://…".')
    ] = None
    keywords: LongText = None
    note: ShortText = None


class ArticleChange(_Input):
    """An edit: the fields given change (an optional one given empty is cleared)."""

    title: Annotated[
        str | None, _text(TITLE_MAX, required=True), _doc(text_schema(TITLE_MAX, required=True))
    ] = None
    summary: LongText = None
    steps: Annotated[
        str | None, _text(FIELD_MAX, required=True), _doc(text_schema(FIELD_MAX, required=True))
    ] = None
    documents: LongText = None
    fees: ShortText = None
    processing_time: ShortText = None
    agency_id: AgencyRef = None
    templates: LongText = None
    keywords: LongText = None
    archived: Annotated[bool | None, _doc({"type": "boolean"})] = None
    note: ShortText = None


#: The article's fields a version holds (what an edit may change, apart from ``archived``).
CONTENT = (
    "title",
    "summary",
    "steps",
    "documents",
    "fees",
    "processing_time",
    "agency_id",
    "templates",
    "keywords",
)

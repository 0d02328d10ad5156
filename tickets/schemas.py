"""Input models of the tickets domain, and their conversion into InvalidInput.

Every field is checked by one of the small validators below rather than by
pydantic's built-in constraints, so that each refusal carries one of the fixed
msgids of ``tickets.exceptions`` (which the web layer translates) and the name
of the field.

Text is stripped of surrounding whitespace and otherwise kept literally: SQL
metacharacters, quotes and HTML are stored exactly as typed (the database
driver binds parameters; escaping for HTML is the web layer's job).  Only NUL
is refused, because PostgreSQL cannot store it in a text column.  Optional
fields left empty become None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from core.phones import national_form
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
from tickets.models import AgencyKind, Channel, Domain

# Limits shared with the service (notes, results, reasons are free text too).
TEXT_MAX = 5000
NAME_MAX = 200
ADDRESS_MAX = 300
PHONE_MAX_DIGITS = 20
DISTRICT_MAX = 80
TOPIC_MAX = 32
DISTRICT_MAX = 80
LEVELS = (1, 2, 3, 4, 5)
# Ids are 32-bit in the database.
MAX_ID = 2**31 - 1

# Error types raised by the validators below, and pydantic's own, to msgids.
_MESSAGES = {
    "required": REQUIRED,
    "missing": REQUIRED,
    "too_long": TOO_LONG,
    "not_allowed": NOT_ALLOWED,
    "phone": PHONE,
    "email": EMAIL,
    "agency_code": AGENCY_CODE,
    "bad_character": BAD_CHARACTER,
    "extra_forbidden": NOT_ACCEPTED,
    "invalid": INVALID,
}

_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_PHONE = re.compile(r"\+?[0-9]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_AGENCY_CODE = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")


def _error(kind: str, **params: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, _MESSAGES[kind], params)


# -- field validators -----------------------------------------------------------


def clean_text(value: Any, max_len: int, *, required: bool) -> str | None:
    """Strip ``value``; refuse it if missing (when required), too long or with NUL.

    Raises PydanticCustomError (used inside models, and by the service for its
    own free-text arguments through ``check_text``).
    """
    if value is None:
        if required:
            raise _error("required")
        return None
    if not isinstance(value, str):
        raise _error("invalid")
    text: str = value.strip()
    if not text:
        if required:
            raise _error("required")
        return None
    if "\x00" in text:
        raise _error("bad_character")
    if len(text) > max_len:
        raise _error("too_long", max=max_len)
    return text


def _text(max_len: int, *, required: bool) -> BeforeValidator:
    return BeforeValidator(lambda v: clean_text(v, max_len, required=required))


def normalize_phone(value: Any) -> str | None:
    """A phone number as digits with an optional leading +, or None if empty.

    Spaces, dots, dashes and brackets people type are dropped and a
    Vietnamese number is kept in its national form (``+84 90…`` → ``090…``),
    so that the number matches the caller IDs recorded from the network.
    """
    text = clean_text(value, 64, required=False)
    if text is None:
        return None
    compact = _PHONE_SEPARATORS.sub("", text)
    if not _PHONE.fullmatch(compact):
        raise _error("phone")
    if len(compact.lstrip("+")) > PHONE_MAX_DIGITS:
        raise _error("too_long", max=PHONE_MAX_DIGITS)
    return national_form(compact)


def _email(value: Any) -> str | None:
    text = clean_text(value, NAME_MAX, required=False)
    if text is not None and not _EMAIL.fullmatch(text):
        raise _error("email")
    return text


def _agency_code(value: Any) -> str:
    text = clean_text(value, 40, required=True)
    assert text is not None
    # Codes are identifiers: one canonical (lower-case) spelling.
    text = text.lower()
    if not _AGENCY_CODE.fullmatch(text):
        raise _error("agency_code")
    return text


def _choice(enum: type[StrEnum], *, required: bool = True) -> BeforeValidator:
    def check(value: Any) -> StrEnum | None:
        text = value.strip() if isinstance(value, str) else value
        if text is None or text == "":
            if required:
                raise _error("required")
            return None
        try:
            return enum(text)
        except ValueError:
            raise _error("not_allowed") from None

    return BeforeValidator(check)


def _level(value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _error("required")
    if isinstance(value, bool):  # True is an int in Python, but not a level
        raise _error("not_allowed")
    try:
        level = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _error("not_allowed") from None
    if level != value and not isinstance(value, str):  # 2.5 is not level 2
        raise _error("not_allowed")
    if level not in LEVELS:
        raise _error("not_allowed")
    return level


def _flag(value: Any) -> bool:
    """A yes/no choice: a bool, or the words a form sends; anything else is refused."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("", "no", "false", "0", "off"):
        return False
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "1", "on"):
        return True
    raise _error("not_allowed")


def _coordinate(limit: float) -> BeforeValidator:
    def check(value: Any) -> float | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            raise _error("invalid")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise _error("invalid") from None
        if not -limit <= number <= limit:  # also refuses NaN
            raise _error("invalid")
        return round(number, 6)  # about 10 cm: more is noise

    return BeforeValidator(check)


def _optional_id(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _error("invalid")
    if isinstance(value, float) and value.is_integer():  # JSON's 3.0 is the integer 3
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
        if not value.isascii() or not value.isdigit():
            raise _error("invalid")
    if not isinstance(value, int | str):
        raise _error("invalid")
    number = int(value)
    # Ids are 32-bit in the database; a larger number would fail there, not here.
    if not 1 <= number <= MAX_ID:
        raise _error("invalid")
    return number


# -- what the JSON Schema (the API's OpenAPI document) says of each kind of field --------
#
# The validators above are lenient as a form needs (text is stripped, a level may come as
# "2"); the API's document says what a JSON client must send, and the API enforces it
# before these run (panel.api.contract), so both agree on what is accepted.

# White space as Python's str.strip() sees it, spelled out: regular expression engines
# disagree on what \s is (ECMA's has U+FEFF, Python's has U+001C to U+001F).
_SPACES = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
WS = f"[{_SPACES}]"
NOT_WS = f"[^{_SPACES}]"
# some character that is not white space, and no NUL (``clean_text``)
NONBLANK = rf"^[^\x00]*[^\x00{_SPACES}][^\x00]*$"
NO_NUL = r"^[^\x00]*$"
# ``normalize_phone``: separators, an optional leading +, 1 to 20 digits; or blank
_SEP = rf"[{_SPACES}().-]"
PHONE_SEP = _SEP  # for other phone fields' patterns (the blocked-numbers list's)
PHONE_PATTERN = (
    rf"^{WS}*$|^{_SEP}*\+?{_SEP}*[0-9]({_SEP}*[0-9]){{0,{PHONE_MAX_DIGITS - 1}}}{_SEP}*$"
)
EMAIL_PATTERN = (
    rf"^{WS}*$|^{WS}*[^@\x00{_SPACES}]+@[^@.\x00{_SPACES}]+(\.[^@.\x00{_SPACES}]+)+{WS}*$"
)
AGENCY_CODE_PATTERN = rf"^{WS}*[a-zA-Z0-9][a-zA-Z0-9-]{{1,39}}{WS}*$"


def text_schema(max_len: int, *, required: bool) -> dict[str, Any]:
    schema = {"type": "string", "pattern": NONBLANK if required else NO_NUL, "maxLength": max_len}
    return schema if required else {"anyOf": [schema, {"type": "null"}]}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def enum_schema(enum: type[StrEnum]) -> dict[str, Any]:
    return {"type": "string", "enum": [e.value for e in enum]}


LEVEL_SCHEMA = {"type": "integer", "enum": list(LEVELS)}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
PHONE_SCHEMA = _nullable({"type": "string", "pattern": PHONE_PATTERN, "maxLength": 64})
EMAIL_SCHEMA = _nullable({"type": "string", "pattern": EMAIL_PATTERN, "maxLength": NAME_MAX})


def _doc(schema: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema(schema)


Text = Annotated[str, _text(TEXT_MAX, required=True), _doc(text_schema(TEXT_MAX, required=True))]
OptionalText = Annotated[
    str | None, _text(TEXT_MAX, required=False), _doc(text_schema(TEXT_MAX, required=False))
]
Name = Annotated[str, _text(NAME_MAX, required=True), _doc(text_schema(NAME_MAX, required=True))]
OptionalName = Annotated[
    str | None, _text(NAME_MAX, required=False), _doc(text_schema(NAME_MAX, required=False))
]
OptionalAddress = Annotated[
    str | None,
    _text(ADDRESS_MAX, required=False),
    _doc(text_schema(ADDRESS_MAX, required=False)),
]
# one of settings.tickets.topics (the document lists them: panel.api.operations)
Topic = Annotated[str, _text(TOPIC_MAX, required=True), _doc(text_schema(TOPIC_MAX, required=True))]
Phone = Annotated[str | None, BeforeValidator(normalize_phone), _doc(PHONE_SCHEMA)]
Email = Annotated[str | None, BeforeValidator(_email), _doc(EMAIL_SCHEMA)]
Level = Annotated[int, BeforeValidator(_level), _doc(LEVEL_SCHEMA)]
OptionalId = Annotated[int | None, BeforeValidator(_optional_id), _doc(_nullable(ID_SCHEMA))]
# "guidance is required for level 1", for the document
# a map pin is a latitude with its longitude
PIN_BOTH_OR_NEITHER = [
    {
        "if": {"properties": {a: {"type": "number"}}, "required": [a]},
        "then": {"required": [b], "properties": {b: {"type": "number"}}},
    }
    for a, b in (("latitude", "longitude"), ("longitude", "latitude"))
]
GUIDANCE_FOR_LEVEL_1 = {
    "if": {"properties": {"level": {"const": 1}}, "required": ["level"]},
    "then": {
        "required": ["guidance"],
        "properties": {"guidance": text_schema(TEXT_MAX, required=True)},
    },
}
District = Annotated[
    str | None,
    _text(DISTRICT_MAX, required=False),
    _doc(text_schema(DISTRICT_MAX, required=False)),
]
Flag = Annotated[bool, BeforeValidator(_flag), _doc({"type": "boolean"})]


class _Input(BaseModel):
    # Unknown keys are refused rather than dropped: a form posting "status" or
    # "version" must not look as if it had worked.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketCreate(_Input):
    """A new report, as the agent enters it (or the SMS/email desk)."""

    model_config = ConfigDict(
        json_schema_extra={"allOf": [GUIDANCE_FOR_LEVEL_1, *PIN_BOTH_OR_NEITHER]}
    )

    channel: Annotated[Channel, _choice(Channel), _doc(enum_schema(Channel))]
    # None when the caller withheld the number.
    citizen_phone: Phone = None
    citizen_name: OptionalName = None
    citizen_address: OptionalAddress = None
    domain: Annotated[Domain, _choice(Domain), _doc(enum_schema(Domain))]
    topic: Topic  # one of settings.tickets.topics: checked by the service
    level: Level
    description: Text
    # What the agent told the citizen: required for level 1 (answered on the call).
    guidance: Annotated[OptionalText, Field(validate_default=True)] = None
    agency_id: OptionalId = None
    # the knowledge-base article the guidance came from (level 1 mostly)
    kb_article_id: OptionalId = None
    # where a citizen who reported on the web or by email hears back
    reporter_email: Email = None
    district: District = None
    # the citizen agreed that the report may be published once completed
    # (tickets.publication decides what ever is)
    publish_consent: Flag = False
    # the citizen agreed that the agency may see who they are (tickets.confidential)
    identity_consent: Flag = False
    latitude: Annotated[
        float | None,
        _coordinate(90),
        _doc(_nullable({"type": "number", "minimum": -90, "maximum": 90})),
    ] = None
    longitude: Annotated[
        float | None,
        _coordinate(180),
        _doc(_nullable({"type": "number", "minimum": -180, "maximum": 180})),
    ] = None

    @field_validator("longitude")
    @classmethod
    def _both_or_neither(cls, value: float | None, info: ValidationInfo) -> float | None:
        if (value is None) != (info.data.get("latitude") is None) and "latitude" in info.data:
            raise _error("invalid")
        return value

    @field_validator("guidance")
    @classmethod
    def _guidance_for_level_1(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("level") == 1:
            raise _error("required")
        return value


class TicketUpdate(_Input):
    """A correction of a report's classification or citizen details.

    Only the keys given are changed; an optional field given empty is cleared,
    a required one given empty is refused.
    """

    model_config = ConfigDict(json_schema_extra={"allOf": [GUIDANCE_FOR_LEVEL_1]})

    # Types allow None only as "not given": the validators refuse an explicit
    # None or empty value for the fields a ticket cannot be without.
    channel: Annotated[Channel | None, _choice(Channel), _doc(enum_schema(Channel))] = None
    citizen_phone: Phone = None
    citizen_name: OptionalName = None
    citizen_address: OptionalAddress = None
    domain: Annotated[Domain | None, _choice(Domain), _doc(enum_schema(Domain))] = None
    topic: Annotated[
        str | None, _text(TOPIC_MAX, required=True), _doc(text_schema(TOPIC_MAX, required=True))
    ] = None
    level: Annotated[int | None, BeforeValidator(_level), _doc(LEVEL_SCHEMA)] = None
    description: Annotated[
        str | None, _text(TEXT_MAX, required=True), _doc(text_schema(TEXT_MAX, required=True))
    ] = None
    guidance: OptionalText = None
    reporter_email: Email = None
    district: District = None
    publish_consent: Annotated[bool | None, BeforeValidator(_flag)] = None
    identity_consent: Annotated[bool | None, BeforeValidator(_flag)] = None

    def changes(self) -> dict[str, Any]:
        """The fields given, with their new values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class AgencyIn(_Input):
    """An agency as the admin enters it."""

    parent_id: OptionalId = None
    kind: Annotated[AgencyKind, _choice(AgencyKind), _doc(enum_schema(AgencyKind))]
    code: Annotated[
        str,
        BeforeValidator(_agency_code),
        _doc({"type": "string", "pattern": AGENCY_CODE_PATTERN, "maxLength": 40}),
    ]
    name: Name
    contact_name: OptionalName = None
    phone: Phone = None
    email: Email = None
    address: OptionalAddress = None


M = TypeVar("M", bound=BaseModel)


def validate(model_cls: type[M], data: Mapping[str, Any]) -> M:
    """``data`` checked into ``model_cls``; raises InvalidInput naming each field."""
    if not isinstance(data, Mapping):
        raise InvalidInput([FieldError("", INVALID, {})])
    try:
        return model_cls.model_validate(dict(data))
    except ValidationError as e:
        raise InvalidInput([_field_error(err) for err in e.errors()]) from None


def check_text(field: str, value: Any, max_len: int = TEXT_MAX, *, required: bool) -> str | None:
    """One free-text argument (a note, a result, a reason) checked like a model field."""
    return _check(field, lambda: clean_text(value, max_len, required=required))


def check_phone(field: str, value: Any) -> str | None:
    """One phone-number argument normalized (see ``normalize_phone``) or InvalidInput."""
    return _check(field, lambda: normalize_phone(value))


def check_id(field: str, value: Any, *, required: bool) -> int | None:
    """One id argument (e.g. an agency chosen in a form) as an int, or InvalidInput."""
    try:
        number = _optional_id(value)
    except PydanticCustomError as e:
        raise InvalidInput([FieldError(field, _MESSAGES[e.type], {})]) from None
    if number is None and required:
        raise InvalidInput([FieldError(field, REQUIRED, {})])
    return number


def _check(field: str, fn: Callable[[], str | None]) -> str | None:
    try:
        return fn()
    except PydanticCustomError as e:
        raise InvalidInput([FieldError(field, _MESSAGES[e.type], dict(e.context or {}))]) from None


def _field_error(err: Any) -> FieldError:
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else ""
    kind = err.get("type", "invalid")
    message = _MESSAGES.get(kind, INVALID)
    params = dict(err.get("ctx") or {}) if kind in _MESSAGES else {}
    return FieldError(field, message, params)

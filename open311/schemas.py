"""Open311 input: the query filters of GET requests and the form of POST requests.

Pure functions: each takes what the client sent and returns typed values or
raises :class:`Open311Error` with the spec's HTTP code and a description that
names the parameter at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo

from multidict import MultiMapping

from tickets.exceptions import InvalidCode
from tickets.numbers import parse_number

MAX_IDS = 1000
ID_MAX = 100  # device_id, account_id
MEDIA_URL_MAX = 2000
STATUSES = ("open", "closed")
# A service attribute's value in the POST form: attribute[code] (GeoReport v2).
ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,40})\]")
# The POST form's fields (the spec's; attribute[...] is taken apart below).
FORM_FIELDS = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "description",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "media_url",
)
# W3C date-time (a subset of ISO 8601): a date, or a date and time with a time zone.
_W3C = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?"
)
# "+07:00" arrives as " 07:00" when a client forgets to percent-encode the "+".
_SPACE_OFFSET = re.compile(r" (\d{2}:\d{2})$")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Open311Error(Exception):
    """An error answered as the spec's ``[{code, description}]``."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def bad(field: str, what: str) -> Open311Error:
    return Open311Error(400, f"{field}: {what}")


def xml_safe(text: str | None) -> str | None:
    """``text`` without the characters XML 1.0 cannot hold (so JSON and XML agree)."""
    return None if text is None else _XML_BAD.sub("", text)


def parse_w3c(field: str, raw: str, tz: tzinfo, *, end: bool = False) -> datetime:
    """A W3C date-time (``2026-12-01T08:00:00+07:00``, ``...Z``) or date (``2026-12-01``,
    taken in the city's time zone ``tz``; with ``end`` the day's end)."""
    text = _SPACE_OFFSET.sub(r"+\1", raw.strip())
    m = _W3C.fullmatch(text)
    if not m:
        raise bad(
            field,
            f"{raw!r} is not a W3C date-time (e.g. 2026-12-01T08:00:00+07:00 or 2026-12-01)",
        )
    year, month, day, hh, mm, ss, frac, zone = m.groups()
    try:
        if hh is None:
            d = date(int(year), int(month or 1), int(day or 1))
            if not end:
                return datetime.combine(d, time.min, tzinfo=tz)
            if day is None:
                # a year or a month: its last day
                if month is None:
                    d = date(d.year, 12, 31)
                else:
                    nxt = date(d.year + d.month // 12, d.month % 12 + 1, 1)
                    d = date.fromordinal(nxt.toordinal() - 1)
            return datetime.combine(d, time.max, tzinfo=tz)
        iso = f"{year}-{month}-{day}T{hh}:{mm}:{ss or '00'}{frac or ''}"
        iso += "+00:00" if zone == "Z" else zone
        return datetime.fromisoformat(iso)
    except ValueError:
        raise bad(field, f"{raw!r} is not a real date or time") from None


@dataclass(frozen=True)
class RequestFilter:
    """GET requests' filters, checked.  ``ids`` overrides every other filter."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[str, ...] = ()


def _single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise bad(name, "given more than once")
    if not values:
        return None
    value = values[0].strip()
    return value or None


def _list(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    return tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))


def parse_filter(
    query: MultiMapping[str], tz: tzinfo, service_codes: Mapping[str, object]
) -> RequestFilter:
    """The filters of ``GET requests`` (unknown service codes: 404)."""
    ids = _list(_single(query, "service_request_id"))
    if len(ids) > MAX_IDS:
        raise bad("service_request_id", f"at most {MAX_IDS} ids at once")
    numbers = []
    for raw in ids:
        try:
            numbers.append(parse_number(raw))
        except InvalidCode:
            raise bad("service_request_id", f"{raw!r} is not a 10-digit request id") from None
    codes = _list(_single(query, "service_code"))
    for code in codes:
        if code not in service_codes:
            raise Open311Error(404, f"service_code: {code!r} not found")
    statuses = _list(_single(query, "status"))
    for s in statuses:
        if s not in STATUSES:
            raise bad("status", f"{s!r} is not open or closed")
    start_raw, end_raw = _single(query, "start_date"), _single(query, "end_date")
    start = parse_w3c("start_date", start_raw, tz) if start_raw else None
    end = parse_w3c("end_date", end_raw, tz, end=True) if end_raw else None
    if start and end and end < start:
        raise bad("end_date", "is before start_date")
    return RequestFilter(tuple(numbers), codes, start, end, statuses)


@dataclass(frozen=True)
class NewRequest:
    """A POSTed report, checked as far as Open311 goes (the ticket's own checks follow)."""

    service_code: str
    description: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    media_url: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    # attribute[code] = value, as sent (checked against the service's definition
    # by Open311Service.submit)
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The citizen's name in Vietnamese order: family name first."""
        parts = [p for p in (self.last_name, self.first_name) if p]
        return " ".join(parts) or None


def _coordinate(field: str, raw: str | None, limit: float) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad(field, f"{raw[:40]!r} is not a number") from None
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise bad(field, f"must be between -{limit:g} and {limit:g}")
    return value


def _short(field: str, raw: str | None, limit: int) -> str | None:
    if raw is not None and len(raw) > limit:
        raise bad(field, f"at most {limit} characters")
    return raw


def parse_form(
    form: MultiMapping[str], service_codes: Mapping[str, object], description_max: int
) -> NewRequest:
    """A POST requests form (without its api_key, checked before), or Open311Error."""
    for name in form:
        if name not in FORM_FIELDS and not name.startswith("attribute["):
            raise bad(name, "not a field of this API")
        if not isinstance(form.get(name), str):
            raise bad(name, "must be text (media are given as media_url)")
    values = {name: _single(form, name) for name in FORM_FIELDS}
    attributes: dict[str, str] = {}
    for name in dict.fromkeys(n for n in form if n.startswith("attribute[")):
        m = ATTRIBUTE.fullmatch(name)
        if m is None:
            raise bad(name[:60], "not an attribute of this API (see the service definition)")
        value = _single(form, name)
        if value is not None:
            attributes[m.group(1)] = value
    for name, value in (*values.items(), *((f"attribute[{k}]", v) for k, v in attributes.items())):
        if value is not None and "\x00" in value:
            raise bad(name, "contains a NUL character")
    if values["address_id"] is not None:
        raise bad("address_id", "not supported: give address_string or lat and long")
    code = values["service_code"]
    if code is None:
        raise bad("service_code", "required")
    if code not in service_codes:
        raise Open311Error(404, f"service_code: {code!r} not found")
    description = values["description"]
    if description is None:
        raise bad("description", "required")
    if len(description) > description_max:
        raise bad("description", f"at most {description_max} characters")
    lat = _coordinate("lat", values["lat"], 90)
    long = _coordinate("long", values["long"], 180)
    if (lat is None) != (long is None):
        raise bad("long" if long is None else "lat", "lat and long go together")
    media_url = _short("media_url", values["media_url"], MEDIA_URL_MAX)
    if media_url is not None and not re.fullmatch(r"https?://[^\s]+", media_url):
        raise bad("media_url", "must be an http:// or https:// address")
    return NewRequest(
        service_code=code,
        description=description,
        lat=lat,
        long=long,
        address_string=values["address_string"],
        email=values["email"],
        first_name=values["first_name"],
        last_name=values["last_name"],
        phone=values["phone"],
        media_url=media_url,
        device_id=_short("device_id", values["device_id"], ID_MAX),
        account_id=_short("account_id", values["account_id"], ID_MAX),
        attributes=attributes,
    )

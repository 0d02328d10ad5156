"""Open311's answers, as plain data: services, published requests, new requests.

What a request shows is read through :mod:`tickets.publication` only: the rows
are chosen by its :func:`~tickets.publication.published` clause and the
columns are its :data:`~tickets.publication.PUBLIC_FIELDS` (plus the agency's
name and the location an Open311 client gave).  So nothing here decides what
the public may see; the citizen's name, phone, email and address are never
read at all.

Mapping to GeoReport v2:

- a service is a configured topic (``service_code`` = the topic id,
  ``service_name`` its Vietnamese name, ``group`` the State-management
  domain: reports made through Open311 are always of that domain);
- ``service_request_id`` is the ticket's 10-digit tracking number;
- ``status`` is ``closed`` for a closed ticket, ``open`` otherwise;
  ``status_notes`` the agency's result; ``address`` the district;
  ``updated_datetime`` when it was closed (or forwarded); ``expected_datetime``
  is always empty (the deadline is not a public field);
- a service whose reports may be published (its topic is not one of
  ``tickets.never_public_topics``) has ``metadata`` true and one attribute,
  ``publish_consent`` (a single-value list, ``yes`` or ``no``): a client files
  the citizen's consent with ``attribute[publish_consent]=yes``; not given, the
  report is filed without consent, as the web form's default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from accounts.apikeys import ApiKey
from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from core.settings import Settings, Topic
from open311.models import Open311Request
from open311.schemas import NewRequest, Open311Error, RequestFilter, bad, xml_safe
from tickets.exceptions import InvalidInput
from tickets.models import Agency, Channel, Domain, Status, Ticket
from tickets.publication import PUBLIC_FIELDS, published
from tickets.service import TicketService

log = logging.getLogger(__name__)

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# The Vietnamese name of the one domain Open311 reports are filed under.
STATE_DOMAIN_NAME = "Quản lý Nhà nước"
# Ticket fields back to the Open311 fields a client sent them as.
_FIELD_NAMES = {
    "citizen_phone": "phone",
    "citizen_name": "first_name",
    "citizen_address": "address_string",
    "reporter_email": "email",
    "description": "description",
    "topic": "service_code",
}
# Open311 reports wait for a supervisor to choose the agency (level 2, NEW).
LEVEL = 2
# The service attribute by which a client records the citizen's consent to publication
# (``attribute[publish_consent]=yes``); not given, or "no": no consent.
CONSENT = "publish_consent"
CONSENT_VALUES = {"yes": True, "no": False}
CONSENT_ATTRIBUTE: dict[str, Any] = {
    "variable": True,
    "code": CONSENT,
    "datatype": "singlevaluelist",
    "required": False,
    "datatype_description": "yes or no; not given: no",
    "order": 1,
    "description": (
        "Người phản ánh đồng ý công khai phản ánh trên cổng thông tin của thành phố khi đã "
        "xử lý xong (không kèm tên, số điện thoại, email, địa chỉ). / The citizen agrees that "
        "the report may be published on the city's portal once completed (never with their "
        "name, phone, email or address)."
    ),
    "values": [
        {"key": "yes", "name": "Đồng ý / Yes"},
        {"key": "no", "name": "Không đồng ý / No"},
    ],
}


@dataclass(frozen=True)
class Submitted:
    service_request_id: str
    service_notice: str


class Open311Service:
    def __init__(
        self, db: Database, settings: Settings, tickets: TicketService, clock: Clock
    ) -> None:
        self.db = db
        self.settings = settings
        self.tickets = tickets
        self.clock = clock
        self.topics: dict[str, Topic] = {t.id: t for t in settings.tickets.topics}

    # -- services -------------------------------------------------------------------

    def _publishable(self, code: str) -> bool:
        """Whether a report of this service may ever be published (Open311 reports are of
        the State-management domain: only the topic can rule it out)."""
        return code not in self.settings.tickets.never_public_topics

    def _attributes(self, code: str) -> list[dict[str, Any]]:
        """The service's attributes: the consent to publication, where it can matter."""
        return [CONSENT_ATTRIBUTE] if self._publishable(code) else []

    def _service(self, topic: Topic) -> dict[str, Any]:
        words = [topic.id, topic.name.vi, *([topic.name.en] if topic.name.en else [])]
        return {
            "service_code": topic.id,
            "service_name": topic.name.vi,
            "description": topic.name.en or topic.name.vi,
            "metadata": bool(self._attributes(topic.id)),
            "type": "realtime",
            "keywords": ", ".join(words),
            "group": STATE_DOMAIN_NAME,
        }

    def services(self) -> list[dict[str, Any]]:
        return [self._service(t) for t in self.settings.tickets.topics]

    def definition(self, code: str) -> dict[str, Any]:
        if code not in self.topics:
            raise Open311Error(404, f"service_code: {code!r} not found")
        return {"service_code": code, "attributes": self._attributes(code)}

    def consent(self, form: NewRequest) -> bool:
        """The citizen's consent to publication that ``form`` records (attribute
        ``publish_consent``; none: no consent), or the spec's 400 naming the attribute."""
        known = {a["code"] for a in self._attributes(form.service_code)}
        for code in form.attributes:
            if code not in known:
                raise bad(
                    f"attribute[{code}]",
                    f"not an attribute of service {form.service_code!r} (see its definition)",
                )
        raw = form.attributes.get(CONSENT)
        if raw is None:
            return False
        value = CONSENT_VALUES.get(raw.strip().casefold())
        if value is None:
            raise bad(f"attribute[{CONSENT}]", f"{raw[:40]!r} is not yes or no")
        return value

    # -- published requests ---------------------------------------------------------

    def _when(self, at: datetime | None) -> str | None:
        if at is None:
            return None
        return at.astimezone(self.settings.tz).isoformat(timespec="seconds")

    async def requests(self, f: RequestFilter) -> list[dict[str, Any]]:
        """Published requests matching ``f``, newest first, at most max_results."""
        cfg = self.settings.open311
        where = [published(self.settings.tickets)]
        if f.ids:
            where.append(Ticket.number.in_(f.ids))
        else:
            if f.service_codes:
                where.append(Ticket.topic.in_(f.service_codes))
            start, end = f.start, f.end
            if start is None and end is None:
                start = self.clock.now() - timedelta(days=cfg.default_days)
            if start is not None:
                where.append(Ticket.created_at >= start)
            if end is not None:
                where.append(Ticket.created_at <= end)
            if f.statuses and set(f.statuses) != {"open", "closed"}:
                closed = Ticket.status == Status.CLOSED.value
                where.append(closed if f.statuses == ("closed",) else ~closed)
        return await self._select(where, cfg.max_results)

    async def request(self, raw_id: str) -> dict[str, Any]:
        """One published request by its number, or the spec's 404."""
        found = await self._select([published(self.settings.tickets), Ticket.number == raw_id], 1)
        if not found:
            raise Open311Error(404, f"service_request_id: {raw_id!r} not found")
        return found[0]

    async def _select(self, where: list[Any], limit: int) -> list[dict[str, Any]]:
        columns = [getattr(Ticket, name) for name in PUBLIC_FIELDS]
        stmt = (
            select(
                *columns, Agency.name.label("agency_name"), Open311Request.lat, Open311Request.long
            )
            .outerjoin(Agency, Agency.id == Ticket.agency_id)
            .outerjoin(Open311Request, Open311Request.ticket_id == Ticket.id)
            .where(*where)
            .order_by(Ticket.created_at.desc(), Ticket.number)
            .limit(limit)
        )
        async with self.db.session() as s:
            rows = (await s.execute(stmt)).mappings().all()
        return [self._public(row) for row in rows]

    def _public(self, row: Any) -> dict[str, Any]:
        topic = self.topics.get(row["topic"])
        out: dict[str, Any] = {
            "service_request_id": row["number"],
            "status": "closed" if row["status"] == Status.CLOSED.value else "open",
            "status_notes": xml_safe(row["result"]),
            "service_name": topic.name.vi if topic else row["topic"],
            "service_code": row["topic"],
            "description": xml_safe(row["description"]),
            "agency_responsible": row["agency_name"] or self.settings.open311.default_agency,
            "service_notice": None,
            "requested_datetime": self._when(row["created_at"]),
            "updated_datetime": self._when(
                row["closed_at"] or row["forwarded_at"] or row["created_at"]
            ),
            "expected_datetime": None,
            "address": xml_safe(row["district"]),
            "address_id": None,
            "zipcode": None,
            "media_url": None,
        }
        if row["lat"] is not None and row["long"] is not None:
            out["lat"] = row["lat"]
            out["long"] = row["long"]
        return out

    # -- new requests ---------------------------------------------------------------

    async def submit(self, key: ApiKey, form: NewRequest, client: str | None) -> Submitted:
        """File ``form`` as a new web ticket on behalf of ``key``'s holder."""
        actor = Actor(id=None, name=f"Open311: {key.name} ({key.key_id})", role=Role.AGENT)
        consent = self.consent(form)
        data: dict[str, Any] = {
            "channel": Channel.WEB.value,
            "domain": Domain.STATE.value,
            "topic": form.service_code,
            "level": LEVEL,
            "description": form.description,
            "citizen_phone": form.phone,
            "citizen_name": form.name,
            "citizen_address": form.address_string,
            "reporter_email": form.email,
            "publish_consent": consent,
        }
        try:
            ticket = await self.tickets.create(actor, data)
        except InvalidInput as e:
            first = e.errors[0]
            field = _FIELD_NAMES.get(first.field, first.field)
            message = first.message.format(**first.params) if first.params else first.message
            raise bad(field, message) from None
        async with self.db.session() as s:
            s.add(
                Open311Request(
                    ticket_id=ticket.id,
                    api_key_id=key.id,
                    client_address=client,
                    lat=form.lat,
                    long=form.long,
                    media_url=form.media_url,
                    device_id=form.device_id,
                    account_id=form.account_id,
                    created_at=ticket.created_at,
                )
            )
        log.info(
            "Open311 request %s (ticket %s) from key %s at %s",
            ticket.number,
            ticket.code,
            key.key_id,
            client,
        )
        return Submitted(ticket.number, self.settings.open311.service_notice.vi)

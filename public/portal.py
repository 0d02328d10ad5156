"""The portal of completed reports: what the city publishes of its citizens' reports.

Only reports :func:`tickets.publication.published` lets out are ever read,
and of them only :data:`tickets.publication.PUBLIC_FIELDS` (the query selects
those columns and no other).  Newest closed first, a page at a time; filtered
by topic and district and searched by text.

The text search folds the query like the staff's search (``core.text``:
"ngap nuoc" finds "Ngập nước") but looks only in ``public_text`` (the
district and the report: never the citizen's name, phone or address, which
the staff's ``search_text`` holds), and in the topics' names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from core.db import Database
from core.settings import Settings
from core.text import fold_phrase
from public.cache import TTLCache
from public.exceptions import BAD_CHARACTER, NOT_ALLOWED, PAGE, TOO_LONG, BadInput
from tickets.agencies import AgencyService
from tickets.models import AgencyKind, Ticket
from tickets.numbers import format_number
from tickets.publication import PUBLIC_FIELDS, published

QUERY_MAX = 200
DISTRICT_MAX = 80
PAGE_MAX = 10_000


@dataclass(frozen=True)
class PublicReport:
    """One published report, as the portal shows it."""

    number: str  # grouped
    topic: str
    district: str | None  # the district's name (the directory's, or as typed)
    description: str
    agency: str | None
    result: str | None
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class PortalQuery:
    q: str = ""
    topic: str = ""
    district: str = ""
    page: int = 1


@dataclass(frozen=True)
class PortalPage:
    rows: list[PublicReport]
    total: int
    page: int
    pages: int


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text(name: str, value: Any, max_len: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput(name, NOT_ALLOWED)
    text = value.strip()
    if len(text) > max_len:
        raise BadInput(name, TOO_LONG, max=max_len)
    if "\x00" in text:
        raise BadInput(name, BAD_CHARACTER)
    return text


class Portal:
    def __init__(self, db: Database, settings: Settings, agencies: AgencyService) -> None:
        self.db = db
        self.settings = settings
        self.agencies = agencies
        # the districts typed on published reports (the filter's choices), read once
        # for public.cache_seconds; forget() when the published reports change
        self._typed: TTLCache[list[str]] = TTLCache(settings.public.cache_seconds, size=1)

    def forget(self) -> None:
        """What was read of the published reports is old."""
        self._typed.clear()

    def public_topics(self) -> list[Any]:
        """The topics a published report can have (never the restricted ones)."""
        hidden = set(self.settings.tickets.never_public_topics)
        return [t for t in self.settings.tickets.topics if t.id not in hidden]

    def parse(self, params: Any) -> PortalQuery:
        """The query string checked: BadInput naming the field that is wrong."""
        q = _text("q", params.get("q"), QUERY_MAX)
        topic = _text("topic", params.get("topic"), 32)
        if topic and topic not in {t.id for t in self.public_topics()}:
            raise BadInput("topic", NOT_ALLOWED)
        district = _text("district", params.get("district"), DISTRICT_MAX)
        raw_page = _text("page", params.get("page"), 8) or "1"
        if not (raw_page.isascii() and raw_page.isdigit()) or not 1 <= int(raw_page) <= PAGE_MAX:
            raise BadInput("page", PAGE, max=PAGE_MAX)
        return PortalQuery(q=q, topic=topic, district=district, page=int(raw_page))

    async def districts(self) -> list[tuple[str, str]]:
        """The district filter's choices (value, name): the directory's districts, then
        the districts typed on published reports that are not in it."""
        directory = await self.agencies.directory()
        known = [
            (a.code, a.name)
            for a in directory.agencies
            if a.active and a.kind == AgencyKind.DISTRICT
        ]
        typed = self._typed.get("typed")
        if typed is None:
            generation = self._typed.generation
            async with self.db.session() as s:
                typed = list(
                    (
                        await s.scalars(
                            select(Ticket.district)
                            .where(published(self.settings.tickets), Ticket.district.is_not(None))
                            .distinct()
                        )
                    ).all()
                )
            self._typed.put("typed", typed, generation)
        codes = {code for code, _ in known}
        extra = sorted((d, d) for d in typed if d and d not in codes)
        return known + extra

    def _matches(self, q: str) -> ColumnElement[bool]:
        folded = fold_phrase(q)
        pattern = f"%{_escape_like(folded)}%"
        matches: list[ColumnElement[bool]] = [Ticket.public_text.like(pattern, escape="\\")]
        topics = [
            t.id
            for t in self.public_topics()
            if folded in fold_phrase(t.name.vi) or folded in fold_phrase(t.name.en)
        ]
        if topics:
            matches.append(Ticket.topic.in_(topics))
        return or_(*matches)

    async def search(self, query: PortalQuery) -> PortalPage:
        """One page of published reports matching ``query``, newest closed first."""
        per_page = self.settings.public.page_size
        where = [published(self.settings.tickets)]
        if query.topic:
            where.append(Ticket.topic == query.topic)
        if query.district:
            where.append(Ticket.district == query.district)
        if query.q and fold_phrase(query.q):
            where.append(self._matches(query.q))
        columns = [getattr(Ticket, name) for name in PUBLIC_FIELDS]
        async with self.db.session() as s:
            total = int(await s.scalar(select(func.count()).select_from(Ticket).where(*where)) or 0)
            rows = (
                await s.execute(
                    select(*columns)
                    .where(*where)
                    .order_by(Ticket.closed_at.desc(), Ticket.id.desc())
                    .limit(per_page)
                    .offset((query.page - 1) * per_page)
                )
            ).all()
        pages = max(1, (total + per_page - 1) // per_page)
        return PortalPage(await self._reports(rows), total, query.page, pages)

    async def one(self, number: str) -> PublicReport | None:
        """The published report with this tracking number (None: none is published)."""
        digits = "".join(number.split())
        if not (digits.isascii() and digits.isdigit() and len(digits) == 10):
            return None
        columns = [getattr(Ticket, name) for name in PUBLIC_FIELDS]
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(*columns).where(
                        published(self.settings.tickets), Ticket.number == digits
                    )
                )
            ).all()
        found = await self._reports(rows)
        return found[0] if found else None

    async def _reports(self, rows: Any) -> list[PublicReport]:
        directory = await self.agencies.directory()
        names, districts = directory.names, directory.districts
        out = []
        for row in rows:
            r = row._mapping
            out.append(
                PublicReport(
                    number=format_number(r["number"]),
                    topic=r["topic"],
                    district=districts.get(r["district"], r["district"]) if r["district"] else None,
                    description=r["description"],
                    agency=names.get(r["agency_id"]) if r["agency_id"] else None,
                    result=r["result"],
                    created_at=r["created_at"],
                    closed_at=r["closed_at"],
                )
            )
        return out

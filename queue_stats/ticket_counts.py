"""The leaders' figures: the reports received in a period, by channel, domain, topic,
level, agency and district.

One query per dimension over the tickets created in ``[start, end)``, grouped by the
ticket's column (its current agency; its district as typed or picked from the
directory, "" when none was given), each row counting:

- ``received``: tickets created in the period;
- ``closed``: of these, closed now; ``open``: the rest;
- ``reopened``: of these, reopened at least once by a dissatisfied citizen;
- ``rated``: the citizens' satisfaction ratings given on these tickets (up to now),
  and ``rating_average`` their mean (1 to 5; None when none).

The daily, weekly and monthly reports carry these rows (section ``tickets``), and the
XLSX and PDF documents print them (:mod:`queue_stats.documents`).  Names are given in
Vietnamese and English: the topics' from the settings, the agencies' and districts'
from the directory, the others from :data:`VALUE_NAMES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import case, func, select

from core.db import Database
from core.settings import Settings
from tickets.models import Agency, AgencyKind, Rating, Status, Ticket

Dimension = Literal["channel", "domain", "topic", "level", "agency", "district"]
DIMENSIONS: tuple[Dimension, ...] = ("channel", "domain", "topic", "level", "agency", "district")
# the figures of a row, in the order of the report's columns and the CSV's
COLUMNS = ("received", "closed", "open", "reopened", "rated", "rating_average")

_COLUMN_OF: dict[Dimension, Any] = {
    "channel": Ticket.channel,
    "domain": Ticket.domain,
    "topic": Ticket.topic,
    "level": Ticket.level,
    "agency": Ticket.agency_id,
    "district": Ticket.district,
}

# what the dimensions and the fixed values are called, by language
DIMENSION_NAMES: dict[str, dict[str, str]] = {
    "channel": {"vi": "Kênh tiếp nhận", "en": "Channel"},
    "domain": {"vi": "Lĩnh vực", "en": "Domain"},
    "topic": {"vi": "Chủ đề", "en": "Topic"},
    "level": {"vi": "Cấp độ xử lý", "en": "Handling level"},
    "agency": {"vi": "Đơn vị xử lý", "en": "Agency"},
    "district": {"vi": "Quận, huyện", "en": "District"},
}
VALUE_NAMES: dict[str, dict[str, dict[str, str]]] = {
    "channel": {
        "phone": {"vi": "Điện thoại", "en": "Phone"},
        "sms": {"vi": "Tin nhắn SMS", "en": "SMS"},
        "email": {"vi": "Thư điện tử", "en": "Email"},
        "web": {"vi": "Trang web", "en": "Web"},
    },
    "domain": {
        "party": {"vi": "Xây dựng Đảng", "en": "Party building"},
        "state": {"vi": "Quản lý Nhà nước", "en": "State management"},
    },
    "level": {str(n): {"vi": f"Cấp độ {n}", "en": f"Level {n}"} for n in range(1, 6)},
}
# the row of tickets without an agency or a district
NONE_NAME = {"vi": "(chưa có)", "en": "(none)"}


@dataclass
class CountRow:
    """One group's tickets received in the period."""

    dimension: Dimension
    key: str  # the channel, domain, topic id, level, agency id or district; "" for none
    names: dict[str, str]  # {"vi": ..., "en": ...}
    received: int = 0
    closed: int = 0
    reopened: int = 0
    rated: int = 0
    rating_sum: int = 0

    @property
    def open(self) -> int:
        return self.received - self.closed

    @property
    def rating_average(self) -> float | None:
        return round(self.rating_sum / self.rated, 2) if self.rated else None

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("vi") or self.key

    def as_dict(self, lang: str = "vi") -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "key": self.key,
            "name": self.name(lang),
            **{c: getattr(self, c) for c in COLUMNS},
        }


async def ticket_counts(
    db: Database, settings: Settings, start: datetime, end: datetime
) -> list[CountRow]:
    """Every dimension's rows, in :data:`DIMENSIONS` order, each by most received then key.

    One grouped query per dimension; the ratings are summed per ticket first, over the
    tickets created in the period only.
    """
    in_period = (Ticket.created_at >= start, Ticket.created_at < end)
    ratings = (
        select(
            Rating.ticket_id.label("ticket_id"),
            func.count().label("n"),
            func.sum(Rating.rating).label("total"),
        )
        .where(Rating.ticket_id.in_(select(Ticket.id).where(*in_period)))
        .group_by(Rating.ticket_id)
        .subquery("ticket_ratings")
    )
    out: list[CountRow] = []
    async with db.session() as s:
        names = await _names(s, settings)
        for dim in DIMENSIONS:
            col = _COLUMN_OF[dim]
            q = (
                select(
                    col.label("key"),
                    func.count().label("received"),
                    func.coalesce(func.sum(case((Ticket.status == Status.CLOSED, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((Ticket.reopens > 0, 1), else_=0)), 0),
                    func.coalesce(func.sum(ratings.c.n), 0),
                    func.coalesce(func.sum(ratings.c.total), 0),
                )
                .outerjoin(ratings, ratings.c.ticket_id == Ticket.id)
                .where(*in_period)
                .group_by(col)
            )
            rows = []
            for key, received, closed, reopened, rated, rating_sum in (await s.execute(q)).all():
                k = "" if key is None else str(key)
                rows.append(
                    CountRow(
                        dimension=dim,
                        key=k,
                        names=names(dim, k),
                        received=int(received),
                        closed=int(closed),
                        reopened=int(reopened),
                        rated=int(rated),
                        rating_sum=int(rating_sum),
                    )
                )
            rows.sort(key=lambda r: (-r.received, r.key.zfill(12) if r.key.isdigit() else r.key))
            out.extend(rows)
    return out


async def _names(s: Any, settings: Settings) -> Any:
    """``names(dimension, key) -> {"vi": ..., "en": ...}``."""
    agencies = (await s.execute(select(Agency.id, Agency.code, Agency.name, Agency.kind))).all()
    agency_names = {str(a.id): a.name for a in agencies}
    districts = {a.code: a.name for a in agencies if a.kind == AgencyKind.DISTRICT}
    topics = {t.id: {"vi": t.name.vi, "en": t.name.get("en")} for t in settings.tickets.topics}

    def names(dim: str, key: str) -> dict[str, str]:
        if key == "":
            return dict(NONE_NAME)
        if dim == "topic":
            return topics.get(key) or {"vi": key, "en": key}
        if dim == "agency":
            name = agency_names.get(key, key)
            return {"vi": name, "en": name}
        if dim == "district":
            # a district of the directory by its code, or as the citizen typed it
            name = districts.get(key, key)
            return {"vi": name, "en": name}
        return VALUE_NAMES.get(dim, {}).get(key) or {"vi": key, "en": key}

    return names


def totals(rows: list[CountRow]) -> CountRow:
    """The period's totals (every dimension sums to them: one of them is enough)."""
    total = CountRow(dimension="channel", key="", names={"vi": "Tổng", "en": "Total"})
    for r in rows:
        if r.dimension == "channel":
            total.received += r.received
            total.closed += r.closed
            total.reopened += r.reopened
            total.rated += r.rated
            total.rating_sum += r.rating_sum
    return total

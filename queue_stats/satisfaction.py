"""Citizens' satisfaction and reopened reports over a period, for the reports and /metrics.

Two sources, each counted in the period it happened in:

- the survey's ratings (:class:`tickets.models.Rating`, by the time given): how many,
  their average, how they spread over 1 to 5, and which share of the calls answered in
  the period were rated (``rated_share``: rated calls answered in the period over the calls
  answered in it);
- the reopenings (history lines ``reopened``, by their time): how many.

Each is grouped as it was when it happened: a rating by the agent who handled the call and
the ticket's agency, topic and level kept with it; a reopening by the agency the ticket was
with (kept in the history line), its topic and level, and the agent who created it.  The
figures' names and definitions are :mod:`queue_stats.kpis`' (``rated``,
``rating_average``, ``rated_share``, ``reopened``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select

from accounts.models import User
from callcenter.models import Call
from core.db import Database
from tickets.models import Agency, Rating, Ticket, TicketEvent

Group = Literal["total", "agency", "topic", "level", "agent"]
GROUPS: tuple[Group, ...] = ("total", "agency", "topic", "level", "agent")
REOPENED = "reopened"  # the history's action (tickets.service.Action.REOPENED)
# the figures of a row, in the order of the report's columns and the CSV's
COLUMNS = ("rated", "rating_average", "rated_share", "reopened")


@dataclass
class SatisfactionRow:
    """One group's ratings and reopenings in the period."""

    group: Group
    key: str  # the agency's, topic's or agent's id, the level; "" for the total
    name: str = ""  # the agency's name (the view names the others)
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])  # ratings 1..5
    reopened: int = 0
    answered: int | None = None  # calls answered (total and agents only)
    rated_calls: int = 0  # ratings of calls answered in the period

    @property
    def rated(self) -> int:
        return sum(self.counts)

    @property
    def rating_average(self) -> float | None:
        if not self.rated:
            return None
        return round(sum((i + 1) * n for i, n in enumerate(self.counts)) / self.rated, 2)

    @property
    def rated_share(self) -> float | None:
        if not self.answered:
            return None
        return round(100.0 * self.rated_calls / self.answered, 1)

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "key": self.key,
            "name": self.name,
            "rated": self.rated,
            "rating_average": self.rating_average,
            "rated_share": self.rated_share,
            "reopened": self.reopened,
            **{f"rating_{i + 1}": n for i, n in enumerate(self.counts)},
        }


async def satisfaction(db: Database, start: datetime, end: datetime) -> list[SatisfactionRow]:
    """The total first, then per agency, topic, level and agent (each sorted by key)."""
    rows: dict[tuple[Group, str], SatisfactionRow] = {}

    def row(group: Group, key: object) -> SatisfactionRow:
        k = (group, "" if key is None else str(key))
        if k not in rows:
            rows[k] = SatisfactionRow(group, k[1])
        return rows[k]

    total = row("total", "")
    async with db.session() as s:
        ratings = (
            await s.execute(
                select(
                    Rating.rating,
                    Rating.agency_id,
                    Rating.topic,
                    Rating.level,
                    Rating.agent_extension,
                    Call.answered_at,
                )
                .outerjoin(Call, Call.id == Rating.call_id)
                .where(Rating.at >= start, Rating.at < end)
            )
        ).all()
        reopens = (
            await s.execute(
                select(TicketEvent.details, Ticket.topic, Ticket.level, User.extension, User.id)
                .join(Ticket, Ticket.id == TicketEvent.ticket_id)
                .outerjoin(User, User.id == Ticket.created_by)
                .where(
                    TicketEvent.action == REOPENED,
                    TicketEvent.at >= start,
                    TicketEvent.at < end,
                )
            )
        ).all()
        answered = (
            await s.execute(
                select(Call.agent_extension, func.count())
                .where(Call.answered_at >= start, Call.answered_at < end)
                .group_by(Call.agent_extension)
            )
        ).all()
        names = dict((await s.execute(select(Agency.id, Agency.name))).all())

    total.answered = 0
    for ext, n in answered:
        total.answered += int(n)
        if ext:
            row("agent", ext).answered = int(n)
    for value, agency_id, topic, level, ext, answered_at in ratings:
        in_period = answered_at is not None and start <= answered_at < end
        targets = [total, row("agent", ext) if ext else None]
        targets += [row("agency", agency_id) if agency_id is not None else None]
        targets += [row("topic", topic) if topic else None]
        targets += [row("level", level) if level is not None else None]
        for r in targets:
            if r is None:
                continue
            r.counts[int(value) - 1] += 1
            if in_period and r.group in ("total", "agent"):
                r.rated_calls += 1
    for details, topic, level, ext, user_id in reopens:
        agency_id = json.loads(details or "{}").get("agency")
        targets = [total, row("topic", topic), row("level", level)]
        if agency_id is not None:
            targets.append(row("agency", agency_id))
        if ext or user_id is not None:
            targets.append(row("agent", ext or f"user-{user_id}"))
        for r in targets:
            r.reopened += 1
    for (group, key), r in rows.items():
        if group == "agency" and key.isdigit():
            r.name = names.get(int(key), key)
        if group == "agent" and r.answered is None:
            r.answered = 0
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(
        rows.values(),
        key=lambda r: (order[r.group], r.name or r.key.zfill(8) if r.key.isdigit() else r.key),
    )

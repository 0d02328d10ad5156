"""The weekly reconciliation: each agency confirms or disputes its week's list.

Steps:

1. :meth:`ReconciliationService.week`: the list of an agency's week (Monday to
   Sunday, local) is the tickets forwarded to it that week, read from the tickets'
   history (``forwarded`` and ``approved`` lines naming the agency, and the creation
   of a level-2 report that named it), so a ticket forwarded and later sent back or
   forwarded elsewhere is still on it.  The list is made the first time it is looked
   at and gains the tickets forwarded since (a week still running grows); two readers
   making it at once make one (unique keys).
2. :meth:`decide`: an officer of the agency confirms a line (the agency has the
   ticket, in the status shown) or disputes it with a reason.  The officer's form
   carries the line's version and the status they saw: a line decided meanwhile by a
   colleague, or a ticket whose status moved, is refused (:class:`ItemChanged`) and
   shown again.  A decision may be changed until a supervisor has resolved it.
3. A dispute is a discrepancy: it is announced at once to the supervisors (bus topic
   ``alerts``; a restricted report's only to those cleared for it: tickets.audience) and
   listed on their page until one of them :meth:`resolve`\\ s it with a note.
4. :meth:`overview`: each agency's state for the week (lines, confirmed, disputed,
   pending; not started, in progress, confirmed, disputed, settled).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from accounts.identity import Actor
from accounts.models import Role
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from tickets.audience import Audience
from tickets.exceptions import NOT_ALLOWED, NOT_NOW, AgencyNotFound, Forbidden, InvalidInput
from tickets.models import Agency, Status, Ticket, TicketEvent
from tickets.reconciliation.exceptions import ItemChanged, ItemNotFound
from tickets.reconciliation.models import Decision, Reconciliation, ReconciliationItem
from tickets.schemas import check_text

log = logging.getLogger(__name__)

# the history's actions that hand a ticket to an agency (tickets.service.Action), and
# the creation, when a level-2 report names its agency at once
FORWARDING = ("forwarded", "approved")
CREATED = "created"
LEADS = (Role.SUPERVISOR, Role.ADMIN)


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


@dataclass
class Line:
    """A line of the list with the ticket as it is now."""

    item: ReconciliationItem
    code: str
    status: str
    level: int
    topic: str
    description: str


@dataclass
class WeekList:
    agency_id: int
    agency_name: str
    week_start: date
    lines: list[Line]

    def count(self, decision: Decision) -> int:
        return sum(1 for line in self.lines if line.item.decision == decision)


@dataclass
class AgencyState:
    """One agency's week as the supervisors see it."""

    agency_id: int
    agency_name: str
    lines: int = 0
    confirmed: int = 0
    disputed: int = 0
    unresolved: int = 0  # disputed and not yet resolved by a supervisor
    pending: int = 0
    last_decided_at: datetime | None = None
    disputes: list[Line] = field(default_factory=list)

    @property
    def state(self) -> str:
        """not_started, in_progress, disputed, settled (disputes resolved) or confirmed."""
        if self.unresolved:
            return "disputed"
        if self.pending == self.lines:
            return "not_started"
        if self.pending:
            return "in_progress"
        return "settled" if self.disputed else "confirmed"


class ReconciliationService:
    def __init__(
        self, db: Database, settings: Settings, clock: Clock, bus: Bus | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.tz

    def bounds(self, week_start: date) -> tuple[datetime, datetime]:
        start = datetime.combine(week_start, datetime.min.time(), tzinfo=self.tz)
        return start, start + timedelta(days=7)

    def last_week(self) -> date:
        """The Monday of the week before this one (the week the meeting goes over)."""
        today = self.clock.now().astimezone(self.tz).date()
        return week_of(today) - timedelta(days=7)

    # -- the lists ----------------------------------------------------------------

    async def forwarded(self, week_start: date) -> dict[int, dict[int, datetime]]:
        """``{agency_id: {ticket_id: first forwarded at}}`` for the week."""
        start, end = self.bounds(week_start)
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.details)
                    .where(
                        or_(
                            TicketEvent.action.in_(FORWARDING),
                            # a level-2 report forwarded as it was made
                            and_(
                                TicketEvent.action == CREATED,
                                TicketEvent.to_status == Status.FORWARDED,
                            ),
                        ),
                        TicketEvent.at >= start,
                        TicketEvent.at < end,
                    )
                    .order_by(TicketEvent.at, TicketEvent.id)
                )
            ).all()
        out: dict[int, dict[int, datetime]] = {}
        for ticket_id, at, details in rows:
            agency = json.loads(details or "{}").get("agency")
            if isinstance(agency, list):  # [from, to] of a forwarding
                agency = agency[1] if len(agency) == 2 else None
            if not isinstance(agency, int):
                continue  # approved without an agency: not forwarded
            out.setdefault(agency, {}).setdefault(ticket_id, at)
        return out

    async def _ensure(self, agency_id: int, week_start: date, tickets: dict[int, datetime]) -> int:
        """The list's id, made if missing, with a line for each of ``tickets``."""
        rec_id = await self._list_id(agency_id, week_start)
        if rec_id is None:
            try:
                async with self.db.session() as s:
                    rec = Reconciliation(
                        agency_id=agency_id, week_start=week_start, created_at=self.clock.now()
                    )
                    s.add(rec)
                    await s.flush()
                    rec_id = rec.id
            except IntegrityError:  # another reader made it at the same moment
                rec_id = await self._list_id(agency_id, week_start)
                assert rec_id is not None
        for _attempt in range(3):
            async with self.db.session() as s:
                have = set(
                    (
                        await s.scalars(
                            select(ReconciliationItem.ticket_id).where(
                                ReconciliationItem.reconciliation_id == rec_id
                            )
                        )
                    ).all()
                )
            missing = {t: at for t, at in tickets.items() if t not in have}
            if not missing:
                break
            try:
                async with self.db.session() as s:
                    s.add_all(
                        ReconciliationItem(
                            reconciliation_id=rec_id,
                            ticket_id=t,
                            forwarded_at=at,
                            decision=Decision.PENDING.value,
                            version=1,
                        )
                        for t, at in missing.items()
                    )
            except IntegrityError:  # another reader added some of them: read again
                continue
        return rec_id

    async def _list_id(self, agency_id: int, week_start: date) -> int | None:
        async with self.db.session() as s:
            return await s.scalar(
                select(Reconciliation.id).where(
                    Reconciliation.agency_id == agency_id,
                    Reconciliation.week_start == week_start,
                )
            )

    async def week(self, agency_id: int, week_start: date) -> WeekList:
        """The agency's list of the week holding ``week_start``, brought up to date."""
        week_start = week_of(week_start)
        async with self.db.session() as s:
            if await s.get(Agency, agency_id) is None:
                raise AgencyNotFound(agency_id)
        tickets = (await self.forwarded(week_start)).get(agency_id, {})
        rec_id = await self._ensure(agency_id, week_start, tickets)
        async with self.db.session() as s:
            agency = await s.get(Agency, agency_id)
            rows = (
                await s.execute(
                    select(ReconciliationItem, Ticket)
                    .join(Ticket, Ticket.id == ReconciliationItem.ticket_id)
                    .where(ReconciliationItem.reconciliation_id == rec_id)
                    .order_by(ReconciliationItem.forwarded_at, ReconciliationItem.id)
                )
            ).all()
        lines = [Line(item, t.code, t.status, t.level, t.topic, t.description) for item, t in rows]
        return WeekList(agency_id, agency.name if agency else str(agency_id), week_start, lines)

    # -- deciding -----------------------------------------------------------------

    async def decide(
        self,
        actor: Actor,
        item_id: int,
        version: int,
        decision: str,
        reason: str | None = None,
        status_seen: str | None = None,
    ) -> ReconciliationItem:
        """An officer of the agency confirms or disputes a line (see the module)."""
        if actor.role != Role.AGENCY or actor.agency_id is None:
            raise Forbidden("reconcile", actor.role)
        if decision not in (Decision.CONFIRMED, Decision.DISPUTED):
            raise InvalidInput.one("decision", NOT_ALLOWED)
        reason = check_text("reason", reason, required=decision == Decision.DISPUTED)
        now = self.clock.now()
        async with self.db.session() as s:
            found = (
                await s.execute(
                    select(ReconciliationItem, Reconciliation.agency_id, Ticket)
                    .join(Reconciliation, Reconciliation.id == ReconciliationItem.reconciliation_id)
                    .join(Ticket, Ticket.id == ReconciliationItem.ticket_id)
                    .where(ReconciliationItem.id == item_id)
                )
            ).first()
            if found is None:
                raise ItemNotFound(item_id)
            item, agency_id, ticket = found
            if agency_id != actor.agency_id:
                raise Forbidden("reconcile", actor.role)
            if item.resolved_at is not None:
                raise InvalidInput.one("decision", NOT_NOW)
            if item.version != version:
                raise ItemChanged(item_id, version, item.version)
            if status_seen is not None and status_seen != ticket.status:
                raise ItemChanged(item_id, version, item.version, status=ticket.status)
            result = await s.execute(
                update(ReconciliationItem)
                .where(ReconciliationItem.id == item_id, ReconciliationItem.version == version)
                .values(
                    decision=decision,
                    reason=reason if decision == Decision.DISPUTED else None,
                    status_seen=ticket.status,
                    decided_by=actor.id,
                    decided_by_name=actor.name,
                    decided_at=now,
                    version=version + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                actual = await s.scalar(
                    select(ReconciliationItem.version).where(ReconciliationItem.id == item_id)
                )
                raise ItemChanged(item_id, version, actual)
            await s.refresh(item)
            agency = await s.get(Agency, agency_id)
            code = ticket.code
        log.info("reconciliation line %s (%s) %s by %s", item_id, code, decision, actor.name)
        if decision == Decision.DISPUTED and self.bus is not None:
            rec_week = await self._week_of_item(item.reconciliation_id)
            # the supervisors who may see the ticket (a restricted one: the cleared only)
            for topic in await Audience(self.db, self.settings).staff_topics(ticket):
                await self.bus.publish(
                    topic,
                    {
                        "type": "reconciliation",
                        "code": code,
                        "agency_id": agency_id,
                        "agency": agency.name if agency else None,
                        "week": rec_week.isoformat() if rec_week else None,
                        "reason": reason,
                    },
                )
        return item

    async def _week_of_item(self, rec_id: int) -> date | None:
        async with self.db.session() as s:
            return await s.scalar(
                select(Reconciliation.week_start).where(Reconciliation.id == rec_id)
            )

    async def resolve(
        self, actor: Actor, item_id: int, version: int, note: str
    ) -> ReconciliationItem:
        """A supervisor (or admin) settles a dispute with a note of what was found."""
        if actor.role not in LEADS:
            raise Forbidden("resolve_dispute", actor.role)
        note = check_text("note", note, required=True)  # type: ignore[assignment]
        async with self.db.session() as s:
            item = await s.get(ReconciliationItem, item_id)
            if item is None:
                raise ItemNotFound(item_id)
            if item.decision != Decision.DISPUTED or item.resolved_at is not None:
                raise InvalidInput.one("note", NOT_NOW)
            if item.version != version:
                raise ItemChanged(item_id, version, item.version)
            result = await s.execute(
                update(ReconciliationItem)
                .where(ReconciliationItem.id == item_id, ReconciliationItem.version == version)
                .values(
                    resolution=note,
                    resolved_by=actor.id,
                    resolved_by_name=actor.name,
                    resolved_at=self.clock.now(),
                    version=version + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise ItemChanged(item_id, version, None)
            await s.refresh(item)
        return item

    # -- the supervisors' view ------------------------------------------------------

    async def overview(self, week_start: date) -> list[AgencyState]:
        """Every agency with tickets forwarded in the week (or a list for it), its lists
        brought up to date: disputed first, then the least advanced, then by name."""
        week_start = week_of(week_start)
        forwarded = await self.forwarded(week_start)
        async with self.db.session() as s:
            listed = set(
                (
                    await s.scalars(
                        select(Reconciliation.agency_id).where(
                            Reconciliation.week_start == week_start
                        )
                    )
                ).all()
            )
        out = []
        for agency_id in sorted(set(forwarded) | listed):
            week = await self.week(agency_id, week_start)
            state = AgencyState(agency_id, week.agency_name, lines=len(week.lines))
            for line in week.lines:
                d = line.item.decision
                state.confirmed += d == Decision.CONFIRMED
                state.pending += d == Decision.PENDING
                if d == Decision.DISPUTED:
                    state.disputed += 1
                    state.disputes.append(line)
                    if line.item.resolved_at is None:
                        state.unresolved += 1
                at = line.item.decided_at
                if at is not None and (state.last_decided_at is None or at > state.last_decided_at):
                    state.last_decided_at = at
            out.append(state)
        order = {"disputed": 0, "not_started": 1, "in_progress": 2, "settled": 3, "confirmed": 4}
        out.sort(key=lambda a: (order[a.state], a.agency_name.casefold()))
        return out

    async def unresolved(self) -> int:
        """Disputed lines no supervisor has resolved yet, all weeks."""
        async with self.db.session() as s:
            return int(
                await s.scalar(
                    select(func.count()).where(
                        ReconciliationItem.decision == Decision.DISPUTED,
                        ReconciliationItem.resolved_at.is_(None),
                    )
                )
                or 0
            )


def as_dict(line: Line) -> dict[str, Any]:
    """A line for JSON (the API, tests)."""
    i = line.item
    return {
        "id": i.id,
        "code": line.code,
        "status": line.status,
        "decision": i.decision,
        "reason": i.reason,
        "version": i.version,
        "resolved": i.resolved_at is not None,
    }

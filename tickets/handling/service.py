"""Several agencies on one ticket, and delegation down the agency tree: the parts' moves.

A ticket forwarded to a lead agency may have co-handling agencies (a supervisor names
them when forwarding: :func:`tickets.handling.rounds.set_co_agencies`), each with its
own deadline, accepting, answering or sending back its own part here; the lead answers
the ticket once every co-agency has, combining their answers (the ticket's ``answer``
refuses before).  Any agency holding an open part (the lead, a co-agency, a sub-agency
given a delegation) may pass it to one of its sub-agencies (district -> ward) with a
deadline within its own; the sub-agency's officers see the ticket and answer their
part, and the delegating agency's part stays open, and counted in the reports, until it
adopts that answer (:meth:`AssignmentService.adopt`, as its own) or answers itself.

Every move is one transaction that writes the part, bumps the ticket's ``version``
under the same compare-and-set as the ticket's own moves and appends a line to the
ticket's history: so of a co-agency answering while the lead combines, one is refused
with a VersionConflict, and the lead never combines without an answer it has not seen.
Who may make which move is :mod:`tickets.handling.rules`' table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import SYSTEM, Actor
from core.clock import Clock
from core.db import Database
from tickets.confidential import cleared_agency, restricted
from tickets.exceptions import (
    BEFORE_BELOW,
    BEYOND_LEAD,
    BEYOND_PARENT,
    HOLDS_PART,
    IN_PAST,
    INACTIVE,
    NEEDS_TIME_ZONE,
    NOT_CLEARED,
    NOT_DESCENDANT,
    REQUIRED,
    UNKNOWN,
    InvalidInput,
    VersionConflict,
)
from tickets.handling import rules
from tickets.handling.models import OPEN, Assignment, Role, State
from tickets.handling.rounds import parts, subtree, withdraw
from tickets.models import WITH_AGENCY, Agency, Ticket
from tickets.queries import load_ticket
from tickets.schemas import check_id, check_text
from tickets.service import TicketService

log = logging.getLogger(__name__)

# a tree deeper than this is a broken one (a cycle the directory should have refused)
MAX_DEPTH = 32


class PartAction(StrEnum):
    """What a history line of a part's move records (``TicketEvent.action``)."""

    DELEGATED = "delegated"
    PART_ACCEPTED = "part_accepted"
    PART_ANSWERED = "part_answered"
    PART_RETURNED = "part_returned"
    ADOPTED = "adopted"
    WITHDRAWN = "delegation_withdrawn"
    DEADLINE_MOVED = "part_deadline_moved"
    # the system: an open part's deadline passed (the overdue watch, tickets.alerts)
    ESCALATED = "part_escalated"


@dataclass
class PartView:
    """One part as the ticket page shows it: the row (None for the lead), its agency,
    the moves the reader may make on it, and the parts delegated from it."""

    row: Assignment | None
    agency_id: int | None
    role: str  # "lead", "co", "delegated"
    status: str
    deadline_at: datetime | None
    answer: str | None
    moves: list[str]
    children: list[PartView] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.row.id) if self.row is not None else "lead"


class AssignmentService:
    """The parts' moves (delegate, accept, answer, send back, adopt, withdraw) and their view."""

    def __init__(self, db: Database, tickets: TicketService, clock: Clock) -> None:
        self.db = db
        self.tickets = tickets
        self.clock = clock

    # -- reading ------------------------------------------------------------------

    async def parts(self, ticket_id: int) -> list[Assignment]:
        """Every part of the ticket besides the lead's, oldest first."""
        async with self.db.session() as s:
            return await parts(s, ticket_id)

    async def tree(self, actor: Actor, ticket: Ticket) -> list[PartView]:
        """The ticket's parts as a tree for ``actor``: the lead's with its delegations,
        then each co-agency's with theirs (withdrawn parts are left out)."""
        rows = [r for r in await self.parts(ticket.id) if r.status != State.WITHDRAWN]

        def view(row: Assignment) -> PartView:
            v = PartView(
                row=row,
                agency_id=row.agency_id,
                role=row.role,
                status=row.status,
                deadline_at=row.deadline_at,
                answer=row.answer,
                moves=rules.offered(actor, ticket, row),
            )
            v.children = [view(r) for r in rows if r.parent_id == row.id]
            return v

        lead = PartView(
            row=None,
            agency_id=ticket.agency_id,
            role="lead",
            status=ticket.status,
            deadline_at=ticket.deadline_at,
            answer=ticket.result,
            moves=rules.offered(actor, ticket, None),
            children=[
                view(r)
                for r in rows
                if r.role == Role.DELEGATED
                and r.parent_id is None
                and r.from_agency_id == ticket.agency_id
            ],
        )
        return [lead, *(view(r) for r in rows if r.role == Role.CO)]

    # -- the moves ----------------------------------------------------------------

    async def delegate(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        agency_id: int,
        deadline_at: datetime | None = None,
        note: str | None = None,
        *,
        part_id: int | None = None,
    ) -> Assignment:
        """Pass the actor's part (``part_id``; None: the lead's) to a sub-agency.

        Refused on ``agency_id`` unless it is an active agency below the part's agency in
        the tree that holds no open part of the ticket already (and, for a restricted
        report, is cleared for restricted reports); on ``deadline_at`` if it is past, or
        later than the part's own deadline (none given: the part's own).
        """
        agency_id = check_id("agency_id", agency_id, required=True)  # type: ignore[assignment]
        note = check_text("note", note, required=False)
        if deadline_at is not None and (
            not isinstance(deadline_at, datetime) or deadline_at.utcoffset() is None
        ):
            raise InvalidInput.one("deadline_at", NEEDS_TIME_ZONE)
        async with self.db.session() as s:
            ticket, part, rows = await self._read(s, actor, "delegate", ticket_id, version, part_id)
            holder = part.agency_id if part is not None else ticket.agency_id
            assert holder is not None
            target = await self._check_below(s, agency_id, holder)
            settings = self.tickets.settings.tickets
            if restricted(ticket, settings) and not cleared_agency(target, settings):
                raise InvalidInput.one("agency_id", NOT_CLEARED)
            if any(r.agency_id == agency_id and r.status in OPEN for r in rows):
                raise InvalidInput.one("agency_id", HOLDS_PART)
            now = self.clock.now()
            own = part.deadline_at if part is not None else ticket.deadline_at
            if deadline_at is None:
                deadline_at = own
            else:
                deadline_at = deadline_at.astimezone(UTC)
                if deadline_at <= now:
                    raise InvalidInput.one("deadline_at", IN_PAST)
                if own is not None and deadline_at > own:
                    raise InvalidInput.one("deadline_at", BEYOND_PARENT, deadline=self._local(own))
            row = Assignment(
                ticket_id=ticket.id,
                agency_id=agency_id,
                role=Role.DELEGATED.value,
                parent_id=part.id if part is not None else None,
                from_agency_id=holder,
                deadline_at=deadline_at,
                status=State.FORWARDED.value,
                created_by=actor.id,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            details: dict[str, Any] = {
                "part": row.id,
                "agency": [holder, agency_id],
                "deadline": deadline_at,
            }
            if note:
                details["note"] = note
            await self._bump(s, actor, ticket, version, PartAction.DELEGATED, details, now)
            await s.refresh(row)
        log.info("ticket %s: agency %s delegated to %s", ticket.code, holder, agency_id)
        return row

    async def accept(self, actor: Actor, ticket_id: int, version: int, part_id: int) -> Assignment:
        """The part's agency takes it on."""
        return await self._move(
            actor,
            ticket_id,
            version,
            part_id,
            "accept",
            PartAction.PART_ACCEPTED,
            {"status": State.ACCEPTED.value, "accepted_at": "now"},
            {},
        )

    async def answer(
        self, actor: Actor, ticket_id: int, version: int, part_id: int, result: str
    ) -> Assignment:
        """The part's agency gives its answer; what it delegated and is still open ends
        (its own answer overtakes it)."""
        result = check_text("result", result, required=True)  # type: ignore[assignment]
        return await self._move(
            actor,
            ticket_id,
            version,
            part_id,
            "answer",
            PartAction.PART_ANSWERED,
            {"status": State.ANSWERED.value, "answer": result, "answered_at": "now"},
            {"result": result},
            end_below=True,
        )

    async def send_back(
        self, actor: Actor, ticket_id: int, version: int, part_id: int, reason: str
    ) -> Assignment:
        """The part's agency sends its part back with a reason (not its competence): a
        co-agency's to the supervisors (it no longer holds up the lead's answer), a
        delegation's to the agency that delegated it."""
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        return await self._move(
            actor,
            ticket_id,
            version,
            part_id,
            "send_back",
            PartAction.PART_RETURNED,
            {"status": State.RETURNED.value, "return_reason": reason, "ended_at": "now"},
            {"reason": reason},
            end_below=True,
        )

    async def withdraw(
        self, actor: Actor, ticket_id: int, version: int, part_id: int, note: str | None = None
    ) -> Assignment:
        """The delegating agency takes its delegation back (and what was delegated below it)."""
        note = check_text("note", note, required=False)
        return await self._move(
            actor,
            ticket_id,
            version,
            part_id,
            "withdraw",
            PartAction.WITHDRAWN,
            {"status": State.WITHDRAWN.value, "ended_at": "now"},
            {"note": note} if note else {},
            end_below=True,
        )

    async def move_deadline(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        part_id: int,
        deadline_at: datetime | None,
        reason: str,
    ) -> Assignment:
        """Move an open part's deadline, with a reason: whoever gave the part does (the
        delegating agency a delegation's, the supervisors a co-handling agency's).

        Refused on ``deadline_at`` if missing, past, later than the giver's own deadline
        (a delegation's: the delegating part's; a co-agency's: the lead's), or earlier
        than a deadline given below the part (an open delegation of its own).  The
        overdue watch escalates the part again if the new deadline passes too.
        """
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        if deadline_at is None:
            raise InvalidInput.one("deadline_at", REQUIRED)
        if not isinstance(deadline_at, datetime) or deadline_at.utcoffset() is None:
            raise InvalidInput.one("deadline_at", NEEDS_TIME_ZONE)
        deadline_at = deadline_at.astimezone(UTC)
        async with self.db.session() as s:
            ticket, part, rows = await self._read(s, actor, "deadline", ticket_id, version, part_id)
            assert part is not None
            now = self.clock.now()
            if deadline_at <= now:
                raise InvalidInput.one("deadline_at", IN_PAST)
            if part.role == Role.CO:
                limit, beyond = ticket.deadline_at, BEYOND_LEAD
            else:
                parent = next((r for r in rows if r.id == part.parent_id), None)
                limit = parent.deadline_at if parent is not None else ticket.deadline_at
                beyond = BEYOND_PARENT
            if limit is not None and deadline_at > limit:
                raise InvalidInput.one("deadline_at", beyond, deadline=self._local(limit))
            below = [
                r.deadline_at
                for r in rows
                if r.parent_id == part.id and r.status in OPEN and r.deadline_at is not None
            ]
            if below and deadline_at < max(below):
                raise InvalidInput.one(
                    "deadline_at", BEFORE_BELOW, deadline=self._local(max(below))
                )
            old = part.deadline_at
            # a new deadline: the overdue watch looks at it afresh
            await self._set(s, part.id, {"deadline_at": deadline_at, "escalated_at": None}, now)
            details = {
                "part": part.id,
                "agency": part.agency_id,
                "deadline": [old, deadline_at],
                "reason": reason,
            }
            await self._bump(s, actor, ticket, version, PartAction.DEADLINE_MOVED, details, now)
            await s.refresh(part)
        log.info("ticket %s: part %s deadline moved by %s", ticket.code, part.id, actor.name)
        return part

    async def adopt(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        part_id: int,
        result: str | None = None,
    ) -> Ticket | Assignment:
        """The delegating agency accepts the sub-agency's answer as its own answer
        (``result``: the text to give, by default the sub-agency's).

        Delegated from the lead: this is the lead's answer to the ticket
        (:meth:`TicketService.answer`, so the co-agencies must have answered and the
        citizen is told); returns the ticket.  Delegated from another part: that part is
        answered; returns it.
        """
        result = check_text("result", result, required=False)
        async with self.db.session() as s:
            ticket, part, _rows = await self._read(s, actor, "adopt", ticket_id, version, part_id)
            assert part is not None
            text = result or part.answer or ""
            parent_id = part.parent_id
        if parent_id is None:
            return await self.tickets.answer(actor, ticket_id, version, text, adopted=part_id)
        async with self.db.session() as s:
            ticket, part, rows = await self._read(s, actor, "adopt", ticket_id, version, part_id)
            assert part is not None and part.parent_id is not None
            parent = next(r for r in rows if r.id == part.parent_id)
            # the parent's own answer: its holder is the actor (checked as the delegator)
            rules.check("answer", actor, ticket, parent)
            now = self.clock.now()
            await self._set(s, part.id, {"status": State.ADOPTED.value, "ended_at": now}, now)
            await self._set(
                s,
                parent.id,
                {"status": State.ANSWERED.value, "answer": text, "answered_at": now},
                now,
            )
            ended = await withdraw(
                s, [i for i in subtree(rows, parent.id, None) if i != part.id], now
            )
            details: dict[str, Any] = {
                "part": parent.id,
                "adopted": part.id,
                "result": text,
                **self._timeliness(parent, now),
            }
            if ended:
                details["withdrawn"] = ended
            await self._bump(s, actor, ticket, version, PartAction.ADOPTED, details, now)
            await s.refresh(parent)
            return parent

    async def escalate_overdue(self, now: datetime) -> list[tuple[Assignment, Ticket]]:
        """Mark every open part whose deadline passed, of a ticket still with its
        agencies; returns those newly marked, with their tickets (the caller alerts).

        As the tickets' own escalation: once per deadline, re-checked in the UPDATE so
        two processes mark each part once, and the ticket's version is not bumped (an
        officer answering as the deadline passes is not refused because of the alarm).
        """
        due = and_(
            Assignment.status.in_([st.value for st in OPEN]),
            Assignment.deadline_at < now,
            or_(
                Assignment.escalated_at.is_(None),
                Assignment.escalated_at < Assignment.deadline_at,
            ),
        )
        marked: list[tuple[Assignment, Ticket]] = []
        async with self.db.session() as s:
            ids = (
                await s.scalars(
                    select(Assignment.id)
                    .join(Ticket, Ticket.id == Assignment.ticket_id)
                    .where(due, Ticket.status.in_([st.value for st in WITH_AGENCY]))
                    .order_by(Assignment.deadline_at, Assignment.id)
                )
            ).all()
            for part_id in ids:
                result = await s.execute(
                    update(Assignment)
                    .where(Assignment.id == part_id, due)
                    .values(escalated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # answered or marked by another process meanwhile
                part = await s.get(Assignment, part_id, populate_existing=True)
                assert part is not None
                ticket = await load_ticket(s, part.ticket_id)
                details = {"part": part.id, "agency": part.agency_id, "deadline": part.deadline_at}
                s.add(
                    self.tickets._event(  # noqa: SLF001 - one shape for every history line
                        ticket.id,
                        SYSTEM,
                        PartAction.ESCALATED,  # type: ignore[arg-type]
                        ticket.status,
                        ticket.status,
                        details,
                        now,
                    )
                )
                marked.append((part, ticket))
        for part, ticket in marked:
            log.warning(
                "ticket %s: part %s of agency %s overdue since %s",
                ticket.code,
                part.id,
                part.agency_id,
                part.deadline_at,
            )
        return marked

    # -- helpers ------------------------------------------------------------------

    async def _move(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        part_id: int,
        action: str,
        event: PartAction,
        values: dict[str, Any],
        details: dict[str, Any],
        *,
        end_below: bool = False,
    ) -> Assignment:
        async with self.db.session() as s:
            ticket, part, rows = await self._read(s, actor, action, ticket_id, version, part_id)
            assert part is not None
            now = self.clock.now()
            values = {k: now if v == "now" else v for k, v in values.items()}
            details = {"part": part.id, "agency": part.agency_id, **details}
            if event is PartAction.PART_ANSWERED:
                details |= self._timeliness(part, now)
            await self._set(s, part.id, values, now)
            if end_below:
                ended = await withdraw(s, subtree(rows, part.id, None), now)
                if ended:
                    details["withdrawn"] = ended
            await self._bump(s, actor, ticket, version, event, details, now)
            await s.refresh(part)
        log.info("ticket %s: part %s %s by %s", ticket.code, part.id, action, actor.name)
        return part

    async def _read(
        self,
        s: AsyncSession,
        actor: Actor,
        action: str,
        ticket_id: int,
        version: int,
        part_id: int | None,
    ) -> tuple[Ticket, Assignment | None, list[Assignment]]:
        """The ticket (at ``version``), the part and all the parts, the move checked."""
        ticket = await self.tickets._load(s, ticket_id)  # noqa: SLF001 - the tickets' own read
        rows = await parts(s, ticket.id)
        part = None
        if part_id is not None:
            part = next((r for r in rows if r.id == part_id), None)
            if part is None:
                raise InvalidInput.one("part", UNKNOWN)
        rules.check(action, actor, ticket, part)
        if ticket.version != version:
            raise VersionConflict(ticket.id, version, ticket.version)
        return ticket, part, rows

    async def _check_below(self, s: AsyncSession, agency_id: int, holder: int) -> Agency:
        """The agency ``agency_id``; refused (``agency_id``) unless active and strictly
        below ``holder``."""
        target = await s.get(Agency, agency_id)
        if target is None:
            raise InvalidInput.one("agency_id", UNKNOWN)
        up = target.parent_id
        for _ in range(MAX_DEPTH):
            if up is None:
                break
            if up == holder:
                if not target.active:
                    raise InvalidInput.one("agency_id", INACTIVE)
                return target
            up = await s.scalar(select(Agency.parent_id).where(Agency.id == up))
        raise InvalidInput.one("agency_id", NOT_DESCENDANT)

    @staticmethod
    def _timeliness(part: Assignment, now: datetime) -> dict[str, Any]:
        # kept with the answer: agencies are ranked by how timely they answer
        return {"late": now > part.deadline_at} if part.deadline_at is not None else {}

    @staticmethod
    async def _set(s: AsyncSession, part_id: int, values: dict[str, Any], now: datetime) -> None:
        await s.execute(
            update(Assignment)
            .where(Assignment.id == part_id)
            .values(**values, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def _bump(
        self,
        s: AsyncSession,
        actor: Actor,
        ticket: Ticket,
        version: int,
        action: PartAction,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        """Bump the ticket's version if it is still ``version`` (else VersionConflict, and
        the transaction with the part's change is rolled back) and log the move."""
        result = await s.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.version == version)
            .values(version=version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            actual = await s.scalar(select(Ticket.version).where(Ticket.id == ticket.id))
            raise VersionConflict(ticket.id, version, actual)
        event = self.tickets._event(  # noqa: SLF001 - one shape for every history line
            ticket.id,
            actor,
            action,  # type: ignore[arg-type]  # a StrEnum of its own, stored by value
            ticket.status,
            ticket.status,
            details,
            now,
        )
        s.add(event)
        await s.flush()

    def _local(self, moment: datetime) -> str:
        return self.tickets.local_time(moment)

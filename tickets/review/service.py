"""The supervisors' review of an agency's work: refusing an answer, extending a deadline,
and the files staff and officers attach to a ticket.

Refusing an answer.  A supervisor (or an admin) who finds an agency's answer poor sends
it back with a reason (``refuse_answer``): the ticket returns to the agency as ACCEPTED
(it had taken it on), its ``result`` is cleared, the answer is kept in the history line
and in an :class:`~tickets.review.models.AnswerRefusal` row that the leaders' reports
count per agency ("sent-back answers").  The deadline does not move: a late answer
that was refused is still late (an extension moves it).  A result call written with the
answer and not yet tried is taken back, so the citizen is not called with an answer
that was refused, and the corrected answer gets its call.

Extensions.  An agency's officer asks for more time with a reason and a proposed
deadline later than the current one (``request_extension``); the ticket's
``extension_until`` holds it while open, so the workflow's table (one open request at
a time; grant and refuse only while one is open) reads it like any other column.  A
supervisor grants it (the deadline moves; a missed new deadline escalates again) or
refuses it with a reason.  Answering or sending the ticket back withdraws an open
request (:mod:`tickets.review.records`).

Every move is the workflow's (:mod:`tickets.workflow`), written through
:meth:`tickets.service.TicketService._write`: one transaction, the version checked
(``UPDATE ... WHERE version = ?``), a history line.  After the commit the agency's
officers are told over the bus (``agency.<id>``) when a refusal or a decision is theirs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import Actor
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from tickets.attachments import FILE_TOO_MANY, NewAttachment, new_id, remove_file, write_file
from tickets.audience import Audience, agency_topic
from tickets.confidential import cleared_agency, restricted
from tickets.exceptions import (
    NEEDS_TIME_ZONE,
    NOT_CLEARED,
    NOT_LATER,
    REQUIRED,
    Forbidden,
    InvalidInput,
)
from tickets.models import Agency, Attachment, ResultCall, ResultCallState, Status, Ticket
from tickets.queries import is_visible
from tickets.review.models import AnswerRefusal, DeadlineExtension, ExtensionState
from tickets.schemas import check_text
from tickets.service import Action, TicketService
from tickets.workflow import check_actor, check_move, check_role

log = logging.getLogger(__name__)


class ReviewService:
    """Refused answers, deadline extensions and staff's attachments, written."""

    def __init__(
        self,
        tickets: TicketService,
        db: Database,
        settings: Settings,
        clock: Clock,
        bus: Bus | None = None,
    ) -> None:
        self.tickets = tickets
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.audience = Audience(db, settings)

    # -- refusing an answer ---------------------------------------------------------

    async def refuse_answer(
        self, actor: Actor, ticket_id: int, version: int, reason: str
    ) -> Ticket:
        """Send an ANSWERED ticket's answer back to its agency with a reason (supervisors,
        admins); see the module's docstring."""
        check_role("refuse_answer", actor)
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        async with self.db.session() as s:
            ticket = await self.tickets._load(s, ticket_id)
            check_actor("refuse_answer", actor, ticket)
            self.tickets._check_version(ticket, version)
            check_move("refuse_answer", actor, ticket)
            assert ticket.agency_id is not None  # the workflow's grant asks for one
            settings = self.settings.tickets
            agency = await s.get(Agency, ticket.agency_id)
            if restricted(ticket, settings) and (
                agency is None or not cleared_agency(agency, settings)
            ):
                # made restricted after this agency answered: it may no longer hold it
                raise InvalidInput.one("agency_id", NOT_CLEARED)
            now = self.clock.now()
            answer = ticket.result
            agency_id = ticket.agency_id
            values = {"status": Status.ACCEPTED.value, "result": None}
            details: dict[str, Any] = {"answer": answer, "reason": reason, "agency": agency_id}
            ticket = await self.tickets._write(
                s, actor, ticket, version, Action.ANSWER_REFUSED, values, details, now
            )
            s.add(
                AnswerRefusal(
                    ticket_id=ticket.id,
                    agency_id=agency_id,
                    answer=answer,
                    reason=reason,
                    refused_by=actor.id,
                    refused_by_name=actor.name,
                    at=now,
                )
            )
            await self._take_back_result_call(s, ticket, now)
        log.info("ticket %s: answer refused by %s: %s", ticket.code, actor.name, reason)
        await self._tell(agency_id, "answer_refused", ticket, reason=reason)
        return ticket

    @staticmethod
    async def _take_back_result_call(s: AsyncSession, ticket: Ticket, now: datetime) -> None:
        """The call that would tell the citizen the refused answer: deleted if never tried
        (the corrected answer makes its own), ended as cancelled if waiting for a retry;
        one ringing or talking now is left to end."""
        round_ = ticket.reopens or 0
        mine = (ResultCall.ticket_id == ticket.id, ResultCall.round == round_)
        pending = ResultCall.state == ResultCallState.PENDING.value
        await s.execute(
            delete(ResultCall)
            .where(*mine, pending, ResultCall.attempts == 0)
            .execution_options(synchronize_session=False)
        )
        await s.execute(
            update(ResultCall)
            .where(*mine, pending)
            .values(
                state=ResultCallState.DONE.value,
                last_result="cancelled",
                ended_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )

    # -- extensions -----------------------------------------------------------------

    async def request_extension(
        self, actor: Actor, ticket_id: int, version: int, until: datetime | None, reason: str
    ) -> Ticket:
        """An officer of the ticket's agency asks for its deadline to move to ``until``."""
        check_role("request_extension", actor)
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        if until is None:
            raise InvalidInput.one("until", REQUIRED)
        if until.tzinfo is None or until.utcoffset() is None:
            raise InvalidInput.one("until", NEEDS_TIME_ZONE)
        until = until.astimezone(UTC)
        async with self.db.session() as s:
            ticket = await self.tickets._load(s, ticket_id)
            check_actor("request_extension", actor, ticket)
            self.tickets._check_version(ticket, version)
            check_move("request_extension", actor, ticket)
            assert ticket.deadline_at is not None and ticket.agency_id is not None
            if until <= ticket.deadline_at:
                local = ticket.deadline_at.astimezone(self.settings.tz)
                raise InvalidInput.one("until", NOT_LATER, deadline=f"{local:%d/%m/%Y %H:%M}")
            now = self.clock.now()
            old, agency_id = ticket.deadline_at, ticket.agency_id
            details = {"deadline": [old, until], "extension_reason": reason}
            # the versioned write first: of two requests at once the second is a
            # VersionConflict, before the open-request index would refuse its row
            ticket = await self.tickets._write(
                s,
                actor,
                ticket,
                version,
                Action.EXTENSION_REQUESTED,
                {"extension_until": until},
                details,
                now,
            )
            s.add(
                DeadlineExtension(
                    ticket_id=ticket.id,
                    agency_id=agency_id,
                    reason=reason,
                    old_deadline=old,
                    proposed_deadline=until,
                    state=ExtensionState.OPEN.value,
                    requested_by=actor.id,
                    requested_by_name=actor.name,
                    requested_at=now,
                )
            )
        log.info("ticket %s: %s asks for a deadline of %s", ticket.code, actor.name, until)
        # the supervisors who may see the ticket (a restricted one: the cleared only)
        for topic in await self.audience.staff_topics(ticket):
            await self._publish(
                topic,
                {"type": "extension_requested", "code": ticket.code, "until": until.isoformat()},
            )
        return ticket

    async def grant_extension(
        self, actor: Actor, ticket_id: int, version: int, note: str | None = None
    ) -> Ticket:
        """Move the deadline to the one the open request proposed (supervisors, admins)."""
        check_role("grant_extension", actor)
        note = check_text("note", note, required=False)
        return await self._decide(actor, ticket_id, version, True, note)

    async def refuse_extension(
        self, actor: Actor, ticket_id: int, version: int, reason: str
    ) -> Ticket:
        """Refuse the open request with a reason (supervisors, admins); the deadline stays."""
        check_role("refuse_extension", actor)
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        return await self._decide(actor, ticket_id, version, False, reason)

    async def _decide(
        self, actor: Actor, ticket_id: int, version: int, grant: bool, note: str | None
    ) -> Ticket:
        name = "grant_extension" if grant else "refuse_extension"
        async with self.db.session() as s:
            ticket = await self.tickets._load(s, ticket_id)
            check_actor(name, actor, ticket)
            self.tickets._check_version(ticket, version)
            check_move(name, actor, ticket)
            until = ticket.extension_until
            assert until is not None and ticket.agency_id is not None
            agency_id = ticket.agency_id
            now = self.clock.now()
            state = ExtensionState.GRANTED if grant else ExtensionState.REFUSED
            await s.execute(
                update(DeadlineExtension)
                .where(
                    DeadlineExtension.ticket_id == ticket.id,
                    DeadlineExtension.state == ExtensionState.OPEN.value,
                )
                .values(
                    state=state.value,
                    decided_by=actor.id,
                    decided_by_name=actor.name,
                    decided_at=now,
                    decision_note=note,
                )
                .execution_options(synchronize_session=False)
            )
            values: dict[str, Any] = {"extension_until": None}
            details: dict[str, Any] = {}
            if grant:
                values["deadline_at"] = until
                details["deadline"] = [ticket.deadline_at, until]
                if note:
                    details["note"] = note
                action = Action.EXTENSION_GRANTED
            else:
                details = {"proposed_deadline": until, "refusal_reason": note}
                action = Action.EXTENSION_REFUSED
            ticket = await self.tickets._write(
                s, actor, ticket, version, action, values, details, now
            )
        log.info("ticket %s: extension %s by %s", ticket.code, state, actor.name)
        await self._tell(agency_id, f"extension_{state.value}", ticket, reason=note)
        return ticket

    async def extensions(self, ticket_id: int) -> list[DeadlineExtension]:
        """The ticket's extension requests, oldest first."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(DeadlineExtension)
                .where(DeadlineExtension.ticket_id == ticket_id)
                .order_by(DeadlineExtension.requested_at, DeadlineExtension.id)
            )
            return list(rows.all())

    async def refusals(self, ticket_id: int) -> list[AnswerRefusal]:
        """The answers of the ticket refused, oldest first."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(AnswerRefusal)
                .where(AnswerRefusal.ticket_id == ticket_id)
                .order_by(AnswerRefusal.at, AnswerRefusal.id)
            )
            return list(rows.all())

    # -- attachments ------------------------------------------------------------------

    async def attach(
        self, actor: Actor, ticket_id: int, files: Sequence[NewAttachment]
    ) -> list[Attachment]:
        """Attach checked files (:func:`tickets.attachments.check_file`) to a ticket:
        anyone who may see it.  The files are written before the rows commit and removed
        if they do not; a history line names them.  The ticket's version is not bumped
        (as a comment): an officer attaching a photo does not stale a supervisor's form.
        """
        if not files:
            raise InvalidInput.one("attachment", REQUIRED)
        written: list[str] = []
        try:
            async with self.db.session() as s:
                ticket = await self.tickets._load(s, ticket_id)
                if not await is_visible(s, actor, ticket.id, self.settings.tickets):
                    raise Forbidden("attach", actor.role)
                have = await s.scalar(select(func.count()).where(Attachment.ticket_id == ticket.id))
                limit = self.settings.tickets.attachments_per_ticket
                if (have or 0) + len(files) > limit:
                    raise InvalidInput.one("attachment", FILE_TOO_MANY, max=limit)
                now = self.clock.now()
                rows = []
                for f in files:
                    aid = new_id()
                    written.append(aid)
                    await asyncio.to_thread(write_file, self.settings, aid, f.data)
                    row = Attachment(
                        id=aid,
                        ticket_id=ticket.id,
                        kind=f.kind,
                        content_type=f.content_type,
                        size=len(f.data),
                        width=f.width,
                        height=f.height,
                        sha256=f.sha256,
                        original_name=f.original_name,
                        created_at=now,
                        added_by=actor.id,
                        added_by_name=actor.name,
                    )
                    s.add(row)
                    rows.append(row)
                details = {"files": ", ".join(f.original_name or f.content_type for f in files)}
                s.add(
                    self.tickets._event(
                        ticket.id,
                        actor,
                        Action.ATTACHED,
                        ticket.status,
                        ticket.status,
                        details,
                        now,
                    )
                )
                await s.flush()
        except BaseException:
            for aid in written:
                remove_file(self.settings, aid)
            raise
        log.info("ticket %s: %d file(s) attached by %s", ticket.code, len(rows), actor.name)
        return rows

    # -- telling the agency -----------------------------------------------------------

    async def _tell(self, agency_id: int, kind: str, ticket: Ticket, **extra: Any) -> None:
        """Publish ``kind`` to the agency's officers."""
        await self._publish(
            agency_topic(agency_id),
            {"type": kind, "code": ticket.code, "status": ticket.status, **extra},
        )

    async def _publish(self, topic: str, message: dict[str, Any]) -> None:
        """A failure is logged: the change is written, the notice is a courtesy."""
        if self.bus is None:
            return
        try:
            await self.bus.publish(topic, message)
        except Exception:  # noqa: BLE001 - the change is written; the notice is a courtesy
            log.exception("publishing %s on %s failed", message.get("type"), topic)

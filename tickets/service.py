"""The life of a citizen's report: create, classify, forward, answer, close.

The workflow follows the five handling levels (see DOMAIN.md):

- level 1 is answered on the call and closed at once;
- level 2 is forwarded to the responsible agency (NEW until one is chosen);
- level 3 waits for a leader's approval (PENDING_APPROVAL), then is forwarded;
- level 4 is a meeting to arrange (MEETING_PENDING -> MEETING_SCHEDULED);
- level 5 is a proposal, closed with a thank-you letter (PROPOSAL).

Forwarded tickets go FORWARDED -> ACCEPTED -> ANSWERED (or RETURNED, to be
forwarded again) and are closed once the citizen has been told.

Every change is one transaction that writes the ticket and appends its
history line (a ``TicketEvent``).  Writers pass the ``version`` they read;
the row is written with ``UPDATE ... WHERE id = ? AND version = ?`` and the
version bumped, so of two supervisors editing the same ticket the second gets
a VersionConflict instead of silently overwriting the first.  The one
exception is the deadline escalation: it writes only the system's own
columns (``escalations``, ``escalated_at``) under its own compare-and-set
condition, and does not bump the version, so that an agency officer typing an
answer as the deadline passes is not refused because of the alarm.

Each public method opens its own short session (no session outlives a call).  Who may take
which action from which status is the table of :mod:`tickets.workflow`; reading tickets,
their history and lists is :mod:`tickets.queries`'.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy import event as orm_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from callcenter.models import Call
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from tickets import repeats
from tickets.attachments import NewAttachment, new_id, remove_file, write_file
from tickets.codes import new_code
from tickets.confidential import RESTRICTION_REFUSED, cleared_agency, restricted_as
from tickets.exceptions import (
    HELD_UNCLEARED,
    INACTIVE,
    NEEDED_NOW,
    NEEDS_TIME_ZONE,
    NOT_ALLOWED,
    NOT_CLEARED,
    NOT_NOW,
    REQUIRED,
    SECOND_FOR_CALL,
    UNKNOWN,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    VersionConflict,
)
from tickets.handling.rounds import close_parts, lead_answers, open_holders, set_co_agencies
from tickets.kb.models import Article
from tickets.models import (
    DEADLINE_STATUSES,
    PUBLIC_SEARCHED,
    SEARCHED,
    Agency,
    Attachment,
    Channel,
    Status,
    Ticket,
    TicketEvent,
    public_text,
    search_text,
)
from tickets.numbers import new_number
from tickets.publication import is_published
from tickets.queries import is_visible, load_ticket
from tickets.result_calls import HISTORY_ACTION, add_call
from tickets.review.records import withdraw_extension
from tickets.schemas import (
    ADDRESS_MAX,
    TicketCreate,
    TicketUpdate,
    check_id,
    check_text,
    validate,
)
from tickets.terms import terms
from tickets.workflow import (
    CLOSE_WITH_NOTE,
    LEVEL_EDITABLE,
    NEEDS_CREATOR,
    STAFF,
    check_actor,
    check_move,
    check_role,
    may_withhold,
)

log = logging.getLogger(__name__)


#: An ``on_written`` hook: (session, ticket, action, status before, when).
Written = Callable[[AsyncSession, Ticket, str, str | None, datetime], Awaitable[None]]


class Action(StrEnum):
    """What a history line records (``TicketEvent.action``)."""

    CREATED = "created"
    UPDATED = "updated"
    APPROVED = "approved"
    FORWARDED = "forwarded"
    ACCEPTED = "accepted"
    ANSWERED = "answered"
    RETURNED = "returned"
    MEETING_SCHEDULED = "meeting_scheduled"
    CLOSED = "closed"
    REOPENED = "reopened"
    COMMENTED = "commented"
    ESCALATED = "escalated"
    # an admin kept a report off the public portal, or let it back (tickets.publication)
    WITHHELD = "withheld"
    RELEASED = "released"
    # a try of the call that tells the citizen the result (written by tickets.result_calls)
    RESULT_CALL = HISTORY_ACTION
    # an agent called the citizen from the ticket page (callcenter.outbound)
    CALLED = "called"
    # repeat reports (written by tickets.repeats)
    LINKED = repeats.LINKED
    UNLINKED = repeats.UNLINKED
    REPEAT_ADDED = repeats.REPEAT_ADDED
    REPEAT_REMOVED = repeats.REPEAT_REMOVED
    REPEAT_FLAGGED = repeats.FLAGGED
    # the supervisors' review of the agency's work (tickets.review)
    ANSWER_REFUSED = "answer_refused"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_GRANTED = "extension_granted"
    EXTENSION_REFUSED = "extension_refused"
    ATTACHED = "attached"
    # a reclassification into a restricted domain or topic refused (tickets.confidential):
    # an agency not cleared for it holds the report; agencies never read this line
    RESTRICTION_REFUSED = RESTRICTION_REFUSED


# 31**6 codes and 9 * 10**8 numbers: a collision is rare, several in a row mean the
# generator is broken.
CODE_ATTEMPTS = 5


def event_details(event: TicketEvent) -> dict[str, Any]:
    """The details of a history line, decoded."""
    return json.loads(event.details or "{}")  # type: ignore[no-any-return]


def _json(value: Any) -> str:
    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat()
        raise TypeError(f"not JSON serializable: {type(v).__name__}")

    return json.dumps(value, ensure_ascii=False, default=default, sort_keys=True)


def _value(v: Any) -> Any:
    # Enums are stored (and compared) as their plain string values.
    return v.value if isinstance(v, StrEnum) else v


class TicketService:
    """Citizens' reports, written: creation, the workflow's moves, edits, comments, escalation."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        code_factory: Callable[[], str] = new_code,
        number_factory: Callable[[], str] = new_number,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._new_code = code_factory
        self._new_number = number_factory
        # called after the commit when the agency answers or sends a ticket back: its
        # creator has something to do (tickets.notify tells them live)
        self.on_creator_needed: list[Callable[[Ticket, Action], Awaitable[None]]] = []
        # called after the commit when a result call was made for the agency's answer
        # (tickets.result_calls: the dialler is woken)
        self.on_result_recorded: list[Callable[[Ticket], Awaitable[None]]] = []
        # called after the commit with the citizen's phone of a ticket created or
        # changed: what was read of that phone's tickets (the screen-pop's) is old
        self.on_phone_written: list[Callable[[str], None]] = []
        # called after the commit of a write to a report that was or now is published
        # (closed with consent, withheld, released, reopened, edited): what was read
        # of the published reports (the public portal's cached pages) is old
        self.on_publication_changed: list[Callable[[], None]] = []
        # called inside the transaction of every write that makes a history line through
        # this service (creation and each move), with the session, the ticket as written,
        # the action and the status it came from: what is owed because of the change (the
        # citizen's notifications: notify.planner) is written with it, or not at all
        self.on_written: list[Written] = []

    # -- creating ---------------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        data: dict[str, Any],
        *,
        call_id: int | None = None,
        first_for_call: bool = False,
        attachments: Sequence[NewAttachment] = (),
    ) -> Ticket:
        """Record a new report (agents, supervisors, admins) and give it a tracking code.

        The level decides where it starts: 1 closed at once with the guidance
        given; 2 forwarded when an agency is given (else NEW); 3 pending the
        leaders' approval; 4 a meeting to arrange; 5 a proposal awaiting its
        thank-you letter.  With ``call_id`` the ticket is linked to the call and,
        for a phone report without a number, takes the caller's number.  With
        ``first_for_call`` a call that has a ticket already is refused
        (``InvalidInput`` on ``call_id``, naming that ticket): the agent's form
        asks before a second ticket is made for the same call.

        ``attachments`` (checked files: tickets.attachments) are written to disk and
        recorded in the same transaction: if the ticket is not created, no file stays.
        """
        if actor.role not in STAFF:
            raise Forbidden("create", actor.role)
        form = validate(TicketCreate, data)
        self._check_topic(form.topic)
        for attempt in range(1, CODE_ATTEMPTS + 1):
            code: str | None = None
            number: str | None = None
            written: list[str] = []
            try:
                async with self.db.session() as s:
                    code = await self._free(s, Ticket.code, self._new_code)
                    number = await self._free(s, Ticket.number, self._new_number)
                    ticket = await self._insert(
                        s, actor, form, call_id, code, number, first_for_call
                    )
                    for a in attachments:
                        aid = new_id()
                        written.append(aid)
                        await asyncio.to_thread(write_file, self.settings, aid, a.data)
                        s.add(
                            Attachment(
                                id=aid,
                                ticket_id=ticket.id,
                                kind=a.kind,
                                content_type=a.content_type,
                                size=len(a.data),
                                width=a.width,
                                height=a.height,
                                sha256=a.sha256,
                                original_name=a.original_name,
                                created_at=ticket.created_at,
                            )
                        )
                log.info(
                    "ticket %s created by %s: level %s, %s",
                    code,
                    actor.name,
                    form.level,
                    ticket.status,
                )
                return ticket
            except BaseException as e:
                # the transaction did not commit: its files go too
                for aid in written:
                    remove_file(self.settings, aid)
                if not isinstance(e, IntegrityError):
                    raise
                # Another writer took the same code or number between our look-up and
                # the insert: rare enough to simply try again with new ones.
                if (
                    code is None
                    or number is None
                    or attempt == CODE_ATTEMPTS
                    or not await self._taken(code, number)
                ):
                    raise
                log.warning("tracking code %s or number %s taken meanwhile", code, number)
        raise AssertionError("unreachable")

    async def _free(
        self, s: AsyncSession, column: InstrumentedAttribute[str], factory: Callable[[], str]
    ) -> str:
        """A fresh value of ``column`` (the code or the number) that no ticket has yet."""
        for _ in range(CODE_ATTEMPTS):
            value = factory()
            if not await s.scalar(select(Ticket.id).where(column == value)):
                return value
        raise RuntimeError(f"no free tracking {column.key} in {CODE_ATTEMPTS} attempts")

    async def _taken(self, code: str, number: str) -> bool:
        async with self.db.session() as s:
            found = await s.scalar(
                select(Ticket.id).where(or_(Ticket.code == code, Ticket.number == number))
            )
            return found is not None

    async def _insert(
        self,
        s: AsyncSession,
        actor: Actor,
        form: TicketCreate,
        call_id: int | None,
        code: str,
        number: str,
        first_for_call: bool = False,
    ) -> Ticket:
        now = self.clock.now()
        if form.agency_id is not None:
            self._cleared(form, await self._active_agency(s, form.agency_id))
        article_version = None
        if form.kb_article_id is not None:
            article_version = await self._kb_article_used(s, form.kb_article_id)
        phone = form.citizen_phone
        if call_id is not None:
            call = await s.get(Call, call_id)
            if call is None:
                raise InvalidInput.one("call_id", UNKNOWN)
            if first_for_call:
                earlier = await s.scalar(
                    select(Ticket.code).where(Ticket.call_id == call_id).order_by(Ticket.id)
                )
                if earlier is not None:
                    raise InvalidInput.one("call_id", SECOND_FOR_CALL, code=earlier)
            if phone is None and form.channel is Channel.PHONE:
                phone = call.caller_number
        status, forwarded_at, deadline, closed_at = self._start(form, now)
        ticket = Ticket(
            code=code,
            number=number,
            call_id=call_id,
            channel=form.channel.value,
            citizen_phone=phone,
            citizen_name=form.citizen_name,
            citizen_address=form.citizen_address,
            reporter_email=form.reporter_email,
            district=form.district,
            latitude=form.latitude,
            longitude=form.longitude,
            publish_consent=form.publish_consent,
            identity_consent=form.identity_consent,
            withheld=False,
            domain=form.domain.value,
            topic=form.topic,
            level=form.level,
            description=form.description,
            guidance=form.guidance,
            kb_article_id=form.kb_article_id,
            kb_article_version=article_version,
            status=status.value,
            agency_id=form.agency_id,
            forwarded_at=forwarded_at,
            deadline_at=deadline,
            escalations=0,
            reopens=0,
            created_by=actor.id,
            created_at=now,
            updated_at=now,
            closed_at=closed_at,
            version=1,
        )
        ticket.search_text = search_text(ticket)
        ticket.public_text = public_text(ticket)
        s.add(ticket)
        await s.flush()
        # what its repeats will be found by (tickets.repeats)
        await repeats.index_terms(s, ticket.id, terms(ticket.description, ticket.citizen_address))
        details: dict[str, Any] = {"level": form.level}
        if form.agency_id is not None:
            details["agency"] = form.agency_id
        if form.kb_article_id is not None:
            details["kb_article"] = [form.kb_article_id, article_version]
        if deadline is not None:
            details["deadline"] = deadline
        s.add(self._event(ticket.id, actor, Action.CREATED, None, status, details, now))
        await s.flush()
        await s.refresh(ticket)  # every column loaded: the caller gets a detached object
        for hook in self.on_written:
            await hook(s, ticket, Action.CREATED, None, now)
        self._phone_written(s, phone)
        if is_published(ticket, self.settings.tickets):  # a question answered on the call
            self._publication_changed(s)
        return ticket

    @staticmethod
    async def _kb_article_used(s: AsyncSession, article_id: int) -> int:
        """The version of the article a new ticket was answered with, its use counted;
        an unknown or archived article is refused (``kb_article_id``)."""
        article = await s.get(Article, article_id)
        if article is None:
            raise InvalidInput.one("kb_article_id", UNKNOWN)
        if article.archived:
            raise InvalidInput.one("kb_article_id", INACTIVE)
        await s.execute(
            update(Article)
            .where(Article.id == article_id)
            .values(uses=Article.uses + 1)
            .execution_options(synchronize_session=False)
        )
        return article.version

    def _start(
        self, form: TicketCreate, now: datetime
    ) -> tuple[Status, datetime | None, datetime | None, datetime | None]:
        """Initial status, forwarded_at, deadline_at and closed_at for a new ticket."""
        level = form.level
        if level == 1:
            return Status.CLOSED, None, None, now
        if level == 2:
            if form.agency_id is None:
                return Status.NEW, None, None, None
            return Status.FORWARDED, now, self._deadline(level, now), None
        if level == 3:
            # An agency may be pre-filled, but nothing goes out before approval.
            return Status.PENDING_APPROVAL, None, None, None
        if level == 4:
            return Status.MEETING_PENDING, None, self._deadline(level, now), None
        return Status.PROPOSAL, None, self._deadline(level, now), None

    # -- the workflow -----------------------------------------------------------

    async def forward(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        agency_id: int,
        note: str | None = None,
        *,
        co_agency_ids: Sequence[int] | None = None,
        co_deadlines: Mapping[int, datetime] | None = None,
    ) -> Ticket:
        """Send a NEW or RETURNED ticket (level 2, or 3 once approved) to an agency.

        Supervisors and admins.  Starts a new deadline and clears the mark of
        an earlier escalation, so a missed new deadline escalates again.
        ``co_agency_ids`` (None: unchanged) are the co-handling agencies
        (tickets.handling.rounds), each with a part; ``co_deadlines`` their own
        deadlines by agency (in the future, none after the lead's), by default the
        lead's.
        """
        check_role("forward", actor)
        agency_id = check_id("agency_id", agency_id, required=True)  # type: ignore[assignment]
        note = check_text("note", note, required=False)
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("forward", actor, ticket)
            self._check_version(ticket, version)
            check_move("forward", actor, ticket)
            self._cleared(ticket, await self._active_agency(s, agency_id))
            now = self.clock.now()
            deadline = self._deadline(ticket.level, now)
            details: dict[str, Any] = {
                "agency": [ticket.agency_id, agency_id],
                "deadline": deadline,
            }
            if note:
                details["note"] = note
            if ticket.return_reason:
                details["return_reason"] = ticket.return_reason
            details |= await self._co_agencies(
                s, actor, ticket, co_agency_ids, co_deadlines, agency_id, deadline, now
            )
            values = {
                "status": Status.FORWARDED.value,
                "agency_id": agency_id,
                "forwarded_at": now,
                "deadline_at": deadline,
                "escalated_at": None,
                # The reason belonged to the previous round; the history keeps it.
                "return_reason": None,
            }
            return await self._write(
                s, actor, ticket, version, Action.FORWARDED, values, details, now
            )

    async def approve(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        agency_id: int | None = None,
        note: str | None = None,
        *,
        co_agency_ids: Sequence[int] | None = None,
        co_deadlines: Mapping[int, datetime] | None = None,
    ) -> Ticket:
        """Record the leaders' approval of a level-3 report (supervisors, admins).

        With an agency (given now or pre-filled at creation) the ticket is
        forwarded at once, with the co-handling agencies ``co_agency_ids`` and their
        deadlines ``co_deadlines`` as :meth:`forward`; otherwise it becomes NEW, to be
        forwarded later.
        Refusing approval is done with ``close`` and a note.
        """
        check_role("approve", actor)
        agency_id = check_id("agency_id", agency_id, required=False)
        note = check_text("note", note, required=False)
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("approve", actor, ticket)
            self._check_version(ticket, version)
            check_move("approve", actor, ticket)
            target = agency_id if agency_id is not None else ticket.agency_id
            now = self.clock.now()
            values: dict[str, Any] = {"approved_by": actor.id}
            details: dict[str, Any] = {}
            if note:
                details["note"] = note
            if target is not None:
                self._cleared(ticket, await self._active_agency(s, target))
                deadline = self._deadline(ticket.level, now)
                values |= {
                    "status": Status.FORWARDED.value,
                    "agency_id": target,
                    "forwarded_at": now,
                    "deadline_at": deadline,
                    "escalated_at": None,
                }
                details |= {"agency": [ticket.agency_id, target], "deadline": deadline}
                details |= await self._co_agencies(
                    s, actor, ticket, co_agency_ids, co_deadlines, target, deadline, now
                )
            else:
                values["status"] = Status.NEW.value
            return await self._write(
                s, actor, ticket, version, Action.APPROVED, values, details, now
            )

    async def accept(self, actor: Actor, ticket_id: int, version: int) -> Ticket:
        """The agency takes the forwarded ticket on (an officer of that agency)."""
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("accept", actor, ticket)
            self._check_version(ticket, version)
            check_move("accept", actor, ticket)
            values = {"status": Status.ACCEPTED.value}
            return await self._write(s, actor, ticket, version, Action.ACCEPTED, values, {})

    async def answer(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        result: str,
        *,
        adopted: int | None = None,
    ) -> Ticket:
        """The agency reports its result (an officer of that agency); the citizen is to be told.

        For a level-2 or level-3 report with the citizen's phone, the call that tells them
        (tickets.result_calls) is written in the same transaction.  With co-handling
        agencies this is the lead's combined answer, refused until each has answered;
        ``adopted`` is the lead's delegation whose answer it makes its own
        (tickets.handling).
        """
        result = check_text("result", result, required=True)  # type: ignore[assignment]
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("answer", actor, ticket)
            self._check_version(ticket, version)
            check_move("answer", actor, ticket)
            now = self.clock.now()
            details: dict[str, Any] = {"result": result}
            if ticket.deadline_at is not None:
                # Kept with the answer: agencies are ranked by how timely they answer.
                details["late"] = now > ticket.deadline_at
            details |= await lead_answers(s, ticket, adopted, now)
            values = {"status": Status.ANSWERED.value, "result": result, "extension_until": None}
            # an extension asked for and not decided goes with the ticket leaving the agency
            await withdraw_extension(s, ticket.id, now)
            ticket = await self._write(
                s, actor, ticket, version, Action.ANSWERED, values, details, now
            )
            # the citizen of a level-2/3 report is called with it: written with the
            # answer, so a crash after the commit loses no call
            call = await add_call(s, self.settings, ticket, now)
            # and so is every citizen who reported the same matter (tickets.repeats)
            shared = await repeats.share_result(s, self.settings, ticket, actor, now)
        await self.answered_elsewhere(ticket, call is not None)
        for item in shared:
            await self.answered_elsewhere(item.ticket, item.call is not None)
        return ticket

    async def answered_elsewhere(self, ticket: Ticket, call_made: bool) -> None:
        """After the commit of an answer (the agency's, or its group's shared by
        tickets.repeats): the creator is told and a result call wakes the dialler."""
        await self._announce(ticket, Action.ANSWERED)
        if call_made:
            for hook in self.on_result_recorded:
                try:
                    await hook(ticket)
                except Exception:  # noqa: BLE001 - the call is written; the sweep finds it
                    log.exception("waking the result-call dialler for %s failed", ticket.code)

    async def send_back(self, actor: Actor, ticket_id: int, version: int, reason: str) -> Ticket:
        """The agency returns the ticket with a reason (e.g. not its competence)."""
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("send_back", actor, ticket)
            self._check_version(ticket, version)
            check_move("send_back", actor, ticket)
            values = {
                "status": Status.RETURNED.value,
                "return_reason": reason,
                "extension_until": None,
            }
            details = {"reason": reason}
            await withdraw_extension(s, ticket.id, self.clock.now())
            ticket = await self._write(s, actor, ticket, version, Action.RETURNED, values, details)
        await self._announce(ticket, Action.RETURNED)
        return ticket

    async def schedule_meeting(
        self, actor: Actor, ticket_id: int, version: int, at: datetime, place: str
    ) -> Ticket:
        """Set (or move) the date and place of a level-4 meeting (supervisors, admins)."""
        check_role("schedule_meeting", actor)
        if at is None:
            raise InvalidInput.one("at", REQUIRED)
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise InvalidInput.one("at", NEEDS_TIME_ZONE)
        place = check_text("place", place, ADDRESS_MAX, required=True)  # type: ignore[assignment]
        at = at.astimezone(UTC)
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("schedule_meeting", actor, ticket)
            self._check_version(ticket, version)
            check_move("schedule_meeting", actor, ticket)
            values = {
                "status": Status.MEETING_SCHEDULED.value,
                "meeting_at": at,
                "meeting_place": place,
            }
            details = {
                "meeting_at": [ticket.meeting_at, at],
                "meeting_place": [ticket.meeting_place, place],
            }
            return await self._write(
                s, actor, ticket, version, Action.MEETING_SCHEDULED, values, details
            )

    async def close(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        note: str | None = None,
        letter: str | None = None,
    ) -> Ticket:
        """Close a ticket (supervisors, admins; the creating agent for an ANSWERED one).

        ANSWERED: the citizen has been told the result.  MEETING_SCHEDULED: the
        meeting was held.  PROPOSAL: needs ``letter``, the thank-you letter.
        NEW, PENDING_APPROVAL, RETURNED, MEETING_PENDING: ends without
        forwarding (approval refused, duplicate, ...) and needs ``note``.

        The parts of other agencies still open (a co-handling agency's, a delegation:
        tickets.handling) are closed with it, ``note`` their reason: their agencies see
        why, and get no reminder or overdue alert for a closed ticket.  The history line
        lists them (``parts_closed``).
        """
        check_role("close", actor)
        note = check_text("note", note, required=False)
        letter = check_text("letter", letter, required=False)
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("close", actor, ticket)
            self._check_version(ticket, version)
            check_move("close", actor, ticket)
            status = ticket.status
            if status in CLOSE_WITH_NOTE and note is None:
                raise InvalidInput.one("note", NEEDED_NOW)
            if status == Status.PROPOSAL and letter is None:
                raise InvalidInput.one("letter", NEEDED_NOW)
            if status != Status.PROPOSAL and letter is not None:
                # Only a proposal gets a thank-you letter; do not drop the text silently.
                raise InvalidInput.one("letter", NOT_NOW)
            now = self.clock.now()
            values: dict[str, Any] = {
                "status": Status.CLOSED.value,
                "closed_at": now,
                "closing_note": note,
            }
            details: dict[str, Any] = {}
            if note:
                details["note"] = note
            if letter:
                values["letter"] = letter
                details["letter"] = letter
            closed_parts = await close_parts(s, ticket.id, note, now)
            if closed_parts:
                details["parts_closed"] = closed_parts
            return await self._write(s, actor, ticket, version, Action.CLOSED, values, details, now)

    async def reopen(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        reason: str,
        *,
        via: str | None = None,
        rating: int | None = None,
    ) -> Ticket:
        """Reopen an ANSWERED or CLOSED report the citizen is not satisfied with.

        Supervisors and admins; the agent who created it (the citizen called back); the
        citizen in the phone survey (``accounts.identity.CITIZEN``, ``via="survey"`` and
        the ``rating`` they gave).  The ticket goes back to the supervisors as REOPENED
        (see tickets.workflow for why), ``reopens`` counts it, and the history keeps the
        reason, the round and the agency it was with.  The old deadline and closing time
        are cleared: forwarding it again starts a new one.
        """
        check_role("reopen", actor)
        reason = check_text("reason", reason, required=True)  # type: ignore[assignment]
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("reopen", actor, ticket)
            self._check_version(ticket, version)
            check_move("reopen", actor, ticket)
            rounds = (ticket.reopens or 0) + 1
            values: dict[str, Any] = {
                "status": Status.REOPENED.value,
                "reopens": rounds,
                "closed_at": None,
                "deadline_at": None,
                "escalated_at": None,
            }
            details: dict[str, Any] = {"reopen_reason": reason, "reopens": rounds}
            if ticket.agency_id is not None:
                details["agency"] = ticket.agency_id
            if via is not None:
                details["via"] = via
            if rating is not None:
                details["rating"] = rating
            ticket = await self._write(s, actor, ticket, version, Action.REOPENED, values, details)
        log.info("ticket %s reopened by %s (%d): %s", ticket.code, actor.name, rounds, reason)
        return ticket

    async def update(
        self, actor: Actor, ticket_id: int, version: int, data: dict[str, Any]
    ) -> Ticket:
        """Correct a ticket's classification or citizen details.

        Supervisors and admins on any open ticket; the agent who created it
        while it is not closed.  The history records each changed field as
        ``[old, new]``.  The level can only change before the ticket has gone
        anywhere (NEW, PENDING_APPROVAL, MEETING_PENDING, PROPOSAL) and its
        status is not re-derived.  Nothing changed: nothing written.
        """
        check_role("update", actor)
        form = validate(TicketUpdate, data)
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            check_actor("update", actor, ticket)
            self._check_version(ticket, version)
            check_move("update", actor, ticket)
            changes = {
                name: _value(new)
                for name, new in form.changes().items()
                if getattr(ticket, name) != _value(new)
            }
            if "level" in changes and ticket.status not in LEVEL_EDITABLE:
                raise InvalidTransition("update", ticket.status)
            if "topic" in changes:
                # Only a changed topic is checked: one since removed from the
                # configuration must not block editing the other fields.
                self._check_topic(changes["topic"])
            if not changes:
                return ticket
            if "domain" in changes or "topic" in changes:
                await self._check_restriction(s, actor, ticket, changes)
            details = {name: [getattr(ticket, name), new] for name, new in changes.items()}
            settings = self.settings.tickets
            before = restricted_as(ticket.domain, ticket.topic, settings)
            after = restricted_as(
                changes.get("domain", ticket.domain), changes.get("topic", ticket.topic), settings
            )
            if before != after:
                # who made a report restricted (or no longer), said in so many words
                details["restricted"] = [before, after]
            return await self._write(s, actor, ticket, version, Action.UPDATED, changes, details)

    async def set_withheld(
        self,
        actor: Actor,
        ticket_id: int,
        version: int,
        withheld: bool,
        note: str | None = None,
    ) -> Ticket:
        """Withhold a report from the public portal and Open311, or release it (admins).

        Whatever the citizen chose: a report that names someone, or that the
        agency asks to keep off, is withheld; releasing it lets
        :mod:`tickets.publication` decide again.  The history records it, with
        the admin's ``note``.  Nothing to change: nothing written.
        """
        if not may_withhold(actor):
            raise Forbidden("withhold" if withheld else "release", actor.role)
        note = check_text("note", note, required=False)
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            self._check_version(ticket, version)
            if bool(ticket.withheld) == withheld:
                return ticket
            details: dict[str, Any] = {"withheld": [not withheld, withheld]}
            if note:
                details["note"] = note
            action = Action.WITHHELD if withheld else Action.RELEASED
            log.info("ticket %s %s by %s", ticket.code, action, actor.name)
            return await self._write(
                s, actor, ticket, version, action, {"withheld": withheld}, details
            )

    async def comment(self, actor: Actor, ticket_id: int, note: str) -> TicketEvent:
        """Add a note to the history (anyone who may see the ticket); the ticket is unchanged."""
        note = check_text("note", note, required=True)  # type: ignore[assignment]
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            # the oversight role reads, never writes
            if actor.role == Role.OVERSIGHT or not await is_visible(
                s, actor, ticket.id, self.settings.tickets
            ):
                raise Forbidden("comment", actor.role)
            now = self.clock.now()
            event = self._event(
                ticket.id,
                actor,
                Action.COMMENTED,
                ticket.status,
                ticket.status,
                {"note": note},
                now,
            )
            s.add(event)
            await s.flush()
            return event

    async def called(self, actor: Actor, ticket_id: int, call_id: int, number: str) -> TicketEvent:
        """Note in the history that ``actor`` called the citizen (the call ``call_id``,
        placed by :mod:`callcenter.outbound`); the ticket is unchanged."""
        async with self.db.session() as s:
            ticket = await self._load(s, ticket_id)
            event = self._event(
                ticket.id,
                actor,
                Action.CALLED,
                ticket.status,
                ticket.status,
                {"citizen_phone": number, "call": call_id},
                self.clock.now(),
            )
            s.add(event)
            await s.flush()
            return event

    async def escalate_overdue(self, now: datetime | None = None) -> list[Ticket]:
        """Mark every ticket whose deadline passed while still due; return those newly marked.

        Due means with an agency (FORWARDED, ACCEPTED), a meeting not yet
        arranged, or a proposal without its letter.  Each deadline escalates
        once: a ticket is taken when it was never escalated or last escalated
        before its current deadline (a new forward sets a new deadline).  The
        condition is re-checked in the UPDATE itself, so two processes running
        this at once escalate each ticket once.  The caller publishes alerts.
        """
        now = now or self.clock.now()
        due = and_(
            Ticket.status.in_([st.value for st in DEADLINE_STATUSES]),
            Ticket.deadline_at < now,
            or_(Ticket.escalated_at.is_(None), Ticket.escalated_at < Ticket.deadline_at),
        )
        escalated: list[Ticket] = []
        async with self.db.session() as s:
            ids = (
                await s.scalars(
                    select(Ticket.id).where(due).order_by(Ticket.deadline_at, Ticket.id)
                )
            ).all()
            for ticket_id in ids:
                result = await s.execute(
                    update(Ticket)
                    .where(Ticket.id == ticket_id, due)
                    .values(escalations=Ticket.escalations + 1, escalated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # answered, re-forwarded or escalated by another process meanwhile
                ticket = await s.scalar(
                    select(Ticket)
                    .where(Ticket.id == ticket_id)
                    .execution_options(populate_existing=True)
                )
                assert ticket is not None
                details = {"deadline": ticket.deadline_at, "agency": ticket.agency_id}
                s.add(
                    self._event(
                        ticket.id,
                        SYSTEM,
                        Action.ESCALATED,
                        ticket.status,
                        ticket.status,
                        details,
                        now,
                    )
                )
                escalated.append(ticket)
        for t in escalated:
            log.warning(
                "ticket %s overdue since %s (agency %s): escalated (%d)",
                t.code,
                t.deadline_at,
                t.agency_id,
                t.escalations,
            )
        return escalated

    # -- helpers ----------------------------------------------------------------

    async def _announce(self, ticket: Ticket, action: Action) -> None:
        """Tell ``on_creator_needed`` (after the commit) that the ticket is back on its
        creator's desk; a failure there is logged, the change stays written."""
        if ticket.status not in NEEDS_CREATOR or ticket.created_by is None:
            return
        for hook in self.on_creator_needed:
            try:
                await hook(ticket, action)
            except Exception:  # noqa: BLE001 - the move is saved; the notice is a courtesy
                log.exception("telling the creator of ticket %s (%s) failed", ticket.code, action)

    def _deadline(self, level: int, now: datetime) -> datetime | None:
        hours = self.settings.tickets.deadline(level)
        return now + timedelta(hours=hours) if hours else None

    def _check_topic(self, topic: str) -> None:
        if topic not in {t.id for t in self.settings.tickets.topics}:
            raise InvalidInput.one("topic", NOT_ALLOWED)

    @staticmethod
    def _check_version(ticket: Ticket, version: int) -> None:
        # Early refusal of a stale form; the UPDATE's WHERE is what guarantees it.
        if ticket.version != version:
            raise VersionConflict(ticket.id, version, ticket.version)

    async def _load(self, s: AsyncSession, ticket_id: int) -> Ticket:
        return await load_ticket(s, ticket_id)

    async def _active_agency(self, s: AsyncSession, agency_id: int) -> Agency:
        agency = await s.get(Agency, agency_id)
        if agency is None:
            raise InvalidInput.one("agency_id", UNKNOWN)
        if not agency.active:
            raise InvalidInput.one("agency_id", INACTIVE)
        return agency

    async def _co_agencies(
        self,
        s: AsyncSession,
        actor: Actor,
        ticket: Ticket,
        agency_ids: Sequence[int] | None,
        deadlines: Mapping[int, datetime] | None,
        lead: int,
        deadline: datetime | None,
        now: datetime,
    ) -> dict[str, Any]:
        """The co-handling agencies of a forward (tickets.handling.rounds.set_co_agencies):
        of a restricted report only agencies cleared for it, each with its deadline."""
        settings = self.settings.tickets
        secret = restricted_as(ticket.domain, ticket.topic, settings)
        return await set_co_agencies(
            s,
            actor.id,
            ticket,
            agency_ids,
            lead,
            deadline,
            now,
            deadlines=deadlines,
            cleared=lambda agency: not secret or cleared_agency(agency, settings),
            local=self.local_time,
        )

    def local_time(self, moment: datetime) -> str:
        """A moment as the panel writes it in a message (local time)."""
        return moment.astimezone(self.settings.tz).strftime("%d/%m/%Y %H:%M")

    async def _check_restriction(
        self, s: AsyncSession, actor: Actor, ticket: Ticket, changes: dict[str, Any]
    ) -> None:
        """Refuse (on the changed ``domain`` and/or ``topic``, HELD_UNCLEARED naming the
        agencies) a reclassification that makes the report restricted while an agency not
        cleared for restricted reports holds it (tickets.confidential): it would hold a
        report it may not read.  The refusal is written in the history (a line agencies
        never read) in a transaction of its own, since the edit's is rolled back."""
        settings = self.settings.tickets
        domain = changes.get("domain", ticket.domain)
        topic = changes.get("topic", ticket.topic)
        if not restricted_as(domain, topic, settings):
            return
        uncleared = [a for a in await open_holders(s, ticket) if not cleared_agency(a, settings)]
        if not uncleared:
            return
        # the fields whose new value makes it restricted (a topic changed beside is not)
        c = settings.confidential
        fields = [
            name
            for name, listed in (("domain", c.domains), ("topic", c.topics))
            if name in changes and str(changes[name]) in listed
        ] or [name for name in ("domain", "topic") if name in changes]
        names = ", ".join(a.name for a in uncleared)
        details = {
            **{name: [getattr(ticket, name), changes[name]] for name in fields},
            "agencies": [a.id for a in uncleared],
        }
        async with self.db.session() as audit:
            audit.add(
                self._event(
                    ticket.id,
                    actor,
                    Action.RESTRICTION_REFUSED,
                    ticket.status,
                    ticket.status,
                    details,
                    self.clock.now(),
                )
            )
        log.warning(
            "ticket %s: %s may not make it restricted (%s): held by %s, not cleared",
            ticket.code,
            actor.name,
            ", ".join(f"{f}={changes[f]}" for f in fields),
            names,
        )
        raise InvalidInput([FieldError(f, HELD_UNCLEARED, {"agencies": names}) for f in fields])

    def _cleared(self, ticket: Ticket | TicketCreate, agency: Agency) -> None:
        """A restricted report goes only to an agency cleared for it (its officers could
        not read it otherwise): InvalidInput on ``agency_id``."""
        settings = self.settings.tickets
        if restricted_as(ticket.domain, ticket.topic, settings) and not cleared_agency(
            agency, settings
        ):
            raise InvalidInput.one("agency_id", NOT_CLEARED)

    async def _write(
        self,
        s: AsyncSession,
        actor: Actor,
        ticket: Ticket,
        version: int,
        action: Action,
        values: dict[str, Any],
        details: dict[str, Any],
        now: datetime | None = None,
    ) -> Ticket:
        """Write ``values`` if the row is still at ``version``, bump it, log the event.

        ``now`` is the time the action already used for its own columns, so the
        row and its history line carry the same instant.
        """
        now = now or self.clock.now()
        from_status = ticket.status
        was_published = is_published(ticket, self.settings.tickets)
        if any(name in values for name in SEARCHED):
            values = {**values, "search_text": search_text(ticket, values)}
        if any(name in values for name in PUBLIC_SEARCHED):
            values = {**values, "public_text": public_text(ticket, values)}
        if "description" in values or "citizen_address" in values:
            before = terms(ticket.description, ticket.citizen_address)
            after = terms(
                values.get("description", ticket.description),
                values.get("citizen_address", ticket.citizen_address),
            )
            await repeats.index_terms(s, ticket.id, after, before)
        result = await s.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.version == version)
            .values(**values, version=version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            actual = await s.scalar(select(Ticket.version).where(Ticket.id == ticket.id))
            raise VersionConflict(ticket.id, version, actual)
        to_status = values.get("status", from_status)
        s.add(self._event(ticket.id, actor, action, from_status, to_status, details, now))
        phone_before = ticket.citizen_phone
        await s.flush()
        await s.refresh(ticket)
        for hook in self.on_written:
            await hook(s, ticket, action, from_status, now)
        for phone in {phone_before, ticket.citizen_phone}:  # an edit may change it
            self._phone_written(s, phone)
        if was_published or is_published(ticket, self.settings.tickets):
            self._publication_changed(s)
        return ticket

    def _phone_written(self, s: AsyncSession, phone: str | None) -> None:
        """Tell ``on_phone_written`` about ``phone`` once ``s`` commits (not before: a
        reader told earlier could read the old rows again and keep them)."""
        if not phone or not self.on_phone_written:
            return

        def committed(_session: object) -> None:
            for hook in self.on_phone_written:
                try:
                    hook(phone)
                except Exception:  # noqa: BLE001 - the write stands; a reader's cache is not ours
                    log.exception("telling of a write to %s's tickets failed", phone)

        orm_event.listen(s.sync_session, "after_commit", committed, once=True)

    def _publication_changed(self, s: AsyncSession) -> None:
        """Tell ``on_publication_changed`` once ``s`` commits (as ``_phone_written``)."""
        if not self.on_publication_changed:
            return

        def committed(_session: object) -> None:
            for hook in self.on_publication_changed:
                try:
                    hook()
                except Exception:  # noqa: BLE001 - the write stands; a reader's cache is not ours
                    log.exception("telling of a change to the published reports failed")

        orm_event.listen(s.sync_session, "after_commit", committed, once=True)

    @staticmethod
    def _event(
        ticket_id: int,
        actor: Actor,
        action: Action,
        from_status: str | None,
        to_status: str | None,
        details: dict[str, Any],
        at: datetime,
    ) -> TicketEvent:
        return TicketEvent(
            ticket_id=ticket_id,
            at=at,
            actor_id=actor.id,
            actor_name=actor.name,
            action=action.value,
            from_status=_value(from_status),
            to_status=_value(to_status),
            details=_json(details),
        )

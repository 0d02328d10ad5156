"""Tables of citizens' reports: agencies, tickets and their append-only history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime
from core.text import fold_phrase
from tickets.handling import models as _handling_models  # noqa: F401  (ticket_assignments)
from tickets.kb import models as _kb_models  # noqa: F401  (kb_articles, for the foreign key)
from tickets.review import models as _review_models  # noqa: F401  (refusals, extensions)


class AgencyKind(StrEnum):
    DEPARTMENT = "department"  # a city department (sở, ban, ngành)
    DISTRICT = "district"  # a district / city-level town (quận, huyện, TP Thủ Đức)
    WARD = "ward"  # a ward or commune (phường, xã)
    UTILITY = "utility"  # power, water, drainage, buses, ...
    PARTY = "party"  # Party committee offices, the anti-corruption body
    OTHER = "other"


class Channel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    WEB = "web"


class Domain(StrEnum):
    PARTY = "party"  # xây dựng Đảng
    STATE = "state"  # quản lý Nhà nước


class Status(StrEnum):
    NEW = "new"  # level 2/3 waiting to be forwarded (no agency chosen yet)
    PENDING_APPROVAL = "pending_approval"  # level 3: a leader must approve forwarding
    FORWARDED = "forwarded"  # with the agency, deadline running
    ACCEPTED = "accepted"  # the agency took it on
    ANSWERED = "answered"  # the agency reported its result; the citizen is to be told
    RETURNED = "returned"  # the agency sent it back with a reason; forward again
    MEETING_PENDING = "meeting_pending"  # level 4: a meeting is to be arranged
    MEETING_SCHEDULED = "meeting_scheduled"  # level 4: date and place set
    PROPOSAL = "proposal"  # level 5: compiled for the leaders; a thank-you letter is due
    CLOSED = "closed"  # done
    # a closed or answered report the citizen was not satisfied with: back with the
    # supervisors (tickets.workflow says why this is a status of its own)
    REOPENED = "reopened"


OPEN_STATUSES = tuple(s for s in Status if s is not Status.CLOSED)
# Where a citizen's report may be reopened from: told the result, or done.
REOPENABLE = (Status.ANSWERED, Status.CLOSED)
# While with an agency, the deadline counts.
WITH_AGENCY = (Status.FORWARDED, Status.ACCEPTED)
# Where a deadline runs, and is escalated once passed.
DEADLINE_STATUSES = (*WITH_AGENCY, Status.MEETING_PENDING, Status.PROPOSAL)


class Agency(Base):
    """An agency in the city's hierarchy, with its contact points."""

    __tablename__ = "agencies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # A short unique code (e.g. "so-gtvt", "q1-p-ben-nghe").
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class Ticket(Base):
    """One citizen's report, from the call (or SMS, email, web) to its end."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The tracking code read out to the citizen, e.g. "K7M-4QXT".
    code: Mapped[str] = mapped_column(String(16), unique=True)
    # The same report's all-digit tracking number, 10 digits (tickets.numbers), shown
    # grouped ("123 456 789 0"); keyable on a phone, read out digit by digit.
    number: Mapped[str] = mapped_column(String(10), unique=True, index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    citizen_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    citizen_name: Mapped[str | None] = mapped_column(String(200))
    citizen_address: Mapped[str | None] = mapped_column(String(300))
    # where a citizen who reported on the web or by email hears back
    reporter_email: Mapped[str | None] = mapped_column(String(200))
    # the district the report is about (portal filter, leaders' reports)
    district: Mapped[str | None] = mapped_column(String(80), index=True)
    # where the citizen put the pin on the web form's map (WGS 84); None unless picked
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # the citizen agreed that the report may be published once completed
    publish_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    # the citizen agreed that the agency may see who they are (tickets.confidential)
    identity_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    # an admin withheld it from the public portal (tickets.publication)
    withheld: Mapped[bool] = mapped_column(default=False, server_default=false())
    domain: Mapped[str] = mapped_column(String(8), index=True)
    topic: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[int] = mapped_column(Integer, index=True)
    description: Mapped[str] = mapped_column(Text)
    # Level 1: what the agent told the citizen on the call.
    guidance: Mapped[str | None] = mapped_column(Text)
    # Level 1: the knowledge-base article (and its version) the guidance came from
    kb_article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id"), index=True)
    kb_article_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    # How many times the report was reopened (tickets.service.reopen); the reasons
    # are in its history.
    reopens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result: Mapped[str | None] = mapped_column(Text)  # the agency's answer
    return_reason: Mapped[str | None] = mapped_column(Text)
    # the deadline the agency's open extension request proposes; None when none is open
    # (tickets.review: the workflow's table reads it to offer grant / refuse)
    extension_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    meeting_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    meeting_place: Mapped[str | None] = mapped_column(String(300))
    letter: Mapped[str | None] = mapped_column(Text)  # level 5 thank-you letter
    closing_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optimistic lock: every change bumps it; a stale writer is refused.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # What the free-text search looks in (:func:`search_text`), written with the columns.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What the public portal's search looks in (:func:`public_text`): public columns only.
    public_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Repeat reports (tickets.repeats): the group's ticket this one was linked to (None
    # for a ticket in no group and for a group's own ticket), and, on a group's ticket,
    # how many are linked to it.  Group bookkeeping: written without bumping ``version``.
    repeat_of: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # when the group reached ``tickets.repeat_flag_after`` reports unresolved: a matter
    # for level 3 (the supervisors' list shows it; an alert went out)
    repeat_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_tickets_open_deadline", "status", "deadline_at"),
        # the lists: one status, newest first, without sorting every row of it
        Index("ix_tickets_status_created", "status", "created_at", "id"),
        Index("ix_tickets_portal", "status", "closed_at"),
    )


#: The columns the free-text search looks in, in the order ``search_text`` holds them.
SEARCHED = ("code", "citizen_phone", "citizen_name", "citizen_address", "description")


def search_text(ticket: Ticket, changes: Mapping[str, Any] | None = None) -> str:
    """The ticket's ``search_text``: its searched columns (with ``changes`` applied) folded
    (:func:`core.text.fold_phrase`: lower case, no accents), one a line.

    A query is folded the same way and has no line break, so it matches inside one
    column, never across two.
    """
    changes = changes or {}
    return "\n".join(
        fold_phrase(str(changes.get(name, getattr(ticket, name)) or "")) for name in SEARCHED
    )


#: The columns the public portal's search looks in: never the citizen's name, phone or
#: address (``search_text`` has those, for the staff).
PUBLIC_SEARCHED = ("district", "description")


def public_text(ticket: Ticket, changes: Mapping[str, Any] | None = None) -> str:
    """The ticket's ``public_text``: :data:`PUBLIC_SEARCHED` folded, one a line (as
    :func:`search_text`)."""
    changes = changes or {}
    return "\n".join(
        fold_phrase(str(changes.get(name, getattr(ticket, name)) or "")) for name in PUBLIC_SEARCHED
    )


class TicketTerm(Base):
    """One folded term (two adjacent words) of a ticket's report: what the repeat-report
    suggestions look up (tickets.repeats).  Rows are written with the ticket and rewritten
    when its description or address changes; the key is also the only index."""

    __tablename__ = "ticket_terms"
    term: Mapped[str] = mapped_column(String(81), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), primary_key=True)

    __table_args__ = ({"sqlite_with_rowid": False},)


class Attachment(Base):
    """A file sent with a report: a citizen's photo from the web form, a mail's
    attachment, or a photo or a document (PDF) staff or an agency's officer attached
    (``added_by``).

    The bytes are on disk under ``<state_dir>/attachments/`` named by ``id`` alone
    (never by a name the citizen chose); ``content_type`` is the type found by
    decoding the file, and is what it is served with.
    """

    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex
    # None: a mail's attachment still on the desk (its message has no ticket yet)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # the inbox message (a mail) it came with
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "photo" | "email"
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # the name the citizen's device gave it: shown to staff, never used as a path
    original_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # who attached it from the panel (tickets.review); None for the citizen's own
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_by_name: Mapped[str | None] = mapped_column(String(200))


class TicketEvent(Base):
    """One line of a ticket's history.  Rows are only ever inserted (a trigger refuses
    UPDATE and DELETE)."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # None for the system (deadline escalation).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    # JSON: {"field": [old, new], ...} for edits, {"note": ...} etc.
    details: Mapped[str] = mapped_column(Text, default="{}")


class RatingSource(StrEnum):
    """Where a satisfaction rating came from."""

    AFTER_CALL = "after_call"  # the phone survey after the agent's call (agi.survey)
    RESULT_CALL = "result_call"  # the phone survey after the call telling the result
    WEB = "web"  # the public web pages
    SMS = "sms"  # a reply of 1-5 to the SMS survey (notify.survey)


class Rating(Base):
    """A citizen's satisfaction rating, 1 (very dissatisfied) to 5 (very satisfied).

    One per call at most (the survey may be reached twice by a retried AGI); what the
    reports group by is kept as it was when the rating was given: the agent who handled
    the call, the ticket's agency, topic and level.
    """

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    rating: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    agent_extension: Mapped[str | None] = mapped_column(String(16))
    agent_name: Mapped[str | None] = mapped_column(String(200))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    topic: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),)


class ResultCallState(StrEnum):
    """Where a result call stands (tickets.result_calls)."""

    PENDING = "pending"  # waiting for its time: the allowed hours, or a retry
    DIALLING = "dialling"  # the citizen's phone is ringing
    TALKING = "talking"  # answered: the result is read, then the survey
    DONE = "done"  # ended: ``last_result`` says how


class ResultCall(Base):
    """The call that tells a citizen the result of their report, and its tries.

    One per result: made in the transaction that records the agency's answer, for the
    round the report is in (``round`` is the ticket's ``reopens`` then), so a second
    answer after a reopening gets a call of its own.  Each try is a line of the ticket's
    history; the answered try's call record (``call_id``) holds the recording.
    """

    __tablename__ = "result_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    number: Mapped[str] = mapped_column(String(32), index=True)
    language: Mapped[str] = mapped_column(String(8))
    # the hotline the citizen sees calling (the one the report came in on, else the first)
    hotline_number: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # callcenter.models.Result of the last try (connected, no_answer, busy, failed)
    last_result: Mapped[str | None] = mapped_column(String(16))
    # the channel of the current (or last) try; its call record once answered
    uniqueid: Mapped[str | None] = mapped_column(String(64), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("ticket_id", "round"),
        Index("ix_result_calls_due", "state", "next_attempt_at"),
    )

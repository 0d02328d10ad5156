"""Tables of the supervisors' review of agencies' work: refused answers, deadline
extensions and the reminders sent before a deadline.

Each is a record kept beside the ticket's history (whose lines say the same in words)
so that the leaders' reports count them per agency without reading JSON, and so that
"one open extension request per ticket" and "one reminder per deadline" are unique
indexes the database enforces, whichever process writes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class ExtensionState(StrEnum):
    OPEN = "open"  # asked, waiting for a supervisor
    GRANTED = "granted"  # the deadline moved to ``proposed_deadline``
    REFUSED = "refused"  # the deadline stays; ``decision_note`` says why
    # the ticket left the agency (answered, sent back) before anyone decided
    WITHDRAWN = "withdrawn"


class AnswerRefusal(Base):
    """A supervisor sent an agency's answer back to it, with a reason."""

    __tablename__ = "answer_refusals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # the agency whose answer it was (the reports count per agency)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    answer: Mapped[str | None] = mapped_column(Text)  # the answer refused, as it was
    reason: Mapped[str] = mapped_column(Text)
    refused_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    refused_by_name: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class DeadlineExtension(Base):
    """An agency's request for more time on a ticket, and the supervisor's decision."""

    __tablename__ = "deadline_extensions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    old_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    proposed_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(12))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_by_name: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        # one open request per ticket, whichever process writes
        Index(
            "ux_deadline_extensions_open",
            "ticket_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )


class DeadlineReminder(Base):
    """A reminder sent to an agency before a ticket's deadline: one per deadline (a moved
    deadline is reminded again), written before it is published so a restart never sends
    it twice."""

    __tablename__ = "deadline_reminders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("ticket_id", "deadline_at"),)

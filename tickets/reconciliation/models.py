"""Tables of the weekly reconciliation: one list per agency and week, one line per ticket.

A list (``reconciliations``) is made the first time anyone looks at an agency's week,
and lines are added to it for tickets forwarded to the agency that week that it does
not hold yet (a week still running grows).  Each line (``reconciliation_items``) is
pending until an officer of the agency confirms it (the ticket and its status are as
the agency has them) or disputes it with a reason; a disputed line is a discrepancy,
which a supervisor resolves with a note.  ``version`` is each line's optimistic lock:
two officers deciding the same line at once, the second is told and sees the first's
decision.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class Decision(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"


class Reconciliation(Base):
    """An agency's list of one week (``week_start``: its Monday, local)."""

    __tablename__ = "reconciliations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    week_start: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("agency_id", "week_start"),)


class ReconciliationItem(Base):
    """One ticket forwarded to the agency that week, and what the agency said of it."""

    __tablename__ = "reconciliation_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("reconciliations.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # when it was forwarded to the agency that week (the first time, if several)
    forwarded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decision: Mapped[str] = mapped_column(String(16), default=Decision.PENDING.value)
    # the ticket's status the officer saw when deciding
    status_seen: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)  # why disputed
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by_name: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a supervisor looked into the dispute: what was found
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_by_name: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (UniqueConstraint("reconciliation_id", "ticket_id"),)

"""The table of a ticket's other agencies: co-handling agencies and delegations.

The lead agency is the ticket's own ``agency_id`` (its deadline, status and result are
the ticket's), so a ticket with one agency has no row here and the single-agency
workflow is unchanged.  A row is one more agency's part in the handling:

- ``co``: a co-handling agency a supervisor added when forwarding (level 3's
  coordinated handling); it accepts, answers or sends back its own part, and the lead
  combines the answers into the ticket's;
- ``delegated``: an agency passed its part (the lead's, a co-agency's, or a delegation
  it got itself) down the tree to one of its sub-agencies (district -> ward); the
  delegating agency (``from_agency_id``) stays accountable: its own part stays open
  until it adopts the sub-agency's answer or answers itself.

Rows are never deleted: a removed co-agency or a withdrawn delegation is a status.  A
ticket closed while parts of it are still open closes them with it (``closed``, with the
ticket's closing note as ``end_reason``): their agencies see that it ended and why, and
no reminder or overdue alert follows.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class Role(StrEnum):
    """An agency's part in a ticket besides the lead (the ticket's own ``agency_id``)."""

    CO = "co"
    DELEGATED = "delegated"


class State(StrEnum):
    FORWARDED = "forwarded"  # sent, deadline running
    ACCEPTED = "accepted"  # taken on
    ANSWERED = "answered"  # its answer given
    RETURNED = "returned"  # sent back with a reason (not its competence)
    ADOPTED = "adopted"  # a delegation whose answer the delegating agency made its own
    WITHDRAWN = "withdrawn"  # a co-agency removed, a delegation taken back or overtaken
    # still open when the supervisors closed the ticket: ended with it (``end_reason``)
    CLOSED = "closed"


#: Still to be handled: the deadline counts, the holder may act.
OPEN = (State.FORWARDED, State.ACCEPTED)


class Assignment(Base):
    """One agency's part in a ticket besides the lead."""

    __tablename__ = "ticket_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    role: Mapped[str] = mapped_column(String(16))
    # the delegation's parent part: a row, or None for the lead's part (then
    # ``from_agency_id`` is the lead agency); None for a co-agency
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_assignments.id"))
    from_agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text)
    return_reason: Mapped[str | None] = mapped_column(Text)
    # why an open part ended without its agency's answer (the ticket's closing note)
    end_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the overdue watch's mark: its deadline passed while open (escalated once per deadline)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # an officer's visibility and inbox: the parts of their agency
        Index("ix_ticket_assignments_agency", "agency_id", "status"),
    )

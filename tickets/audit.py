"""Who read which restricted report: the ticket views audit log.

Every time a restricted report (:mod:`tickets.confidential`) is shown to someone, its
page, its JSON, its history, a photo of it, or a row of it in a list, one row is
written in ``ticket_views``: who, when, which ticket, how (:class:`View`) and from
which address.  Like the replay audit log (:mod:`recordings.audit`) the table is
append-only: the database refuses to change or delete a row (triggers, migration
0031).  What is refused is not written: the panel decides access first and logs
only what it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from accounts.identity import Actor
from core.clock import Clock
from core.db import Base, Database, UTCDateTime
from core.settings import TicketSettings
from tickets.models import Ticket
from tickets.queries import visible_to


class View(StrEnum):
    PAGE = "page"  # the ticket's page in the panel
    API = "api"  # the ticket (or its history) through the JSON API
    FILE = "file"  # a file sent with the ticket
    LIST = "list"  # a row of a list or a search


class TicketView(Base):
    """One showing of a restricted ticket (never changed, never deleted)."""

    __tablename__ = "ticket_views"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # the name and role at the time, kept even if the account changes later
    user_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    how: Mapped[str] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


@dataclass
class ViewFilter:
    ticket_id: int | None = None
    user_id: int | None = None


@dataclass
class ViewRow:
    view: TicketView
    code: str


class TicketViewLog:
    """Writes and reads the ticket views audit log."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        actor: Actor,
        ticket_ids: Sequence[int],
        how: View,
        *,
        address: str | None,
        user_agent: str | None = None,
    ) -> None:
        """One row per ticket of ``ticket_ids`` (the caller passes the restricted ones)."""
        if not ticket_ids:
            return
        now = self.clock.now()
        async with self.db.session() as s:
            s.add_all(
                TicketView(
                    at=now,
                    ticket_id=ticket_id,
                    user_id=actor.id,
                    user_name=actor.name[:200],
                    role=str(actor.role),
                    how=how.value,
                    address=(address or "")[:64] or None,
                    user_agent=(user_agent or "")[:300] or None,
                )
                for ticket_id in dict.fromkeys(ticket_ids)
            )

    async def search(
        self,
        f: ViewFilter,
        *,
        actor: Actor,
        settings: TicketSettings,
        page: int = 1,
        per_page: int = 50,
    ) -> tuple[list[ViewRow], int]:
        """Newest first, with each ticket's code, and the total count matching ``f``: the
        views of the tickets ``actor`` may see (a code is not shown to the others)."""
        conds = [visible_to(actor, settings)]
        if f.ticket_id is not None:
            conds.append(TicketView.ticket_id == f.ticket_id)
        if f.user_id is not None:
            conds.append(TicketView.user_id == f.user_id)
        async with self.db.session() as s:
            total = await s.scalar(
                select(func.count())
                .select_from(TicketView)
                .join(Ticket, Ticket.id == TicketView.ticket_id)
                .where(*conds)
            )
            rows = await s.execute(
                select(TicketView, Ticket.code)
                .join(Ticket, Ticket.id == TicketView.ticket_id)
                .where(*conds)
                .order_by(TicketView.at.desc(), TicketView.id.desc())
                .limit(per_page)
                .offset((max(page, 1) - 1) * per_page)
            )
            return [ViewRow(view, code) for view, code in rows], int(total or 0)

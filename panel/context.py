"""What the panel's views use: the services and shared resources, built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.service import AccountService
from callcenter.callbacks import CallbackService
from callcenter.presence import AgentControl
from callcenter.service import CallService
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from panel.hub import Hub
from panel.i18n import I18n
from panel.sessions import SessionStore
from recordings.audit import AuditLog
from recordings.replay import ReplayService
from recordings.search import TranscriptSearch
from tickets.agencies import AgencyService
from tickets.queries import TicketQueries
from tickets.service import TicketService


@dataclass
class PanelContext:
    settings: Settings
    clock: Clock
    db: Database
    bus: Bus
    accounts: AccountService
    tickets: TicketService
    ticket_queries: TicketQueries
    agencies: AgencyService
    calls: CallService
    # None in a panel process without an AMI connection (pausing then fails clearly).
    control: AgentControl | None
    i18n: I18n
    sessions: SessionStore
    hub: Hub
    callbacks: CallbackService
    replay: ReplayService
    audit: AuditLog
    transcripts: TranscriptSearch

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        db: Database,
        bus: Bus,
        clock: Clock,
        control: AgentControl | None,
        calls: CallService | None = None,
        tickets: TicketService | None = None,
        ticket_queries: TicketQueries | None = None,
    ) -> PanelContext:
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            bus=bus,
            accounts=AccountService(db, settings, clock),
            tickets=tickets or TicketService(db, settings, clock),
            ticket_queries=ticket_queries or TicketQueries(db, settings, clock),
            agencies=AgencyService(db, clock),
            calls=calls or CallService(db, settings),
            control=control,
            i18n=I18n(),
            sessions=SessionStore(bus, int(settings.panel.session_hours * 3600)),
            hub=Hub(bus),
            callbacks=CallbackService(db, settings, clock),
            replay=ReplayService(db, settings),
            audit=AuditLog(db, clock),
            transcripts=TranscriptSearch(db),
        )

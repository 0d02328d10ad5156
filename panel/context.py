"""What the panel's views use: the services and shared resources.

The composition root builds them (``hotline.app.panel_context``); the panel
only receives them.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.apikeys import ApiKeyService
from accounts.service import AccountService
from callcenter.abandoned import AbandonedCallers
from callcenter.blocklist import BlocklistService
from callcenter.callbacks import CallbackService
from callcenter.outbound import OutboundService
from callcenter.pause import AgentControl
from callcenter.service import CallService
from callcenter.supervision import SupervisionService
from callcenter.transfers import TransferService
from callcenter.wrapup import WrapupService
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.health import Health
from core.settings import Settings
from inbox.service import InboxService
from notify.planner import Planner
from panel.hub import Hub
from panel.i18n import I18n
from panel.sessions import SessionStore
from qa.service import QaService
from queue_stats.periodic import PeriodicReports
from recordings.audit import AuditLog
from recordings.replay import ReplayService
from recordings.search import TranscriptSearch
from tickets.agencies import AgencyService
from tickets.audit import TicketViewLog
from tickets.directory import DirectoryFiles
from tickets.handling.service import AssignmentService
from tickets.kb.service import KnowledgeBase
from tickets.queries import TicketQueries
from tickets.reconciliation.service import ReconciliationService
from tickets.repeats import RepeatService
from tickets.review.service import ReviewService
from tickets.service import TicketService


@dataclass
class PanelContext:
    settings: Settings
    clock: Clock
    db: Database
    bus: Bus
    accounts: AccountService
    # keys of programs filing reports through Open311 (issued on /admin/api-keys)
    api_keys: ApiKeyService
    tickets: TicketService
    ticket_queries: TicketQueries
    # repeat reports: suggestions, links, groups (tickets.repeats)
    repeats: RepeatService
    agencies: AgencyService
    calls: CallService
    # None in a panel process without an AMI connection (pausing then fails clearly).
    control: AgentControl | None
    i18n: I18n
    sessions: SessionStore
    hub: Hub
    callbacks: CallbackService
    abandoned: AbandonedCallers
    # the agents' wrap-up codes of answered calls
    wrapup: WrapupService
    # the blocked-numbers list (supervisors add and lift; the IVR reads its own copy)
    blocklist: BlocklistService
    replay: ReplayService
    audit: AuditLog
    # who read which restricted report (tickets.confidential)
    ticket_views: TicketViewLog
    transcripts: TranscriptSearch
    # readiness checks for /readyz; the composition root adds its own
    health: Health
    # quality grading of recorded calls (scorecards, work list, grades, disputes)
    qa: QaService
    # the procedures knowledge base (level-1 answers) and the directory's CSV files
    kb: KnowledgeBase
    directory: DirectoryFiles
    # the weekly reconciliation with the agencies, and the leaders' stored reports
    reconciliation: ReconciliationService
    periodic: PeriodicReports
    # several agencies on a ticket and delegation down the tree (tickets.handling)
    handling: AssignmentService
    # refused answers, deadline extensions, staff's attachments (tickets.review)
    review: ReviewService
    # "call the citizen" from a ticket; None without a connection to Asterisk
    outbound: OutboundService | None = None
    # supervisors in agents' calls (None: no AMI connection in this process)
    supervision: SupervisionService | None = None
    # the SMS desk's inbox (None: no SMS channel configured)
    inbox: InboxService | None = None
    # what the hotline owes citizens and agencies (None: a context made without it)
    notify: Planner | None = None
    transfers: TransferService | None = None

"""The composition root: builds every long-lived resource and wires the domains.

:class:`Application` owns the database engine, Redis (the bus), the AMI
client, the FastAGI server, the live state, the screen-pop, the shift
scheduler, the overdue watch and the web panel, each started in order and
closed in reverse by one AsyncExitStack.  Nothing else creates them, and
every service is built here once: :func:`panel_context` hands the panel the
ones it uses.  :class:`PanelOnly` is the same without telephony: an extra
panel process that serves agents from the same Redis and database.

AMI events reach three lanes (``core.ami``), each in Asterisk's order:
``live`` (the live state: memory only), ``pop`` (the screen-pop) and
``main`` (call records, queue statistics rows, the scheduler's wake-ups,
callbacks, result calls), so the pop never waits behind a database write.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import partial

from aiohttp import web
from sqlalchemy import text

from accounts.apikeys import ApiKeyService
from accounts.identity import Actor
from accounts.models import Role
from accounts.service import AccountService
from accounts.throttle import SignInThrottle
from agi.follow import FollowFlow
from agi.ivr import IVR
from agi.overflow import OverflowMenu
from agi.protocol import FastAGIServer
from agi.result_call import ResultCallFlow
from agi.routes import routes
from agi.survey import Survey
from callcenter.abandoned import AbandonedCallers
from callcenter.blocklist import BlockCache, BlocklistService
from callcenter.callbacks import CallbackService
from callcenter.dialler import CALLBACK_EVENTS, CallbackDialler, OutboundDialler
from callcenter.events import (
    CALL_EVENTS,
    MEMBER_EVENTS,
    RESPONSE_EVENTS,
    CallEvents,
    member_subscriptions,
)
from callcenter.handover import HANDOVER_EVENTS, RecordingHandover
from callcenter.live import LIVE_EVENTS, LiveState
from callcenter.models import VoiceMessage
from callcenter.outbound import OutboundService
from callcenter.pause import AgentControl
from callcenter.presence import POP_EVENTS, Presence
from callcenter.queue_log import QueueLogReader
from callcenter.scheduler import ShiftScheduler
from callcenter.service import CallService
from callcenter.shifts import shift_at
from callcenter.supervision import SUPERVISION_EVENTS, SupervisionService
from callcenter.transfer_events import TransferEvents
from callcenter.transfers import TRANSFER_EVENTS, TransferService
from callcenter.wrapup import WrapupService
from core.ami import AMIClient
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.health import Health, NotReady
from core.lifecycle import on_stop
from core.mail import Mailer
from core.settings import ConfigError, Settings, require_secrets
from dialplan.speech import SpeechCache
from hotline.status import sms_online
from inbox.email import EmailIntake, EmailSender
from inbox.service import InboxService, Sender
from mail.imap import MailboxReader
from mail.outgoing import Mailer as SmtpMailer
from mail.outgoing import Notices
from notify.dispatcher import WAKE_TOPIC as NOTIFY_WAKE
from notify.dispatcher import NotifyDispatcher
from notify.planner import Planner
from notify.service import NotifySender
from notify.survey import SurveyReplies
from open311.app import make_open311_app
from panel.app import make_app
from panel.context import PanelContext
from panel.hub import Hub
from panel.i18n import I18n
from panel.sessions import SessionStore
from public.app import make_public_app
from public.context import public_context
from qa.service import QaService
from queue_stats import documents
from queue_stats.catchup import QueueLogCatchUp
from queue_stats.congestion import CongestionWatch
from queue_stats.ingest import INGEST_EVENTS, QueueIngest
from queue_stats.live import LiveQueues
from queue_stats.periodic import PeriodicReports, PeriodicReportWatch
from queue_stats.storage import EventWriter
from recordings.audit import AuditLog
from recordings.pipeline import TranscriptionPipeline
from recordings.replay import ReplayService
from recordings.search import TranscriptSearch
from sms.gateway import SendSms
from sms.kannel import status as kannel_status
from tickets.agencies import AgencyService, phone_directory
from tickets.alerts import OverdueWatch
from tickets.audience import Audience
from tickets.audit import TicketViewLog
from tickets.directory import DirectoryFiles
from tickets.follow import FollowQueries
from tickets.handling.service import AssignmentService
from tickets.kb.service import KnowledgeBase
from tickets.notify import CreatorNotice
from tickets.numbers import format_number
from tickets.queries import TicketQueries
from tickets.ratings import RatingService
from tickets.reconciliation.service import ReconciliationService
from tickets.repeats import RepeatService, flag_alert
from tickets.result_calls import ResultCallService, waker
from tickets.result_dialler import RESULT_CALL_EVENTS, ResultCallDialler
from tickets.review.reminders import DeadlineReminders
from tickets.review.service import ReviewService
from tickets.schemas import normalize_phone
from tickets.service import TicketService

log = logging.getLogger(__name__)

# Every event the application hears: manager.conf lets only these through.
AMI_EVENTS = sorted(
    {
        *CALL_EVENTS,
        *MEMBER_EVENTS,
        *RESPONSE_EVENTS,
        *LIVE_EVENTS,
        *POP_EVENTS,
        *INGEST_EVENTS,
        *CALLBACK_EVENTS,
        *RESULT_CALL_EVENTS,
        *SUPERVISION_EVENTS,
        *TRANSFER_EVENTS,
        *HANDOVER_EVENTS,
    }
)


class _Web:
    """A web application's HTTP server as one resource (site bound at start, cleaned up
    at stop): the panel, or the public site on its own address."""

    def __init__(self, app: web.Application, host: str, port: int, what: str = "panel") -> None:
        self.app = app
        self.host, self.port, self.what = host, port, what
        self.runner = web.AppRunner(self.app, access_log=None)

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        await site.start()
        log.info("%s on http://%s:%d/", self.what, self.host, self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()


# Whoever answers the call reads its pop: it names no restricted report
# (tickets.confidential), whoever the agent is.
SCREEN_POP = Actor(id=None, name="screen-pop", role=Role.AGENT)


def ticket_history(tickets: TicketQueries):  # type: ignore[no-untyped-def]
    """The caller's earlier tickets as the screen-pop shows them."""

    async def history(phone: str | None) -> list[dict[str, object]]:
        rows = await tickets.for_phone(phone, actor=SCREEN_POP, limit=10)
        return [
            {
                "code": t.code,
                "number": format_number(t.number),
                "created_at": t.created_at.isoformat(),
                "status": t.status,
                "level": t.level,
                "summary": t.description[:100],
            }
            for t in rows
        ]

    return history


def ticket_phone(number: str) -> str | None:
    """A caller's number as tickets store it (None: not a phone number)."""
    try:
        return normalize_phone(number)
    except ValueError:
        return None


def inbox_service(
    settings: Settings,
    *,
    db: Database,
    bus: Bus,
    clock: Clock,
    tickets: TicketService,
    ticket_queries: TicketQueries,
    callbacks: CallbackService | None = None,
) -> InboxService:
    """The desks' inbox, with a sender for each channel that is on."""
    senders: dict[str, Sender] = {}
    if settings.sms.enabled:
        senders["sms"] = SendSms(settings).send
    if settings.email.enabled:
        senders["email"] = EmailSender(db, settings, clock, SmtpMailer(settings)).send
    return InboxService(
        db, settings, clock, bus, tickets, ticket_queries, senders, callbacks=callbacks
    )


def bus_waker(bus: Bus) -> Callable[[], None]:
    """Wake the notification dispatcher in whichever process runs it (over the bus)."""
    pending: set[asyncio.Task[None]] = set()

    async def publish() -> None:
        try:
            await bus.publish(NOTIFY_WAKE, {})
        except Exception:  # noqa: BLE001 - the dispatcher's sweep finds the rows anyway
            log.warning("could not wake the notification dispatcher over the bus")

    def wake() -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(publish())
        pending.add(task)
        task.add_done_callback(pending.discard)

    return wake


def mailer_for(settings: Settings) -> Mailer | None:
    """The one SMTP sender (``[email]``) as the domains' mailer, for automatic notices
    (the leaders' reports, the notifications); None when email is not enabled."""
    if not settings.email.enabled:
        return None
    return Notices(SmtpMailer(settings))


def notify_dispatcher(
    ctx: PanelContext, *, mailer: Mailer | None = None, interval: float | None = None
) -> NotifyDispatcher:
    """The task that sends the notifications (the application runs one)."""
    settings = ctx.settings
    assert ctx.notify is not None
    sender = NotifySender(
        ctx.db,
        settings,
        ctx.clock,
        ctx.inbox if settings.sms.enabled else None,
        mailer if mailer is not None else mailer_for(settings),
    )
    return NotifyDispatcher(
        ctx.notify,
        sender,
        ctx.clock,
        bus=ctx.bus,
        interval=interval if interval is not None else settings.notify.sweep_seconds,
        concurrency=settings.notify.concurrency,
    )


def transfer_service(
    settings: Settings, db: Database, bus: Bus, ami: AMIClient, clock: Clock
) -> TransferService:
    """Transfers from any panel process: to the configuration's targets and the
    agencies directory's numbers (the tickets domain's, read here for the call centre)."""
    return TransferService(settings, db, bus, ami, clock, agencies=partial(phone_directory, db))


def panel_context(
    settings: Settings,
    *,
    db: Database,
    bus: Bus,
    clock: Clock,
    control: AgentControl | None,
    calls: CallService | None = None,
    tickets: TicketService | None = None,
    ticket_queries: TicketQueries | None = None,
    callbacks: CallbackService | None = None,
    outbound: OutboundService | None = None,
    supervision: SupervisionService | None = None,
    transfers: TransferService | None = None,
    mailer: Mailer | None = None,
) -> PanelContext:
    """The services the panel's views use, each built once (the application
    passes the ones it shares with the call path).  Without ``outbound`` (no
    connection to Asterisk) the panel offers no "call the citizen"; without
    ``mailer`` (email not configured) periodic reports are stored, not sent."""
    callbacks = callbacks or CallbackService(db, settings, clock)
    tickets = tickets or TicketService(db, settings, clock)
    # the agency's answer reaches the agent who created the ticket, on their open pages
    tickets.on_creator_needed.append(CreatorNotice(bus))
    # a result to tell a citizen by phone wakes the result-call dialler, in any process
    tickets.on_result_recorded.append(waker(bus))
    ticket_queries = ticket_queries or TicketQueries(db, settings, clock)
    repeats = RepeatService(db, settings, clock, tickets)
    # a matter reported often enough unresolved: the supervisors' alert
    repeats.on_flagged.append(flag_alert(bus.publish, Audience(db, settings).staff_topics))
    inbox = inbox_service(
        settings,
        db=db,
        bus=bus,
        clock=clock,
        tickets=tickets,
        ticket_queries=ticket_queries,
        callbacks=callbacks,
    )
    # what a ticket's change owes the citizen and the agency is written with it; the
    # dispatcher (in the application's process) is woken over the bus
    planner = Planner(db, settings, clock)
    planner.wake = bus_waker(bus)
    tickets.on_written.append(planner.written)
    inbox.responders.append(SurveyReplies(db, clock, planner, RatingService(db, clock), tickets))
    if settings.notify.enabled:
        inbox.send_code = False  # the planner sends it, logged with the others
    return PanelContext(
        settings=settings,
        clock=clock,
        db=db,
        bus=bus,
        accounts=AccountService(
            db, settings, clock, SignInThrottle(bus.redis, bus.prefix, settings)
        ),
        api_keys=ApiKeyService(db, clock),
        tickets=tickets,
        ticket_queries=ticket_queries,
        repeats=repeats,
        agencies=AgencyService(db, clock),
        calls=calls or CallService(db, settings),
        control=control,
        i18n=I18n(),
        sessions=SessionStore(bus, int(settings.panel.session_hours * 3600)),
        hub=Hub(bus),
        callbacks=callbacks,
        abandoned=AbandonedCallers(db, clock, callbacks),
        wrapup=WrapupService(db, settings, clock),
        blocklist=BlocklistService(db, settings, clock, bus),
        replay=ReplayService(db, settings),
        audit=AuditLog(db, clock),
        ticket_views=TicketViewLog(db, clock),
        transcripts=TranscriptSearch(db),
        health=base_health(db, bus),
        qa=QaService(db, settings, clock),
        kb=KnowledgeBase(db, clock),
        directory=DirectoryFiles(db, clock),
        reconciliation=ReconciliationService(db, settings, clock, bus),
        periodic=PeriodicReports(db, settings, clock, mailer),
        handling=AssignmentService(db, tickets, clock),
        review=ReviewService(tickets, db, settings, clock, bus),
        outbound=outbound,
        supervision=supervision,
        inbox=inbox,
        transfers=transfers,
        notify=planner,
    )


def public_site(
    settings: Settings,
    *,
    db: Database,
    bus: Bus,
    clock: Clock,
    panel: web.Application,
    tickets: TicketService | None = None,
) -> _Web | None:
    """The public site (status page, portal): mounted under the panel at
    ``public.path_prefix``, or its own server to start (returned); None when off."""
    pub = settings.public
    if not pub.enabled:
        return None
    i18n = I18n()
    ctx = public_context(
        settings, db=db, bus=bus, clock=clock, translations=i18n.gettext, tickets=tickets
    )

    def open311(app: web.Application) -> None:
        """Open311 GeoReport v2 beside the pages (its own sub-application)."""
        app.add_subapp(
            "/open311/v2",
            make_open311_app(settings, db, bus.redis, bus.prefix, clock=clock, tickets=ctx.tickets),
        )

    if pub.path_prefix:
        panel.add_subapp(
            pub.path_prefix, make_public_app(ctx, prefix=pub.path_prefix, extra=[open311])
        )
        return None
    return _Web(make_public_app(ctx, extra=[open311]), pub.host, pub.port, "public site")


def base_health(db: Database, bus: Bus) -> Health:
    """The checks every panel process answers /readyz with: the database and Redis."""
    health = Health()

    async def database() -> None:
        async with db.session() as s:
            await s.execute(text("SELECT 1"))

    async def redis() -> None:
        await bus.ping()

    health.add("database", database)
    health.add("redis", redis)
    return health


def worker_command(settings: Settings) -> list[str] | None:
    """How the application starts a transcription worker (None: no model configured)."""
    if settings.vosk_model is None:
        return None
    return [
        sys.executable,
        "-m",
        "hotline.cli",
        "--config",
        str(settings.config_path or settings.home / "config" / "hotline.toml"),
        "transcribe-worker",
        "--model",
        str(settings.vosk_model),
    ]


class Application:
    """The running hotline back end (everything but Asterisk itself)."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, scheduler_interval: float = 30.0
    ) -> None:
        require_secrets(settings)
        self.settings = settings
        self.clock = clock or Clock()
        self.db = Database(settings.database)
        self.calls = CallService(self.db, settings)
        self.ami = AMIClient(
            settings.asterisk.ami_host,
            settings.asterisk.ami_port,
            settings.asterisk.ami_user,
            settings.ami_secret.get_secret_value(),
        )
        self.bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
        self.tickets = TicketService(self.db, settings, self.clock)
        self.ticket_queries = TicketQueries(self.db, settings, self.clock)
        self.callback_service = CallbackService(self.db, settings, self.clock)
        self.outbound_service = OutboundService(self.db, settings, self.clock, self.bus, self.ami)
        self.call_events = CallEvents(self.calls, self.clock)
        self.live = LiveState(
            self.bus,
            self.clock,
            names={a.extension: a.name for a in settings.agents},
            wrapup_seconds=settings.queues.wrapup_seconds,
        )
        self.presence = Presence(
            self.bus,
            self.calls,
            settings,
            self.clock,
            history=ticket_history(self.ticket_queries),
            live=self.live,
            phone_key=ticket_phone,
        )
        # a ticket written for a caller's phone: the history read ahead for their pop is old
        self.tickets.on_phone_written.append(self.presence.tickets_changed)
        self.supervision = SupervisionService(settings, self.db, self.bus, self.ami, self.clock)
        self.transfers = transfer_service(settings, self.db, self.bus, self.ami, self.clock)
        # the one SMTP sender of automatic mail (reports, notifications); None: email off
        self.mailer = mailer_for(settings)
        self.panel = panel_context(
            settings,
            db=self.db,
            bus=self.bus,
            clock=self.clock,
            control=AgentControl(self.ami),
            supervision=self.supervision,
            transfers=self.transfers,
            calls=self.calls,
            tickets=self.tickets,
            ticket_queries=self.ticket_queries,
            callbacks=self.callback_service,
            outbound=self.outbound_service,
            # the email sender, when email is configured: reports go out by mail
            mailer=self.mailer,
        )
        self.web = _Web(make_app(self.panel), settings.panel.host, settings.panel.port)
        self.public = public_site(
            settings,
            db=self.db,
            bus=self.bus,
            clock=self.clock,
            panel=self.web.app,
            tickets=self.tickets,
        )
        # the hotline's mailbox, read by this process alone (one IMAP reader)
        self.mail_reader: MailboxReader | None = None
        if settings.email.enabled and self.panel.inbox is not None:
            self.mail_reader = MailboxReader(
                settings, EmailIntake(self.panel.inbox).store_batch, self.clock
            )
        self.overdue = OverdueWatch(
            self.tickets,
            self.panel.agencies,
            self.bus,
            self.clock,
            settings.tickets.overdue_check_seconds,
            parts=self.panel.handling,
            reminders=DeadlineReminders(self.db, settings, self.clock, self.bus),
        )
        self.queue_log = QueueLogReader(
            settings.queue_log, settings.state_dir / "queue_log.offset.json"
        )
        self.scheduler = ShiftScheduler(settings, self.ami, self.clock, interval=scheduler_interval)
        # the report follow-up: free text spoken at run time, kept beside the prompts
        self.speech = SpeechCache(
            settings.prompts_dir / "spoken", keep_days=settings.ivr.follow.spoken_cache_days
        )
        self.follow_queries = FollowQueries(self.db)
        self.follow = FollowFlow(settings, self.follow_queries, self.speech, self.clock)
        # the blocked-numbers list, held in memory for the IVR (read on every call)
        self.blocks = BlockCache(self.db, settings, self.clock, self.bus)
        self.ivr = IVR(
            settings,
            self.calls,
            self.clock,
            follow=self.follow,
            on_arrival=self.presence.prefetch,
            blocks=self.blocks,
        )
        # queue statistics: the event table and its catch-up from queue_log; the
        # congestion watch reads the board the live state writes
        self.live_queues = LiveQueues(self.bus, self.clock)
        self.queue_events = EventWriter(self.db)
        self.queue_ingest = QueueIngest(self.queue_events, self.clock)
        self.queue_catchup = QueueLogCatchUp(
            QueueLogReader(settings.queue_log, settings.state_dir / "queue_stats.offset.json"),
            self.db,
        )
        self.congestion = CongestionWatch(self.live_queues, self.bus, self.db, settings, self.clock)
        # the leaders' reports on their schedule (written by this process only)
        self.periodic_reports = PeriodicReportWatch(
            self.panel.periodic, settings.periodic_reports.check_seconds
        )
        self.callbacks = CallbackDialler(
            self.callback_service,
            settings,
            self.ami,
            self.clock,
            presence=self.presence,
            bus=self.bus,
        )
        self.outbound = OutboundDialler(
            self.outbound_service,
            settings,
            self.ami,
            self.clock,
            self.bus,
            presence=self.presence,
        )
        self.overflow = OverflowMenu(settings, self.callback_service, self.clock)
        self.ratings = RatingService(self.db, self.clock)
        self.survey = Survey(settings, self.calls, self.ratings, self.tickets, self.clock)
        # result calls: the citizen of a level-2/3 report is called with the agency's answer
        self.result_call_service = ResultCallService(self.db, settings, self.clock)
        self.result_calls = ResultCallDialler(
            self.result_call_service, settings, self.ami, self.clock, bus=self.bus
        )
        self.result_call = ResultCallFlow(
            settings, self.result_call_service, self.follow_queries, self.follow
        )
        self.agi = FastAGIServer(
            settings.agi.host,
            settings.agi.port,
            routes(self.ivr, self.overflow, self.survey, self.result_call),
        )
        # transcription: jobs queued when a recorded call ends, worker processes
        self.transcription = TranscriptionPipeline(
            settings, self.db, self.bus, self.clock, worker_command=worker_command(settings)
        )
        self.calls.on_recorded_call_ended.append(self.transcription.call_ended)
        # notifications to citizens and agencies: written with the changes, sent here
        self.notifier = notify_dispatcher(self.panel, mailer=self.mailer)
        self.overdue.on_escalated.append(self.notifier.planner.escalated)
        # a voice message left in the overflow joins the desks' inbox, and is transcribed
        self.callback_service.on_voice_message.append(self._voice_message)
        self.callback_service.on_recorded_call_ended.append(self.transcription.call_ended)
        self.result_call_service.on_recorded_call_ended.append(self.transcription.call_ended)
        self.outbound_service.on_recorded_call_ended.append(self.transcription.call_ended)
        self._stack = AsyncExitStack()

        self.call_events.subscribe(self.ami)
        self.live.subscribe(self.ami)
        self.presence.subscribe(self.ami)
        self.callbacks.subscribe(self.ami)
        self.result_calls.subscribe(self.ami)
        self.outbound.subscribe(self.ami)
        self.supervision.subscribe(self.ami)
        TransferEvents(settings, self.db, self.clock).subscribe(self.ami)
        # a transferred call's recording follows it to whoever took it
        RecordingHandover(self.db, self.ami).subscribe(self.ami)
        member_subscriptions(self.ami, self.scheduler)
        self.queue_ingest.subscribe(self.ami)
        self.ami.on_login(self._resync_calls)
        self.ami.on_login(self._resync_queues)
        self._add_health_checks(self.panel.health)

    def _add_health_checks(self, health: Health) -> None:
        """What else /readyz answers for the process that takes the calls."""

        async def ami() -> None:
            if not self.ami.connected:
                raise NotReady("not logged in to Asterisk")

        async def agi() -> dict[str, object]:
            if not self.agi.serving:
                raise NotReady("not listening")
            return {"address": f"{self.settings.agi.host}:{self.settings.agi.port}"}

        async def transcription() -> dict[str, object]:
            waiting, working = await self.transcription.queue.sizes()
            seen: dict[str, object] = {"waiting": waiting, "working": working}
            problem = self.transcription.model_problem()
            workers = self.transcription.workers
            if problem:
                seen["model"] = problem
            elif workers is not None:
                alive = sum(p.returncode is None for p in workers.procs)
                seen["workers"] = f"{alive}/{workers.count}"
                if alive < workers.count:
                    raise NotReady(f"{alive} of {workers.count} workers running")
            return seen

        async def queues() -> dict[str, object]:
            shift = shift_at(self.settings.shifts, self.clock.now(), self.settings.tz)
            return {"shift": shift.id, "queues": self.live.summary()}

        async def sms() -> dict[str, object]:
            state = await asyncio.to_thread(kannel_status, self.settings)
            if not sms_online({"running": True, **state}):
                raise NotReady(
                    state.get("error") or f"SMSC {state.get('smscs')}, boxes {state.get('boxes')}"
                )
            return {"smsc": ", ".join(x["status"] for x in state["smscs"])}

        health.add("ami", ami)
        health.add("agi", agi)
        # calls are taken without these: they show, but do not make us unready
        health.add("transcription", transcription, required=False)
        health.add("queues", queues, required=False)
        if self.settings.sms.enabled:
            # calls are taken without SMS; Kannel keeps what arrives meanwhile
            health.add("sms", sms, required=False)
        reader = self.mail_reader
        if reader is not None:

            async def email() -> dict[str, object]:
                state = reader.state
                if not state["connected"]:
                    raise NotReady(state["error"] or "not connected to the mailbox yet")
                return {"idle": state["idle"], "stored": state["stored"]}

            # calls are taken without mail; the mailbox keeps what arrives meanwhile
            health.add("email", email, required=False)

    async def _voice_message(self, vm: VoiceMessage) -> None:
        assert self.panel.inbox is not None
        await self.panel.inbox.voice_arrived(vm.id)
        if vm.call_id is not None:
            await self.transcription.call_ended(vm.call_id)

    async def _resync_calls(self) -> None:
        await self.call_events.resync(self.ami, self.queue_log)

    async def _resync_queues(self) -> None:
        await self.queue_catchup.run_once()

    async def start(self) -> None:
        stack = self._stack
        on_stop(stack, "db", self.db.close)
        on_stop(stack, "bus", self.bus.close)
        await self.calls.sync_directory()
        # started before AMI and stopped after it: the last events are written
        await self.live.start()
        on_stop(stack, "live", self.live.stop)
        await self.queue_events.start()
        on_stop(stack, "queue_events", self.queue_events.stop)
        on_stop(stack, "speech", self.speech.close)
        # read before the first call is taken (a database away: nobody blocked yet)
        await self.blocks.start()
        on_stop(stack, "blocklist", self.blocks.stop)
        await self.agi.start()
        on_stop(stack, "agi", self.agi.stop)
        await self.ami.start()
        on_stop(stack, "ami", self.ami.stop)
        await self.scheduler.start()
        on_stop(stack, "scheduler", self.scheduler.stop)
        await self.queue_catchup.start()
        on_stop(stack, "queue_catchup", self.queue_catchup.stop)
        on_stop(stack, "presence", self.presence.stop)
        await self.callbacks.start()
        on_stop(stack, "callbacks", self.callbacks.stop)
        await self.result_calls.start()
        on_stop(stack, "result_calls", self.result_calls.stop)
        await self.outbound.start()
        on_stop(stack, "outbound", self.outbound.stop)
        on_stop(stack, "supervision", self.supervision.stop)
        await self.overdue.start()
        on_stop(stack, "overdue", self.overdue.stop)
        await self.congestion.start()
        on_stop(stack, "congestion", self.congestion.stop)
        if self.settings.periodic_reports.enabled:
            try:
                documents.fonts(self.settings)
            except documents.FontMissing as e:
                raise ConfigError("periodic_reports", [str(e)]) from None
            await self.periodic_reports.start()
            on_stop(stack, "periodic_reports", self.periodic_reports.stop)
        if self.settings.notify.enabled:
            await self.notifier.start()
            on_stop(stack, "notify", self.notifier.stop)
        try:
            assert self.panel.inbox is not None
            await self.panel.inbox.sync_voice()
        except Exception:  # noqa: BLE001 - the next start tries again; the callbacks page has them
            log.exception("voice messages not brought into the inbox")
        await self.web.start()
        on_stop(stack, "web", self.web.stop, timeout=30)
        if self.public is not None:
            await self.public.start()
            on_stop(stack, "public", self.public.stop, timeout=30)
        if self.mail_reader is not None:
            await self.mail_reader.start()
            on_stop(stack, "email", self.mail_reader.stop)
        await self.transcription.start()
        on_stop(stack, "transcription", self.transcription.stop, timeout=30)  # workers finish a job
        log.info("hotline application started")

    async def stop(self) -> None:
        await self._stack.aclose()
        log.info("hotline application stopped")

    async def __aenter__(self) -> Application:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class PanelOnly:
    """An extra panel process: web, Redis and the database; AMI only to pause agents
    and to see whether an agent's phone is free (the application dials)."""

    def __init__(self, settings: Settings, *, port: int, clock: Clock | None = None) -> None:
        require_secrets(settings)
        self.clock = clock or Clock()
        self.db = Database(settings.database)
        self.bus = Bus(settings.panel.redis_url, settings.panel.redis_prefix)
        self.ami = AMIClient(
            settings.asterisk.ami_host,
            settings.asterisk.ami_port,
            settings.asterisk.ami_user,
            settings.ami_secret.get_secret_value(),
        )
        # supervisors start listening from any panel process; each closes the audit
        # rows it hears end (closing one twice changes nothing)
        self.supervision = SupervisionService(settings, self.db, self.bus, self.ami, self.clock)
        self.supervision.subscribe(self.ami)
        self.panel = panel_context(
            settings,
            db=self.db,
            bus=self.bus,
            clock=self.clock,
            control=AgentControl(self.ami),
            outbound=OutboundService(self.db, settings, self.clock, self.bus, self.ami),
            supervision=self.supervision,
            transfers=transfer_service(settings, self.db, self.bus, self.ami, self.clock),
        )
        self.web = _Web(make_app(self.panel), settings.panel.host, port)
        # under the panel's address, the public site is served by every panel process;
        # on its own port, by the application alone
        if settings.public.path_prefix:
            public_site(
                settings,
                db=self.db,
                bus=self.bus,
                clock=self.clock,
                panel=self.web.app,
                tickets=self.panel.tickets,
            )
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> PanelOnly:
        stack = self._stack
        on_stop(stack, "db", self.db.close)
        on_stop(stack, "bus", self.bus.close)
        await self.ami.start()
        on_stop(stack, "ami", self.ami.stop)
        on_stop(stack, "supervision", self.supervision.stop)
        await self.web.start()
        on_stop(stack, "web", self.web.stop, timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

"""What is owed, and to whom: notifications written when they become owed.

1. :meth:`Planner.written` is a :attr:`tickets.service.TicketService.on_written` hook:
   in the transaction of the ticket's change it writes the citizen's notifications
   (the number at creation, "forwarded", the result and the survey) and the
   agency's "forwarded" email.  A crash after the commit loses none; a change that
   is rolled back owes nothing.
2. :meth:`Planner.escalated` (after the overdue watch's escalation), and
   :meth:`Planner.periodic` (reminders before a deadline, the daily digest) write the
   rest in sessions of their own; a second run finds the row (``dedupe``) and adds none.
   An agency is mailed about a ticket only if its officers may see it, and the digest
   (mailed to addresses, not accounts) lists no restricted report, only how many
   (:mod:`tickets.audience`, :mod:`tickets.confidential`).

The dispatcher (:mod:`notify.dispatcher`) sends what is due.  Non-urgent SMS
(:data:`notify.models.URGENT` are not) are due at the start of ``notify.hours``
when owed at night.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db import Database
from core.settings import Settings
from inbox.models import Direction, Flag, Message
from notify.models import (
    URGENT,
    Kind,
    Notification,
    NotifyChannel,
    NotifyState,
    SmsSurvey,
    SurveyState,
)
from notify.texts import agency_email, citizen_email, sms_text, status_url
from tickets.audience import Audience
from tickets.confidential import restricted_clause
from tickets.models import DEADLINE_STATUSES, Agency, Channel, Status, Ticket
from tickets.result_calls import next_allowed

log = logging.getLogger(__name__)

#: Levels whose citizen hears "forwarded" (DOMAIN.md: levels 2 and 3).
FORWARD_LEVELS = (2, 3)
# a flood from the number this recently: its ticket's number is not sent (sms.flood_per_minute)
FLOOD_QUIET = timedelta(minutes=10)


@dataclass(frozen=True)
class Target:
    channel: NotifyChannel
    recipient: str


class Planner:
    """Writes the notifications owed; ``wake`` is called once a written one is committed."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.wake: Callable[[], None] = lambda: None
        self.audience = Audience(db, settings)

    @property
    def conf(self) -> Any:
        return self.settings.notify

    # -- who, how, when -------------------------------------------------------------

    def citizen_target(self, ticket: Ticket) -> Target | None:
        """The citizen's address on the channel they used (None: none we can reach)."""
        sms_on = self.settings.sms.enabled
        phone = ticket.citizen_phone
        if ticket.channel == Channel.SMS and phone and sms_on:
            return Target(NotifyChannel.SMS, phone)
        if ticket.channel == Channel.PHONE and phone and sms_on and self.conf.phone_by_sms:
            return Target(NotifyChannel.SMS, phone)
        if ticket.channel in (Channel.EMAIL, Channel.WEB) and ticket.reporter_email:
            return Target(NotifyChannel.EMAIL, ticket.reporter_email)
        if ticket.channel == Channel.WEB and phone and sms_on:
            return Target(NotifyChannel.SMS, phone)
        return None

    def due_at(self, kind: str, channel: str, now: datetime) -> datetime:
        if channel != NotifyChannel.SMS or kind in URGENT:
            return now
        return next_allowed(now, self.conf.window(), self.settings.tz)

    def status_url(self) -> str | None:
        pub = self.settings.public
        return status_url(pub.url, pub.path_prefix) if pub.enabled else None

    def hotline_number(self) -> str:
        return self.settings.hotlines[0].number

    def citizen_text(self, kind: str, ticket: Ticket, agency: str | None = None) -> str:
        return sms_text(
            kind,
            self.conf.language,
            number=ticket.number,
            hotline=self.hotline_number(),
            status_url=self.status_url(),
            agency=agency,
            result=ticket.result,
            days=self.conf.survey_days,
        )

    # -- writing ---------------------------------------------------------------------

    async def add(
        self,
        s: AsyncSession,
        *,
        dedupe: str,
        kind: str,
        target: Target,
        body: str,
        now: datetime,
        ticket_id: int | None,
        subject: str | None = None,
    ) -> Notification | None:
        """Write one notification unless one with ``dedupe`` exists (then None)."""
        if await s.scalar(select(Notification.id).where(Notification.dedupe == dedupe)):
            return None
        row = Notification(
            dedupe=dedupe[:300],
            ticket_id=ticket_id,
            kind=kind,
            channel=target.channel,
            recipient=target.recipient,
            subject=subject,
            body=body,
            state=NotifyState.PENDING,
            due_at=self.due_at(kind, target.channel, now),
            attempts=0,
            created_at=now,
        )
        s.add(row)
        await s.flush()
        return row

    async def add_citizen(
        self, s: AsyncSession, kind: str, ticket: Ticket, target: Target, body: str, now: datetime
    ) -> Notification | None:
        subject = None
        if target.channel == NotifyChannel.EMAIL:
            subject, body = citizen_email(kind, body, ticket.code)
        return await self.add(
            s,
            dedupe=f"{kind}:{ticket.id}:{ticket.reopens or 0}:{target.recipient}",
            kind=kind,
            target=target,
            body=body,
            now=now,
            ticket_id=ticket.id,
            subject=subject,
        )

    async def _agency(self, s: AsyncSession, agency_id: int | None) -> Agency | None:
        return await s.get(Agency, agency_id) if agency_id else None

    def _agency_mail(
        self, kind: str, ticket: Ticket, agency: Agency, child: Agency | None = None
    ) -> tuple[str, str]:
        return agency_email(
            kind,
            code=ticket.code,
            number=ticket.number,
            level=ticket.level,
            topic=ticket.topic,
            description=ticket.description,
            deadline=ticket.deadline_at,
            agency=agency.name,
            child_agency=child.name if child else None,
            panel_url=self.settings.sms_callback_base,
            tz=self.settings.tz,
        )

    async def _flooding(self, s: AsyncSession, phone: str, now: datetime) -> bool:
        return bool(
            await s.scalar(
                select(
                    exists().where(
                        Message.citizen == phone,
                        Message.direction == Direction.IN,
                        Message.flag == Flag.FLOOD,
                        Message.created_at >= now - FLOOD_QUIET,
                    )
                )
            )
        )

    # -- the ticket's changes (in their transaction) -----------------------------------

    async def written(
        self, s: AsyncSession, ticket: Ticket, action: str, from_status: str | None, now: datetime
    ) -> None:
        """TicketService.on_written: what this change owes the citizen and the agency."""
        if not self.conf.enabled:
            return
        made: list[Notification | None] = []
        target = self.citizen_target(ticket)
        if action == "created" and target is not None and self.conf.code:
            flood = target.channel == NotifyChannel.SMS and await self._flooding(
                s, target.recipient, now
            )
            if not flood:  # a flood is never sent a tracking number (sms.flood_per_minute)
                made.append(
                    await self.add_citizen(
                        s, Kind.CODE, ticket, target, self.citizen_text(Kind.CODE, ticket), now
                    )
                )
        forwarded_now = ticket.status == Status.FORWARDED and from_status != Status.FORWARDED
        if forwarded_now:
            agency = await self._agency(s, ticket.agency_id)
            if target is not None and self.conf.forwarded and ticket.level in FORWARD_LEVELS:
                text = self.citizen_text(Kind.FORWARDED, ticket, agency.name if agency else None)
                made.append(await self.add_citizen(s, Kind.FORWARDED, ticket, target, text, now))
            if agency is not None and agency.email and self.conf.agency_forwarded:
                subject, body = self._agency_mail(Kind.AGENCY_FORWARDED, ticket, agency)
                made.append(
                    await self.add(
                        s,
                        dedupe=f"agency_forwarded:{ticket.id}:{agency.id}:{now.isoformat()}",
                        kind=Kind.AGENCY_FORWARDED,
                        target=Target(NotifyChannel.EMAIL, agency.email),
                        body=body,
                        subject=subject,
                        now=now,
                        ticket_id=ticket.id,
                    )
                )
        if action == "answered" and target is not None:
            if self.conf.result:
                text = self.citizen_text(Kind.RESULT, ticket)
                made.append(await self.add_citizen(s, Kind.RESULT, ticket, target, text, now))
            if self.conf.survey and target.channel == NotifyChannel.SMS:
                text = self.citizen_text(Kind.SURVEY, ticket)
                survey = await self.add_citizen(s, Kind.SURVEY, ticket, target, text, now)
                if survey is not None:
                    s.add(
                        SmsSurvey(
                            ticket_id=ticket.id,
                            round=ticket.reopens or 0,
                            number=target.recipient,
                            state=SurveyState.WAITING,
                            notification_id=survey.id,
                            created_at=now,
                        )
                    )
                made.append(survey)
        if any(made):
            self._wake_after_commit(s)

    def _wake_after_commit(self, s: AsyncSession) -> None:
        from sqlalchemy import event as orm_event

        def committed(_session: object) -> None:
            try:
                self.wake()
            except Exception:  # noqa: BLE001 - the rows are written; the sweep finds them
                log.exception("waking the notification dispatcher failed")

        orm_event.listen(s.sync_session, "after_commit", committed, once=True)

    # -- in sessions of their own ----------------------------------------------------

    async def _add_alone(self, **kw: Any) -> bool:
        """:meth:`add` in its own transaction; False when it existed (or was written meanwhile)."""
        try:
            async with self.db.session() as s:
                return await self.add(s, **kw) is not None
        except IntegrityError:
            return False

    async def escalated(self, tickets: Sequence[Ticket]) -> int:
        """The overdue watch escalated these: the agency and its parent are told by email."""
        if not self.conf.enabled:
            return 0
        added = 0
        now = self.clock.now()
        for t in tickets:
            async with self.db.session() as s:
                agency = await self._agency(s, t.agency_id)
                parent = await self._agency(s, agency.parent_id) if agency else None
            # only an agency whose officers may see the ticket (a restricted one's parent
            # that is not cleared for it is not told)
            seeing = await self.audience.agencies_seeing(
                t.id, [a.id for a in (agency, parent) if a is not None]
            )
            agency = agency if agency is not None and agency.id in seeing else None
            parent = parent if parent is not None and parent.id in seeing else None
            stamp = (t.escalated_at or now).isoformat()
            if agency is not None and agency.email and self.conf.agency_overdue:
                subject, body = self._agency_mail(Kind.AGENCY_OVERDUE, t, agency)
                added += await self._add_alone(
                    dedupe=f"agency_overdue:{t.id}:{stamp}",
                    kind=Kind.AGENCY_OVERDUE,
                    target=Target(NotifyChannel.EMAIL, agency.email),
                    body=body,
                    subject=subject,
                    now=now,
                    ticket_id=t.id,
                )
            if parent is not None and parent.email and self.conf.agency_escalation:
                subject, body = self._agency_mail(Kind.AGENCY_ESCALATION, t, parent, agency)
                added += await self._add_alone(
                    dedupe=f"agency_escalation:{t.id}:{stamp}",
                    kind=Kind.AGENCY_ESCALATION,
                    target=Target(NotifyChannel.EMAIL, parent.email),
                    body=body,
                    subject=subject,
                    now=now,
                    ticket_id=t.id,
                )
        if added:
            self.wake()
        return added

    async def periodic(self, now: datetime | None = None) -> int:
        """Reminders of deadlines coming, and the daily digest once its time has come."""
        if not self.conf.enabled:
            return 0
        now = now or self.clock.now()
        added = await self._reminders(now) + await self._digest(now)
        return added

    async def _reminders(self, now: datetime) -> int:
        hours = self.conf.agency_reminder_hours
        if not hours:
            return 0
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Ticket, Agency)
                    .join(Agency, Agency.id == Ticket.agency_id)
                    .where(
                        Ticket.status.in_([st.value for st in DEADLINE_STATUSES]),
                        Ticket.deadline_at > now,
                        Ticket.deadline_at <= now + timedelta(hours=hours),
                        Agency.email.is_not(None),
                    )
                    .order_by(Ticket.deadline_at)
                    .limit(1000)
                )
            ).all()
        added = 0
        for ticket, agency in rows:
            assert ticket.deadline_at is not None
            if not await self.audience.agencies_seeing(ticket.id, [agency.id]):
                continue  # not the agency's to read (tickets.audience)
            subject, body = self._agency_mail(Kind.AGENCY_REMINDER, ticket, agency)
            added += await self._add_alone(
                dedupe=f"agency_reminder:{ticket.id}:{ticket.deadline_at.isoformat()}",
                kind=Kind.AGENCY_REMINDER,
                target=Target(NotifyChannel.EMAIL, agency.email),
                body=body,
                subject=subject,
                now=now,
                ticket_id=ticket.id,
            )
        return added

    async def _digest(self, now: datetime) -> int:
        if not self.conf.digest_to:
            return 0
        local = now.astimezone(self.settings.tz)
        if local.strftime("%H:%M") < self.conf.digest_at:
            return 0
        day = local.date().isoformat()
        async with self.db.session() as s:
            todo = [
                to
                for to in self.conf.digest_to
                if not await s.scalar(
                    select(Notification.id).where(Notification.dedupe == f"digest:{day}:{to}")
                )
            ]
            if not todo:
                return 0
            # mailed to addresses, not accounts: no restricted report is listed, only
            # counted (its readers find it in the panel)
            secret = restricted_clause(self.settings.tickets)
            overdue_now = and_(
                Ticket.status.in_([st.value for st in DEADLINE_STATUSES]),
                Ticket.deadline_at < now,
            )
            overdue = (
                await s.scalars(
                    select(Ticket)
                    .where(overdue_now, ~secret)
                    .order_by(Ticket.deadline_at)
                    .limit(500)
                )
            ).all()
            reopened = (
                await s.scalars(
                    select(Ticket)
                    .where(Ticket.status == Status.REOPENED, ~secret)
                    .order_by(Ticket.updated_at)
                    .limit(500)
                )
            ).all()
            withheld = await s.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(or_(overdue_now, Ticket.status == Status.REOPENED), secret)
            )
        subject, body = digest_text(day, overdue, reopened, self.settings, restricted=withheld or 0)
        added = 0
        for to in todo:
            added += await self._add_alone(
                dedupe=f"digest:{day}:{to}",
                kind=Kind.DIGEST,
                target=Target(NotifyChannel.EMAIL, to),
                body=body,
                subject=subject,
                now=now,
                ticket_id=None,
            )
        return added


def digest_text(
    day: str,
    overdue: Sequence[Ticket],
    reopened: Sequence[Ticket],
    settings: Settings,
    *,
    restricted: int = 0,
) -> tuple[str, str]:
    """(subject, body) of the supervisors' daily digest; ``restricted`` overdue or reopened
    restricted reports are counted, never listed."""

    def line(t: Ticket) -> str:
        due = t.deadline_at.astimezone(settings.tz).strftime("%d/%m %H:%M") if t.deadline_at else ""
        return (
            f"- {t.code}  cấp {t.level}  {t.topic}  {due}  {' '.join(t.description.split())[:80]}"
        )

    base = settings.sms_callback_base.rstrip("/")
    lines = [
        f"Tổng hợp ngày {day} / Digest of {day}",
        "",
        f"Quá hạn / Overdue: {len(overdue)}",
        *[line(t) for t in overdue],
        "",
        f"Mở lại / Reopened: {len(reopened)}",
        *[line(t) for t in reopened],
        "",
        *(
            [
                f"Phản ánh hạn chế quá hạn hoặc mở lại (không liệt kê, xem trên hệ thống) / "
                f"Restricted reports overdue or reopened (not listed, see the panel): {restricted}",
                "",
            ]
            if restricted
            else []
        ),
        f"{base}/tickets",
    ]
    subject = (
        f"[1022] {day}: {len(overdue)} quá hạn, {len(reopened)} mở lại / "
        f"{len(overdue)} overdue, {len(reopened)} reopened"
    )
    return subject, "\n".join(lines)

"""Sending the notifications that are due, and what became of them.

:meth:`NotifySender.claim` takes due rows (with a conditional UPDATE, so two
dispatchers never take one row), :meth:`NotifySender.send` hands one to its channel:

- SMS through the inbox's outgoing path (:meth:`inbox.service.InboxService.notify`):
  a row of ``messages`` with its coding and parts, handed to Kannel's sendsms with
  delivery reports asked for; the notification names that message;
- email through the :class:`core.mail.Mailer` the composition root gives: the email
  channel's SMTP sender (``[email]``), marking each mail automatic (RFC 3834).

A refusal is tried again after ``notify.retry_minutes``, up to ``max_attempts``.
Once sent, or given up, the ticket's history gets a line (action ``notified``):
the ticket's page shows every notification with its channel and recipient.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update

from core.batches import Batches
from core.clock import Clock
from core.db import Database
from core.mail import Mailer
from core.settings import Settings
from inbox.models import State
from inbox.service import InboxService
from notify.models import Kind, Notification, NotifyChannel, NotifyState, SmsSurvey
from tickets.models import TicketEvent

log = logging.getLogger(__name__)

#: The ticket history's action for a notification sent or given up.
HISTORY_ACTION = "notified"


class NotifySender:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        inbox: InboxService | None,
        mailer: Mailer | None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.inbox = inbox
        self.mailer = mailer
        # the sends that end together are marked sent together (core.batches)
        self._sent_marks: Batches[tuple[Notification, int | None], str] = Batches(
            self._mark_sent, name="notifications-sent"
        )

    async def recover(self) -> int:
        """Rows left ``sending`` by a stop mid-send go back to the list (sent once more)."""
        async with self.db.session() as s:
            result = await s.execute(
                update(Notification)
                .where(Notification.state == NotifyState.SENDING)
                .values(state=NotifyState.PENDING)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount  # type: ignore[attr-defined,no-any-return]

    async def claim(self, limit: int, now: datetime | None = None) -> list[Notification]:
        """Take up to ``limit`` due notifications, oldest due first.

        One conditional UPDATE takes them all (``state`` still pending: a row another
        dispatcher took meanwhile is not taken twice) and returns what it took;
        SQLite has one writer, so one such statement at a time.
        """
        now = now or self.clock.now()
        async with self.db.session() as s:
            due = (
                select(Notification.id)
                .where(Notification.state == NotifyState.PENDING, Notification.due_at <= now)
                .order_by(Notification.due_at, Notification.id)
                .limit(limit)
                # PostgreSQL: rows another claim is taking are passed over, not waited
                # for (then found taken): two dispatchers take two different batches
                .with_for_update(skip_locked=True)
            )
            taken = (
                await s.scalars(
                    update(Notification)
                    .where(Notification.id.in_(due.scalar_subquery()))
                    .where(Notification.state == NotifyState.PENDING)
                    .values(state=NotifyState.SENDING, attempts=Notification.attempts + 1)
                    .returning(Notification.id)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not taken:
                return []
            rows = await s.scalars(
                select(Notification)
                .where(Notification.id.in_(taken))
                .order_by(Notification.due_at, Notification.id)
                .execution_options(populate_existing=True)
            )
            return list(rows.all())

    async def send(self, n: Notification) -> str:
        """Hand one claimed notification to its channel; returns its new state."""
        message_id: int | None = None
        try:
            if n.channel == NotifyChannel.SMS:
                if self.inbox is None:
                    raise RuntimeError("SMS is not enabled ([sms] enabled = false)")
                msg = await self.inbox.notify(n.recipient, n.body, ticket_id=n.ticket_id)
                message_id = msg.id
                if msg.state == State.FAILED:
                    raise RuntimeError(msg.error or "the SMS gateway refused it")
            else:
                if self.mailer is None:
                    raise RuntimeError("no mail sender ([email] enabled = false)")
                await self.mailer.send([n.recipient], n.subject or "", n.body)
        except Exception as e:  # noqa: BLE001 - the gateway's refusal is the row's state
            return await self._failed(n, str(e)[:2000], message_id)
        return await self._sent(n, message_id)

    async def _sent(self, n: Notification, message_id: int | None) -> str:
        await self._sent_marks.submit((n, message_id))
        log.info("notification %d (%s) to %s sent", n.id, n.kind, n.recipient)
        return NotifyState.SENT

    async def _mark_sent(
        self, sent: Sequence[tuple[Notification, int | None]]
    ) -> list[str | Exception]:
        """Mark ``sent`` (each with its message) sent, in one transaction
        (:attr:`_sent_marks`: the sends that end together)."""
        now = self.clock.now()
        days = self.settings.notify.survey_days
        async with self.db.session() as s:
            for n, message_id in sent:
                await s.execute(
                    update(Notification)
                    .where(Notification.id == n.id)
                    .values(state=NotifyState.SENT, sent_at=now, message_id=message_id, error=None)
                    .execution_options(synchronize_session=False)
                )
                if n.kind == Kind.SURVEY:
                    # replies count from when the citizen could read it
                    await s.execute(
                        update(SmsSurvey)
                        .where(SmsSurvey.notification_id == n.id)
                        .values(expires_at=now + timedelta(days=days))
                        .execution_options(synchronize_session=False)
                    )
                self._history(s, n, NotifyState.SENT, message_id, None, now)
        return [NotifyState.SENT] * len(sent)

    async def _failed(self, n: Notification, error: str, message_id: int | None) -> str:
        now = self.clock.now()
        conf = self.settings.notify
        last = n.attempts >= conf.max_attempts
        state = NotifyState.FAILED if last else NotifyState.PENDING
        values: dict[str, object] = {"state": state, "error": error, "message_id": message_id}
        if not last:
            values["due_at"] = now + timedelta(minutes=conf.retry_minutes)
        async with self.db.session() as s:
            await s.execute(
                update(Notification)
                .where(Notification.id == n.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if last:
                self._history(s, n, NotifyState.FAILED, message_id, error, now)
        log.warning(
            "notification %d (%s) to %s not sent (try %d of %d): %s",
            n.id,
            n.kind,
            n.recipient,
            n.attempts,
            conf.max_attempts,
            error,
        )
        return state

    @staticmethod
    def _history(
        s: object,
        n: Notification,
        state: str,
        message_id: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        if n.ticket_id is None:
            return
        details: dict[str, object] = {
            "notice": n.kind,
            "channel": n.channel,
            "to": n.recipient,
            "sent": state == NotifyState.SENT,
        }
        if message_id is not None:
            details["message"] = message_id
        if error:
            details["error"] = error[:300]
        s.add(  # type: ignore[attr-defined]
            TicketEvent(
                ticket_id=n.ticket_id,
                at=now,
                actor_id=None,
                actor_name="system",
                action=HISTORY_ACTION,
                from_status=None,
                to_status=None,
                details=json.dumps(details, ensure_ascii=False),
            )
        )

    async def for_ticket(self, ticket_id: int) -> list[Notification]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Notification)
                .where(Notification.ticket_id == ticket_id)
                .order_by(Notification.created_at, Notification.id)
            )
            return list(rows.all())

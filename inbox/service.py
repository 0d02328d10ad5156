"""The inbox: a citizen's message arrives, waits on a desk, is decided; our
answers go out and their delivery reports come back.

1. :meth:`InboxService.receive` stores a message in once (the gateway's id is
   unique: a second delivery returns the first row), flags what is empty,
   binary or part of a flood, attaches it to the citizen's open ticket of the
   last ``sms.attach_days`` days, or leaves it on the desk of the team of the
   number it reached; the desk's pages hear of it on the bus (``inbox.<team>``).
2. An agent claims it (:meth:`claim`) and decides: a new ticket
   (:meth:`to_ticket`, which sends the citizen the tracking code), a ticket
   that exists (:meth:`attach`), or nothing to act on (:meth:`no_content`).
3. :meth:`reply` and :meth:`notify` write the message out first, then hand it
   to the channel's sender: a gateway that refuses it leaves a failed row with
   the reason, never nothing.  :meth:`delivery_report` keeps every report and
   moves the message's state.

Each step is its own short session; the gateway is called after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from accounts.identity import Actor
from core.bus import Bus
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from inbox.exceptions import MessageNotFound, MessageTaken, NotSendable
from inbox.models import (
    OPEN_STATES,
    UNANSWERABLE,
    Direction,
    Flag,
    Message,
    MessageChannel,
    MessageDelivery,
    MessageEmail,
    State,
)
from tickets.exceptions import Forbidden, TicketNotFound
from tickets.models import Attachment, Channel, Status, Ticket
from tickets.queries import TicketQueries
from tickets.schemas import TEXT_MAX, normalize_phone
from tickets.service import TicketService
from tickets.workflow import STAFF

log = logging.getLogger(__name__)

#: How a channel sends: (message id, the citizen's address, text); raises on refusal.
Sender = Callable[[int, str, str], Awaitable[None]]

BODY_MAX = 20_000
REPLY_MAX = 1_600  # 10 GSM parts; the SMS sender refuses more than sms.max_parts
EMAIL_REPLY_MAX = 20_000


def inbox_topic(team: str | None) -> str:
    """The bus topic of one team's desk."""
    return f"inbox.{team or 'none'}"


def citizen_phone(address: str) -> str:
    """A sender's number in the national form tickets use (as given if it is none)."""
    try:
        return normalize_phone(address) or address
    except ValueError:
        return address


class KeyedLocks:
    """One asyncio lock per key while someone holds or waits for it (then forgotten).

    Kannel calls one process (the application), so an in-process lock is enough to
    make "count, then store" (a citizen's flood) and "store a report, then derive the
    state" (two reports of one message at once) whole."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


def delivery_state(statuses: Sequence[int], current: str) -> str:
    """A message out's state from every report it has had (Kannel's DLR types)."""
    if any(s in (2, 16) for s in statuses):
        return State.FAILED
    if 1 in statuses:
        # Kannel reports a split message once, under its first part's id
        # (measured with Kannel 1.4.5: tests/sms/test_kannel_lab.py)
        return State.DELIVERED
    if any(s in (4, 8) for s in statuses):
        return State.SENT
    return current


class InboxService:
    """Messages in and out, whatever the channel."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        bus: Bus | None,
        tickets: TicketService,
        ticket_queries: TicketQueries,
        senders: dict[str, Sender] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.tickets = tickets
        self.ticket_queries = ticket_queries
        self.senders: dict[str, Sender] = senders or {}
        # one citizen's messages are counted and stored one at a time, so that a
        # burst of calls from Kannel flags exactly those past the limit; one message's
        # delivery reports are applied one at a time
        self._locks = KeyedLocks()

    # -- in -------------------------------------------------------------------

    def desk_of(self, service_address: str) -> str | None:
        desks = self.settings.sms_desks()
        for form in (service_address, service_address.lstrip("+")):
            if form in desks:
                return desks[form]
        return None

    async def receive(
        self,
        channel: MessageChannel,
        external_id: str,
        sender: str,
        service_address: str,
        body: str,
        *,
        binary: bool = False,
    ) -> tuple[Message, bool]:
        """Store a message in (once per ``external_id``): (the row, whether it is new)."""
        citizen = citizen_phone(sender) if channel == MessageChannel.SMS else sender
        async with self._locks.hold(f"citizen:{citizen}"):
            return await self._receive(channel, external_id, citizen, service_address, body, binary)

    async def _receive(
        self,
        channel: MessageChannel,
        external_id: str,
        citizen: str,
        service_address: str,
        body: str,
        binary: bool,
    ) -> tuple[Message, bool]:
        now = self.clock.now()
        team = self.desk_of(service_address)
        if team is None:
            # a number we were not told of: the first desk has it, nothing is dropped
            team = next(iter(self.settings.sms_desks().values()), None)
            log.warning("%s to unknown number %s: put on desk %s", channel, service_address, team)
        flag: str | None = None
        if binary:
            flag = Flag.BINARY
        elif not body.strip():
            flag = Flag.EMPTY
        try:
            async with self.db.session() as s:
                existing = await self._by_external(s, channel, external_id)
                if existing is not None:
                    return existing, False
                recent = await s.scalar(
                    select(func.count(Message.id)).where(
                        Message.citizen == citizen,
                        Message.direction == Direction.IN,
                        Message.created_at >= now - timedelta(minutes=1),
                    )
                )
                flood = (recent or 0) >= self.settings.sms.flood_per_minute
                if flood:
                    flag = Flag.FLOOD
                ticket = None if flag else await self._open_ticket(s, citizen, now)
                msg = Message(
                    channel=channel,
                    direction=Direction.IN,
                    external_id=external_id,
                    citizen=citizen,
                    service_address=service_address,
                    team=team,
                    body=body[:BODY_MAX],
                    flag=flag,
                    state=State.ATTACHED if ticket else State.NEW,
                    ticket_id=ticket.id if ticket else None,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
                s.add(msg)
                await s.flush()
        except IntegrityError:
            # the same message delivered twice at once: the other writer has it
            async with self.db.session() as s:
                existing = await self._by_external(s, channel, external_id)
            if existing is None:
                raise
            return existing, False
        log.info(
            "%s %d from %s to %s: %s%s",
            channel,
            msg.id,
            citizen,
            service_address,
            msg.state,
            f" ({flag})" if flag else "",
        )
        # a flood is announced once, when it starts, not once per message
        if not flood or recent == self.settings.sms.flood_per_minute:
            await self._announce(msg, "new")
        return msg, True

    async def _by_external(self, s: Any, channel: str, external_id: str) -> Message | None:
        return await s.scalar(
            select(Message).where(
                Message.channel == channel,
                Message.direction == Direction.IN,
                Message.external_id == external_id,
            )
        )

    async def _open_ticket(self, s: Any, citizen: str, now: Any) -> Ticket | None:
        days = self.settings.sms.attach_days
        if days == 0:
            return None
        ticket: Ticket | None = await s.scalar(
            select(Ticket)
            .where(
                Ticket.citizen_phone == citizen,
                Ticket.status != Status.CLOSED,
                Ticket.created_at >= now - timedelta(days=days),
            )
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )
        return ticket

    # -- the desk -------------------------------------------------------------

    async def desk(
        self, teams: Sequence[str] | None, *, open_only: bool = True, limit: int = 200
    ) -> list[Message]:
        """Messages in on the given teams' desks (all teams: None), oldest waiting first."""
        q = select(Message).where(Message.direction == Direction.IN)
        if teams is not None:
            q = q.where(Message.team.in_(list(teams)))
        if open_only:
            q = q.where(Message.state.in_(list(OPEN_STATES)))
            q = q.order_by(Message.created_at, Message.id)
        else:
            q = q.order_by(Message.created_at.desc(), Message.id.desc())
        async with self.db.session() as s:
            return list((await s.scalars(q.limit(limit))).all())

    async def get(self, message_id: int) -> Message:
        async with self.db.session() as s:
            msg = await s.get(Message, message_id)
        if msg is None:
            raise MessageNotFound(message_id)
        return msg

    async def conversation(self, message_id: int) -> list[Message]:
        """The message, our answers to it and, for the same citizen, the rest in time order."""
        msg = await self.get(message_id)
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Message)
                .where(Message.citizen == msg.citizen, Message.channel == msg.channel)
                .order_by(Message.created_at, Message.id)
                .limit(200)
            )
            return list(rows.all())

    async def emails(self, message_ids: Sequence[int]) -> dict[int, MessageEmail]:
        """The mail headers (subject, thread, sanitised HTML) of those messages that are mail."""
        if not message_ids:
            return {}
        async with self.db.session() as s:
            rows = await s.scalars(
                select(MessageEmail).where(MessageEmail.message_id.in_(list(message_ids)))
            )
            return {r.message_id: r for r in rows.all()}

    async def files(self, message_id: int) -> list[Attachment]:
        """The attachments kept with a message (a mail's), in the order they came."""
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Attachment)
                .where(Attachment.message_id == message_id)
                .order_by(Attachment.created_at, Attachment.id)
            )
            return list(rows.all())

    async def deliveries(self, message_id: int) -> list[MessageDelivery]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(MessageDelivery)
                .where(MessageDelivery.message_id == message_id)
                .order_by(MessageDelivery.at, MessageDelivery.id)
            )
            return list(rows.all())

    async def _decide(
        self,
        actor: Actor,
        message_id: int,
        state: State,
        *,
        ticket_id: int | None = None,
        claim_only: bool = False,
    ) -> Message:
        if actor.role not in STAFF:
            raise Forbidden("handle messages", actor.role)
        now = self.clock.now()
        async with self.db.session() as s:
            msg = await s.get(Message, message_id, with_for_update=True)
            if msg is None or msg.direction != Direction.IN:
                raise MessageNotFound(message_id)
            mine = msg.claimed_by in (None, actor.id)
            if msg.state not in OPEN_STATES or not mine:
                if claim_only and msg.state == State.CLAIMED and msg.claimed_by == actor.id:
                    return msg
                raise MessageTaken(message_id, msg.state, msg.claimed_by)
            if msg.claimed_by is None:
                msg.claimed_by, msg.claimed_at = actor.id, now
            msg.state = state
            if ticket_id is not None:
                msg.ticket_id = ticket_id
                # a mail's attachments go with it to the ticket
                await s.execute(
                    update(Attachment)
                    .where(Attachment.message_id == message_id)
                    .values(ticket_id=ticket_id)
                )
            msg.updated_at = now
            msg.version += 1
        await self._announce(msg, str(state))
        return msg

    async def claim(self, actor: Actor, message_id: int) -> Message:
        """The message is ``actor``'s to decide (MessageTaken if someone else's)."""
        return await self._decide(actor, message_id, State.CLAIMED, claim_only=True)

    async def no_content(self, actor: Actor, message_id: int) -> Message:
        return await self._decide(actor, message_id, State.NO_CONTENT)

    async def attach(self, actor: Actor, message_id: int, ticket_text: str) -> Message:
        """Join the message to the ticket whose code or number is ``ticket_text``."""
        ticket = await self.ticket_queries.get_by_code(ticket_text)
        if not await self.ticket_queries.can_see(actor, ticket):  # restricted: not theirs
            raise TicketNotFound(ticket_text)
        return await self._decide(actor, message_id, State.ATTACHED, ticket_id=ticket.id)

    async def to_ticket(
        self, actor: Actor, message_id: int, data: dict[str, Any]
    ) -> tuple[Message, Ticket]:
        """A new ticket from the message (the form's fields; the channel and the citizen's
        number come from the message); the citizen is sent its tracking code."""
        msg = await self.get(message_id)
        if msg.direction != Direction.IN:
            raise MessageNotFound(message_id)
        if msg.state not in OPEN_STATES or msg.claimed_by not in (None, actor.id):
            raise MessageTaken(message_id, msg.state, msg.claimed_by)
        form = dict(data)
        form["channel"] = Channel.SMS if msg.channel == MessageChannel.SMS else Channel.EMAIL
        if msg.channel == MessageChannel.SMS:
            form.setdefault("citizen_phone", msg.citizen)
        elif msg.channel == MessageChannel.EMAIL:
            if "@" in msg.citizen:
                # where the answer goes; the address is as the mail gave it, not proven
                form.setdefault("reporter_email", msg.citizen)
            mail = (await self.emails([msg.id])).get(msg.id)
            subject = mail.subject.strip() if mail else ""
            text = f"{subject}\n\n{msg.body}".strip() if subject else msg.body
            form.setdefault("description", text[:TEXT_MAX])
        form.setdefault("description", msg.body)
        ticket = await self.tickets.create(actor, form)
        msg = await self._decide(actor, message_id, State.TICKET, ticket_id=ticket.id)
        if (
            msg.channel == MessageChannel.SMS
            and self.settings.sms.notify_code
            and msg.flag != Flag.FLOOD
        ):
            await self.notify(msg.citizen, self.code_text(ticket), ticket_id=ticket.id)
        if (
            msg.channel == MessageChannel.EMAIL
            and self.settings.email.notify_code
            and msg.flag not in UNANSWERABLE
            and "@" in msg.citizen
        ):
            # in the citizen's thread, so their answer joins the ticket
            await self._send(
                MessageChannel.EMAIL,
                msg.citizen,
                self.email_code_text(ticket),
                reply_to=msg,
                ticket_id=ticket.id,
            )
        return msg, ticket

    def code_text(self, ticket: Ticket) -> str:
        """The SMS that gives the citizen their tracking code (Vietnamese without
        diacritics: one GSM part, read on every phone)."""
        from tickets.codes import format_code

        return (
            f"Tong dai 1022 da tiep nhan phan anh cua ban. Ma tra cuu: {format_code(ticket.code)}."
            " Tra cuu tinh trang bang cach goi 1022."
        )

    def email_code_text(self, ticket: Ticket) -> str:
        """The mail that gives the citizen their tracking code (Vietnamese, then English)."""
        from tickets.numbers import format_number

        # the code is stored as shown (K7M-4QX8); the number as 10 digits
        code, number = ticket.code, format_number(ticket.number)
        return (
            "Tổng đài 1022 đã tiếp nhận phản ánh của bạn.\n"
            f"Mã tra cứu: {code} (số {number}).\n"
            "Khi trả lời thư này, xin giữ mã trong tiêu đề.\n\n"
            "The 1022 hotline has received your report.\n"
            f"Tracking code: {code} (number {number}).\n"
            "Please keep the code in the subject when you answer.\n"
        )

    # -- out ------------------------------------------------------------------

    async def reply(self, actor: Actor, message_id: int, text: str) -> Message:
        """Answer a message in, on its channel, from its desk's number."""
        if actor.role not in STAFF:
            raise Forbidden("reply", actor.role)
        original = await self.get(message_id)
        if original.direction != Direction.IN:
            raise NotSendable("message", "not a message in")
        if original.flag == Flag.BINARY:
            raise NotSendable("message", "a binary message has no number to answer in text")
        if original.flag in UNANSWERABLE:
            # a bounce or an auto-reply: answering a robot starts a mail loop
            raise NotSendable("message", f"a {original.flag} is never answered")
        if original.channel == MessageChannel.EMAIL and "@" not in original.citizen:
            raise NotSendable("message", "the mail has no sender's address")
        return await self._send(
            original.channel,
            original.citizen,
            text,
            reply_to=original,
            sent_by=actor.id,
            ticket_id=original.ticket_id,
        )

    async def notify(self, citizen: str, text: str, *, ticket_id: int | None = None) -> Message:
        """A message of ours to a citizen by SMS (a tracking code, a result)."""
        return await self._send(MessageChannel.SMS, citizen, text, ticket_id=ticket_id)

    async def _send(
        self,
        channel: str,
        citizen: str,
        text: str,
        *,
        reply_to: Message | None = None,
        sent_by: int | None = None,
        ticket_id: int | None = None,
    ) -> Message:
        from sms.coding import size

        text = (text or "").strip()
        if not text:
            raise NotSendable("text", "empty")
        longest = EMAIL_REPLY_MAX if channel == MessageChannel.EMAIL else REPLY_MAX
        if len(text) > longest:
            raise NotSendable("text", f"longer than {longest} characters")
        sz = size(text) if channel == MessageChannel.SMS else None
        if sz is not None and sz.parts > self.settings.sms.max_parts:
            raise NotSendable(
                "text", f"{sz.parts} SMS parts; at most {self.settings.sms.max_parts}"
            )
        sender = self.senders.get(channel)
        now = self.clock.now()
        async with self.db.session() as s:
            msg = Message(
                channel=channel,
                direction=Direction.OUT,
                citizen=citizen,
                service_address=(
                    self.settings.email.address
                    if channel == MessageChannel.EMAIL
                    else self.settings.sms_sender
                ),
                team=reply_to.team if reply_to else None,
                body=text,
                state=State.QUEUED,
                reply_to_id=reply_to.id if reply_to else None,
                sent_by=sent_by,
                ticket_id=ticket_id,
                coding=sz.coding if sz else None,
                parts=sz.parts if sz else None,
                created_at=now,
                updated_at=now,
                version=1,
            )
            s.add(msg)
        if sender is None:
            return await self._failed(msg.id, f"no sender for {channel} (is it enabled?)")
        try:
            await sender(msg.id, citizen, text)
        except Exception as e:  # the gateway's refusal is the message's state, not a crash
            log.warning("%s %d to %s not sent: %s", channel, msg.id, citizen, e)
            return await self._failed(msg.id, str(e))
        if reply_to is not None:
            await self._announce(msg, "reply")
        return msg

    async def _failed(self, message_id: int, error: str) -> Message:
        async with self.db.session() as s:
            msg = await s.get(Message, message_id)
            assert msg is not None
            msg.state, msg.error = State.FAILED, error
            msg.updated_at = self.clock.now()
            msg.version += 1
        await self._announce(msg, "failed")
        return msg

    async def delivery_report(self, message_id: int, status: int, detail: str | None) -> Message:
        """Keep one report of a message out and move its state (MessageNotFound if none)."""
        async with self._locks.hold(f"message:{message_id}"):
            now = self.clock.now()
            async with self.db.session() as s:
                msg = await s.get(Message, message_id, with_for_update=True)
                if msg is None or msg.direction != Direction.OUT:
                    raise MessageNotFound(message_id)
                s.add(MessageDelivery(message_id=message_id, status=status, detail=detail, at=now))
                await s.flush()
                statuses = (
                    await s.scalars(
                        select(MessageDelivery.status).where(
                            MessageDelivery.message_id == message_id
                        )
                    )
                ).all()
                state = delivery_state(list(statuses), msg.state)
                if state == State.FAILED and msg.state != State.FAILED:
                    msg.error = detail
                msg.state = state
                msg.updated_at = now
                msg.version += 1
        log.info("delivery report of %d: %s (%s) -> %s", message_id, status, detail, msg.state)
        await self._announce(msg, "delivery")
        return msg

    async def _announce(self, msg: Message, action: str) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish(
                inbox_topic(msg.team),
                {
                    "type": "inbox",
                    "action": action,
                    "id": msg.id,
                    "direction": msg.direction,
                    "state": msg.state,
                    "flag": msg.flag,
                },
            )
        except Exception:  # the desk reloads from the table; a lost push loses nothing
            log.exception("could not announce message %d", msg.id)

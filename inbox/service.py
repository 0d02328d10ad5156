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
4. A voice message left in the overflow (:mod:`callcenter.callbacks`) joins the
   desk as an item of channel ``voice`` (:meth:`receive_voice`, and
   :meth:`sync_voice` for any the hook missed): its audio and transcript come from
   the recordings, a reply goes by SMS to the caller's number, or the agent turns
   it into a callback (:meth:`callback`).

A message in is offered to the ``responders`` (the SMS survey's replies:
notify.survey) once stored; one that takes it names the ticket it belongs to.

Each step is its own short session; the gateway is called after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from accounts.identity import Actor
from callcenter.callbacks import CallbackService
from callcenter.models import Callback, VoiceMessage
from core.batches import Batches
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
from recordings.models import Transcript
from tickets.exceptions import Forbidden, TicketNotFound
from tickets.models import Attachment, Channel, Status, Ticket
from tickets.queries import TicketQueries
from tickets.schemas import TEXT_MAX, normalize_phone
from tickets.service import TicketService
from tickets.workflow import STAFF

log = logging.getLogger(__name__)

#: How a channel sends: (message id, the citizen's address, text); raises on refusal.
Sender = Callable[[int, str, str], Awaitable[None]]
#: Offered each message in once stored: the ticket it answers (it is attached), or None.
Responder = Callable[[Message], Awaitable[int | None]]
#: What a voice message's item says until its transcript is ready.
VOICE_BODY = ""

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
        callbacks: CallbackService | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.tickets = tickets
        self.ticket_queries = ticket_queries
        self.senders: dict[str, Sender] = senders or {}
        self.callbacks = callbacks
        self.responders: list[Responder] = []
        # the tracking code sent from here when a ticket is made from an SMS or a mail;
        # off when the notifications (notify/) send it, logged, with the other ones
        # (their mail quotes the code in its subject, so an answer still joins the ticket)
        self.send_code = True
        # one citizen's messages are counted and stored one at a time, so that a
        # burst of calls from Kannel flags exactly those past the limit
        self._locks = KeyedLocks()
        # delivery reports, applied in batches of those that arrive together
        self._reports: Batches[tuple[int, int, str | None], Message] = Batches(
            self._apply_reports, name="delivery-reports"
        )
        # messages out (notifications go out dozens at a time), stored the same way
        self._outgoing: Batches[Message, Message] = Batches(self._store_out, name="messages-out")

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
        if flag is None:
            msg = await self._respond(msg)
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

    async def _respond(self, msg: Message) -> Message:
        """Offer a new message to the responders; one that takes it has it attached."""
        for responder in self.responders:
            try:
                ticket_id = await responder(msg)
            except Exception:  # noqa: BLE001 - the message is stored; it waits on the desk
                log.exception("responder on message %d failed", msg.id)
                continue
            if ticket_id is None:
                continue
            async with self.db.session() as s:
                row = await s.get(Message, msg.id)
                assert row is not None
                row.state, row.ticket_id = State.ATTACHED, ticket_id
                row.updated_at = self.clock.now()
                row.version += 1
            return row
        return msg

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

    async def tickets_of(self, messages: Sequence[Message]) -> dict[int, int]:
        """Message id -> the ticket it belongs to: its own, or (an answer of ours) that
        of the message it answers; messages of no ticket are left out."""
        out = {m.id: m.ticket_id for m in messages if m.ticket_id is not None}
        answers = {m.id: m.reply_to_id for m in messages if m.id not in out and m.reply_to_id}
        if answers:
            async with self.db.session() as s:
                rows = await s.execute(
                    select(Message.id, Message.ticket_id).where(
                        Message.id.in_(set(answers.values())), Message.ticket_id.is_not(None)
                    )
                )
                of = {mid: tid for mid, tid in rows.all()}
            out.update({m: of[r] for m, r in answers.items() if r in of})
        return out

    async def conversation(self, message_id: int) -> list[Message]:
        """The message, our answers to it and, for the same citizen, the rest in time order."""
        msg = await self.get(message_id)
        if not msg.citizen:
            return [msg]  # a caller who sent no number: nothing else is theirs
        # a phone number's SMS and voice messages are one conversation
        phone = (MessageChannel.SMS, MessageChannel.VOICE)
        channels = list(phone) if msg.channel in phone else [msg.channel]
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Message)
                .where(Message.citizen == msg.citizen, Message.channel.in_(channels))
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

    async def files_of(self, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
        """:meth:`files` of several messages at once (message id -> its attachments)."""
        if not message_ids:
            return {}
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Attachment)
                .where(Attachment.message_id.in_(list(message_ids)))
                .order_by(Attachment.created_at, Attachment.id)
            )
            out: dict[int, list[Attachment]] = {}
            for a in rows.all():
                assert a.message_id is not None
                out.setdefault(a.message_id, []).append(a)
            return out

    async def for_ticket(self, ticket_id: int, limit: int = 500) -> list[Message]:
        """A ticket's conversation, whatever the channel, in time order: the messages in
        that became or joined it, and ours sent about it or in answer to them."""
        joined = select(Message.id).where(Message.ticket_id == ticket_id)
        async with self.db.session() as s:
            rows = await s.scalars(
                select(Message)
                .where(or_(Message.ticket_id == ticket_id, Message.reply_to_id.in_(joined)))
                .order_by(Message.created_at, Message.id)
                .limit(limit)
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
            if msg.voice_message_id is not None and state != State.CLAIMED:
                # decided here: the callbacks page no longer lists it as waiting
                vm = await s.get(VoiceMessage, msg.voice_message_id)
                if vm is not None and vm.status == "new":
                    vm.status, vm.handled_by, vm.handled_at = "handled", actor.name, now
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
        form["channel"] = {
            MessageChannel.SMS: Channel.SMS,
            MessageChannel.VOICE: Channel.PHONE,
        }.get(MessageChannel(msg.channel), Channel.EMAIL)
        if msg.channel in (MessageChannel.SMS, MessageChannel.VOICE) and msg.citizen:
            form.setdefault("citizen_phone", msg.citizen)
        if msg.channel == MessageChannel.VOICE:
            said = (await self.transcripts([msg])).get(msg.id)
            form.setdefault("description", said or "(tin nhắn thoại / voice message)")
        elif msg.channel == MessageChannel.EMAIL:
            if "@" in msg.citizen:
                # where the answer goes; the address is as the mail gave it, not proven
                form.setdefault("reporter_email", msg.citizen)
            mail = (await self.emails([msg.id])).get(msg.id)
            subject = mail.subject.strip() if mail else ""
            text = f"{subject}\n\n{msg.body}".strip() if subject else msg.body
            form.setdefault("description", text[:TEXT_MAX])
        form.setdefault("description", msg.body)
        vm = await self._voice_row(msg)
        ticket = await self.tickets.create(
            actor, form, call_id=vm.call_id if vm is not None else None
        )
        msg = await self._decide(actor, message_id, State.TICKET, ticket_id=ticket.id)
        if (
            self.send_code
            and msg.channel == MessageChannel.SMS
            and self.settings.sms.notify_code
            and msg.flag != Flag.FLOOD
        ):
            await self.notify(msg.citizen, self.code_text(ticket), ticket_id=ticket.id)
        if (
            self.send_code
            and msg.channel == MessageChannel.EMAIL
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
        diacritics: one GSM part, read on every phone).  The code as the panel shows
        it: a ticket's code is stored in that form (``K7M-4QX8``)."""
        return (
            f"Tong dai 1022 da tiep nhan phan anh cua ban. Ma tra cuu: {ticket.code}."
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
        channel = original.channel
        if channel == MessageChannel.VOICE:
            # a caller who left a voice message is answered by SMS on their number
            if not original.citizen:
                raise NotSendable("message", "the caller sent no number")
            channel = MessageChannel.SMS
        return await self._send(
            channel,
            original.citizen,
            text,
            reply_to=original,
            sent_by=actor.id,
            ticket_id=original.ticket_id,
        )

    # -- voice messages -------------------------------------------------------

    async def receive_voice(self, voice_message_id: int) -> tuple[Message, bool]:
        """The inbox item of a voice message (made once): (the row, whether it is new)."""
        async with self.db.session() as s:
            vm = await s.get(VoiceMessage, voice_message_id)
        if vm is None:
            raise MessageNotFound(voice_message_id)
        now = self.clock.now()
        citizen = citizen_phone(vm.caller_number) if vm.caller_number else ""
        try:
            async with self.db.session() as s:
                existing = await s.scalar(
                    select(Message).where(Message.voice_message_id == voice_message_id)
                )
                if existing is not None:
                    return existing, False
                msg = Message(
                    channel=MessageChannel.VOICE,
                    direction=Direction.IN,
                    external_id=vm.uniqueid,
                    citizen=citizen,
                    service_address=vm.hotline_number or "",
                    team=vm.team_id or self.settings.hotlines[0].team,
                    body=VOICE_BODY,
                    state=State.NEW if vm.status == "new" else State.NO_CONTENT,
                    voice_message_id=vm.id,
                    created_at=vm.recorded_at or now,
                    updated_at=now,
                    version=1,
                )
                s.add(msg)
                await s.flush()
        except IntegrityError:
            async with self.db.session() as s:
                existing = await s.scalar(
                    select(Message).where(Message.voice_message_id == voice_message_id)
                )
            if existing is None:
                raise
            return existing, False
        log.info("voice message %d from %s: inbox item %d", vm.id, citizen or "?", msg.id)
        await self._announce(msg, "new")
        return msg, True

    async def voice_arrived(self, voice_message_id: int) -> None:
        """A hook of :class:`~callcenter.callbacks.CallbackService`: never raises."""
        try:
            await self.receive_voice(voice_message_id)
        except Exception:  # noqa: BLE001 - sync_voice brings it in later
            log.exception("voice message %d not put in the inbox (yet)", voice_message_id)

    async def sync_voice(self, limit: int = 1000) -> int:
        """Voice messages still waiting that have no inbox item yet (a missed hook)."""
        async with self.db.session() as s:
            ids = (
                await s.scalars(
                    select(VoiceMessage.id)
                    .outerjoin(Message, Message.voice_message_id == VoiceMessage.id)
                    .where(Message.id.is_(None), VoiceMessage.status == "new")
                    .order_by(VoiceMessage.id)
                    .limit(limit)
                )
            ).all()
        for vid in ids:
            await self.receive_voice(vid)
        return len(ids)

    async def _voice_row(self, msg: Message) -> VoiceMessage | None:
        if msg.voice_message_id is None:
            return None
        async with self.db.session() as s:
            return await s.get(VoiceMessage, msg.voice_message_id)

    async def voice_of(self, msg: Message) -> VoiceMessage | None:
        """The voice message behind an item of channel voice."""
        return await self._voice_row(msg)

    async def transcripts(self, messages: Sequence[Message]) -> dict[int, str]:
        """The Vosk transcript of each voice item that has one (message id -> text)."""
        ids = {m.voice_message_id: m.id for m in messages if m.voice_message_id is not None}
        if not ids:
            return {}
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(VoiceMessage.id, Transcript.text)
                    .join(Transcript, Transcript.call_id == VoiceMessage.call_id)
                    .where(VoiceMessage.id.in_(list(ids)))
                )
            ).all()
        out: dict[int, str] = {}
        for vid, text in rows:
            # one line per utterance, "citizen: ..."; the desk shows the words
            words = " ".join(line.partition(": ")[2] or line for line in text.splitlines())
            out[ids[vid]] = words.strip()
        return out

    async def callback(self, actor: Actor, message_id: int, number: str | None = None) -> Callback:
        """Put the caller of a voice item on the callback list (the message stays open)."""
        if actor.role not in STAFF:
            raise Forbidden("callback", actor.role)
        msg = await self.get(message_id)
        if msg.voice_message_id is None or self.callbacks is None:
            raise NotSendable("message", "not a voice message")
        try:
            return await self.callbacks.voice_to_callback(msg.voice_message_id, actor.name, number)
        except ValueError as e:
            raise NotSendable("number", str(e)) from None

    # -- notifications ----------------------------------------------------------

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
        msg = await self._outgoing.submit(
            Message(
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
        )
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

    async def _store_out(self, messages: Sequence[Message]) -> Sequence[Message | Exception]:
        """Store ``messages`` out (queued, not yet handed to their gateway) in one
        transaction (:attr:`_outgoing`)."""
        try:
            async with self.db.session() as s:
                s.add_all(messages)
            return list(messages)
        except Exception:
            if len(messages) == 1:
                raise
        # one of them could not be stored: the others are, each on its own
        stored: list[Message | Exception] = []
        for msg in messages:
            try:
                stored.append((await self._store_out([msg]))[0])
            except Exception as e:  # noqa: BLE001 - that caller gets it
                stored.append(e)
        return stored

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
        """Keep one report of a message out and move its state (MessageNotFound if none);
        the message as the report's batch left it.

        Reports that arrive together are applied together, in their order
        (:class:`core.batches.Batches`): one transaction for all of them rather than
        one each, since every SMS out brings two or three and they arrive while others
        are being applied.
        """
        return await self._reports.submit((message_id, status, detail))

    async def _apply_reports(
        self, reports: Sequence[tuple[int, int, str | None]]
    ) -> list[Message | MessageNotFound]:
        """Apply ``reports`` (message id, Kannel's DLR type, detail) in their order, in one
        transaction: for each, the message or MessageNotFound."""
        now = self.clock.now()
        ids = {message_id for message_id, _, _ in reports}
        async with self.db.session() as s:
            found = (
                await s.scalars(select(Message).where(Message.id.in_(ids)).with_for_update())
            ).all()
            messages = {m.id: m for m in found if m.direction == Direction.OUT}
            statuses: dict[int, list[int]] = {m: [] for m in messages}
            if messages:
                rows = await s.execute(
                    select(MessageDelivery.message_id, MessageDelivery.status)
                    .where(MessageDelivery.message_id.in_(list(messages)))
                    .order_by(MessageDelivery.id)
                )
                for message_id, status in rows.all():
                    statuses[message_id].append(status)
            out: list[Message | MessageNotFound] = []
            for message_id, status, detail in reports:
                msg = messages.get(message_id)
                if msg is None:
                    out.append(MessageNotFound(message_id))
                    continue
                s.add(MessageDelivery(message_id=message_id, status=status, detail=detail, at=now))
                statuses[message_id].append(status)
                state = delivery_state(statuses[message_id], msg.state)
                if state == State.FAILED and msg.state != State.FAILED:
                    msg.error = detail
                msg.state = state
                msg.updated_at = now
                msg.version += 1
                log.info("delivery report of %d: %s (%s) -> %s", message_id, status, detail, state)
                out.append(msg)
        for msg in {m.id: m for m in out if isinstance(m, Message)}.values():
            await self._announce(msg, "delivery")
        return out

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

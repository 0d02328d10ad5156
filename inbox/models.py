"""Tables of the inbox: one row per message in or out, whatever the channel,
and the delivery reports of the ones we send.

A message in waits on a team's desk (``team``) until someone claims it and
decides: it becomes a ticket, is attached to one, or has no content.  A
message out is an answer (``reply_to_id``) or a notification; its state
follows the delivery reports the gateway sends back (``message_deliveries``,
append-only).  ``external_id`` is the gateway's id of the message: unique per
channel and direction, so a second delivery of the same message is no second
row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter import models as _callcenter_models  # noqa: F401  (voice_messages)
from core.db import Base, UTCDateTime


class MessageChannel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    VOICE = "voice"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class State(StrEnum):
    # a message in
    NEW = "new"  # on the desk, nobody has it
    CLAIMED = "claimed"  # an agent has it
    TICKET = "ticket"  # a ticket was made from it
    ATTACHED = "attached"  # joined to a ticket (by hand, or a citizen's open ticket)
    NO_CONTENT = "no_content"  # nothing to act on (empty, spam, "ok thanks")
    # a message out
    QUEUED = "queued"  # handed to the gateway, no report yet
    SENT = "sent"  # the SMSC took it
    DELIVERED = "delivered"  # every part reached the phone
    FAILED = "failed"  # the gateway or the SMSC refused it, or a part was not delivered


#: A message in that still waits for someone.
OPEN_STATES = (State.NEW, State.CLAIMED)


class Flag(StrEnum):
    EMPTY = "empty"  # no text at all
    BINARY = "binary"  # 8-bit data (a ringtone, an OTA setting): kept as hex
    FLOOD = "flood"  # more than sms.flood_per_minute from one number
    BOUNCE = "bounce"  # a mail server's delivery report (multipart/report, MAILER-DAEMON)
    AUTO_REPLY = "auto_reply"  # an out-of-office or other robot (Auto-Submitted, Precedence)
    TOO_LARGE = "too_large"  # a mail over email.max_message_mb: kept by its headers only


#: Messages in that are never answered (a robot's, or one with nobody to answer).
UNANSWERABLE = (Flag.BINARY, Flag.BOUNCE, Flag.AUTO_REPLY)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "direction", "external_id", name="uq_messages_external"),
        Index("ix_messages_desk", "direction", "state", "team"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(3))
    # the gateway's id (Kannel's message id, an email's Message-ID); None for ours before sending
    external_id: Mapped[str | None] = mapped_column(String(200))
    # the citizen: a phone number in its national form, or an email address
    citizen: Mapped[str] = mapped_column(String(200), index=True)
    # ours: the number or mailbox it reached, or it was sent from
    service_address: Mapped[str] = mapped_column(String(200))
    # the team whose desk it is on
    team: Mapped[str | None] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    flag: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a message out: what it answers, who wrote it, its size on the air
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    sent_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    coding: Mapped[str | None] = mapped_column(String(8))  # gsm7 | ucs2
    parts: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # a voice message left in the overflow (channel voice): its recording and call
    voice_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("voice_messages.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class MessageDelivery(Base):
    """A delivery report of a message out (one per part and step), never changed."""

    __tablename__ = "message_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    # Kannel's DLR type: 1 delivered, 2 not delivered, 4 queued at the SMSC,
    # 8 taken by the SMSC, 16 refused by the SMSC
    status: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class MessageEmail(Base):
    """A mail's own headers beside its :class:`Message` (in or out).

    ``folder``/``uidvalidity``/``uid`` say where in the mailbox a mail in was
    read: unique together, so a mail fetched again (the server was not told it
    was stored before a crash) is recognised.  ``html`` is already sanitised.
    """

    __tablename__ = "message_emails"
    __table_args__ = (
        UniqueConstraint("folder", "uidvalidity", "uid", name="uq_message_emails_folder"),
    )

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    rfc_message_id: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # the From header as written (the address alone is the message's citizen)
    from_header: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(Integer)
    folder: Mapped[str | None] = mapped_column(String(200))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)

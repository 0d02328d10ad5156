"""Tables of notifications: each one the hotline owes someone, and the SMS surveys.

A :class:`Notification` is written when it becomes owed (in the transaction of the
ticket's change that owes it, for the citizen's), then sent by the dispatcher when it
is due (``due_at``: night holds non-urgent SMS until morning).  ``dedupe`` is unique:
the same notification planned twice (a retried write, two processes sweeping for
reminders) is one row.  An SMS notification names its row of ``messages`` (the inbox's
table of messages out, where its delivery reports land).

An :class:`SmsSurvey` is the survey SMS sent with a result: a reply of 1-5 from that
number within ``notify.survey_days`` is its rating; 1-2 offers a reopening, and a 9
then reopens the report.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime
from inbox import models as _inbox_models  # noqa: F401  (messages, for the foreign key)


class Kind(StrEnum):
    # to the citizen
    CODE = "code"  # the tracking number, at creation
    FORWARDED = "forwarded"  # levels 2 and 3: "we have forwarded it"
    RESULT = "result"  # the agency's answer, short, with the status page
    SURVEY = "survey"  # "reply 1-5"
    SURVEY_LOW = "survey_low"  # after a 1 or 2: "reply 9 to reopen"
    SURVEY_THANKS = "survey_thanks"  # after a 3-5
    REOPENED = "reopened"  # after a 9: "reopened"
    # to agencies and supervisors (email)
    AGENCY_FORWARDED = "agency_forwarded"
    AGENCY_REMINDER = "agency_reminder"
    AGENCY_OVERDUE = "agency_overdue"
    AGENCY_ESCALATION = "agency_escalation"  # to the parent agency
    DIGEST = "digest"


#: What may go out at night: the answers to something the citizen just did.
URGENT = frozenset({Kind.CODE, Kind.SURVEY_LOW, Kind.SURVEY_THANKS, Kind.REOPENED})


class NotifyChannel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class NotifyState(StrEnum):
    PENDING = "pending"  # waiting for its time (or a retry)
    SENDING = "sending"  # taken by the dispatcher
    SENT = "sent"  # handed to the gateway (an SMS's delivery is its message's state)
    FAILED = "failed"  # refused, or tried max_attempts times


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # "<kind>:<ticket>:<round>:<recipient>" and the like: one row per notification owed
    dedupe: Mapped[str] = mapped_column(String(300), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(8))
    # a phone number (national form) or an email address
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # the SMS's row in messages (its coding, parts and delivery reports)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SurveyState(StrEnum):
    WAITING = "waiting"  # sent; a reply of 1-5 is its rating
    LOW = "low"  # rated 1 or 2: a 9 reopens
    RATED = "rated"  # rated 3 to 5: done
    REOPENED = "reopened"  # the citizen replied 9


class SmsSurvey(Base):
    __tablename__ = "sms_surveys"
    __table_args__ = (Index("ix_sms_surveys_number", "number", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # the ticket's round (its reopens) the survey is about: one survey per result
    round: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), unique=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_id: Mapped[int | None] = mapped_column(ForeignKey("ratings.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # replies count until then (set when the survey SMS goes out)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

"""The append-only table of queue events, and the stored periodic reports.

One row per queue event (a caller joined, an agent was rung, a call was
connected, a member paused...), named as Asterisk's queue_log names it, so a
row written from the live AMI event and the one replayed from queue_log after
an outage are the same row: ``key`` is unique and inserts that collide are
dropped.  A trigger (migration 0005) refuses UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class QueueEvent(Base):
    """One queue event.  Rows are only ever inserted."""

    __tablename__ = "queue_events"
    __table_args__ = (
        Index("ix_queue_events_queue_at", "queue", "at"),
        Index("ix_queue_events_agent_at", "agent", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The idempotency key (see queue_stats.storage.event_key): the same for the
    # AMI event and the queue_log line of one happening.
    key: Mapped[str] = mapped_column(String(160), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    # The agent's extension ("1001"), None for caller-only events.
    agent: Mapped[str | None] = mapped_column(String(16), index=True)
    # queue_log's own verb (but JOIN for its ENTERQUEUE, TRANSFER for its
    # BLINDTRANSFER / ATTENDEDTRANSFER): JOIN, ABANDON, EXITWITHTIMEOUT,
    # EXITEMPTY, EXITWITHKEY, RINGNOANSWER, RINGCANCELED, CONNECT,
    # COMPLETEAGENT, COMPLETECALLER, TRANSFER, AGENTDUMP, ADDMEMBER,
    # REMOVEMEMBER, PAUSE, UNPAUSE.  (queue_stats.catchup.VERBS)
    event: Mapped[str] = mapped_column(String(24))
    wait_seconds: Mapped[int | None] = mapped_column(Integer)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    # JSON: {"position": 1, "reason": "lunch", "ring_ms": 15000, ...}
    data: Mapped[str | None] = mapped_column(Text)


class StoredReport(Base):
    """A periodic report written on the schedule (:mod:`queue_stats.periodic`): its
    period, and what became of sending it.  The files are
    ``<state_dir>/reports/<file_stem>.xlsx`` and ``.pdf``; one row per period and kind
    (two processes writing the same period: the second's insert fails, it keeps none).
    """

    __tablename__ = "periodic_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # daily, weekly, monthly
    period_start: Mapped[date] = mapped_column(Date)  # the first local day
    period_end: Mapped[date] = mapped_column(Date)  # the day after the last
    language: Mapped[str] = mapped_column(String(8))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    xlsx_size: Mapped[int] = mapped_column(Integer)
    pdf_size: Mapped[int] = mapped_column(Integer)
    # JSON list of the addresses it was (to be) sent to; "[]" when not sent
    recipients: Mapped[str] = mapped_column(Text, default="[]")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # why the last try failed (or "email is not configured")
    send_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("kind", "period_start"),)

    @property
    def last_day(self) -> date:
        return self.period_end - timedelta(days=1)

    @property
    def file_stem(self) -> str:
        return f"hotline-{self.kind}-{self.period_start.isoformat()}"

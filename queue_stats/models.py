"""The append-only table of queue events.

One row per queue event (a caller joined, an agent was rung, a call was
connected, a member paused...), named as Asterisk's queue_log names it, so a
row written from the live AMI event and the one replayed from queue_log after
an outage are the same row: ``key`` is unique and inserts that collide are
dropped.  A trigger (migration 0005) refuses UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
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

"""Tables of the recordings: transcripts, their searchable segments, transcription jobs.

A call has at most one transcript (``call_id`` is unique): a job delivered
twice finds it there and is done.  ``transcription_jobs`` is the source of
truth for what is left to transcribe; Redis only carries the work to the
workers.  ``transcript_segments`` holds each speaker's utterances one row each,
with a folded copy of the text (lower case, no accents: :mod:`core.text`) that
the full-text index covers (FTS5 on SQLite, a GIN ``tsvector`` index on
PostgreSQL, see migrations 0004 and 0011).
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Transcript(Base):
    """The merged transcript of one call, both sides in time order."""

    __tablename__ = "transcripts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True, index=True)
    # plain text, one line per utterance: "citizen: ..." / "agent: ..."
    text: Mapped[str] = mapped_column(Text)
    # JSON list in time order of {"speaker", "start", "end", "text", "words": [{"w",
    # "start", "end", "conf"}]}
    segments_json: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    audio_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def segments(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(self.segments_json)
        return data


class TranscriptSegment(Base):
    """One utterance of a transcript, as the full-text index sees it."""

    __tablename__ = "transcript_segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(16))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    # folded (core.text.fold: lower case, no accents): what the full-text index holds
    search_text: Mapped[str] = mapped_column(Text)


class TranscriptionJob(Base):
    """Where the transcription of one call stands."""

    __tablename__ = "transcription_jobs"
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

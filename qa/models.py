"""Tables of quality grading: scorecards and their versions, the weekly draws and the
calls they picked, grades, time-stamped comments and disputes.

A scorecard is edited by adding a version (``qa_scorecard_versions``): a grade keeps
the version it was made with, so old grades read the same after an edit.  A call is
picked for grading at most once (``qa_samples.call_id`` is unique), whichever way it
came in (the random draw, a supervisor's flag, a reopened report, a low rating).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class Reason(StrEnum):
    """Why a call is in the graders' work list."""

    RANDOM = "random"  # the weekly draw, per agent and shift
    FLAGGED = "flagged"  # a supervisor asked for it
    REOPENED = "reopened"  # the report the call made was reopened
    LOW_RATING = "low_rating"  # the citizen rated it low


class DisputeState(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"  # the grade stands
    CHANGED = "changed"  # the supervisor set another score


class Scorecard(Base):
    __tablename__ = "qa_scorecards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScorecardVersion(Base):
    """One version of a scorecard's criteria; never changed once written."""

    __tablename__ = "qa_scorecard_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("qa_scorecards.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    # JSON: [{"id", "label", "weight", "fatal"}, ...] (qa.scoring.Criterion)
    criteria: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("scorecard_id", "version"),)


class Draw(Base):
    """One week's draw, stored whole so it can be checked: the seed, the settings it
    used and the calls it drew from (``pool``, JSON), to run it again and compare."""

    __tablename__ = "qa_draws"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[date] = mapped_column(Date, unique=True)  # the Monday, local
    seed: Mapped[str] = mapped_column(String(64))
    calls_per_agent: Mapped[int] = mapped_column(Integer)
    # JSON: [[call_id, agent_extension, shift_id], ...] sorted by call id
    pool: Mapped[str] = mapped_column(Text)
    # JSON: the pool's call ids left out as already listed (earlier draws, flags, and
    # this draw's reopened and low-rated calls)
    excluded: Mapped[str] = mapped_column(Text)
    # JSON: the call ids the draw picked, in order
    picked: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class Sample(Base):
    """A call in the graders' work list, and why."""

    __tablename__ = "qa_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(16))
    draw_id: Mapped[int | None] = mapped_column(ForeignKey("qa_draws.id"), index=True)
    agent_extension: Mapped[str | None] = mapped_column(String(16), index=True)
    shift_id: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    added_by: Mapped[str] = mapped_column(String(200))


class Grade(Base):
    """One grader's grade of one call (a second grader makes a second row: calibration)."""

    __tablename__ = "qa_grades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("qa_scorecard_versions.id"))
    grader_id: Mapped[int | None] = mapped_column(Integer)
    grader_name: Mapped[str] = mapped_column(String(200))
    # copied from the call, as the reports group by them
    agent_extension: Mapped[str | None] = mapped_column(String(16), index=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    shift_id: Mapped[str | None] = mapped_column(String(32))
    call_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # JSON: {criterion id: mark} (a mark 0..MAX_MARK, None for "not applicable";
    # a fatal criterion's mark is 1 passed or 0 failed)
    marks: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)  # 0..100
    fatal: Mapped[bool] = mapped_column(default=False)  # a fatal criterion failed
    summary: Mapped[str | None] = mapped_column(Text)
    graded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the agent's dispute (once) and the supervisor's answer
    dispute_state: Mapped[str | None] = mapped_column(String(16))
    dispute_reason: Mapped[str | None] = mapped_column(Text)
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(Text)
    # the score before a dispute changed it
    original_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("call_id", "grader_id"),)


class Comment(Base):
    """A grader's remark at a moment of a call's recording."""

    __tablename__ = "qa_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    at_seconds: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(Integer)
    author_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

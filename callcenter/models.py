"""Tables of the call centre: hotlines, teams, shifts, agents, calls and callbacks.

Hotlines, teams, shifts and agents are copied from the configuration at start
(the configuration is their source of truth); calls are written from the IVR
and from Asterisk's events; callbacks, their attempts and the voice messages
waiting callers leave are written by :mod:`callcenter.callbacks`.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, Select, String, Text, Time, select, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime


class Outcome(StrEnum):
    """Where a call stands, then how it ended."""

    IN_IVR = "in_ivr"  # still in the menu
    QUEUED = "queued"  # waiting for an agent
    ANSWERED = "answered"  # an agent picked up (ended_at set once it is over)
    HANGUP_IVR = "hangup_ivr"  # the caller hung up in the menu
    ABANDONED = "abandoned"  # the caller hung up while waiting
    TIMEOUT = "timeout"  # no agent within the maximum wait
    ENDED_IVR = "ended_ivr"  # the IVR ended the call (default action "hangup")
    CALLBACK = "callback"  # left the queue asking to be called back (callcenter.callbacks)
    VOICEMAIL = "voicemail"  # left the queue leaving a voice message
    EMERGENCY = "emergency"  # put through to an emergency number from the menu (agi.emergency)
    # the hotline called the citizen with the result of their report (tickets.result_calls)
    RESULT_CALL = "result_call"
    # an agent called the citizen from a ticket (callcenter.outbound): never a queue
    # call, so no queue figure counts it; ``end_reason`` says how it ended
    OUTBOUND = "outbound"
    # the caller's number is on the blocked list (callcenter.blocklist): they heard
    # the message and were offered only the emergency option (one put through is
    # ``emergency``; ``block_id`` marks both)
    BLOCKED = "blocked"


OPEN_OUTCOMES = (Outcome.IN_IVR, Outcome.QUEUED)


class Direction(StrEnum):
    INBOUND = "inbound"  # a citizen called the hotline (or a callback of such a call)
    OUTBOUND = "outbound"  # an agent called the citizen from a ticket


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Shift(Base):
    __tablename__ = "shifts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)


class Hotline(Base):
    __tablename__ = "hotlines"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    shift_id: Mapped[str] = mapped_column(ForeignKey("shifts.id"))
    active: Mapped[bool] = mapped_column(default=True)


class Call(Base):
    """One call, from the first ring to hang-up: a citizen's (inbound), or one an
    agent placed to the citizen from a ticket (outbound, :mod:`callcenter.outbound`)."""

    __tablename__ = "calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Asterisk ids are strings such as "pbx-1795344736.14": never numbers.
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    linkedid: Mapped[str | None] = mapped_column(String(64))
    hotline_number: Mapped[str | None] = mapped_column(String(20), index=True)
    # Digits only (a leading + kept), None when the caller sent none.
    caller_number: Mapped[str | None] = mapped_column(String(32), index=True)
    # What the network sent, cut to a safe length, for the rare odd caller ID.
    caller_id_raw: Mapped[str | None] = mapped_column(String(80))
    caller_name: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str | None] = mapped_column(String(8))
    # The caller's way through the menu: keys pressed and what they led to.
    ivr_path: Mapped[str] = mapped_column(Text, default="")
    ivr_choice: Mapped[str | None] = mapped_column(String(32))
    route_source: Mapped[str] = mapped_column(String(16), default="agi")
    team_id: Mapped[str | None] = mapped_column(String(32))
    shift_id: Mapped[str | None] = mapped_column(String(32))
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    agent_extension: Mapped[str | None] = mapped_column(String(16), index=True)
    agent_name: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hold_seconds: Mapped[int | None] = mapped_column(Integer)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), default=Outcome.IN_IVR, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    recording_base: Mapped[str | None] = mapped_column(String(512))
    recording_caller: Mapped[str | None] = mapped_column(String(512))
    recording_agent: Mapped[str | None] = mapped_column(String(512))
    direction: Mapped[str] = mapped_column(
        String(8), default=Direction.INBOUND, server_default=Direction.INBOUND
    )
    # the ticket an outbound call was placed from (tickets sit above this domain:
    # no foreign key, and tickets are never deleted)
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # the agent's wrap-up code for an answered call ([wrapup] codes; callcenter.wrapup)
    wrapup_code: Mapped[str | None] = mapped_column(String(32))
    wrapup_by: Mapped[str | None] = mapped_column(String(100))
    wrapup_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the block the caller's number was under when it called (blocked_numbers.id)
    block_id: Mapped[int | None] = mapped_column(Integer, index=True)

    __table_args__ = (
        Index("ix_calls_open", "outcome", "ended_at"),
        # one outbound call open per agent: a second click, in any panel process, fails here
        Index(
            "ix_calls_outbound_open",
            "agent_extension",
            unique=True,
            sqlite_where=text("direction = 'outbound' AND ended_at IS NULL"),
            postgresql_where=text("direction = 'outbound' AND ended_at IS NULL"),
        ),
    )


def call_to_change(uniqueid: str) -> Select[tuple[Call]]:
    """The call on channel ``uniqueid``, read to be changed: ``FOR UPDATE``, so no
    other writer changes it until this session ends.  A record is written from
    several sides at once (AMI's events, the IVR's and the overflow's AGI, the
    transfer and result-call reports): a change made from an older read would
    undo theirs.  (SQLite honours it through ``core.db.WriterGate``.)"""
    return select(Call).where(Call.uniqueid == uniqueid).with_for_update()


# -- callbacks and voice messages (written by callcenter.callbacks) ----------


class Status(StrEnum):
    PENDING = "pending"  # in the list, waiting for an agent (or its retry time)
    DIALLING = "dialling"  # an attempt is under way
    DONE = "done"  # ended: see ``outcome``


class Result(StrEnum):
    """How one attempt, and then the callback, ended."""

    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # no answer after ``callback_attempts`` tries
    CANCELLED = "cancelled"
    # the agent's own phone did not take the call: not counted as a try
    AGENT_MISSED = "agent_missed"


class Callback(Base):
    """A caller waiting to be called back, in the order they first joined a queue."""

    __tablename__ = "callbacks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    hotline_number: Mapped[str | None] = mapped_column(String(20))
    team_id: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="vi")
    number: Mapped[str] = mapped_column(String(32))
    # "caller_id" (confirmed with a key), "typed", or "voice_message"
    number_source: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    outcome: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_result: Mapped[str | None] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # an agent who pressed "call now": the next attempt rings this phone
    assigned_extension: Mapped[str | None] = mapped_column(String(16))
    agent_extension: Mapped[str | None] = mapped_column(String(16))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    # the call record of the connected callback (recordings hang off it)
    result_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))

    __table_args__ = (Index("ix_callbacks_status_queued", "status", "queued_at"),)


class CallbackAttempt(Base):
    """One try at calling back: which agent, which channel, how it ended."""

    __tablename__ = "callback_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    agent_extension: Mapped[str | None] = mapped_column(String(16))
    uniqueid: Mapped[str | None] = mapped_column(String(64), unique=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(64))
    by: Mapped[str | None] = mapped_column(String(100))


class VoiceStatus(StrEnum):
    NEW = "new"
    HANDLED = "handled"
    CALLBACK = "callback"  # turned into a callback


class VoiceMessage(Base):
    """A message a waiting caller left instead of waiting on."""

    __tablename__ = "voice_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    hotline_number: Mapped[str | None] = mapped_column(String(20))
    team_id: Mapped[str | None] = mapped_column(String(32))
    caller_number: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="vi")
    path: Mapped[str] = mapped_column(String(512))
    seconds: Mapped[float | None] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), default=VoiceStatus.NEW)
    handled_by: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    callback_id: Mapped[int | None] = mapped_column(ForeignKey("callbacks.id"))


class AbandonedDismissal(Base):
    """ "No need to call back": who decided it for a caller who gave up, when, and why.

    Append-only: it covers the caller's abandoned calls up to ``up_to`` (the
    last one in the list when it was decided); a later abandoned call puts the
    caller back in the list (:mod:`callcenter.abandoned`).
    """

    __tablename__ = "abandoned_dismissals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    up_to: Mapped[datetime] = mapped_column(UTCDateTime())
    dismissed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dismissed_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)


class SpyMode(StrEnum):
    """How a supervisor joins an agent's call (ChanSpy)."""

    LISTEN = "listen"  # hears both sides, says nothing
    WHISPER = "whisper"  # heard by the agent only
    BARGE = "barge"  # heard by both


class Supervision(Base):
    """A supervisor in an agent's call: who, whom, how, from when to when.

    Written when the supervisor's phone is rung (``started_at``), ended when
    the supervisor's channel hangs up (the dialplan's report) or the phone was
    not answered (``result``).  Audit: rows are never deleted.
    """

    __tablename__ = "supervisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the supervisor's channel id (Originate's ChannelId)
    channel_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    username: Mapped[str] = mapped_column(String(100))
    supervisor_extension: Mapped[str] = mapped_column(String(16))
    agent_extension: Mapped[str] = mapped_column(String(16), index=True)
    # the caller's uniqueid of the agent's call (the call record's), when known
    call_uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "ended" (the supervisor was in the call), "not_answered", "failed"
    result: Mapped[str | None] = mapped_column(String(16))


class BlockedNumber(Base):
    """A number on the blocked list: put there by a supervisor, for a while, with a reason.

    Never deleted: a lift writes ``removed_at``/``removed_by``, an expiry is
    ``expires_at`` passing; so the rows are the list's audited history
    (:mod:`callcenter.blocklist`).
    """

    __tablename__ = "blocked_numbers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # national form (core.phones.national_form), as call records keep callers
    number: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    removed_by: Mapped[str | None] = mapped_column(String(100))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TransferKind(StrEnum):
    """How a live call was handed on."""

    BLIND = "blind"  # the caller goes straight to the target; the agent is out at once
    ATTENDED = "attended"  # the agent talks to the target first, then hands the caller on


class CallTransfer(Base):
    """One link of a call's transfer chain: who handed it on, to whom, how, when.

    Written when the transfer is asked for (``result`` null), completed when
    Asterisk took it (``transferred``) or refused it (``failed``); an attended
    one may end ``cancelled``.  ``note`` and ``draft`` are what the first agent
    wrote for the next one (their screen shows them).  Audit: never deleted.
    """

    __tablename__ = "call_transfers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    call_uniqueid: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # queue, phone, agency, emergency (callcenter.transfers.Target)
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(String(200))
    # what the trunk dialled, for agency and emergency targets
    number: Mapped[str | None] = mapped_column(String(32))
    from_extension: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    # the ticket form as the first agent left it (JSON), for the next agent's screen
    draft: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(200))
    # when the leg this transfer began was answered (callcenter.legs): the target
    # picked up; an attended transfer's at its completion.  None: never answered
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

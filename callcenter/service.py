"""Call records: opened by the IVR (or by the first queue event when the IVR
was not reachable), advanced by Asterisk's events, closed at hang-up.

Every function here is idempotent for the event it handles, because the same
fact can reach it twice (from the IVR and from AMI, or again after a
reconnect).  Each opens its own short session: no session outlives an await
on Asterisk.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter import legs
from callcenter.models import (
    OPEN_OUTCOMES,
    Agent,
    Call,
    CallTransfer,
    Direction,
    Hotline,
    Outcome,
    Shift,
    Team,
    call_to_change,
)
from callcenter.queue_log import Entry
from callcenter.recording_files import base_for, side_files
from callcenter.shifts import extension_of
from core.ami import header_int  # queue_log fields are written as AMI headers are
from core.db import Database
from core.phones import national_form
from core.settings import Settings

log = logging.getLogger(__name__)

_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]")


@dataclass(frozen=True)
class CallerId:
    number: str | None  # digits (and a leading +), or None
    raw: str | None  # what was sent, printable and cut short
    name: str | None


def sanitize_caller(number: str | None, name: str | None = None) -> CallerId:
    """Make a caller ID safe to store and show.

    Carriers send nothing, ``anonymous``, ``<unknown>``, letters or very long
    strings; the record keeps a clean number (or None) and what was sent.
    """
    raw = _PRINTABLE.sub("", (number or "").strip())[:80] or None
    digits = None
    if raw:
        # "tel:+84901234567", "sip:0901234567@carrier" and "+84 90 123 4567" are numbers;
        # "anonymous", "abc" or anything with letters in it is not.
        bare = re.sub(r"^(tel|sips?):", "", raw, flags=re.I).split("@", 1)[0]
        if re.fullmatch(r"\+?[\d\s().-]+", bare):
            d = re.sub(r"\D", "", bare)
            if 0 < len(d) <= 20:
                digits = national_form(("+" if bare.startswith("+") else "") + d)
    clean_name = _PRINTABLE.sub("", (name or "").strip())[:80] or None
    if clean_name and clean_name.lower() in ("<unknown>", "unknown", "anonymous"):
        clean_name = None
    return CallerId(digits, raw, clean_name)


def _apply_queue_event(call: Call, e: Entry) -> None:
    """One queue_log line onto a record, filling only what is missing."""
    if e.event == "ENTERQUEUE":
        call.queued_at = call.queued_at or e.at
        call.queue = call.queue or e.queue
        if call.outcome == Outcome.IN_IVR:
            call.outcome = Outcome.QUEUED
    elif e.event == "CONNECT":
        call.outcome = Outcome.ANSWERED
        call.answered_at = call.answered_at or e.at
        if call.hold_seconds is None:
            call.hold_seconds = header_int(e.field(0))
        if call.agent_extension is None:
            call.agent_extension = extension_of(e.agent)
        call.recording_caller, call.recording_agent = side_files(call.recording_base)
    elif e.event in ("COMPLETECALLER", "COMPLETEAGENT"):
        call.ended_at = call.ended_at or e.at
        if call.talk_seconds is None:
            call.talk_seconds = header_int(e.field(1))
        if call.end_reason is None:
            call.end_reason = "caller_hangup" if e.event == "COMPLETECALLER" else "agent_hangup"
    elif e.event == "ABANDON" and call.outcome in OPEN_OUTCOMES:
        call.outcome = Outcome.ABANDONED
        call.ended_at = call.ended_at or e.at
        call.hold_seconds = header_int(e.field(2))
    elif e.event in ("EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY") and (
        call.outcome in OPEN_OUTCOMES
    ):
        call.outcome = Outcome.TIMEOUT
        call.ended_at = call.ended_at or e.at
        call.hold_seconds = header_int(e.field(2))


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    dialect = session.bind.dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Call)


# How many calls' IVR facts are kept in memory (calls in the IVR or the queue
# at once, with room to spare; the oldest go first).
MAX_FACTS = 2000


@dataclass(frozen=True)
class CallFacts:
    """What the IVR wrote of a call on its way to the queue, kept in memory.

    The screen-pop shows these fields; with them at hand the ring needs no
    database read (the pop reads the record only when the call reached the
    queue by another way: the dialplan's fallback, a restart mid-call, a second
    process).  The attribute names are the record's (:class:`Call`)."""

    id: int
    uniqueid: str
    caller_number: str | None
    caller_name: str | None
    hotline_number: str | None
    language: str | None
    route_source: str
    ivr_path: str = ""
    ivr_choice: str | None = None
    queue: str | None = None
    queued_at: datetime | None = None


class CallService:
    """Writes the life of each call to the database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._facts: OrderedDict[str, CallFacts] = OrderedDict()
        # called with the call's id once an answered, recorded call has ended
        self.on_recorded_call_ended: list[Callable[[int], Awaitable[None]]] = []

    async def sync_directory(self) -> None:
        """Copy teams, shifts, hotlines and agents from the configuration."""
        s = self.settings
        async with self.db.session() as session:
            for t in s.teams:
                await session.merge(Team(id=t.id, name=t.name))
            for sh in s.shifts:
                await session.merge(Shift(id=sh.id, name=sh.name, start=sh.start, end=sh.end))
            await session.flush()
            for h in s.hotlines:
                await session.merge(Hotline(id=h.id, number=h.number, name=h.name, team_id=h.team))
            configured = {a.id for a in s.agents}
            for a in s.agents:
                await session.merge(
                    Agent(
                        id=a.id,
                        name=a.name,
                        extension=a.extension,
                        team_id=a.team,
                        shift_id=a.shift,
                        active=True,
                    )
                )
            await session.execute(
                update(Agent).where(Agent.id.not_in(configured)).values(active=False)
            )

    async def open_call(
        self,
        *,
        uniqueid: str,
        linkedid: str | None,
        hotline_number: str | None,
        caller: CallerId,
        started_at: datetime,
        language: str | None,
        recording_base: str | None,
        route_source: str = "agi",
        block_id: int | None = None,
    ) -> None:
        """Create the record when the call enters the IVR (no-op if it exists).

        ``block_id``: the caller's number is on the blocked list; the call is
        ``blocked`` from the start (a hang-up at any moment leaves it so).
        """
        async with self.db.session() as session:
            stmt = (
                _insert(session)
                .values(
                    uniqueid=uniqueid,
                    linkedid=linkedid,
                    hotline_number=hotline_number,
                    caller_number=caller.number,
                    caller_id_raw=caller.raw,
                    caller_name=caller.name,
                    language=language,
                    started_at=started_at,
                    outcome=Outcome.IN_IVR if block_id is None else Outcome.BLOCKED,
                    block_id=block_id,
                    route_source=route_source,
                    recording_base=recording_base,
                    ivr_path="",
                )
                .on_conflict_do_nothing(index_elements=["uniqueid"])
                .returning(Call.id)
            )
            call_id = (await session.execute(stmt)).scalar()
        if call_id is None:
            return  # written before (by the hang-up, or a second try): the record rules
        self._facts[uniqueid] = CallFacts(
            id=call_id,
            uniqueid=uniqueid,
            caller_number=caller.number,
            caller_name=caller.name,
            hotline_number=hotline_number,
            language=language,
            route_source=route_source,
        )
        while len(self._facts) > MAX_FACTS:
            self._facts.popitem(last=False)

    def facts(self, uniqueid: str) -> CallFacts | None:
        """The IVR's facts of a call in this process's IVR or queue, if still kept."""
        return self._facts.get(uniqueid)

    def forget(self, uniqueid: str) -> None:
        """The call was answered or is over: its pop has what it needs."""
        self._facts.pop(uniqueid, None)

    async def ivr_done(
        self,
        uniqueid: str,
        *,
        path: str,
        choice: str | None,
        language: str,
        queue: str | None = None,
        team_id: str | None = None,
        shift_id: str | None = None,
        outcome: Outcome | None = None,
        ended_at: datetime | None = None,
    ) -> None:
        """Store the menu path, and the queue chosen or how the IVR ended.

        The path is the IVR's alone and is always written, even when the
        hang-up event has already closed the record; the outcome only while
        the call is still open.
        """
        state: dict[str, object] = {}
        known = self._facts.get(uniqueid)
        if known is not None:  # before the write: the caller may reach the queue first
            if queue and outcome is None:
                self._facts[uniqueid] = replace(
                    known, ivr_path=path, ivr_choice=choice, language=language, queue=queue
                )
            else:
                self.forget(uniqueid)  # the IVR ended it: no pop will come
        if queue:
            state.update(queue=queue, team_id=team_id, shift_id=shift_id)
        if outcome is not None:
            state["outcome"] = outcome
        if ended_at is not None:
            state["ended_at"] = ended_at
        async with self.db.session() as session:
            await session.execute(
                update(Call)
                .where(Call.uniqueid == uniqueid)
                .values(ivr_path=path, ivr_choice=choice, language=language)
            )
            if state:
                await session.execute(
                    update(Call)
                    .where(Call.uniqueid == uniqueid, Call.outcome.in_(OPEN_OUTCOMES))
                    .values(**state)
                )

    async def emergency_call(
        self, uniqueid: str, *, path: str, choice: str, connected: bool
    ) -> None:
        """The IVR puts the caller through to an emergency number (or that failed).

        While the call is out the record's outcome is ``emergency``; a dial
        that failed gives the caller back to the menu, and the record with them.
        """
        # a blocked caller (block_id) goes back to ``blocked``, not to the menu
        old = (Outcome.IN_IVR, Outcome.BLOCKED) if connected else (Outcome.EMERGENCY,)
        new = (
            Outcome.EMERGENCY
            if connected
            else case((Call.block_id.is_(None), Outcome.IN_IVR.value), else_=Outcome.BLOCKED.value)
        )
        async with self.db.session() as session:
            await session.execute(
                update(Call).where(Call.uniqueid == uniqueid).values(ivr_path=path)
            )
            await session.execute(
                update(Call)
                .where(Call.uniqueid == uniqueid, Call.outcome.in_(old))
                .values(outcome=new, ivr_choice=choice if connected else None)
            )

    async def blocked_done(
        self, uniqueid: str, *, path: str, choice: str | None, language: str, ended_at: datetime
    ) -> None:
        """A blocked caller heard the message (and maybe the emergency option): the
        IVR ends the call.  One put through to an emergency number keeps ``emergency``."""
        async with self.db.session() as session:
            await session.execute(
                update(Call)
                .where(Call.uniqueid == uniqueid)
                .values(ivr_path=path, ivr_choice=choice, language=language)
            )
            await session.execute(
                update(Call)
                .where(
                    Call.uniqueid == uniqueid,
                    Call.outcome == Outcome.BLOCKED,
                    Call.ended_at.is_(None),
                )
                .values(ended_at=ended_at)
            )

    async def emergency_answered(self, uniqueid: str, *, at: datetime) -> None:
        """The emergency service answered a caller put through from the menu.

        The dialplan records from here; the answer time makes the call a
        recorded, answered one (replayed and transcribed as an agent's), its
        talk time counted to the hang-up.
        """
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(uniqueid))
            if call is None or call.outcome != Outcome.EMERGENCY or call.answered_at is not None:
                return
            call.answered_at = at
            call.recording_caller, call.recording_agent = side_files(call.recording_base)

    async def caller_joined(
        self,
        *,
        uniqueid: str,
        linkedid: str | None,
        queue: str,
        hotline_number: str | None,
        caller: CallerId,
        at: datetime,
        recording_base: str | None,
        route_source: str,
    ) -> None:
        """The caller entered a queue; opens the record if the IVR never did."""
        team_id, _, shift_id = queue.partition("-")
        await self.open_call(
            uniqueid=uniqueid,
            linkedid=linkedid,
            hotline_number=hotline_number,
            caller=caller,
            started_at=at,
            language=None,
            recording_base=recording_base,
            route_source=route_source,
        )
        known = self._facts.get(uniqueid)
        if known is not None:
            self._facts[uniqueid] = replace(
                known, queue=queue, queued_at=at, route_source=route_source
            )
        async with self.db.session() as session:
            await session.execute(
                update(Call)
                .where(Call.uniqueid == uniqueid, Call.outcome.in_(OPEN_OUTCOMES))
                .values(
                    outcome=Outcome.QUEUED,
                    queue=queue,
                    queued_at=at,
                    team_id=team_id,
                    shift_id=shift_id,
                    route_source=route_source,
                )
            )

    async def agent_connected(
        self,
        *,
        uniqueid: str,
        queue: str,
        interface: str,
        member_name: str | None,
        hold_seconds: int | None,
        at: datetime,
        recording_base: str | None,
    ) -> None:
        """An agent answered: the call is answered and being recorded."""
        self.forget(uniqueid)
        extension = interface.split("/", 1)[-1]
        agent_name = next(
            (a.name for a in self.settings.agents if a.extension == extension), member_name
        )
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(uniqueid))
            if call is None:
                log.warning("AgentConnect for unknown call %s (queue %s)", uniqueid, queue)
                return
            base = recording_base or call.recording_base
            rec_in, rec_out = side_files(base)
            call.outcome = Outcome.ANSWERED
            # a call transferred to another queue is answered again: the record keeps
            # its first answer and wait, and names the agent who has it now
            first = call.answered_at is None
            call.answered_at = at if first else call.answered_at
            call.queue = call.queue or queue
            call.agent_extension = extension
            call.agent_name = agent_name
            call.hold_seconds = hold_seconds if first else call.hold_seconds
            call.recording_base = base
            call.recording_caller, call.recording_agent = rec_in, rec_out
            if not first:
                # the leg a transfer into this queue began (callcenter.legs)
                link = await session.scalar(
                    select(CallTransfer)
                    .where(
                        CallTransfer.call_id == call.id,
                        CallTransfer.kind == "blind",
                        CallTransfer.target_kind == "queue",
                        CallTransfer.result == "transferred",
                        CallTransfer.answered_at.is_(None),
                    )
                    .order_by(CallTransfer.id.desc())
                )
                if link is not None:
                    link.answered_at = at

    async def agent_completed(
        self, *, uniqueid: str, talk_seconds: int | None, reason: str
    ) -> None:
        """An agent's leg ended (app_queue's talk time); a transferred call's talk
        time is every leg's (:mod:`callcenter.legs`)."""
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(uniqueid))
            if call is None:
                return
            call.end_reason = reason
            all_legs = await self._legs_talk(session, call)
            call.talk_seconds = talk_seconds if all_legs is None else all_legs

    async def caller_abandoned(self, *, uniqueid: str, hold_seconds: int | None) -> None:
        """The caller left the queue unanswered.

        The call may not be over: app_queue reports a maximum-wait exit this way
        too, and the caller then hears a message; the hang-up closes the record.
        """
        self.forget(uniqueid)
        async with self.db.session() as session:
            await session.execute(
                update(Call)
                .where(Call.uniqueid == uniqueid, Call.outcome == Outcome.QUEUED)
                .values(outcome=Outcome.ABANDONED, hold_seconds=hold_seconds)
            )

    async def hung_up(
        self,
        *,
        uniqueid: str,
        at: datetime,
        queue_status: str | None,
        cause: str | None,
        hotline_number: str | None = None,
        linkedid: str | None = None,
        caller: CallerId | None = None,
        route_source: str | None = None,
    ) -> None:
        """The caller's channel is gone: close the record, whatever state it was in."""
        self.forget(uniqueid)
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(uniqueid))
            if call is not None and call.direction == Direction.OUTBOUND:
                # an agent's call to a citizen: its end (and how it went) comes with
                # the dialplan's report to callcenter.outbound, not with the hang-up
                return
            if call is None:
                if not hotline_number:
                    return  # not a hotline call (an agent leg, a test channel)
                # Gone before the IVR wrote anything (hung up at the very start,
                # or this event overtook the IVR's insert): record it as such.
                await session.execute(
                    _insert(session)
                    .values(
                        uniqueid=uniqueid,
                        linkedid=linkedid,
                        hotline_number=hotline_number,
                        caller_number=caller.number if caller else None,
                        caller_id_raw=caller.raw if caller else None,
                        caller_name=caller.name if caller else None,
                        started_at=at,
                        ended_at=at,
                        outcome=Outcome.HANGUP_IVR,
                        route_source=route_source or "agi",
                        ivr_path="",
                        end_reason=cause,
                    )
                    .on_conflict_do_nothing(index_elements=["uniqueid"])
                )
                call = await session.scalar(call_to_change(uniqueid))
                assert call is not None
            if queue_status == "TIMEOUT" and call.outcome in (Outcome.QUEUED, Outcome.ABANDONED):
                # app_queue reports a maximum-wait exit as an abandon too; the
                # hang-up's QUEUESTATUS says what it was, and the caller then
                # heard "all operators are busy" before the call ended.
                call.outcome = Outcome.TIMEOUT
                call.ended_at = at
            if call.ended_at is None:
                call.ended_at = at
            if call.outcome == Outcome.IN_IVR:
                call.outcome = Outcome.HANGUP_IVR
            elif call.outcome == Outcome.QUEUED:
                call.outcome = Outcome.TIMEOUT if queue_status == "TIMEOUT" else Outcome.ABANDONED
            if call.answered_at and call.talk_seconds is None:
                call.talk_seconds = int((at - call.answered_at).total_seconds())
            all_legs = await self._legs_talk(session, call)
            if all_legs is not None:
                call.talk_seconds = all_legs
            if call.end_reason is None and cause:
                call.end_reason = cause
            recorded = call.id if call.answered_at and call.recording_base else None
        if recorded is not None:
            for hook in self.on_recorded_call_ended:
                await hook(recorded)

    async def close_stale(self, live_uniqueids: set[str], at: datetime) -> int:
        """Close records whose channel Asterisk no longer has (after an outage)."""
        async with self.db.session() as session:
            rows = (await session.scalars(select(Call).where(Call.ended_at.is_(None)))).all()
            closed = 0
            for call in rows:
                if call.uniqueid in live_uniqueids:
                    continue
                call.ended_at = at
                call.end_reason = call.end_reason or "closed_after_outage"
                if call.outcome == Outcome.IN_IVR:
                    call.outcome = Outcome.HANGUP_IVR
                elif call.outcome == Outcome.QUEUED:
                    call.outcome = Outcome.ABANDONED
                closed += 1
            return closed

    async def replay_queue_log(self, entries: list[Entry]) -> int:
        """Fill in, from queue_log, the calls whose events the application missed.

        A call with no record (it came and went while the application was
        down) gets one; an open or incomplete record gets what it lacks.
        Nothing already known is overwritten, so replaying twice is harmless.
        Returns how many records were created or completed.
        """
        by_call: dict[str, list[Entry]] = {}
        for e in entries:
            if e.callid and e.callid != "NONE" and e.queue != "NONE":
                by_call.setdefault(e.callid, []).append(e)
        touched = 0
        for callid, events in by_call.items():
            if await self._replay_call(callid, events):
                touched += 1
        return touched

    async def _replay_call(self, callid: str, events: list[Entry]) -> bool:
        enter = next((e for e in events if e.event == "ENTERQUEUE"), None)
        async with self.db.session() as session:
            call = await session.scalar(call_to_change(callid))
            if call is None:
                if enter is None:
                    return False  # its start is in an older log: nothing sure to write
                team_id, _, shift_id = enter.queue.partition("-")
                hotline = next((h for h in self.settings.hotlines if h.team == team_id), None)
                caller = sanitize_caller(enter.field(1))
                base = str(
                    base_for(self.settings.recordings_dir, self.settings.tz, enter.at, callid)
                )
                call = Call(
                    uniqueid=callid,
                    linkedid=callid,
                    hotline_number=hotline.number if hotline else None,
                    caller_number=caller.number,
                    caller_id_raw=caller.raw,
                    caller_name=None,
                    started_at=enter.at,
                    queued_at=enter.at,
                    queue=enter.queue,
                    team_id=team_id,
                    shift_id=shift_id,
                    outcome=Outcome.QUEUED,
                    route_source="fallback",
                    ivr_path="",
                    recording_base=base,
                )
                session.add(call)
            elif call.ended_at is not None and call.outcome not in OPEN_OUTCOMES:
                return False  # complete already
            for i, e in enumerate(events):
                if e.event == "EXITWITHKEY" and any(
                    later.event == "ENTERQUEUE" for later in events[i + 1 :]
                ):
                    continue  # left for the overflow menu and came back: not an end
                _apply_queue_event(call, e)
            return True

    async def earlier_calls(
        self, number: str, *, before: str | None = None, limit: int = 10
    ) -> list[dict[str, object]]:
        """The caller's latest calls (newest first), the current one left out, for the pop."""
        async with self.db.session() as session:
            q = (
                select(Call)
                .where(Call.caller_number == number)
                .order_by(Call.started_at.desc())
                .limit(limit + 1)
            )
            rows = list((await session.execute(q)).scalars())
        return [
            {
                "uniqueid": c.uniqueid,
                "started_at": c.started_at.isoformat(),
                "hotline": c.hotline_number,
                "outcome": c.outcome,
                "agent": c.agent_name,
                "ivr_choice": c.ivr_choice,
            }
            for c in rows
            if c.uniqueid != before
        ][:limit]

    async def for_ticket(self, ticket_id: int, origin_call_id: int | None) -> list[Call]:
        """A ticket's calls, oldest first: the call it was made on, and those an agent
        placed from it (:mod:`callcenter.outbound`)."""
        cond = Call.ticket_id == ticket_id
        if origin_call_id is not None:
            cond = or_(cond, Call.id == origin_call_id)
        async with self.db.session() as session:
            q = select(Call).where(cond).order_by(Call.started_at, Call.id)
            return list((await session.scalars(q)).all())

    async def by_id(self, call_id: int) -> Call | None:
        async with self.db.session() as session:
            return await session.get(Call, call_id)

    async def get(self, uniqueid: str) -> Call | None:
        async with self.db.session() as session:
            return await self._get(session, uniqueid)

    @staticmethod
    async def _get(session: AsyncSession, uniqueid: str) -> Call | None:
        return await session.scalar(select(Call).where(Call.uniqueid == uniqueid))

    @staticmethod
    async def _legs_talk(session: AsyncSession, call: Call) -> int | None:
        """The talk time of every answered leg, when the call was handed on; None
        for a call that never was (its one leg's talk time is app_queue's)."""
        rows = (
            await session.scalars(
                select(CallTransfer)
                .where(CallTransfer.call_id == call.id)
                .order_by(CallTransfer.requested_at, CallTransfer.id)
            )
        ).all()
        chain = [legs.Link(r.result, r.done_at, r.answered_at) for r in rows]
        if not any(link.result == "transferred" for link in chain):
            return None
        return legs.talk_seconds(call.answered_at, call.ended_at, chain)

"""Callers who gave up: the one list the callbacks page and the handover report share.

A caller who hung up while waiting (or reached the maximum wait) within the
last :data:`LOOKBACK` is in the list until one of these reaches them:

- a later answered call from the same number (they called again and got
  through, or a callback talked to them: its record is an answered call);
- a callback for the number, still open or asked for after their last try
  (they are on the callbacks list then, not on this one);
- someone decided there is no need ("no need", with a reason): an
  append-only :class:`~callcenter.models.AbandonedDismissal` that covers the
  tries up to then; a new abandoned call puts the caller back.

"Call back" turns a caller into a callback worked by the existing dialler
(:meth:`AbandonedCallers.call_back`): for an agent, their own phone rings
first, as "call now" does.  Callers who sent no caller ID are counted but
cannot be called back.

The list is a query over the call records, the same on SQLite and
PostgreSQL; nothing is copied, so the two pages cannot disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from callcenter.callbacks import CallbackService
from callcenter.models import AbandonedDismissal, Call, Callback, Outcome, Status
from core.clock import Clock
from core.db import Database

log = logging.getLogger(__name__)

# How far back a caller who gave up is still someone to call back.
LOOKBACK = timedelta(hours=24)
GAVE_UP = (Outcome.ABANDONED, Outcome.TIMEOUT)
REASON_MAX = 500


class NotInList(LookupError):
    """The number is not (or no longer) among the callers who gave up."""

    def __init__(self, number: str) -> None:
        super().__init__(f"number {number!r} is not in the list of callers who gave up")
        self.number = number


@dataclass(frozen=True)
class AbandonedCaller:
    """One number that gave up, with its tries in the period."""

    number: str
    first: datetime  # when they first joined a queue (a callback keeps this place)
    last: datetime  # their last try
    tries: int
    longest_wait: int | None
    team_id: str | None
    hotline_number: str | None
    language: str


@dataclass(frozen=True)
class AbandonedList:
    callers: list[AbandonedCaller]
    total: int  # callers in the list (``callers`` may be cut to a limit)
    no_caller_id: int  # abandoned calls that sent no number: counted, not actionable
    since: datetime


class AbandonedCallers:
    """Reads the list and records what is done about a caller (one short session each)."""

    def __init__(self, db: Database, clock: Clock, callbacks: CallbackService) -> None:
        self.db = db
        self.clock = clock
        self.callbacks = callbacks

    def _conds(
        self, since: datetime, until: datetime, team_id: str | None
    ) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [
            Call.started_at >= since,
            Call.started_at <= until,
            Call.outcome.in_(GAVE_UP),
        ]
        if team_id:
            conds.append(Call.team_id == team_id)
        return conds

    async def waiting(
        self, team_id: str | None = None, *, limit: int = 200, number: str | None = None
    ) -> AbandonedList:
        """The callers who gave up in the last :data:`LOOKBACK` and are not reached since,
        last try first; ``team_id`` keeps one team's, ``number`` one caller."""
        now = self.clock.now()
        since = now - LOOKBACK
        conds = self._conds(since, now, team_id)
        numbered = (
            Call.caller_number.is_not(None) if number is None else Call.caller_number == number
        )
        gave_up = (
            select(
                Call.caller_number.label("number"),
                func.min(func.coalesce(Call.queued_at, Call.started_at)).label("first"),
                func.max(Call.started_at).label("last"),
                func.count().label("tries"),
                func.max(Call.hold_seconds).label("longest"),
                func.max(Call.team_id).label("team_id"),
                func.max(Call.hotline_number).label("hotline_number"),
                func.max(Call.language).label("language"),
            )
            .where(*conds, numbered)
            .group_by(Call.caller_number)
            .subquery()
        )
        later = aliased(Call)
        answered_since = exists().where(
            later.caller_number == gave_up.c.number,
            later.outcome == Outcome.ANSWERED,
            later.started_at > gave_up.c.last,
        )
        on_callbacks = exists().where(
            Callback.number == gave_up.c.number,
            or_(Callback.status != Status.DONE, Callback.requested_at >= gave_up.c.last),
        )
        dismissed = exists().where(
            AbandonedDismissal.number == gave_up.c.number,
            AbandonedDismissal.up_to >= gave_up.c.last,
        )
        waiting = and_(~answered_since, ~on_callbacks, ~dismissed)
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(gave_up)
                    .where(waiting)
                    .order_by(gave_up.c.last.desc(), gave_up.c.number)
                    .limit(limit)
                )
            ).all()
            total = int(
                await s.scalar(select(func.count()).select_from(gave_up).where(waiting)) or 0
            )
            anonymous = int(
                await s.scalar(select(func.count()).where(*conds, Call.caller_number.is_(None)))
                or 0
            )
        callers = [
            AbandonedCaller(
                number=r.number,
                first=_utc(r.first),
                last=_utc(r.last),
                tries=int(r.tries),
                longest_wait=r.longest,
                team_id=r.team_id,
                hotline_number=r.hotline_number,
                language=r.language or "vi",
            )
            for r in rows
        ]
        return AbandonedList(callers, total, anonymous, since)

    async def find(self, number: str, team_id: str | None = None) -> AbandonedCaller:
        """The caller with this number, if they are in the list (else NotInList)."""
        found = (await self.waiting(team_id, limit=1, number=number)).callers
        if not found:
            raise NotInList(number)
        return found[0]

    async def dismiss(
        self, number: str, by: str, reason: str, team_id: str | None = None
    ) -> AbandonedDismissal:
        """ "No need to call back": kept with who, when and why; covers the tries so far."""
        reason = reason.strip()
        if not reason:
            raise ValueError("reason: say why this caller needs no callback")
        caller = await self.find(number, team_id)
        row = AbandonedDismissal(
            number=caller.number,
            up_to=caller.last,
            dismissed_at=self.clock.now(),
            dismissed_by=by,
            reason=reason[:REASON_MAX],
        )
        async with self.db.session() as s:
            s.add(row)
        log.info("abandoned caller %s: no callback needed (%s): %s", number, by, row.reason)
        return row

    async def dismissals(self, limit: int = 30) -> list[AbandonedDismissal]:
        """The latest "no need" decisions, newest first."""
        async with self.db.session() as s:
            q = (
                select(AbandonedDismissal)
                .order_by(AbandonedDismissal.dismissed_at.desc(), AbandonedDismissal.id.desc())
                .limit(limit)
            )
            return list((await s.scalars(q)).all())

    async def call_back(
        self, number: str, by: str, extension: str | None, team_id: str | None = None
    ) -> Callback:
        """Put the caller on the callbacks list, keeping the place of their first try;
        with an ``extension`` (an agent), their phone is the one the dialler rings."""
        caller = await self.find(number, team_id)
        cb = await self.callbacks.add(
            number=caller.number,
            number_source="abandoned",
            queued_at=caller.first,
            team_id=caller.team_id,
            hotline_number=caller.hotline_number,
            language=caller.language,
            by=by,
        )
        if extension:
            cb = await self.callbacks.call_now(cb.id, extension)
        log.info("abandoned caller %s: callback %s queued by %s", number, cb.id, by)
        return cb


def _utc(value: datetime) -> datetime:
    """Aggregates come back as plain values on SQLite: read them as UTC, as the column does."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

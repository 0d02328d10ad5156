"""Wrap-up codes: what the agent says an answered call was.

After every answered call its agent picks a code from ``[wrapup] codes``
(ticket created, information given, silent, prank, ...); the code, who gave it
and when go into the call record.  The workspace insists on it (the agent
cannot resume taking calls while their last call has none: :meth:`pending`),
and the reports count the share of answered calls with usable content
(:mod:`queue_stats.wrapup`).

Who may set it: the call's agent, during the call and until
``change_minutes`` after it ended, as long as no one else (a supervisor) has
set it since; a supervisor or admin at any time (a correction).  Setting the
same code again changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from callcenter.exceptions import CallNotFound, UnknownWrapupCode, WrapupRefused
from callcenter.models import Call
from core.clock import Clock
from core.db import Database
from core.settings import Settings


class WrapupService:
    """Sets and reads the wrap-up code of calls; each call its own short session."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.settings.wrapup.change_minutes)

    async def set_code(
        self,
        call_id: int,
        code: str,
        *,
        by: str,
        extension: str | None,
        supervisor: bool = False,
    ) -> Call:
        """Give call ``call_id`` the code ``code`` and return the record.

        ``extension`` is the agent's (None for a supervisor): an agent may only
        code their own call (another's is :class:`CallNotFound`, as if it did not
        exist).  Raises :class:`UnknownWrapupCode` or :class:`WrapupRefused`.
        """
        if self.settings.wrapup.code(code) is None:
            raise UnknownWrapupCode(code)
        now = self.clock.now()
        async with self.db.session() as s:
            call = await s.get(Call, call_id)
            if call is None or (not supervisor and call.agent_extension != extension):
                raise CallNotFound(call_id)
            if call.answered_at is None:
                raise WrapupRefused(call_id, "not_answered")
            if call.wrapup_code == code and (supervisor or call.wrapup_by == by):
                return call
            stmt = update(Call).where(Call.id == call_id)
            if not supervisor:
                if call.wrapup_by is not None and call.wrapup_by != by:
                    raise WrapupRefused(call_id, "set_by_other")
                if call.ended_at is not None and now > call.ended_at + self.window:
                    raise WrapupRefused(call_id, "too_late")
                # a supervisor's code written between the read and this write wins
                stmt = stmt.where(or_(Call.wrapup_by.is_(None), Call.wrapup_by == by))
            done = await s.execute(
                stmt.values(wrapup_code=code, wrapup_by=by, wrapup_at=now).execution_options(
                    synchronize_session=False
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise WrapupRefused(call_id, "set_by_other")
            await s.commit()
            await s.refresh(call)
            return call

    async def pending(self, extension: str, now: datetime | None = None) -> Call | None:
        """The agent's last answered call still waiting for its code: ended (or still
        on) within ``change_minutes``, or None.  Only the latest counts: a call
        left without a code for longer is the reports' "no code"."""
        now = now or self.clock.now()
        async with self.db.session() as s:
            call = await s.scalar(
                select(Call)
                .where(
                    Call.agent_extension == extension,
                    Call.answered_at.is_not(None),
                    Call.answered_at >= now - timedelta(days=1),
                )
                .order_by(Call.answered_at.desc(), Call.id.desc())
                .limit(1)
            )
        if call is None or call.wrapup_code is not None:
            return None
        if call.ended_at is not None and now > call.ended_at + self.window:
            return None
        return call

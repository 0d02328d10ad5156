"""Who listened to or downloaded which recording: the replay audit log.

Every replay and every download of a call's audio leaves one row in
``recording_access``: who, when, which call, what (``play`` or
``download``) and from which address.  Opening the replay page is not a
replay (it fetches no audio); the first play in a page session is, and the
ranges that session heard follow as ``heard`` rows, each written when they
grew (on pause, at the end, on leaving the page).  The table is append-only: the
database itself refuses to change or delete a row (triggers, migration
0007), whatever code or person with a SQL prompt tries.  Refused requests
are not written here: the panel decides access first and logs only what it
serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from accounts.identity import Actor
from core.clock import Clock
from core.db import Base, Database, UTCDateTime


class Access(StrEnum):
    PLAY = "play"  # audio played: once per page session (or per window without one)
    HEARD = "heard"  # the ranges heard so far in a page session
    DOWNLOAD = "download"


class RecordingAccess(Base):
    """One replay or download of a call's recording (never changed, never deleted)."""

    __tablename__ = "recording_access"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # the name and role at the time, kept even if the account changes later
    user_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # the replay page's session (one opening of the page), and what it heard
    session: Mapped[str | None] = mapped_column(String(32))
    heard: Mapped[str | None] = mapped_column(String(500))


@dataclass
class AuditFilter:
    call_id: int | None = None
    user_id: int | None = None
    action: str | None = None


class AuditLog:
    """Writes and reads the replay audit log."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        actor: Actor,
        call_id: int,
        action: Access,
        *,
        address: str | None,
        user_agent: str | None = None,
        unless_within: timedelta | None = None,
        session: str | None = None,
        heard: str | None = None,
    ) -> bool:
        """Write one access row; returns whether one was written.

        With a page ``session``, a ``play`` is written once per session and a
        ``heard`` row only when its ranges differ from that session's last.
        Without one, ``unless_within`` skips it when the same user already has
        a row of the same kind for this call that recent.  A browser fetches
        one replay in many byte ranges (every seek is a request): they are one
        replay.
        """
        now = self.clock.now()
        async with self.db.session() as s:
            if session is not None:
                last = (
                    await s.execute(
                        select(RecordingAccess.heard)
                        .where(
                            RecordingAccess.call_id == call_id,
                            RecordingAccess.user_id == actor.id,
                            RecordingAccess.action == action.value,
                            RecordingAccess.session == session,
                        )
                        .order_by(RecordingAccess.id.desc())
                        .limit(1)
                    )
                ).first()
                if last is not None and (action != Access.HEARD or last[0] == heard):
                    return False
            elif unless_within is not None:
                recent = await s.scalar(
                    select(func.count())
                    .select_from(RecordingAccess)
                    .where(
                        RecordingAccess.call_id == call_id,
                        RecordingAccess.user_id == actor.id,
                        RecordingAccess.action == action.value,
                        RecordingAccess.at >= now - unless_within,
                    )
                )
                if recent:
                    return False
            s.add(
                RecordingAccess(
                    at=now,
                    call_id=call_id,
                    user_id=actor.id,
                    user_name=actor.name[:200],
                    role=actor.role.value,
                    action=action.value,
                    address=(address or "")[:64] or None,
                    user_agent=(user_agent or "")[:300] or None,
                    session=session,
                    heard=heard[:500] if heard else None,
                )
            )
        return True

    async def search(
        self, f: AuditFilter, *, page: int = 1, per_page: int = 50
    ) -> tuple[list[RecordingAccess], int]:
        """Newest first, with the total count of rows matching ``f``."""
        conds = []
        if f.call_id is not None:
            conds.append(RecordingAccess.call_id == f.call_id)
        if f.user_id is not None:
            conds.append(RecordingAccess.user_id == f.user_id)
        if f.action:
            conds.append(RecordingAccess.action == f.action)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(RecordingAccess).where(*conds))
            rows = await s.scalars(
                select(RecordingAccess)
                .where(*conds)
                .order_by(RecordingAccess.at.desc(), RecordingAccess.id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            return list(rows), int(total or 0)

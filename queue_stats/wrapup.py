"""Wrap-up codes over a period, for the reports and /metrics.

Every call answered in the period counts once, in the group it was taken in:
its shift, the hotline dialled and the agent who answered.  Its wrap-up code
(:mod:`callcenter.wrapup`) says whether it had usable content (the code's
``content`` in ``[wrapup] codes``); a call left without a code, or with a code
no longer configured, counts as answered and not coded.  The figures' names
and definitions are :mod:`queue_stats.kpis`' (``answered``, ``coded``,
``with_content``, ``content_share``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select

from callcenter.models import Call
from core.db import Database
from core.settings import Settings

Group = Literal["total", "shift", "hotline", "agent"]
GROUPS: tuple[Group, ...] = ("total", "shift", "hotline", "agent")
# the figures of a row, in the order of the report's columns and the CSV's
COLUMNS = ("answered", "coded", "with_content", "content_share")


@dataclass
class WrapupRow:
    """One group's answered calls in the period and their wrap-up codes."""

    group: Group
    key: str  # the shift's id, the hotline's number, the agent's extension; "" for the total
    answered: int = 0
    codes: dict[str, int] = field(default_factory=dict)  # code -> calls
    with_content: int = 0

    @property
    def coded(self) -> int:
        return sum(self.codes.values())

    @property
    def content_share(self) -> float | None:
        """Percent of the answered calls whose code says they had usable content."""
        return round(100.0 * self.with_content / self.answered, 1) if self.answered else None

    def __getitem__(self, key: str) -> object:  # the report template reads rows by key
        return getattr(self, key)


async def wrapup_figures(
    db: Database, settings: Settings, start: datetime, end: datetime
) -> list[WrapupRow]:
    """The total first, then per shift, hotline and agent (each sorted by key)."""
    known = {c.id: c.content for c in settings.wrapup.codes}
    async with db.session() as s:
        found = (
            await s.execute(
                select(
                    Call.shift_id,
                    Call.hotline_number,
                    Call.agent_extension,
                    Call.wrapup_code,
                    func.count(),
                )
                .where(Call.answered_at >= start, Call.answered_at < end)
                .group_by(
                    Call.shift_id, Call.hotline_number, Call.agent_extension, Call.wrapup_code
                )
            )
        ).all()
    rows: dict[tuple[Group, str], WrapupRow] = {("total", ""): WrapupRow("total", "")}
    for shift, hotline, ext, code, n in found:
        targets = [rows[("total", "")]]
        for group, key in (("shift", shift), ("hotline", hotline), ("agent", ext)):
            if key:
                targets.append(rows.setdefault((group, key), WrapupRow(group, key)))
        for r in targets:
            r.answered += int(n)
            if code in known:
                r.codes[code] = r.codes.get(code, 0) + int(n)
                if known[code]:
                    r.with_content += int(n)
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(rows.values(), key=lambda r: (order[r.group], r.key))


async def codes_since_start(db: Database) -> dict[str, int]:
    """How many calls have each wrap-up code, ever (for /metrics' counter)."""
    async with db.session() as s:
        found = (
            await s.execute(
                select(Call.wrapup_code, func.count())
                .where(Call.wrapup_code.is_not(None))
                .group_by(Call.wrapup_code)
            )
        ).all()
    return {str(code): int(n) for code, n in found}

"""Shift arithmetic: which shift is on duty at a moment, and when it ends.

Times are compared in the hotline's time zone; a shift whose end is not after
its start (22:00-06:00) crosses midnight.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.settings import Settings, Shift


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def covers(shift: Shift, t: time) -> bool:
    """Whether local wall-clock time ``t`` falls in ``shift`` (start inclusive, end exclusive)."""
    m, start, end = _minutes(t), _minutes(shift.start), _minutes(shift.end)
    if start < end:
        return start <= m < end
    return m >= start or m < end


def shift_at(shifts: list[Shift], moment: datetime, tz: ZoneInfo) -> Shift:
    """The shift on duty at ``moment`` (aware datetime)."""
    local = moment.astimezone(tz).time()
    for s in shifts:
        if covers(s, local):
            return s
    raise LookupError(f"no shift covers {local:%H:%M}")  # settings validation prevents this


def next_handover(shifts: list[Shift], moment: datetime, tz: ZoneInfo) -> datetime:
    """The first shift start strictly after ``moment``, as an aware datetime."""
    local = moment.astimezone(tz)
    candidates = []
    for s in shifts:
        for days in (0, 1):
            day = local.date() + timedelta(days=days)
            start = datetime.combine(day, s.start, tzinfo=tz)
            if start > local:
                candidates.append(start)
    return min(candidates)


def queue_name(team_id: str, shift_id: str) -> str:
    """The Asterisk queue of one team in one shift."""
    return f"{team_id}-{shift_id}"


def member_name(extension: str, name: str) -> str:
    """The queue member name: extension first, so queue_log (which logs member
    names, not interfaces) still says which phone took a call."""
    return f"{extension} {name}"


def extension_of(member: str) -> str | None:
    """The extension in a queue_log agent field (member name or interface)."""
    if member.startswith("PJSIP/"):
        return member.split("/", 1)[1] or None
    first = member.split(" ", 1)[0]
    return first if first.isdigit() else None


def on_duty_queue(settings: Settings, team_id: str, moment: datetime) -> tuple[str, Shift]:
    shift = shift_at(settings.shifts, moment, settings.tz)
    return queue_name(team_id, shift.id), shift


def dialplan_ranges(shift: Shift) -> list[str]:
    """GotoIfTime time ranges (minute resolution, end inclusive) covering ``shift``."""

    def fmt(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    start, end = _minutes(shift.start), _minutes(shift.end)
    if start < end:
        return [f"{fmt(start)}-{fmt(end - 1)}"]
    ranges = [f"{fmt(start)}-23:59"]
    if end > 0:
        ranges.append(f"00:00-{fmt(end - 1)}")
    return ranges

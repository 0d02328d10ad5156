"""Shift arithmetic around midnight and the handovers."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from callcenter.shifts import covers, dialplan_ranges, next_handover, on_duty_queue, shift_at
from tests.helpers import settings_in

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def settings(tmp_path):
    return settings_in(tmp_path)


@pytest.mark.parametrize(
    "hhmm, expected",
    [
        ("05:59", "night"),
        ("06:00", "morning"),
        ("13:59", "morning"),
        ("14:00", "afternoon"),
        ("21:59", "afternoon"),
        ("22:00", "night"),
        ("23:59", "night"),
        ("00:00", "night"),
        ("03:30", "night"),
    ],
)
def test_shift_at_local_times(settings, hhmm, expected):
    h, m = map(int, hhmm.split(":"))
    moment = datetime(2026, 11, 25, h, m, tzinfo=TZ)
    assert shift_at(settings.shifts, moment, settings.tz).id == expected


def test_shift_at_takes_utc_instants(settings):
    # 15:00 UTC is 22:00 in Ho Chi Minh City: the night shift has begun.
    moment = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    assert shift_at(settings.shifts, moment, settings.tz).id == "night"
    assert (
        shift_at(settings.shifts, moment.replace(minute=0, hour=14, second=59), settings.tz).id
        == "afternoon"
    )


def test_next_handover_crosses_midnight(settings):
    at = datetime(2026, 11, 25, 23, 10, tzinfo=TZ)
    assert next_handover(settings.shifts, at, settings.tz) == datetime(
        2026, 11, 26, 6, 0, tzinfo=TZ
    )
    at = datetime(2026, 11, 25, 21, 59, 59, tzinfo=TZ)
    assert next_handover(settings.shifts, at, settings.tz) == datetime(
        2026, 11, 25, 22, 0, tzinfo=TZ
    )
    # exactly at a handover, the next one is the following shift's start
    at = datetime(2026, 11, 25, 6, 0, tzinfo=TZ)
    assert next_handover(settings.shifts, at, settings.tz) == datetime(
        2026, 11, 25, 14, 0, tzinfo=TZ
    )


def test_covers_start_inclusive_end_exclusive(settings):
    night = next(s for s in settings.shifts if s.id == "night")
    assert covers(night, time(22, 0)) and covers(night, time(5, 59))
    assert not covers(night, time(6, 0)) and not covers(night, time(21, 59))


def test_on_duty_queue_per_team(settings):
    at = datetime(2026, 11, 26, 2, 0, tzinfo=TZ)
    assert on_duty_queue(settings, "t1022", at)[0] == "t1022-night"
    assert on_duty_queue(settings, "party", at)[0] == "party-night"


def test_dialplan_ranges(settings):
    by_id = {s.id: s for s in settings.shifts}
    assert dialplan_ranges(by_id["morning"]) == ["06:00-13:59"]
    assert dialplan_ranges(by_id["night"]) == ["22:00-23:59", "00:00-05:59"]


def test_member_names_carry_the_extension():
    from callcenter.shifts import extension_of, member_name

    assert member_name("1006", "Võ Thanh Tâm") == "1006 Võ Thanh Tâm"
    assert extension_of("1006 Võ Thanh Tâm") == "1006"
    assert extension_of("PJSIP/2011") == "2011"
    assert extension_of("Võ Thanh Tâm") is None and extension_of("NONE") is None

"""The shift scheduler's decision, from membership as Asterisk reports it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callcenter.scheduler import Change, Member, parse_status, plan
from tests.helpers import settings_in

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def settings(tmp_path):
    return settings_in(tmp_path)


def members_of(settings, team: str, shift: str, **kw) -> list[Member]:
    return [
        Member(
            queue=f"{team}-{shift}",
            interface=f"PJSIP/{a.extension}",
            name=f"{a.extension} {a.name}",
            **kw,
        )
        for a in settings.agents
        if a.team == team and a.shift == shift
    ]


def at(h: int, m: int = 0, day: int = 25) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=TZ)


def test_empty_asterisk_gets_the_shift_on_duty(settings):
    changes = plan(settings, at(23, 30), [], {})
    assert {c.kind for c in changes} == {"add"}
    assert {(c.queue, c.interface) for c in changes} == {
        (f"{a.team}-night", f"PJSIP/{a.extension}") for a in settings.agents if a.shift == "night"
    }
    assert all(c.name for c in changes)


def test_in_sync_means_no_change(settings):
    members = members_of(settings, "t1022", "morning") + members_of(settings, "party", "morning")
    assert plan(settings, at(9), members, {}) == []


def test_handover_at_22_removes_free_and_pauses_busy(settings):
    afternoon = members_of(settings, "t1022", "afternoon") + members_of(
        settings, "party", "afternoon"
    )
    busy = Member("t1022-afternoon", "PJSIP/1006", "1006 Võ Thanh Tâm", busy=True)
    members = [busy if m.interface == "PJSIP/1006" else m for m in afternoon]
    changes = plan(settings, at(22), members, {})
    assert Change("pause", "t1022-afternoon", "PJSIP/1006", "1006 Võ Thanh Tâm") in changes
    removed = {c.interface for c in changes if c.kind == "remove"}
    assert removed == {m.interface for m in afternoon} - {"PJSIP/1006"}
    added = {(c.queue, c.interface) for c in changes if c.kind == "add"}
    assert ("t1022-night", "PJSIP/1011") in added and ("party-night", "PJSIP/2015") in added
    # once paused it is left alone until free ...
    paused = Member("t1022-afternoon", "PJSIP/1006", "1006 Võ Thanh Tâm", paused=True, busy=True)
    night = members_of(settings, "t1022", "night") + members_of(settings, "party", "night")
    assert plan(settings, at(22, 1), [paused, *night], {}) == []
    # ... then removed
    free = Member("t1022-afternoon", "PJSIP/1006", "1006 Võ Thanh Tâm", paused=True)
    assert plan(settings, at(22, 5), [free, *night], {}) == [
        Change("remove", "t1022-afternoon", "PJSIP/1006", "1006 Võ Thanh Tâm")
    ]


def test_callers_left_in_the_old_queue_are_served_by_the_new_shift(settings):
    night = members_of(settings, "t1022", "night") + members_of(settings, "party", "night")
    changes = plan(settings, at(6, 0, day=26), night, {"t1022-night": 2})
    kinds = {(c.kind, c.queue, c.interface) for c in changes}
    assert ("add", "t1022-night", "PJSIP/1001") in kinds  # morning agent helps drain it
    assert ("add", "t1022-morning", "PJSIP/1001") in kinds
    assert ("remove", "t1022-night", "PJSIP/1011") in kinds
    # drained: the helpers leave
    helpers = [Member("t1022-night", f"PJSIP/100{i}") for i in range(1, 6)]
    morning = members_of(settings, "t1022", "morning") + members_of(settings, "party", "morning")
    changes = plan(settings, at(6, 5, day=26), helpers + morning, {"t1022-night": 0})
    assert {(c.kind, c.queue) for c in changes} == {("remove", "t1022-night")}


def test_unknown_member_is_removed(settings):
    morning = members_of(settings, "t1022", "morning") + members_of(settings, "party", "morning")
    stray = Member("t1022-morning", "PJSIP/4242")
    assert plan(settings, at(7), [*morning, stray], {}) == [
        Change("remove", "t1022-morning", "PJSIP/4242", "")
    ]


def test_parse_queue_status_events():
    events = [
        {"Event": "QueueParams", "Queue": "t1022-night", "Calls": "3"},
        {
            "Event": "QueueMember",
            "Queue": "t1022-night",
            "Name": "Lý Thị Ngọc",
            "Location": "PJSIP/1015",
            "StateInterface": "PJSIP/1015",
            "Status": "2",
            "Paused": "1",
            "PausedReason": "shift-ended",
            "InCall": "1",
        },
        {
            "Event": "QueueMember",
            "Queue": "t1022-night",
            "Name": "x",
            "Location": "PJSIP/1014",
            "Status": "1",
            "Paused": "0",
            "InCall": "0",
        },
        {"Event": "QueueStatusComplete"},
    ]
    members, waiting = parse_status(events)  # type: ignore[arg-type]
    assert waiting == {"t1022-night": 3}
    assert members[0] == Member(
        "t1022-night", "PJSIP/1015", "Lý Thị Ngọc", True, "shift-ended", True
    )
    assert members[1].busy is False and members[1].paused is False


def test_a_member_under_an_old_name_is_added_again(settings):
    morning = members_of(settings, "t1022", "morning") + members_of(settings, "party", "morning")
    old = [
        Member(m.queue, m.interface, "Võ Thanh Tâm") if m.interface == "PJSIP/1001" else m
        for m in morning
    ]
    assert plan(settings, at(7), old, {}) == [
        Change("remove", "t1022-morning", "PJSIP/1001", "Võ Thanh Tâm"),
        Change("add", "t1022-morning", "PJSIP/1001", "1001 Nguyễn Thị Lan"),
    ]
    busy = [Member(m.queue, m.interface, m.name + "x", busy=True) for m in morning]
    assert plan(settings, at(7), busy, {}) == []  # never under a live call

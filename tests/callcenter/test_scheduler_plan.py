"""The shift scheduler's decision, from membership as Asterisk reports it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callcenter.scheduler import SHIFT_END_REASON, Change, Member, on_break, parse_status, plan
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


def moved(settings, extension: str, shift: str):  # type: ignore[no-untyped-def]
    """``settings`` with one agent moved to another shift of their team (a double shift)."""
    agents = [
        a.model_copy(update={"shift": shift}) if a.extension == extension else a
        for a in settings.agents
    ]
    return settings.model_copy(update={"agents": agents})


def on(members: list[Member], extension: str, **kw) -> list[Member]:  # type: ignore[no-untyped-def]
    """``members`` with the given fields changed for one extension."""
    return [
        Member(m.queue, m.interface, m.name, **{**_fields(m), **kw})
        if m.interface == f"PJSIP/{extension}"
        else m
        for m in members
    ]


def _fields(m: Member) -> dict[str, object]:
    return {"paused": m.paused, "paused_reason": m.paused_reason, "busy": m.busy}


def test_an_agent_on_a_break_helping_the_old_queue_is_added_paused(settings):
    # 06:05: the morning shift is in and 1001 is at their meal; a late caller
    # joins the night queue, which the morning shift drains
    morning = members_of(settings, "t1022", "morning") + members_of(settings, "party", "morning")
    morning = on(morning, "1001", paused=True, paused_reason="meal")
    changes = plan(settings, at(6, 5, day=26), morning, {"t1022-night": 1})
    added = {c.interface: c for c in changes if c.queue == "t1022-night"}
    assert set(added) == {f"PJSIP/100{i}" for i in range(1, 6)}
    assert added["PJSIP/1001"] == Change(
        "add", "t1022-night", "PJSIP/1001", "1001 Nguyễn Thị Lan", paused=True, reason="meal"
    )
    assert not any(c.paused for i, c in added.items() if i != "PJSIP/1001")
    assert {c.kind for c in changes} == {"add"}, "the morning queue stays as it is"


def test_an_agent_moved_to_the_next_shift_keeps_their_break_at_the_handover(settings):
    # 1006 works the afternoon and, by the new configuration, the night too
    afternoon = members_of(settings, "t1022", "afternoon") + members_of(
        settings, "party", "afternoon"
    )
    afternoon = on(afternoon, "1006", paused=True, paused_reason="break")
    double = moved(settings, "1006", "night")
    changes = plan(double, at(22), afternoon, {})
    add = Change(
        "add", "t1022-night", "PJSIP/1006", "1006 Võ Thanh Tâm", paused=True, reason="break"
    )
    leave = Change("remove", "t1022-afternoon", "PJSIP/1006", "1006 Võ Thanh Tâm")
    assert add in changes and leave in changes
    # in the new queue before leaving the old: a failure between the two loses no break
    assert changes.index(add) < changes.index(leave)
    kinds = [c.kind for c in changes]
    assert kinds == sorted(kinds, key=lambda k: k != "add"), "every addition first"
    others = [c for c in changes if c.kind == "add" and c.interface != "PJSIP/1006"]
    assert others and not any(c.paused or c.reason for c in others)


def test_the_shift_end_pause_is_not_a_break(settings):
    # 1006 was paused by the scheduler under a call at the previous handover; the
    # call is over and the configuration now has them on the night shift
    afternoon = members_of(settings, "t1022", "afternoon")
    afternoon = on(afternoon, "1006", paused=True, paused_reason=SHIFT_END_REASON)
    changes = plan(moved(settings, "1006", "night"), at(22, 1), afternoon, {})
    assert Change("add", "t1022-night", "PJSIP/1006", "1006 Võ Thanh Tâm") in changes
    # still under the call: paused as it is, and added unpaused to the night queue
    busy = on(afternoon, "1006", busy=True)
    changes = plan(moved(settings, "1006", "night"), at(22, 1), busy, {})
    assert Change("add", "t1022-night", "PJSIP/1006", "1006 Võ Thanh Tâm") in changes
    assert not any(c.interface == "PJSIP/1006" and c.queue == "t1022-afternoon" for c in changes)


def test_a_pause_without_a_reason_is_carried_too(settings):
    morning = on(members_of(settings, "t1022", "morning"), "1002", paused=True)
    changes = plan(settings, at(6, 5, day=26), morning, {"t1022-night": 2})
    [add] = [c for c in changes if c.interface == "PJSIP/1002"]
    assert (add.queue, add.paused, add.reason) == ("t1022-night", True, "")
    assert str(add) == "add PJSIP/1002 to t1022-night (paused: no reason)"


def test_a_renamed_member_on_a_break_is_added_again_paused(settings):
    morning = members_of(settings, "t1022", "morning") + members_of(settings, "party", "morning")
    old = [
        Member(m.queue, m.interface, "Nguyễn Thị Lan", True, "training")
        if m.interface == "PJSIP/1001"
        else m
        for m in morning
    ]
    assert plan(settings, at(7), old, {}) == [
        Change("remove", "t1022-morning", "PJSIP/1001", "Nguyễn Thị Lan"),
        Change(
            "add",
            "t1022-morning",
            "PJSIP/1001",
            "1001 Nguyễn Thị Lan",
            paused=True,
            reason="training",
        ),
    ]


def test_breaks_are_read_from_every_queue_in_a_fixed_order():
    members = [
        Member("t1022-night", "PJSIP/1001", paused=True, paused_reason="toilet"),
        Member("t1022-morning", "PJSIP/1001", paused=True, paused_reason="meal"),
        Member("t1022-afternoon", "PJSIP/1006", paused=True, paused_reason=SHIFT_END_REASON),
        Member("t1022-morning", "PJSIP/1002"),
    ]
    assert on_break(members) == {"PJSIP/1001": "meal"}
    assert on_break(list(reversed(members))) == {"PJSIP/1001": "meal"}


def test_the_shift_end_pause_is_lifted_where_the_member_is_on_duty_again(settings):
    # 1011 was still on a call when the night ended and the application was
    # restarted with the clock at night again: an agent cannot lift that pause
    night = members_of(settings, "t1022", "night") + members_of(settings, "party", "night")
    stuck = on(night, "1011", paused=True, paused_reason=SHIFT_END_REASON, busy=True)
    assert plan(settings, at(23), stuck, {}) == [
        Change("resume", "t1022-night", "PJSIP/1011", "1011 Phan Thị Hoa")
    ]
    # a break is the agent's own: left alone
    assert plan(settings, at(23), on(night, "1011", paused=True, paused_reason="meal"), {}) == []

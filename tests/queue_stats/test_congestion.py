"""The congestion rule alone, on a fake clock: thresholds, hysteresis, the all-busy window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.clock import FakeClock
from core.settings import Congestion
from queue_stats.congestion import REASONS, CongestionRule

Q = "t1022-morning"
START = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City
CONFIG = Congestion(
    callers_waiting=4, longest_wait_seconds=60, all_busy_growing_seconds=30, clear_ratio=0.5
)


class Queue:
    """A queue's live state as LiveQueues publishes it, moved along a fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.callers: list[datetime] = []
        self.members = ["talking", "talking", "paused"]

    def join(self, n: int = 1) -> None:
        self.callers += [self.clock.now()] * n

    def answer(self, n: int = 1) -> None:
        del self.callers[:n]

    def state(self) -> dict[str, Any]:
        return {
            "waiting": [
                {"uniqueid": f"pbx-{i}", "caller": None, "since": s.isoformat(), "position": i + 1}
                for i, s in enumerate(self.callers)
            ],
            "members": [
                {"extension": str(1001 + i), "name": "", "state": st, "since": "", "reason": None}
                for i, st in enumerate(self.members)
            ],
        }


def setup() -> tuple[FakeClock, Queue, CongestionRule]:
    clock = FakeClock(START)
    return clock, Queue(clock), CongestionRule(CONFIG)


def look(rule: CongestionRule, clock: FakeClock, q: Queue):  # type: ignore[no-untyped-def]
    return rule.evaluate(Q, q.state(), clock.now())


def test_quiet_queue_raises_nothing() -> None:
    clock, q, rule = setup()
    q.members = ["free", "talking"]
    for _ in range(10):
        q.join()
        q.answer()
        clock.advance(timedelta(seconds=20))
        assert look(rule, clock, q) is None
    assert not rule.is_raised(Q)


def test_callers_waiting_raises_at_the_threshold_and_clears_under_the_ratio() -> None:
    clock, q, rule = setup()
    q.members = ["free"]  # someone free: only the count matters here
    q.join(3)
    assert look(rule, clock, q) is None
    q.join()
    change = look(rule, clock, q)
    assert change is not None and change.state == "raised"
    assert change.reasons == ("callers_waiting",)
    assert change.measures.waiting == 4 and change.at == START
    # 3 and then 2 waiting: still at or above half the threshold, no flapping
    for _ in range(2):
        clock.advance(timedelta(seconds=5))
        q.answer()
        assert look(rule, clock, q) is None
        assert rule.is_raised(Q)
    clock.advance(timedelta(seconds=5))
    q.answer()  # 1 waiting, under 0.5 x 4
    change = look(rule, clock, q)
    assert change is not None and change.state == "cleared" and change.reasons == ()
    assert change.measures.waiting == 1


def test_hovering_at_the_threshold_raises_once() -> None:
    clock, q, rule = setup()
    q.members = ["free"]
    q.join(3)
    changes = []
    for i in range(20):
        clock.advance(timedelta(seconds=2))
        if i % 2:
            q.answer()
        else:
            q.join()
        changes.append(look(rule, clock, q))
    assert [c.state for c in changes if c] == ["raised"]


def test_longest_wait_raises_as_time_passes_without_any_event() -> None:
    clock, q, rule = setup()
    q.members = ["free"]
    q.join()
    clock.advance(timedelta(seconds=59))
    assert look(rule, clock, q) is None
    clock.advance(timedelta(seconds=1))
    change = look(rule, clock, q)
    assert change is not None and change.reasons == ("longest_wait",)
    assert change.measures.longest_wait == 60
    # the long waiter is answered; a newcomer has waited 29 s: under 30 (0.5 x 60)
    clock.advance(timedelta(seconds=1))
    q.answer()
    q.callers.append(clock.now() - timedelta(seconds=30))
    assert look(rule, clock, q) is None, "30 s is not under half of 60 s"
    clock.advance(timedelta(seconds=1))
    q.callers[0] = clock.now() - timedelta(seconds=29)
    change = look(rule, clock, q)
    assert change is not None and change.state == "cleared"


def test_all_busy_and_growing_for_the_window() -> None:
    clock, q, rule = setup()
    q.join()
    assert look(rule, clock, q) is None
    for _ in range(2):  # 1 -> 3 callers over 20 s, nobody free
        clock.advance(timedelta(seconds=10))
        q.join()
        assert look(rule, clock, q) is None
    clock.advance(timedelta(seconds=10))  # 30 s all busy, grown from 1 to 3
    change = look(rule, clock, q)
    assert change is not None and change.reasons == ("all_busy_growing",)
    assert change.measures.all_busy_growing == 30 and change.measures.waiting == 3
    # an agent comes free: the measure falls to 0; 3 waiting is still >= 2, the
    # longest wait (30 s) is still >= 30: stays up until those fall too
    q.members[0] = "free"
    clock.advance(timedelta(seconds=1))
    assert look(rule, clock, q) is None
    q.answer(2)
    assert look(rule, clock, q).state == "cleared"  # type: ignore[union-attr]


def test_all_busy_but_not_growing_is_not_congestion() -> None:
    clock, q, rule = setup()
    q.join(2)
    for _ in range(12):  # 2 minutes all busy, callers answered as fast as they come
        clock.advance(timedelta(seconds=10))
        q.answer()
        q.join()
        assert look(rule, clock, q) is None


def test_growing_needs_nobody_free_for_the_whole_window() -> None:
    clock, q, rule = setup()
    q.join()
    look(rule, clock, q)
    clock.advance(timedelta(seconds=20))
    q.members[2] = "free"  # someone free for a moment: the window starts again
    look(rule, clock, q)
    q.members[2] = "paused"
    q.join()
    assert look(rule, clock, q) is None
    clock.advance(timedelta(seconds=25))
    q.join()
    assert look(rule, clock, q) is None, "only 25 s since the last free agent"
    clock.advance(timedelta(seconds=5))
    change = look(rule, clock, q)
    assert change is not None and change.reasons == ("all_busy_growing",)


def test_growth_is_measured_over_the_last_window_only() -> None:
    clock, q, rule = setup()
    q.join()
    look(rule, clock, q)
    clock.advance(timedelta(seconds=5))
    q.join()  # 2 at t=5
    look(rule, clock, q)
    clock.advance(timedelta(seconds=40))  # t=45: 2 waiting now and 30 s ago: no growth
    assert look(rule, clock, q) is None
    assert rule.measure(Q, q.state(), clock.now()).all_busy_growing == 0


def test_several_reasons_at_once_and_an_empty_queue_clears() -> None:
    clock, q, rule = setup()
    q.members = []  # nobody in the queue at all: nobody free either
    q.join(3)
    assert look(rule, clock, q) is None
    clock.advance(timedelta(seconds=60))
    q.join(2)
    change = look(rule, clock, q)
    assert change is not None
    assert change.reasons == ("callers_waiting", "longest_wait", "all_busy_growing")
    q.callers.clear()
    change = look(rule, clock, q)
    assert change is not None and change.state == "cleared"


def test_a_restored_alarm_is_not_raised_again_and_clears() -> None:
    clock, q, rule = setup()
    rule.restore(Q, ("callers_waiting",), START - timedelta(minutes=5))
    q.members = ["free"]
    q.join(4)
    assert look(rule, clock, q) is None, "already raised before the restart"
    q.callers.clear()
    change = look(rule, clock, q)
    assert change is not None and change.state == "cleared"


def test_a_reason_appearing_during_the_alarm_escalates_it() -> None:
    clock, q, rule = setup()
    q.members = ["free"]
    q.join(4)
    raised = look(rule, clock, q)
    assert raised is not None and raised.state == "raised"
    assert raised.added == ("callers_waiting",) and raised.since == START
    clock.advance(timedelta(seconds=59))
    assert look(rule, clock, q) is None
    clock.advance(timedelta(seconds=1))  # the first caller has now waited 60 s
    change = look(rule, clock, q)
    assert change is not None and change.state == "escalated"
    assert change.added == ("longest_wait",)
    assert change.reasons == ("callers_waiting", "longest_wait")
    assert change.since == START and change.at == START + timedelta(seconds=60)
    assert change.message()["since"] == START.isoformat()
    assert change.message()["added"] == ["longest_wait"]
    assert look(rule, clock, q) is None, "announced once"


def test_a_reason_that_comes_and_goes_is_announced_once_per_alarm() -> None:
    clock, q, rule = setup()
    q.members = ["free"]

    def waiting(*ages: int) -> None:
        q.callers = [clock.now() - timedelta(seconds=a) for a in ages]

    waiting(45, 30, 20, 0)
    assert look(rule, clock, q).reasons == ("callers_waiting",)  # type: ignore[union-attr]
    changes = []
    # a busy half hour: the longest waiter is answered past 60 s, the next has
    # waited 45 s; the count swings across its threshold as well
    for _ in range(90):
        clock.advance(timedelta(seconds=10))
        waiting(65, 40, 20, 0)
        changes.append(look(rule, clock, q))
        clock.advance(timedelta(seconds=10))
        waiting(45, 20)
        changes.append(look(rule, clock, q))
    assert [(c.state, c.added) for c in changes if c] == [("escalated", ("longest_wait",))]
    assert rule.queues[Q].reasons == ("callers_waiting", "longest_wait")


def test_every_reason_at_most_once_then_cleared_and_a_new_alarm_announces_again() -> None:
    clock, q, rule = setup()
    q.members = ["talking"]
    q.join()
    assert look(rule, clock, q) is None
    clock.advance(timedelta(seconds=30))
    q.join()
    changes = [look(rule, clock, q)]  # all busy and growing for 30 s
    clock.advance(timedelta(seconds=30))
    changes.append(look(rule, clock, q))  # the first has waited 60 s
    q.join(2)
    changes.append(look(rule, clock, q))  # 4 waiting
    assert [(c.state, c.added, c.reasons) for c in changes if c] == [
        ("raised", ("all_busy_growing",), ("all_busy_growing",)),
        ("escalated", ("longest_wait",), ("longest_wait", "all_busy_growing")),
        ("escalated", ("callers_waiting",), REASONS),
    ]
    q.callers.clear()
    q.members = ["free"]
    cleared = look(rule, clock, q)
    assert cleared is not None and cleared.state == "cleared"
    assert (cleared.reasons, cleared.added, cleared.since) == ((), (), None)
    # the next alarm is a new one: its reasons are announced again
    q.join(4)
    again = look(rule, clock, q)
    assert again is not None and again.state == "raised" and again.added == ("callers_waiting",)


def test_a_restored_alarm_escalates_with_its_start_and_only_for_a_new_reason() -> None:
    clock, q, rule = setup()
    began = START - timedelta(minutes=5)
    rule.restore(Q, ("callers_waiting", "longest_wait"), began)
    q.members = ["free"]
    q.join(4)
    q.callers[0] = clock.now() - timedelta(seconds=90)
    assert look(rule, clock, q) is None, "both were announced before the restart"
    q.members = []
    for _ in range(4):
        clock.advance(timedelta(seconds=10))
        q.join()
        change = look(rule, clock, q)
    assert change is not None and change.state == "escalated"
    assert change.added == ("all_busy_growing",) and change.since == began

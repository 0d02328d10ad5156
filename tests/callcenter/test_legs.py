"""The talk time of a call handed on: every answered leg, not the waits between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callcenter.legs import Link, talk_seconds

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_one_leg_per_answered_transfer():
    chain = [Link("transferred", t(20), t(32)), Link("transferred", t(50), t(58))]
    assert talk_seconds(t(3), t(70), chain) == 17 + 18 + 12
    # while the call goes on, the leg under way is not counted yet
    assert talk_seconds(t(3), None, chain) == 17 + 18


def test_refused_cancelled_and_unanswered_transfers():
    # a failed or cancelled transfer ends no leg: the agent kept the caller
    kept = [Link("failed", t(10), None), Link("cancelled", t(15), None)]
    assert talk_seconds(t(3), t(40), kept) == 37
    # one under way (an attended transfer not completed yet) neither
    assert talk_seconds(t(3), t(40), [Link(None, None, None)]) == 37
    # nobody answered the target: the call ended without a second leg
    assert talk_seconds(t(3), t(40), [Link("transferred", t(20), None)]) == 17
    # ... and a later transfer from nobody's leg adds nothing before its own answer
    chain = [Link("transferred", t(20), None), Link("transferred", t(30), t(35))]
    assert talk_seconds(t(3), t(40), chain) == 17 + 5


def test_never_answered_or_out_of_order():
    assert talk_seconds(None, t(40), []) is None
    assert talk_seconds(t(3), t(40), []) == 37
    # an answer a hair before the transfer's own write (a phone that picks up at once)
    assert talk_seconds(t(3), t(40), [Link("transferred", t(20), t(19.9))]) == 17 + 20

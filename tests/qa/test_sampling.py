"""The weekly draw as a pure function: stratified by shift, reproducible from its seed,
never a call twice (unit tests of qa.sampling)."""

from __future__ import annotations

from collections import Counter

from qa.sampling import PoolCall, allocate, draw


def pool_of(spec: dict[str, dict[str, int]]) -> list[PoolCall]:
    """{agent: {shift: calls}} as pool rows with distinct ids."""
    calls, n = [], 1
    for agent, shifts in spec.items():
        for shift, count in shifts.items():
            for _ in range(count):
                calls.append(PoolCall(n, agent, shift))
                n += 1
    return calls


def test_allocation_follows_each_shifts_share() -> None:
    assert allocate(4, {"morning": 30, "afternoon": 10}) == {"morning": 3, "afternoon": 1}
    assert allocate(3, {"morning": 10, "afternoon": 10, "night": 10}) == {
        "afternoon": 1,
        "morning": 1,
        "night": 1,
    }
    # proportional: one call in 21 is not due one of 5 picks; one in 11 is due one of 6
    assert allocate(5, {"morning": 1, "afternoon": 20}) == {"afternoon": 5}
    assert allocate(6, {"morning": 1, "afternoon": 10}) == {"morning": 1, "afternoon": 5}
    # a shift never gets more than it has
    assert allocate(4, {"morning": 1, "night": 2}) == {"morning": 1, "night": 2}
    # fewer calls than asked: all of them
    assert allocate(10, {"morning": 2, "night": 1}) == {"morning": 2, "night": 1}
    assert allocate(0, {"morning": 5}) == {}
    # a small shift still gets its pick by largest remainder when it is due one
    assert allocate(2, {"morning": 6, "night": 5}) == {"morning": 1, "night": 1}


def test_draw_is_stratified_per_agent_and_shift() -> None:
    pool = pool_of(
        {
            "1001": {"morning": 30, "afternoon": 10},
            "1002": {"night": 5},
            "1003": {"morning": 1},
        }
    )
    picked = draw(pool, 4, "seed-1")
    by = Counter((c.agent, c.shift) for c in picked)
    assert by == {
        ("1001", "morning"): 3,
        ("1001", "afternoon"): 1,
        ("1002", "night"): 4,
        ("1003", "morning"): 1,
    }
    assert len({c.call_id for c in picked}) == len(picked)  # no call twice
    assert set(picked) <= set(pool)


def test_draw_is_reproducible_and_depends_on_the_seed() -> None:
    pool = pool_of({"1001": {"morning": 50, "afternoon": 50}, "1002": {"morning": 40}})
    first = draw(pool, 5, "abc")
    assert draw(list(reversed(pool)), 5, "abc") == first  # the pool's order does not matter
    others = {tuple(c.call_id for c in draw(pool, 5, f"seed-{i}")) for i in range(5)}
    assert len(others) > 1  # another seed, other calls


def test_calls_already_listed_are_never_drawn_again() -> None:
    pool = pool_of({"1001": {"morning": 6}})
    first = draw(pool, 3, "s")
    second = draw(pool, 3, "s2", exclude={c.call_id for c in first})
    assert not {c.call_id for c in first} & {c.call_id for c in second}
    assert len(second) == 3
    third = draw(pool, 3, "s3", exclude={c.call_id for c in first + second})
    assert third == []
    # a pool with a call listed twice (two rows) still yields it once
    assert len(draw([PoolCall(1, "1001", "m"), PoolCall(1, "1001", "m")], 5, "x")) == 1


def test_draw_spreads_over_the_calls() -> None:
    """Over many seeds every call of a stratum gets picked: the draw is not stuck."""
    pool = pool_of({"1001": {"morning": 10}})
    seen = Counter(c.call_id for i in range(200) for c in draw(pool, 2, f"s{i}"))
    assert set(seen) == {c.call_id for c in pool}
    assert max(seen.values()) < 80  # about 40 each expected

"""The weekly draw of calls to grade: a pure function of its pool and seed.

For each agent, ``per_agent`` answered calls are drawn at random, spread over the
shifts the agent worked in proportion to their calls in each (largest remainders;
a shift with too few calls gives its share to the others).  The draw is
reproducible: the pool is sorted by call id and every agent's and shift's random
numbers come from the stored seed, so :func:`draw` over the stored pool gives the
stored picks again (:meth:`qa.service.QaService.verify_draw`).  Calls already in
the work list (``exclude``) are never drawn again.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolCall:
    call_id: int
    agent: str  # extension
    shift: str  # shift id ("" when unknown)


def allocate(per_agent: int, counts: dict[str, int]) -> dict[str, int]:
    """How many of an agent's ``per_agent`` picks each shift gets: proportional to its
    calls (``counts``), by largest remainder, never more than a shift has."""
    available = sum(counts.values())
    want = min(per_agent, available)
    shares = {s: 0 for s in counts}
    left = want
    # repeat: a shift capped at its count hands the rest to the others
    while left > 0:
        open_shifts = {s: n - shares[s] for s, n in counts.items() if n - shares[s] > 0}
        weight = sum(open_shifts.values())
        exact = {s: left * n / weight for s, n in open_shifts.items()}
        given = {s: min(int(x), open_shifts[s]) for s, x in exact.items()}
        rest = left - sum(given.values())
        # largest remainder first; ties by shift id, so the result never depends on order
        for s in sorted(exact, key=lambda s: (-(exact[s] - int(exact[s])), s)):
            if rest <= 0:
                break
            if given[s] < open_shifts[s]:
                given[s] += 1
                rest -= 1
        for s, n in given.items():
            shares[s] += n
        if sum(given.values()) == 0:
            break  # cannot happen while calls are left; a guard against looping
        left = want - sum(shares.values())
    return {s: n for s, n in shares.items() if n}


def _rng(seed: str, *parts: str) -> random.Random:
    key = hashlib.sha256("\x1f".join((seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(key[:8], "big"))


def draw(
    pool: list[PoolCall],
    per_agent: int,
    seed: str,
    exclude: set[int] | frozenset[int] = frozenset(),
) -> list[PoolCall]:
    """The calls drawn from ``pool`` (see the module's text), by agent then shift."""
    by_agent: dict[str, dict[str, list[PoolCall]]] = defaultdict(lambda: defaultdict(list))
    seen: set[int] = set()
    for call in sorted(pool, key=lambda c: c.call_id):
        if call.call_id in exclude or call.call_id in seen:
            continue
        seen.add(call.call_id)
        by_agent[call.agent][call.shift].append(call)
    picked: list[PoolCall] = []
    for agent in sorted(by_agent):
        shifts = by_agent[agent]
        quota = allocate(per_agent, {s: len(calls) for s, calls in shifts.items()})
        for shift in sorted(quota):
            chosen = _rng(seed, agent, shift).sample(shifts[shift], quota[shift])
            picked.extend(sorted(chosen, key=lambda c: c.call_id))
    return picked

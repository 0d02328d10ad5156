"""A call's legs: the talk time of a call that was handed on.

A transferred call is talked in legs: the first agent's, then each target's
that answered (another queue's agent, an agent's or a supervisor's phone, an
agency, an emergency desk).  The chain (:class:`~callcenter.models.CallTransfer`)
says where each leg ends and the next begins: a transfer that went through ends
the leg under way (``done_at``) and begins one that starts when its target
answered (``answered_at``; never, when nobody picked up).  The last leg ends
with the call.  :func:`talk_seconds` adds them up; the time the caller waited
between two legs (ringing, a queue) is not talk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Link:
    """What the talk time needs of one transfer of the chain."""

    result: str | None  # transferred, failed, cancelled (None: under way)
    done_at: datetime | None
    answered_at: datetime | None


def talk_seconds(
    answered_at: datetime | None, ended_at: datetime | None, chain: Iterable[Link]
) -> int | None:
    """Seconds talked over every answered leg, the chain given oldest first.

    ``answered_at``: the first answer; None (never answered) gives None.
    ``ended_at``: the call's end; while None the leg under way is not counted.
    A transfer that failed or was cancelled ends no leg: the agent kept the caller.
    """
    if answered_at is None:
        return None
    total = 0.0
    start: datetime | None = answered_at  # the leg under way began; None: nobody answered
    for link in chain:
        if link.result != "transferred" or link.done_at is None:
            continue
        if start is not None:
            total += max(0.0, (link.done_at - start).total_seconds())
        start = link.answered_at
    if start is not None and ended_at is not None:
        total += max(0.0, (ended_at - start).total_seconds())
    return round(total)

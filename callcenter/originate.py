"""Placing a call over AMI: one Originate, and what Asterisk said of it.

Both outbound diallers use it: the callback dialler rings an agent's phone into
``hotline-callback`` (:mod:`callcenter.dialler`), the result-call dialler rings the
citizen over the trunk into ``hotline-result-call`` (:mod:`tickets.result_dialler`).
The Originate is asynchronous: Asterisk answers at once, then sends an
``OriginateResponse`` when the phone rang out (panoramisk waits for it), whose
``Reason`` says how: answered, busy, no answer, or failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from callcenter.models import Result
from core.ami import AMIClient

# OriginateResponse's Reason (Asterisk's AST_CONTROL_* codes) -> the try's result.
_REASONS = {
    "0": Result.FAILED,  # no such channel, the trunk refused it
    "1": Result.NO_ANSWER,  # hung up (declined) while ringing
    "3": Result.NO_ANSWER,  # rang out
    "4": Result.CONNECTED,
    "5": Result.BUSY,
    "8": Result.FAILED,  # congestion
}


@dataclass(frozen=True)
class Originated:
    """What the OriginateResponse said: answered or not, and Asterisk's reason code."""

    answered: bool
    reason: str | None

    @property
    def result(self) -> Result:
        """The try's result as the call lists record it."""
        if self.answered:
            return Result.CONNECTED
        return _REASONS.get(self.reason or "", Result.FAILED)


async def originate(
    ami: AMIClient,
    *,
    channel: str,
    context: str,
    uniqueid: str,
    ring_seconds: int,
    caller_id: str,
    variables: list[str],
) -> Originated:
    """Ring ``channel`` for ``ring_seconds``; once answered it runs ``context``, ``s``, 1.

    ``uniqueid`` becomes the channel's id.  Raises :class:`core.ami.AMIError` when the
    action could not be sent or no answer came.
    """
    action = {
        "Action": "Originate",
        "Channel": channel,
        "Context": context,
        "Exten": "s",
        "Priority": "1",
        "Async": "true",
        "Timeout": str(ring_seconds * 1000),
        "ChannelId": uniqueid,
        "CallerID": caller_id,
        "Variable": variables,
    }
    reply = await ami.action(action, timeout=ring_seconds + 15)
    answer = reply[-1] if isinstance(reply, list) else reply
    answered = str(answer.get("Response", "")).lower() == "success"
    return Originated(answered, answer.get("Reason"))

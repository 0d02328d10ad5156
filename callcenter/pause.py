"""Pausing and resuming an agent: AMI ``QueuePause`` in every queue they are in.

The agent's own page (and the API) pause with one of :data:`PAUSE_REASONS`;
the shift scheduler pauses with a reason of its own, which is not among them,
so an agent cannot resume themself out of a shift's end.
"""

from __future__ import annotations

from core.ami import AMIClient

# the reasons an agent may choose
PAUSE_REASONS = ("break", "meal", "training", "paperwork", "technical", "toilet")


class AgentControl:
    """Pause and resume an agent in every queue they are in (AMI QueuePause)."""

    def __init__(self, ami: AMIClient) -> None:
        self.ami = ami

    async def pause(self, extension: str, reason: str) -> None:
        if reason not in PAUSE_REASONS:
            raise ValueError(f"unknown pause reason {reason!r}")
        await self._pause(extension, True, reason)

    async def resume(self, extension: str) -> None:
        await self._pause(extension, False, "")

    async def _pause(self, extension: str, paused: bool, reason: str) -> None:
        action = {
            "Action": "QueuePause",
            "Interface": f"PJSIP/{extension}",
            "Paused": "true" if paused else "false",
        }
        if reason:
            action["Reason"] = reason
        reply = await self.ami.action(action, as_list=False)
        if reply is not None and str(reply.get("Response", "")).lower() == "error":
            raise AgentNotInQueue(extension, str(reply.get("Message", "")))


class AgentNotInQueue(Exception):
    def __init__(self, extension: str, message: str) -> None:
        self.extension = extension
        super().__init__(f"agent {extension} is in no queue: {message}")

"""Errors of the inbox, each carrying what it is about."""

from __future__ import annotations


class InboxError(Exception):
    """Base of every error of the inbox."""


class MessageNotFound(InboxError):
    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        super().__init__(f"no message {message_id}")


class MessageTaken(InboxError):
    """The message is someone else's, or already decided."""

    def __init__(self, message_id: int, state: str, claimed_by: int | None) -> None:
        self.message_id = message_id
        self.state = state
        self.claimed_by = claimed_by
        super().__init__(f"message {message_id} is {state} (claimed by {claimed_by})")


class NotSendable(InboxError):
    """A reply that cannot go: ``field`` names what is wrong (text, message)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

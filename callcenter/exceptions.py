"""Errors of the call centre's callbacks and voice messages.

Each carries the id it is about; the panel maps them to its answers.
"""

from __future__ import annotations


class CallbackNotFound(LookupError):
    def __init__(self, callback_id: int) -> None:
        self.callback_id = callback_id
        super().__init__(f"no callback {callback_id}")


class VoiceMessageNotFound(LookupError):
    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        super().__init__(f"no voice message {message_id}")


class CallbackClosed(Exception):
    """The callback has already ended (or is being dialled) and cannot take that action."""

    def __init__(self, callback_id: int, status: str) -> None:
        self.callback_id, self.status = callback_id, status
        super().__init__(f"callback {callback_id} is {status}")

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


class CallNotFound(LookupError):
    """No such call, or not one the asker may see (an agent's: only their own)."""

    def __init__(self, call_id: int) -> None:
        self.call_id = call_id
        super().__init__(f"no call {call_id}")


class UnknownWrapupCode(ValueError):
    """The code is not one of ``[wrapup] codes``."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"code: no wrap-up code {code!r}")


class WrapupRefused(Exception):
    """The call's code cannot be set now; ``reason`` says why:

    ``not_answered`` (no agent took the call), ``set_by_other`` (a supervisor
    set it), ``too_late`` (more than ``[wrapup] change_minutes`` after the call).
    """

    def __init__(self, call_id: int, reason: str) -> None:
        self.call_id, self.reason = call_id, reason
        super().__init__(f"call {call_id}: wrap-up code refused ({reason})")

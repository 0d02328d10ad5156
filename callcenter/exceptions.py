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


# -- calls an agent places from a ticket (callcenter.outbound) ---------------------
class CallRefused(Exception):
    """The agent's call cannot be placed now; ``reason`` names why (the panel says it)."""

    reason = "refused"

    def __init__(self, extension: str | None, detail: str = "") -> None:
        self.extension = extension
        super().__init__(f"agent {extension or '(no phone)'}: {self.reason} {detail}".rstrip())


class NoPhone(CallRefused):
    """The user has no extension (phone) of their own."""

    reason = "no_phone"


class PhoneNotRegistered(CallRefused):
    """Asterisk cannot reach the agent's phone (not registered, or unknown)."""

    reason = "not_registered"


class AgentBusy(CallRefused):
    """The agent's phone is ringing or in a call."""

    reason = "busy"


class AlreadyCalling(CallRefused):
    """The agent has an outbound call under way already (from another ticket)."""

    reason = "already_calling"

    def __init__(self, extension: str | None, call_id: int, ticket_id: int | None) -> None:
        self.call_id, self.ticket_id = call_id, ticket_id
        super().__init__(extension, f"(call {call_id}, ticket {ticket_id})")


class NotDialable(ValueError):
    """The number cannot be dialled over the trunk; ``field`` names where it came from."""

    def __init__(self, field: str, number: str | None) -> None:
        self.field, self.number = field, number
        super().__init__(f"{field}: {number!r} is not a number the hotline can dial")


class TelephonyUnavailable(Exception):
    """Asterisk did not answer (or this process has no connection to it)."""


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

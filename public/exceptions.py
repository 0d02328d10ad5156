"""What the public site refuses, with the msgids its pages translate.

A refusal of input names its field (the page shows the message by the field);
:class:`NoMatch` is the one answer for a status look-up that found nothing,
whatever was wrong (no such number, wrong digits, wrong email), so that it
never tells whether a number exists.
"""

from __future__ import annotations

from typing import Any


def N_(msgid: str) -> str:
    """Marks a msgid for extraction (panel/babel.cfg); translated where it is shown."""
    return msgid


REQUIRED = N_("is required")
TOO_LONG = N_("is too long (at most {max} characters)")
NOT_A_NUMBER = N_(
    "is not a tracking number: 10 digits (e.g. 123 456 789 0) or a code such as K7M-4QXT"
)
WRONG_CHECK_DIGIT = N_("{number} is not a tracking number: a digit is mistyped")
CHECK = N_("must be the last 3 digits of the phone number or the email given with the report")
NOT_ALLOWED = N_("is not one of the allowed values")
BAD_CHARACTER = N_("contains a character that is not allowed")
NOT_TEXT = N_("must be typed text, not a file")
PAGE = N_("must be a page number from 1 to {max}")
NO_MATCH = N_(
    "No report matches this tracking number with these phone digits or this email. "
    "Check both and try again."
)


class PublicError(Exception):
    """Base of the public site's refusals."""


class BadInput(PublicError):
    """A field of the request is missing, too long or malformed."""

    def __init__(self, field: str, message: str, **params: Any) -> None:
        self.field = field
        self.message = message
        self.params = params
        super().__init__(f"{field}: {message.format(**params) if params else message}")


class NoMatch(PublicError):
    """No report has this tracking number with this phone ending or email."""

    def __init__(self) -> None:
        super().__init__(NO_MATCH)

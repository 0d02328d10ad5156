"""Errors of the tickets domain, each carrying the details the web layer needs.

The web layer maps them to HTTP answers: ``TicketNotFound``/``AgencyNotFound``
to 404, ``Forbidden`` to 403, ``VersionConflict`` and ``InvalidTransition`` to
409, ``InvalidInput`` and ``InvalidCode`` to 422 with the field errors shown
next to their fields.

Field errors carry a *msgid*, never a sentence built here: the web layer
translates it with gettext (Vietnamese first) and then formats it with the
error's ``params``.  So the messages are a small fixed set, all listed in
``MESSAGES``; a new one must be added there and to the translation catalogue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# -- field error msgids (English source strings, translated by the web layer) --
REQUIRED = "is required"
TOO_LONG = "is too long (at most {max} characters)"
NOT_ALLOWED = "is not one of the allowed values"
PHONE = "must be a phone number"
EMAIL = "must be an email address"
AGENCY_CODE = "must be 2 to 40 lower-case letters, digits or dashes, not starting with a dash"
INVALID = "is not valid"
NOT_ACCEPTED = "cannot be set here"
BAD_CHARACTER = "contains a character that is not allowed"
NEEDS_TIME_ZONE = "must be a date and time with a time zone"
UNKNOWN = "does not exist"
INACTIVE = "is no longer active"
TAKEN = "is already in use"
CYCLE = "cannot be the agency itself or one of its sub-agencies"
SECOND_FOR_CALL = "already has ticket {code}: confirm to make a second one for this call"
# A restricted report (tickets.confidential) forwarded to an agency not cleared for it.
NOT_CLEARED = "is not cleared for a restricted report"
# A search query shaped like a tracking code whose check symbol is wrong (a whole sentence:
# it stands next to the search box, and is the answer instead of "no ticket matches").
CODE_CHECK = (
    "{code} is not a valid ticket code: its last symbol, the check symbol, "
    "does not match the others"
)
# A ticket number (search box, address, API) whose check digit is wrong: the agent asks
# the citizen to key it again, rather than opening someone else's report.
NUMBER_CHECK = (
    "{number} is not a valid ticket number: please key it again "
    "(its last digit, the check digit, does not match the others)"
)

# Linking a repeat report (tickets.repeats): to itself, to its own group, or unlinking
# one that is in none (or is its group's ticket).
SAME_TICKET = "cannot be the ticket itself"
IN_GROUP = "is already in this ticket's group"
NOT_LINKED = "is not linked to an earlier report"

# What the ticket's status asks for when it is closed (a reason; a proposal's letter).
NEEDED_NOW = "is required in the ticket's current status"
NOT_NOW = "cannot be given in the ticket's current status"
# An extension's deadline must move the current one later (tickets.review).
NOT_LATER = "must be later than the current deadline ({deadline})"

# Several agencies and delegation (tickets.handling): a delegation goes only down the
# tree, within the delegating agency's own deadline; the lead combines once every
# co-handling agency has answered.
NOT_DESCENDANT = "must be one of your agency's sub-agencies"
BEYOND_PARENT = "must be no later than your own deadline ({deadline})"
IN_PAST = "must be in the future"
LEAD_AS_CO = "cannot include the lead agency"
HOLDS_PART = "already has a part in this ticket"
CO_PENDING = "cannot be combined yet: waiting for the answer of {agencies}"
# A co-handling agency's own deadline, set by the supervisor when forwarding: within the
# lead's, and only for an agency that is one of the co-handling agencies.
BEYOND_LEAD = "must be no later than the lead agency's deadline ({deadline})"
# A part's deadline moved (tickets.handling): not before what was delegated below it.
BEFORE_BELOW = "must be no earlier than a deadline given below it ({deadline})"
NOT_CO = "is not one of the co-handling agencies"
# A report reclassified into a restricted domain or topic while an agency that is not
# cleared for restricted reports holds it (the lead, a co-handling or delegated part).
HELD_UNCLEARED = (
    "cannot make the report restricted while {agencies} hold it: not cleared for "
    "restricted reports (it must come back from them first)"
)

# Refusals that depend on what is stored, not on the request itself (a code already
# used, an agency that does not exist or no longer is): the API answers them with 409.
STATE_CONFLICTS = frozenset(
    {
        UNKNOWN,
        INACTIVE,
        TAKEN,
        CYCLE,
        SECOND_FOR_CALL,
        NEEDED_NOW,
        NOT_NOW,
        IN_GROUP,
        NOT_LINKED,
        HOLDS_PART,
        CO_PENDING,
        NOT_LATER,
        # an agency not cleared for a restricted report: the configuration's refusal
        NOT_CLEARED,
        HELD_UNCLEARED,
        # a deadline for an agency that is not (or no longer) a co-handling agency
        NOT_CO,
    }
)

MESSAGES = (
    REQUIRED,
    NEEDED_NOW,
    NOT_NOW,
    NOT_LATER,
    TOO_LONG,
    NOT_ALLOWED,
    PHONE,
    EMAIL,
    AGENCY_CODE,
    INVALID,
    NOT_ACCEPTED,
    BAD_CHARACTER,
    NEEDS_TIME_ZONE,
    UNKNOWN,
    INACTIVE,
    TAKEN,
    CYCLE,
    SECOND_FOR_CALL,
    NOT_CLEARED,
    CODE_CHECK,
    NUMBER_CHECK,
    SAME_TICKET,
    IN_GROUP,
    NOT_LINKED,
    NOT_DESCENDANT,
    BEYOND_PARENT,
    IN_PAST,
    LEAD_AS_CO,
    HOLDS_PART,
    CO_PENDING,
    BEYOND_LEAD,
    BEFORE_BELOW,
    NOT_CO,
    HELD_UNCLEARED,
)


class TicketError(Exception):
    """Base of every error of the tickets domain (tickets and agencies)."""


class TicketNotFound(TicketError):
    """No ticket with this id (int) or tracking code (str)."""

    def __init__(self, ticket: int | str) -> None:
        self.ticket = ticket
        super().__init__(f"no ticket {ticket!r}")


class AgencyNotFound(TicketError):
    def __init__(self, agency_id: int) -> None:
        self.agency_id = agency_id
        super().__init__(f"no agency {agency_id!r}")


class VersionConflict(TicketError):
    """Someone else changed the row since the writer read it: reload and redo.

    ``ticket_id`` is None when the row is an agency (then ``agency_id`` is set).
    ``actual`` is the version now stored.
    """

    def __init__(
        self,
        ticket_id: int | None,
        expected: int,
        actual: int | None,
        *,
        agency_id: int | None = None,
    ) -> None:
        self.ticket_id = ticket_id
        self.agency_id = agency_id
        self.expected = expected
        self.actual = actual
        what = f"ticket {ticket_id}" if ticket_id is not None else f"agency {agency_id}"
        super().__init__(f"{what} changed meanwhile (version {expected} expected, {actual} now)")


class Forbidden(TicketError):
    """The actor's role (or agency) may not do this."""

    def __init__(self, action: str, role: str) -> None:
        self.action = action
        self.role = role
        super().__init__(f"{role} may not {action}")


class InvalidTransition(TicketError):
    """The action is not possible in the ticket's current status."""

    def __init__(self, action: str, status: str) -> None:
        self.action = action
        self.status = status
        super().__init__(f"cannot {action} a ticket in status {status}")


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field; ``message`` is one of ``MESSAGES``."""

    field: str
    message: str
    # (dataclasses.field in full: the attribute above is called ``field``)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


class InvalidInput(TicketError):
    """The input was refused; ``errors`` names each field and what is wrong."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        text = "; ".join(f"{e.field}: {e.message.format(**e.params)}" for e in errors)
        super().__init__(f"invalid input: {text}")

    @classmethod
    def one(cls, field: str, message: str, **params: Any) -> InvalidInput:
        return cls([FieldError(field, message, params)])

    def fields(self) -> list[str]:
        return [e.field for e in self.errors]


class InvalidCode(TicketError):
    """Text that is not a tracking code; ``reason`` is "length", "symbol" or "check"."""

    def __init__(self, text: str, reason: str = "check") -> None:
        self.text = text
        self.reason = reason
        # The text is what someone typed: cut it short for the log line.
        super().__init__(f"not a tracking code ({reason}): {text[:40]!r}")

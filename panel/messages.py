"""Msgids the web layer translates but that are not written as ``_("…")`` in panel code.

``pybabel extract`` (see ``babel.cfg``) finds ``_("…")`` in the templates and
views, but not:

* the field-error constants of ``tickets/exceptions.py`` and the account
  messages of ``accounts/service.py`` and ``accounts/passwords.py``: they are
  plain strings that the web layer translates with ``_(e.message, **params)``;
* field errors raised as plain strings by the panel's own views;
* texts translated through ``request["_"]("…")``, a call the Python extractor
  does not recognise.

They are listed here with the no-op marker :func:`N_` so extraction finds them.
``tests/panel/test_i18n.py`` reads the domain files and fails when one is
missing: after adding a message there, add it here, run
``panel/locale/update.sh`` and translate the new entry.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


# -- tickets/exceptions.py: field errors of tickets and agencies ----------------
TICKET_FIELD_ERRORS = (
    N_("is required"),
    N_("is required in the ticket's current status"),
    N_("cannot be given in the ticket's current status"),
    N_("is too long (at most {max} characters)"),
    N_("is not one of the allowed values"),
    N_("must be a phone number"),
    N_("must be an email address"),
    N_("must be 2 to 40 lower-case letters, digits or dashes, not starting with a dash"),
    N_("is not valid"),
    N_("cannot be set here"),
    N_("contains a character that is not allowed"),
    N_("must be a date and time with a time zone"),
    N_("does not exist"),
    N_("is no longer active"),
    N_("is already in use"),
    N_("cannot be the agency itself or one of its sub-agencies"),
    N_("already has ticket {code}: confirm to make a second one for this call"),
    N_("is not cleared for a restricted report"),
    N_(
        "{code} is not a valid ticket code: its last symbol, the check symbol, "
        "does not match the others"
    ),
    N_(
        "{number} is not a valid ticket number: please key it again "
        "(its last digit, the check digit, does not match the others)"
    ),
    N_("cannot be the ticket itself"),
    N_("is already in this ticket's group"),
    N_("is not linked to an earlier report"),
    # several agencies and delegation (tickets.handling)
    N_("must be one of your agency's sub-agencies"),
    N_("must be no later than your own deadline ({deadline})"),
    N_("must be in the future"),
    N_("cannot include the lead agency"),
    N_("already has a part in this ticket"),
    N_("cannot be combined yet: waiting for the answer of {agencies}"),
    # a co-handling agency's own deadline; a report reclassified while an agency holds it
    N_("must be no later than the lead agency's deadline ({deadline})"),
    N_("must be no earlier than a deadline given below it ({deadline})"),
    N_("is not one of the co-handling agencies"),
    N_(
        "cannot make the report restricted while {agencies} hold it: not cleared for "
        "restricted reports (it must come back from them first)"
    ),
)

# -- accounts/service.py and accounts/passwords.py: account field errors --------
ACCOUNT_ERRORS = (
    N_("must be 2 to 64 letters, digits, dots, dashes or underscores"),
    N_("is required"),
    N_("is too long (at most {max} characters)"),
    N_("is not one of the allowed values"),
    N_("is required for an agent"),
    N_("“{value}” is not an agent extension in the configuration"),
    N_("“{value}” refused: only agents and supervisors have an extension"),
    N_("“{value}” is not a supervisor's phone in the configuration"),
    N_("is required for an agency officer"),
    N_("already belongs to another account"),
    N_("does not fit the account's role"),
    N_("is not a known agency"),
    N_("is already taken"),
    N_("is not correct"),
    N_("the second factor is already on"),
    N_("start the set-up again"),
    N_("is not the current code of the app"),
    N_("is too short (at least {min} characters)"),
    N_("is too easy to guess"),
)

# -- panel/views: field errors raised by the views themselves --------------------
PANEL_FIELD_ERRORS = (
    N_("is required"),
    N_("must be a date and time such as 25/11/2026 14:30"),
    N_("you cannot remove your own admin access"),
)

# -- panel/security.py: texts translated with request["_"]("…") -----------------
PANEL_TEXTS = (
    N_("The form has expired. Reload the page and try again."),
    N_(
        "Someone else changed this ticket meanwhile. Reload it to see their change, "
        "then apply yours again."
    ),
    N_("This action is not possible in the ticket's status."),
)

# -- tickets/directory.py: the agency directory's CSV import --------------------
DIRECTORY_ERRORS = (
    N_("is not a column of the directory"),
    N_("appears more than once in the file"),
    N_("cannot be read as CSV (UTF-8, with a header row)"),
    N_("has too many rows (at most {max})"),
)

# -- tickets/attachments.py and tickets/review: files attached, extensions -------
REVIEW_ERRORS = (
    N_("is too large (at most {max} MB)"),
    N_("must be a photo (JPEG, PNG or WebP)"),
    N_("has too many pixels (at most {max} megapixels)"),
    N_("must be one of: {types}"),
    N_("is empty"),
    N_("cannot be added: the ticket has {max} files already"),
    N_("must be later than the current deadline ({deadline})"),
)

# -- public/report.py: the public report form's own messages ---------------------
PUBLIC_FORM_ERRORS = (
    N_("is too short (at least {min} characters)"),
    N_("is required: type the address or put a pin on the map"),
    N_("This form seems to have been filled in by a program. Please send it yourself."),
    N_("The form was sent too quickly. Please check what you typed and send it again."),
    N_("The form has expired. Please check what you typed and send it again."),
    N_("Please complete the check that you are not a robot, then send again."),
    N_("The form could not be read. Please send it again."),
)

MSGIDS: frozenset[str] = frozenset(
    TICKET_FIELD_ERRORS
    + ACCOUNT_ERRORS
    + PANEL_FIELD_ERRORS
    + PANEL_TEXTS
    + DIRECTORY_ERRORS
    + REVIEW_ERRORS
    + PUBLIC_FORM_ERRORS
)

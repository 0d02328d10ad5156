"""One form for a Vietnamese phone number, whatever way it was written.

A citizen's number reaches us as the network sends it (``+84901234567``,
``84901234567``), as an agent types it (``090 123 4567``) or as a web form
gets it (``0084 90 123 4567``).  Tickets, call records and callbacks keep the
national form (``0901234567``), so a caller is matched to their earlier
reports whichever form each side used, and the trunk is dialled the way the
carrier expects.  Numbers of other countries and short numbers (113, 1022)
are kept as given.
"""

from __future__ import annotations

COUNTRY_CODE = "84"
# A Vietnamese number after its trunk prefix 0: 9 digits (mobiles, 0xx xxx
# xxxx) or 10 (landlines with their area code, 02xx xxxx xxxx).
_SUBSCRIBER_LENGTHS = (9, 10)


def national_form(number: str) -> str:
    """``number`` (digits with an optional leading +) in the national form.

    ``+84901234567``, ``84901234567`` and ``0084901234567`` become
    ``0901234567``; anything else (already national, another country, a
    short number) is returned unchanged.
    """
    for prefix in ("+" + COUNTRY_CODE, "00" + COUNTRY_CODE, COUNTRY_CODE):
        if number.startswith(prefix):
            rest = number[len(prefix) :]
            if len(rest) in _SUBSCRIBER_LENGTHS and rest.isdigit() and rest[0] != "0":
                return "0" + rest
            break
    return number

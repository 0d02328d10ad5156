"""Tracking codes: what the citizen is told to quote when calling back.

A code is read over the phone, often on a bad line, and typed by an agent, so:

- the alphabet leaves out the symbols people confuse (0/O, 1/I/L);
- it is short: 6 random symbols and 1 check symbol, shown as ``K7M-4QX8``;
- the check symbol catches every single wrong symbol and every swap of two
  neighbours, so a mistyped code is refused instead of opening someone
  else's report;
- a search query shaped like a code (:func:`code_like`) whose check symbol is
  wrong is answered "not a valid code", not "no ticket matches".

The check: with the 31 symbols valued 0..30 and weights 7, 6, ..., 1 from the
left, a valid code has a weighted sum divisible by 31.  31 is prime and every
weight (and every difference of neighbouring weights) is non-zero mod 31, so a
single substitution changes the sum by ``w * d != 0`` and a neighbour swap by
``(w_i - w_{i+1}) * d = ±d != 0``.
"""

from __future__ import annotations

import re
import secrets

from tickets.exceptions import InvalidCode

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_N = len(ALPHABET)  # 31, a prime: the checksum relies on it
RANDOM_LENGTH = 6
LENGTH = RANDOM_LENGTH + 1
_WEIGHTS = tuple(range(LENGTH, 0, -1))  # 7..1; the check symbol has weight 1
# What people put between symbols when they write or paste a code.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_.]+")
# A code written as it is shown: three symbols, a dash, four.
_DASHED = re.compile(r"^\s*\w{3}\s*[\-\u2010-\u2015]\s*\w{4}\s*$")


def _check_symbol(body: str) -> str:
    total = sum(w * _VALUE[c] for w, c in zip(_WEIGHTS, body, strict=False))
    return ALPHABET[-total % _N]


def is_valid(raw: str) -> bool:
    """True if ``raw`` (7 symbols, no separator) has a correct check symbol."""
    if len(raw) != LENGTH or any(c not in _VALUE for c in raw):
        return False
    return sum(w * _VALUE[c] for w, c in zip(_WEIGHTS, raw, strict=True)) % _N == 0


def format_code(raw: str) -> str:
    """``K7M4QX8`` -> ``K7M-4QX8`` (the form stored and shown).

    A code already in that form (a ticket's ``code`` is stored so) comes back
    unchanged, never dashed twice (``K7M--4QX8``); any other separator people
    write is replaced by the dash.  Anything that is not seven symbols of the
    alphabet once the separators are out is a ValueError: a caller passed
    something that was never checked as a code, and no citizen should be sent it.
    """
    body = _SEPARATORS.sub("", raw or "")
    if len(body) != LENGTH or any(c not in _VALUE for c in body):
        raise ValueError(f"not a tracking code: {raw[:40]!r}")
    return f"{body[:3]}-{body[3:]}"


def new_code() -> str:
    """A fresh random code, formatted (uniqueness is the caller's business)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return format_code(body + _check_symbol(body))


def parse_code(text: str) -> str:
    """The formatted code in ``text``; tolerant of case, spaces and dashes.

    Raises InvalidCode (with ``reason`` "length", "symbol" or "check").
    """
    raw = _SEPARATORS.sub("", text or "")
    # Checked before upper(): "ß".upper() is "SS", which would change the length.
    if not raw.isascii():
        raise InvalidCode(text, "symbol")
    raw = raw.upper()
    if len(raw) != LENGTH:
        raise InvalidCode(text, "length")
    if any(c not in _VALUE for c in raw):
        raise InvalidCode(text, "symbol")
    if not is_valid(raw):
        raise InvalidCode(text, "check")
    return format_code(raw)


def code_like(text: str) -> str | None:
    """The code ``text`` would be ("K7M-4QX9") if a search query is meant as one, else None.

    Seven symbols of the alphabet (case, spaces and dashes as :func:`parse_code`
    allows), at least one of them a letter, since seven digits are a piece of a
    phone number; and either a digit among them too or the dash where a code
    has it ("KMN-PQRS"), since a seven-letter word or a name ("anh tran") is
    text to search for.  Whether its check symbol is right is :func:`is_valid`'s
    business.
    """
    raw = _SEPARATORS.sub("", text or "")
    if len(raw) != LENGTH or not raw.isascii():
        return None
    raw = raw.upper()
    if any(c not in _VALUE for c in raw) or raw.isdigit():
        return None
    if raw.isalpha() and not _DASHED.match(text):
        return None
    return format_code(raw)

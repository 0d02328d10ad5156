"""Tracking numbers: the all-digit form of a ticket's tracking code.

The letter code (:mod:`tickets.codes`) uses letters that are not Vietnamese
(F, J, W, Z) and letter names that rhyme on a bad line (bê / pê / vê / tê).
So every ticket also has a number, which a citizen can key on a phone and an
agent can read out digit by digit:

- 9 random digits and 1 check digit, shown in groups as ``123 456 789 0``;
- the first digit is never 0, so a number is never taken for a Vietnamese
  phone number (10 digits starting with 0) and loses nothing when someone
  drops a leading zero; that leaves 900 million numbers, enough for a city's
  reports for many years with few collisions;
- random, not sequential: one citizen's number says nothing about another's;
- the check digit is Damm's (python-stdnum), which catches every single wrong
  digit and every swap of two neighbours, so a mistyped number is refused
  ("please key it again") instead of opening someone else's report.

:func:`spoken` gives the Vietnamese words to read a number aloud, group by
group (for the IVR).
"""

from __future__ import annotations

import re
import secrets

from stdnum import damm

from tickets.exceptions import InvalidCode

BODY_LENGTH = 9
LENGTH = BODY_LENGTH + 1
# How the number is grouped for reading: three, three, three, then the check digit.
GROUPS = (3, 3, 3, 1)
# What people put between digits when they write, paste or read back a number.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_.]+")
# Digits read one by one, as a switchboard does ("không", not "linh"; "bảy", "năm").
DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


def _digits(text: str) -> str:
    return _SEPARATORS.sub("", text or "")


def is_valid(raw: str) -> bool:
    """True if ``raw`` (10 ASCII digits, no separator) is a tracking number with a right
    check digit."""
    return (
        len(raw) == LENGTH
        and raw.isascii()
        and raw.isdigit()
        and raw[0] != "0"
        and damm.is_valid(raw)
    )


def new_number() -> str:
    """A fresh random number, 10 digits (uniqueness is the caller's business)."""
    body = str(10 ** (BODY_LENGTH - 1) + secrets.randbelow(9 * 10 ** (BODY_LENGTH - 1)))
    return body + damm.calc_check_digit(body)


def format_number(raw: str) -> str:
    """``1234567890`` -> ``123 456 789 0`` (the form shown and read out).

    A number already shown so (or written with other separators) comes back in
    that form, never grouped twice.  No check: it also shows a mistyped number
    back to the one who typed it."""
    digits = _digits(raw)
    parts, start = [], 0
    for size in GROUPS:
        parts.append(digits[start : start + size])
        start += size
    return " ".join(parts)


def number_like(text: str) -> str | None:
    """The 10 digits ``text`` holds if it is written as a tracking number, else None.

    Ten ASCII digits once spaces, dashes and dots are taken out, the first not
    0 (a phone number starts with 0).  Whether the check digit is right is
    :func:`is_valid`'s business.
    """
    raw = _digits(text)
    if len(raw) != LENGTH or not (raw.isascii() and raw.isdigit()) or raw[0] == "0":
        return None
    return raw


def parse_number(text: str) -> str:
    """The number in ``text`` (10 digits, no separator); tolerant of spaces and dashes.

    Raises InvalidCode (with ``reason`` "length", "symbol" or "check").
    """
    raw = _digits(text)
    if not (raw.isascii() and raw.isdigit()) or raw[:1] == "0":
        raise InvalidCode(text, "symbol")
    if len(raw) != LENGTH:
        raise InvalidCode(text, "length")
    if not damm.is_valid(raw):
        raise InvalidCode(text, "check")
    return raw


def spoken(raw: str) -> list[str]:
    """The Vietnamese words to read ``raw`` aloud: one string per group, digit by digit.

    ``spoken("1234567890")`` is ``["một hai ba", "bốn năm sáu", "bảy tám chín", "không"]``;
    the reader pauses between groups.  Pure: no I/O, no check of the check digit.
    """
    raw = _digits(raw)
    if len(raw) != LENGTH or not (raw.isascii() and raw.isdigit()):
        raise ValueError(f"not a tracking number: {raw[:40]!r}")
    return [" ".join(DIGIT_WORDS[int(d)] for d in group) for group in format_number(raw).split()]

"""How an SMS travels: GSM 7-bit when every character is in the GSM alphabet
(Vietnamese without diacritics), else UCS-2 (with them), and in how many parts.

A single SMS holds 140 octets: 160 GSM characters or 70 UCS-2 ones.  A longer
text is split into parts that each carry a 6-octet concatenation header, so
a part holds 153 GSM characters or 67 UCS-2 ones.  Characters of the GSM
extension table (``^{}[]~|\\€`` and form feed) take two septets.  Kannel
does the splitting itself (its sendsms user's ``concatenation`` and
``max-messages``); this module says beforehand what it will do, so the
agent sees the count before sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 default alphabet (the characters that take one septet)
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# the extension table: an escape septet then the character's own
GSM_EXTENDED = "^{}\\[~]|€\f"

_BASIC = frozenset(GSM_BASIC) - {"\x1b"}
_EXTENDED = frozenset(GSM_EXTENDED)

Coding = Literal["gsm7", "ucs2"]

#: Kannel's ``coding`` for each: 0 is 7-bit, 2 is UCS-2.
KANNEL_CODING: dict[str, int] = {"gsm7": 0, "ucs2": 2}


@dataclass(frozen=True)
class Size:
    """What a text costs on the air."""

    coding: Coding
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    parts: int
    per_part: int  # the room in each part at this size

    @property
    def kannel_coding(self) -> int:
        return KANNEL_CODING[self.coding]


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM 7-bit alphabet."""
    return all(c in _BASIC or c in _EXTENDED for c in text)


def size(text: str) -> Size:
    """The coding, the length in that coding and the number of parts of ``text``."""
    if is_gsm7(text):
        units = sum(2 if c in _EXTENDED else 1 for c in text)
        single, multi = 160, 153
        coding: Coding = "gsm7"
    else:
        units = len(text.encode("utf-16-be")) // 2
        single, multi = 70, 67
        coding = "ucs2"
    if units <= single:
        return Size(coding, units, 1, single)
    return Size(coding, units, -(-units // multi), multi)

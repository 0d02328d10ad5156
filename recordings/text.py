"""Text as the search index sees it: Unicode NFC, case-folded, split into words.

Vietnamese carries its tones as diacritics, and the same letter can arrive
precomposed (NFC, "ậ" one code point) or decomposed (NFD, "a" + two combining
marks) depending on the keyboard or the speech model.  Both the stored text
and the query go through :func:`normalise`, so "ngập nước" typed either way
finds "ngập nước" stored either way; diacritics are kept ("ma", "mà", "má"
are different words).
"""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """NFC and lower case (the form the full-text indexes hold)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def words(text: str) -> list[str]:
    """The words of ``text`` in normal form, punctuation dropped."""
    return WORD.findall(normalise(text))
